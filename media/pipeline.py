"""One call from uploaded bytes to a verdict: decode safely, auto-fix what is mechanical, check the result.

    result = process(data, spec)            # raises UnreadableImageError for a file that is not a photo
    result.passed, result.checks, result.fixes, result.normalized

Checks always run on ``normalized`` — the exact file that would be submitted — so what the student sees
is what the school gets. Pure: no Flask, no database. Not thread-safe per detector (see media.detect).
"""

from __future__ import annotations

import io
import math

import cv2
import numpy as np
from PIL import Image

from media import checks as ck
from media import decode, memory
from media.detect import DetectedFace, FaceDetector, default_detector
from media.fix import encode_in_range, encode_png, estimate_crown, plan_crop
from media.spec import PhotoSpec
from media.types import Check, FaceBox, Result, UnreadableImageError

__all__ = ["Check", "FaceBox", "Result", "UnreadableImageError", "hamming", "phash", "process"]

DETECT_LONG_SIDE = 640  # auto-fix looks for the face on a copy this large: ample for MTCNN, ~4× cheaper
DETECT_REDUCE = 12 / 20
MAX_UPSCALE = 1.25  # a crop may be enlarged this much at most; beyond it the photo lacks detail
# The checks look for faces down to this share of the spec's smallest face width, on an image reduced
# (by a whole factor, which cv2's area resize does fast) until that face is about DETECT_FACE_PX wide.
MIN_FACE_OF_SPEC = 0.5
DETECT_FACE_PX = 45


def process(data: bytes, spec: PhotoSpec, *, detector: FaceDetector | None = None) -> Result:
    header = decode.inspect(data)
    det = detector if detector is not None else default_detector()
    with memory.decoding(header.decoded_bytes):
        if _fits(header.width, header.height, spec):
            return _as_is(data, header, spec, det)
        return _auto_fix(data, header, spec, det)


def _fits(w: int, h: int, spec: PhotoSpec) -> bool:
    if spec.size_mode == "exact":
        return (w, h) == (spec.width, spec.height)
    return w <= spec.width and h <= spec.height


def _kb(n: int) -> str:
    return f"{n / 1024:.0f} KB"


def _encode(img: Image.Image, spec: PhotoSpec, fixes: list[str], why: str) -> tuple[bytes, str]:
    if "jpeg" in spec.formats:
        out, q, _ = encode_in_range(img, spec)
        fixes.append(f"{why}，已保存为 JPG（质量 {q}），文件 {_kb(len(out))}")
        return out, "jpeg"
    out = encode_png(img)
    fixes.append(f"{why}，已保存为 PNG，文件 {_kb(len(out))}")
    return out, "png"


def _as_is(data: bytes, header: decode.Header, spec: PhotoSpec, det: FaceDetector) -> Result:
    """Right pixel size already: keep the file (metadata stripped losslessly) unless something mechanical
    is off — rotation by EXIF, a format or colour encoding the spec refuses, bytes out of range."""
    img, _ = decode.load_rgb(data)
    fixes: list[str] = []
    keep = header.kind in spec.formats and header.orientation == 1 and header.mode in ("RGB", "L")
    # Kept means the image's own bytes, never the upload as it came: decode.clean drops metadata and
    # anything a polyglot hides in or after the image.
    normalized = decode.clean(data, header.kind) if keep else data
    if keep and spec.min_bytes <= len(normalized) <= spec.max_bytes:
        if header.has_metadata:
            fixes.append("已去除照片中的拍摄信息（EXIF/GPS 等）")
        return _assess(normalized, header.kind, header.mode, img, spec, det, fixes)
    reasons = []
    if header.orientation != 1:
        reasons.append("已按拍摄方向转正")
    if header.kind not in spec.formats:
        reasons.append(f"已从 {ck.FORMAT_NAMES[header.kind]} 转换格式")
    if header.mode not in ("RGB", "L"):
        reasons.append(f"已从 {header.mode} 转换为 RGB 彩色")
    if not reasons:
        reasons.append("文件大小不在要求范围内，已重新编码")
    out, kind = _encode(img, spec, fixes, "、".join(reasons))
    mode = "L" if header.mode == "L" else "RGB"
    return _assess(out, kind, mode, _decode_rgb(out), spec, det, fixes)


def _auto_fix(data: bytes, header: decode.Header, spec: PhotoSpec, det: FaceDetector) -> Result:
    """A larger photo (typically a 12 MP phone photo): find the one face, crop to the spec around it."""
    long_side = max(header.width, header.height)
    # Draft-decode a JPEG at 1/2, 1/4 or 1/8 — just enough for the detector.
    k = min(1.0, 1.5 * DETECT_LONG_SIDE / long_side)
    img, s = decode.load_rgb(data, min_size=(math.ceil(header.width * k), math.ceil(header.height * k)))
    # Pillow → numpy copies through tobytes (~13 ms for 2000×1500): convert only the small parts needed.
    # MTCNN looks for faces of 20 px and up on a copy at most 640 px long; the first level of its pyramid
    # is that copy at 12/20. Make the copy at that level's size and look from 12 px: the same search,
    # without resizing the larger copy again for each level of the pyramid.
    t0 = min(1.0, DETECT_LONG_SIDE / max(img.size))
    min_face = max(20, int(0.03 * max(img.size) * t0))
    t = t0 * DETECT_REDUCE
    det_size = (round(img.size[0] * t), round(img.size[1] * t))
    small = np.asarray(img.resize(det_size, Image.Resampling.BOX))
    faces = det.detect(small, min_face=max(12, round(min_face * DETECT_REDUCE)))
    color = ck.check_color_mode(header.mode, small)
    if len(faces) != 1:
        return _failed([color, ck.check_face_count(faces)])
    face_full = faces[0].scaled(1 / (t * s))
    face_img = face_full.scaled(s)
    above = np.asarray(img.crop((0, 0, img.size[0], max(1, math.ceil(face_img.y) + 1))))
    crown = estimate_crown(above, face_img) / s
    plan = plan_crop(face_full, crown, header.width, header.height, spec)
    crop_h = plan.y1 - plan.y0
    need = spec.height / crop_h
    if need > MAX_UPSCALE:
        msg = (
            "照片中的人脸太小（像素不足），无法裁剪成清晰的证件照："
            "请靠近镜头，让头部占画面高度的三分之一以上后重新拍摄"
        )
        return _failed([color, Check("face_width", False, round(face_full.w), None, msg)])
    if s < need and header.kind == "jpeg" and s < 1:
        # Only the rows down to the crop's bottom: the rest of the photo is never decoded.
        img, s = decode.load_rgb(
            data,
            min_size=(math.ceil(header.width * need), math.ceil(header.height * need)),
            top=plan.y1 / header.height,
        )
    x0, y0 = max(0, math.floor(plan.x0 * s)), max(0, math.floor(plan.y0 * s))
    x1, y1 = min(img.size[0], math.ceil(plan.x1 * s)), min(img.size[1], math.ceil(plan.y1 * s))
    src = np.asarray(img.crop((x0, y0, x1, y1)))
    # Area averaging when shrinking (no ringing, ~5× faster than Lanczos here), Lanczos when enlarging.
    interp = cv2.INTER_AREA if y1 - y0 >= spec.height else cv2.INTER_LANCZOS4
    out_img = Image.fromarray(cv2.resize(src, (spec.width, spec.height), interpolation=interp))
    fixes = [f"已以人脸为中心裁剪并缩放为 {spec.width}×{spec.height}（头部约占照片高度一半）"]
    if plan.clamped:
        fixes.append("原照片头部周围留白不足，裁剪位置已尽量调整")
    if header.orientation != 1:
        fixes.append("已按拍摄方向转正")
    out, kind = _encode(out_img, spec, fixes, "已去除拍摄信息（EXIF/GPS 等）")
    mode = "L" if header.mode == "L" else "RGB"
    return _assess(out, kind, mode, _decode_rgb(out), spec, det, fixes)


def _decode_rgb(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    return img.convert("RGB")


def _failed(checks: list[Check]) -> Result:
    return Result(
        passed=False,
        checks=checks,
        fixes=[],
        normalized=None,
        width=None,
        height=None,
        format=None,
        face=None,
        phash=None,
    )


def _assess(
    data: bytes,
    kind: str,
    mode: str,
    img: Image.Image,
    spec: PhotoSpec,
    det: FaceDetector,
    fixes: list[str],
) -> Result:
    rgb = np.asarray(img)
    h, w = rgb.shape[:2]
    half = ck.half_size(rgb)  # shared by the detector and the background checks
    faces = _detect_for_checks(rgb, half, spec, det)
    results: list[Check] = [
        ck.check_format(kind, spec),
        ck.check_pixel_size(w, h, spec),
        ck.check_file_size(len(data), spec),
        ck.check_color_mode(mode, rgb),
        ck.check_face_count(faces),
    ]
    face: DetectedFace | None = faces[0] if len(faces) == 1 else None
    if face is not None:
        results += ck.run_face_checks(rgb, face, spec, half)
    results.append(ck.check_border(rgb))
    results.append(ck.check_scan(rgb))
    return Result(
        passed=all(c.ok for c in results if c.blocking),
        checks=results,
        fixes=fixes,
        normalized=data,
        width=w,
        height=h,
        format=kind,
        face=_face_box(face),
        phash=phash(rgb),
    )


def _detect_for_checks(
    rgb: np.ndarray, half: np.ndarray, spec: PhotoSpec, det: FaceDetector
) -> list[DetectedFace]:
    """Faces of at least half the smallest face width the spec allows (smaller ones cannot be the face of
    a valid photo, and a stray face that small is a background detail), found on the image reduced so
    that such a face is still ~45 px: MTCNN's O-net sees faces at 48×48, so nothing is lost, and its
    pyramid and candidate crops get ~4× fewer pixels at 480×640."""
    h, w = rgb.shape[:2]
    min_face = max(12, int(MIN_FACE_OF_SPEC * spec.face_width_min * w))
    k = max(1, min_face // DETECT_FACE_PX)
    if k == 1:
        return det.detect(rgb, min_face=min_face)
    small = half if k == 2 else cv2.resize(rgb, (w // k, h // k), interpolation=cv2.INTER_AREA)
    return [f.scaled(k) for f in det.detect(small, min_face=min_face // k)]


def _face_box(face: DetectedFace | None) -> FaceBox | None:
    if face is None:
        return None

    def p(pt: tuple[float, float] | None) -> tuple[int, int] | None:
        return None if pt is None else (round(pt[0]), round(pt[1]))

    return FaceBox(
        x=round(face.x),
        y=round(face.y),
        w=round(face.w),
        h=round(face.h),
        left_eye=p(face.left_eye),
        right_eye=p(face.right_eye),
    )


def phash(rgb: np.ndarray) -> str:
    """64-bit DCT perceptual hash (the pHash construction): 16 hex digits; compare by Hamming distance."""
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    small = cv2.resize(grey, (32, 32), interpolation=cv2.INTER_AREA).astype(np.float32)
    low = cv2.dct(small)[:8, :8].reshape(-1)
    bits = low > np.median(low[1:])
    return f"{int(''.join('1' if b else '0' for b in bits), 2):016x}"


def hamming(a: str, b: str) -> int | None:
    """Bits that differ between two phash values; ≤ 10 of 64 means 'the same photo' for our purposes.

    None when the two are not comparable (lengths differ, not hex): a stored hash from another
    construction must not count as a near match.
    """
    if len(a) != len(b):
        return None
    try:
        return (int(a, 16) ^ int(b, 16)).bit_count()
    except ValueError:
        return None
