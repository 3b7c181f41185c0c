"""Safe decoding: the real type from the bytes, size limits before any pixel is decoded, EXIF orientation.

What a student uploads is untrusted: a ".jpg" may be a PNG, a PDF or a screenshot in HEIC; a small PNG may
declare 100 000 × 100 000 pixels (a decompression bomb). Everything here runs on the header first and
decodes pixels only when the sizes are sane.
"""

from __future__ import annotations

import io
import math
import struct
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps

from media.types import UnreadableImageError

MAX_INPUT_BYTES = 20 * 1024 * 1024
MAX_PIXELS = 50_000_000  # a 48 MP phone photo still decodes; more is refused before decoding
MAX_SIDE = 12_000
MIN_SIDE = 32
# A JPEG is decoded scaled down by its DCT (Pillow's draft) when it is large; other formats decode at full
# size, so their decoded size is capped: 64 MiB is 16 MP of RGB or RGBA as Pillow holds it. Resizing or
# converting an RGBA image makes a full-size copy first, so a check peaks near twice this.
MAX_FULL_DECODE_BYTES = 64 * 1024 * 1024
# Pillow warns above MAX_IMAGE_PIXELS and raises above twice that; our own header check comes first.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS

KIND_LABELS = {
    "jpeg": "JPG 图片",
    "png": "PNG 图片",
    "gif": "GIF 动图",
    "webp": "WebP 图片",
    "bmp": "BMP 图片",
    "tiff": "TIFF 图片",
    "heic": "HEIC/HEIF 图片（苹果手机的“高效”格式）",
    "avif": "AVIF 图片",
    "video": "视频文件",
    "pdf": "PDF 文档",
    "svg": "SVG 矢量图",
    "zip": "压缩包或 Office 文档",
    "text": "文本文件",
    "empty": "空文件",
    "unknown": "无法识别的文件",
}


def sniff(data: bytes) -> str:
    """The file's real type from its magic bytes (the name and the declared content type are ignored)."""
    head = data[:64]
    if not head:
        return "empty"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[:2] == b"BM":
        return "bmp"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    if head[4:8] == b"ftyp":
        return _iso_media_kind(head)
    if b"%PDF-" in data[:1024]:
        return "pdf"
    if head[:4] == b"PK\x03\x04":
        return "zip"
    stripped = head.lstrip()
    if stripped.startswith(b"<svg") or (stripped.startswith(b"<?xml") and b"<svg" in data[:2048]):
        return "svg"
    try:
        data[:2048].decode("utf-8")
    except UnicodeDecodeError:
        return "unknown"
    return "text"


# ISO base media files (HEIF, AVIF, MP4, MOV) open with an `ftyp` box: the major brand, then the
# compatible brands. A HEIF container's generic brand (mif1, msf1) needs the others to tell HEIC from
# AVIF; a brand of neither kind is a video (isom, mp42, qt …), not a picture.
_AVIF_BRANDS = {b"avif", b"avis"}
_HEIC_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs"}
_HEIF_GENERIC_BRANDS = {b"mif1", b"msf1"}


def _iso_media_kind(head: bytes) -> str:
    major = head[8:12]
    box_end = min(int.from_bytes(head[:4], "big"), len(head))
    compatible = {head[i : i + 4] for i in range(16, box_end - 3, 4)}
    for brands in ({major}, compatible):
        if brands & _AVIF_BRANDS:
            return "avif"
        if brands & _HEIC_BRANDS:
            return "heic"
    if ({major} | compatible) & _HEIF_GENERIC_BRANDS:
        return "heic"
    return "video"


# What an original may be served as. The rest (SVG above all: a browser runs its scripts) is served
# as application/octet-stream.
_IMAGE_MIME_TYPES = {
    "jpeg": "image/jpeg",
    "png": "image/png",
    "gif": "image/gif",
    "webp": "image/webp",
    "bmp": "image/bmp",
    "tiff": "image/tiff",
    "heic": "image/heic",
    "avif": "image/avif",
}


def image_mime_type(data: bytes) -> str | None:
    """The picture's MIME type from its bytes, None when the bytes are not a picture."""
    return _IMAGE_MIME_TYPES.get(sniff(data))


def kind_label(kind: str) -> str:
    return KIND_LABELS.get(kind, KIND_LABELS["unknown"])


@dataclass(frozen=True)
class Header:
    """What the header says, before any pixel is decoded. Sizes are upright (EXIF orientation applied)."""

    kind: str  # "jpeg" | "png"
    width: int
    height: int
    mode: str  # Pillow mode as stored: RGB, L, CMYK, RGBA, P, LA, I;16 …
    orientation: int  # EXIF orientation tag, 1 = upright
    has_metadata: bool  # EXIF/XMP/IPTC/comments or PNG text chunks worth stripping

    @property
    def decoded_bytes(self) -> int:
        """What a full decode holds in memory: Pillow keeps 1 byte a pixel for L and P, 2 for 16-bit
        greyscale, and 4 for every multi-band mode (RGB is stored as RGBX; 16-bit RGB(A) as 8-bit)."""
        return self.width * self.height * bytes_per_pixel(self.mode)


def bytes_per_pixel(mode: str) -> int:
    if mode in ("1", "L", "P"):
        return 1
    if mode.startswith("I;16"):
        return 2
    return 4


def _open(data: bytes) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise UnreadableImageError("图片像素数过大，无法处理，请上传手机或相机拍摄的原图") from exc
    except (OSError, SyntaxError, ValueError, struct.error) as exc:
        raise UnreadableImageError("图片文件已损坏或不完整，请重新拍摄或重新导出后上传") from exc


def _exif(img: Image.Image) -> Image.Exif:
    """The EXIF block, read from the header only. Pillow's PNG getexif() decodes the whole image to look
    for an eXIf chunk after the pixels: a 50 MP PNG would be decoded before any size was checked. An
    eXIf chunk placed after the image data is ignored here, as most viewers do."""
    if img.format == "PNG":
        exif = Image.Exif()
        raw = img.info.get("exif")
        if isinstance(raw, bytes):
            exif.load(raw)
        return exif
    return img.getexif()


def inspect(data: bytes) -> Header:
    """Validate type and sizes from the header only; raise UnreadableImageError with a Chinese message."""
    if len(data) > MAX_INPUT_BYTES:
        raise UnreadableImageError(
            f"文件太大（{len(data) / 1048576:.1f} MB），请上传 {MAX_INPUT_BYTES // 1048576} MB 以内的照片"
        )
    kind = sniff(data)
    if kind not in ("jpeg", "png"):
        raise UnreadableImageError(f"这是{kind_label(kind)}，不是照片：请上传 JPG 或 PNG 格式的照片")
    img = _open(data)
    w, h = img.size
    if w > MAX_SIDE or h > MAX_SIDE or w * h > MAX_PIXELS:
        raise UnreadableImageError(f"图片尺寸异常（{w}×{h} 像素），无法处理，请上传手机或相机拍摄的原图")
    if w < MIN_SIDE or h < MIN_SIDE:
        raise UnreadableImageError(f"图片太小（{w}×{h} 像素），请上传清晰的证件照")
    if kind != "jpeg" and w * h * bytes_per_pixel(img.mode) > MAX_FULL_DECODE_BYTES:
        most = MAX_FULL_DECODE_BYTES // bytes_per_pixel(img.mode) // 1_000_000
        raise UnreadableImageError(
            f"{kind_label(kind)}像素过多（{w}×{h}），最多 {most} 百万像素：请上传手机拍摄的 JPG 原图"
        )
    if img.format != kind.upper():
        raise UnreadableImageError("图片文件已损坏或不完整，请重新拍摄或重新导出后上传")
    try:
        exif = _exif(img)
        orientation = int(exif.get(0x0112, 1) or 1)
    except Exception:  # a damaged EXIF block is not worth refusing the photo for
        exif, orientation = None, 1
    if orientation not in range(1, 9):
        orientation = 1
    if orientation in (5, 6, 7, 8):
        w, h = h, w
    info_keys = set(img.info) - {"jfif", "jfif_version", "jfif_unit", "jfif_density", "dpi", "adobe"}
    info_keys -= {"adobe_transform", "progressive", "progression", "icc_profile", "gamma", "srgb"}
    info_keys -= {"transparency", "aspect"}
    has_metadata = bool(exif) or bool(info_keys)
    return Header(
        kind=kind, width=w, height=h, mode=img.mode, orientation=orientation, has_metadata=has_metadata
    )


def load_rgb(
    data: bytes, *, min_size: tuple[int, int] | None = None, top: float = 1.0
) -> tuple[Image.Image, float]:
    """Decode to an upright RGB image, and the scale of the result to the full-size upright image.

    With ``min_size`` (upright width, height) a JPEG is decoded through Pillow's draft mode: the DCT
    scales it by 1/2, 1/4 or 1/8 while decoding, so a 12 MP photo is never decoded in full when a
    quarter of it is enough (a 12 MP auto-crop took 154–174 ms this way, 245–305 ms with a full
    decode). Call ``inspect`` first.

    ``top``: the share of the upright height that is needed, from the top. A JPEG stored upright stops
    decoding a couple of rows below it, and the result is only that tall (other images decode whole).
    Only for data that has been decoded whole once already (see ``_load_rows``).
    """
    img = _open(data)
    full_w = img.size[0]
    try:
        orientation = int(_exif(img).get(0x0112, 1) or 1)
        # min_size is upright; the decoder works on the stored image, which EXIF may turn by 90°.
        req = None if min_size is None else min_size[::-1] if orientation in (5, 6, 7, 8) else min_size
        if req is not None and img.format == "JPEG":
            img.draft("RGB", req)
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            if top < 1 and img.format == "JPEG" and orientation in (1, 2):  # rows stay rows
                _load_rows(img, min(img.size[1], math.ceil(img.size[1] * top) + 2))
            else:
                img.load()
            if req is not None and img.format != "JPEG":
                # No DCT scaling outside JPEG: shrink right after decoding instead, before the copies
                # below (flattening transparency, colour conversion) are made at full size.
                factor = min(img.size[0] // max(1, req[0]), img.size[1] // max(1, req[1]))
                if factor >= 2:
                    img = img.reduce(factor)
            scale = img.size[0] / full_w
            # exif_transpose copies the whole image even when there is nothing to turn: skip it then.
            # It reads the tag from the image, which a reduced copy no longer carries: turn by hand then.
            if orientation in range(2, 9):
                upright = (
                    ImageOps.exif_transpose(img) if img.getexif().get(0x0112) else _turn(img, orientation)
                )
            else:
                upright = img
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise UnreadableImageError("图片像素数过大，无法处理，请上传手机或相机拍摄的原图") from exc
    except (OSError, SyntaxError, ValueError, struct.error) as exc:
        raise UnreadableImageError("图片文件已损坏或不完整，请重新拍摄或重新导出后上传") from exc
    if upright.mode != "RGB":
        if upright.mode in ("RGBA", "LA", "PA") or (upright.mode == "P" and "transparency" in upright.info):
            # Transparent areas become white: what a viewer shows, and what a school's system would see.
            rgba = upright if upright.mode == "RGBA" else upright.convert("RGBA")
            base = Image.new("RGB", rgba.size, (255, 255, 255))
            base.paste(rgba, mask=rgba.getchannel("A"))
            upright = base
        else:
            upright = upright.convert("RGB")
    return upright, scale


def _load_rows(img: Image.Image, rows: int) -> None:
    """Decode only the first ``rows`` rows of a JPEG: libjpeg writes rows in order, so they are exactly
    those of a whole decode (tests/test_media_decode.py checks it), and what lies below is never
    decoded. Pillow has no API for it: the image is told it is that tall, and libjpeg's refusal to
    finish a decode stopped early, which Pillow reports as a broken data stream, is expected. A
    broken stream that is not ours cannot hide behind it: the callers decode the whole stream once
    before (the auto-fix finds the face on a reduced decode of the same bytes)."""
    tile = img.tile
    if rows >= img.size[1] or len(tile) != 1:
        img.load()
        return
    img._size = (img.size[0], rows)
    img.tile = [tile[0]._replace(extents=(0, 0, img.size[0], rows))]
    try:
        img.load()
    except OSError as exc:
        if img.tile or "broken data stream" not in str(exc):
            raise


_TURNS = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def _turn(img: Image.Image, orientation: int) -> Image.Image:
    """What ImageOps.exif_transpose does for this orientation tag (its table), on an image without EXIF."""
    return img.transpose(_TURNS[orientation])


# What a kept-as-is photo may carry. An allow-list, not a drop-list: anything else in the file — EXIF, GPS,
# XMP, comments, a private PNG chunk, bytes after the image's end (an HTML page or a ZIP appended to a
# valid JPEG: a polyglot) — never reaches the file that is stored and exported to schools.
# JPEG: JFIF (APP0), ICC profile (APP2), Adobe colour transform (APP14) besides the image's own segments.
_KEEP_APP = {0xE0, 0xE2, 0xEE}
# Segments that define the image: SOF0–SOF15 and DHT, DAC (C0–CF but for the reserved C8), DQT (DB),
# DNL (DC), DRI (DD).
_JPEG_IMAGE_MARKERS = ({*range(0xC0, 0xD0)} - {0xC8}) | {0xDB, 0xDC, 0xDD}
# PNG: the critical chunks and the ancillary ones that change how the pixels look.
_KEEP_PNG = {
    b"IHDR",
    b"PLTE",
    b"IDAT",
    b"IEND",
    b"tRNS",
    b"gAMA",
    b"cHRM",
    b"sRGB",
    b"iCCP",
    b"sBIT",
    b"pHYs",
}
_DAMAGED = "图片文件已损坏或不完整，请重新拍摄或重新导出后上传"


def clean(data: bytes, kind: str) -> bytes:
    """Only the image, losslessly (no re-encoding): the segments or chunks that make up its pixels, up to
    its end marker, without metadata, foreign segments or trailing bytes.

    Only for files whose EXIF orientation is 1: without the tag, a rotated photo would show sideways.
    """
    if kind == "jpeg":
        return _clean_jpeg(data)
    if kind == "png":
        return _clean_png(data)
    raise ValueError(kind)


def _clean_jpeg(data: bytes) -> bytes:
    out = bytearray(b"\xff\xd8")
    i = 2
    n = len(data)
    while i + 2 <= n:
        if data[i] != 0xFF:
            raise UnreadableImageError(_DAMAGED)
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0xD9:  # EOI: the image ends here, whatever follows it
            out += b"\xff\xd9"
            return bytes(out)
        if i + 4 > n:
            break
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        end = i + 2 + length
        if length < 2 or end > n:
            raise UnreadableImageError(_DAMAGED)
        if marker == 0xDA:  # SOS: its header, then entropy-coded data up to the next real marker
            end = _scan_end(data, end)
            out += data[i:end]
        elif marker in _JPEG_IMAGE_MARKERS or marker in _KEEP_APP:
            out += data[i:end]
        i = end
    raise UnreadableImageError(_DAMAGED)


def _scan_end(data: bytes, i: int) -> int:
    """Where the entropy-coded data starting at `i` ends: the next marker that is not a stuffed byte
    (FF 00), a restart marker (FF D0–D7) or fill (FF FF)."""
    n = len(data)
    while True:
        i = data.find(b"\xff", i)
        if i < 0 or i + 1 >= n:
            raise UnreadableImageError(_DAMAGED)
        following = data[i + 1]
        if following == 0x00 or 0xD0 <= following <= 0xD7:
            i += 2
        elif following == 0xFF:
            i += 1
        else:
            return i


def _clean_png(data: bytes) -> bytes:
    out = bytearray(data[:8])
    i = 8
    n = len(data)
    while i + 12 <= n:
        (length,) = struct.unpack(">I", data[i : i + 4])
        ctype = data[i + 4 : i + 8]
        end = i + 12 + length
        if end > n:
            raise UnreadableImageError(_DAMAGED)
        if ctype in _KEEP_PNG:
            out += data[i:end]
        i = end
        if ctype == b"IEND":
            return bytes(out)
    raise UnreadableImageError(_DAMAGED)
