"""ID card scans, diplomas and certificates as JPG/PNG: decoded with the photo pipeline's safeguards,
turned upright, scaled down to the slot's pixel cap and re-encoded, so nothing but pixels is stored."""

from __future__ import annotations

import io
import math

from PIL import Image

from media import decode, memory
from media.documents.rules import MIME_TYPES, CheckedDocument, DocumentRefused, SlotRules
from media.types import UnreadableImageError

# Text on a scanned certificate must stay legible: 90 keeps small print sharp (4:4:4 chroma) at about
# 1-2 MB for 3000×2100.
JPEG_QUALITY = 90
THUMB_SIDE = 320
THUMB_QUALITY = 80


def check_image(data: bytes, kind: str, slot: SlotRules) -> CheckedDocument:
    """``kind`` is the sniffed jpg or png. The stored format is the upload's when the slot allows it,
    else the slot's other image format (a PNG for a JPG-only slot is converted, not refused)."""
    try:
        header = decode.inspect(data)  # type and pixel size from the header: bombs stop here
    except UnreadableImageError as exc:
        raise DocumentRefused(exc.message, "image_unreadable") from exc
    w, h = header.width, header.height
    target = fit(w, h, slot.max_width, slot.max_height)
    out_kind = kind if kind in slot.formats else ("jpg" if "jpg" in slot.formats else "png")
    with memory.decoding(header.decoded_bytes):
        try:
            # A JPEG is decoded already reduced by its DCT when the target is much smaller.
            img, _ = decode.load_rgb(data, min_size=target)
        except UnreadableImageError as exc:
            raise DocumentRefused(exc.message, "image_unreadable") from exc
        if img.size != target:
            img = img.resize(target, Image.Resampling.LANCZOS)
        out = _encode(img, out_kind)
        if out_kind == "png" and len(out) > slot.max_bytes and "jpg" in slot.formats:
            out_kind, out = "jpg", _encode(img, "jpg")  # a photo saved as PNG is several times a JPEG
        thumb = thumbnail(img)
    notes: list[str] = []
    if target != (w, h):
        notes.append(f"已从 {w}×{h} 缩小为 {target[0]}×{target[1]} 像素")
    if header.orientation != 1:
        notes.append("已按拍摄方向转正")
    if out_kind != kind:
        notes.append(f"已转换为 {out_kind.upper()} 格式")
    if len(out) > slot.max_bytes:
        raise DocumentRefused(
            f"图片压缩后仍有 {len(out) / 1048576:.1f} MB，超过 {slot.max_bytes // 1048576} MB："
            "请裁掉多余部分后再上传",
            "image_too_big",
        )
    return CheckedDocument(
        kind=out_kind,
        mime_type=MIME_TYPES[out_kind],
        data=out,
        width=target[0],
        height=target[1],
        thumbnail=thumb,
        notes=tuple(notes),
    )


def fit(w: int, h: int, max_w: int, max_h: int) -> tuple[int, int]:
    """The largest size within (max_w, max_h) with the image's proportions; never enlarged."""
    k = min(1.0, max_w / w, max_h / h)
    if k >= 1.0:
        return w, h
    return max(1, min(max_w, math.floor(w * k + 0.5))), max(1, min(max_h, math.floor(h * k + 0.5)))


def _encode(img: Image.Image, kind: str) -> bytes:
    # Saved from bare pixels: no EXIF, XMP, comments or trailing bytes reach the stored file.
    buf = io.BytesIO()
    if kind == "jpg":
        img.save(buf, "JPEG", quality=JPEG_QUALITY, subsampling=0, optimize=True)
    else:
        img.save(buf, "PNG", compress_level=6)
    return buf.getvalue()


def thumbnail(img: Image.Image) -> bytes:
    small = img.copy()
    small.thumbnail((THUMB_SIDE, THUMB_SIDE), Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    small.convert("RGB").save(buf, "JPEG", quality=THUMB_QUALITY)
    return buf.getvalue()
