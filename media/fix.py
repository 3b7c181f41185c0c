"""Auto-fix: the mechanical part only — crop around the face, resize, encode into the byte range.

Never alters the face or the background (no beautification, no background replacement, no padding of
bytes to reach a minimum size).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

from media.checks import crown_row, to_lab
from media.detect import DetectedFace
from media.spec import PhotoSpec


@dataclass(frozen=True)
class CropPlan:
    x0: float
    y0: float
    x1: float
    y1: float
    clamped: bool  # the ideal box left the photo and was moved or shrunk to fit


def _eye_centre(face: DetectedFace) -> tuple[float, float]:
    if face.left_eye and face.right_eye:
        return (face.left_eye[0] + face.right_eye[0]) / 2, (face.left_eye[1] + face.right_eye[1]) / 2
    return face.x + face.w / 2, face.y + 0.4 * face.h


def estimate_crown(rgb: np.ndarray, face: DetectedFace) -> float:
    """Top of the head (hair included) in rgb's pixels: measured against the background above the head when
    that works, else the anthropometric estimate (eyes halfway between crown and chin, plus hair)."""
    _, eye_y = _eye_centre(face)
    chin = face.y + face.h
    guess = eye_y - 1.2 * (chin - eye_y)
    top_rows = int(max(0, face.y - 0.75 * face.h) * 0.8)
    if top_rows >= 4:
        lab = to_lab(rgb[: int(face.y) + 1])
        bg = np.median(lab[:top_rows].reshape(-1, 3), axis=0)
        row = crown_row(lab, face, 1.0, bg)
        # Plausible only between 0.6 and 2.5 eye-to-chin distances above the eyes.
        if row is not None and eye_y - 2.5 * (chin - eye_y) <= row <= eye_y - 0.6 * (chin - eye_y):
            return float(row)
    return guess


def plan_crop(face: DetectedFace, crown: float, img_w: int, img_h: int, spec: PhotoSpec) -> CropPlan:
    """The crop box (source pixels) that puts the head at the spec's proportions.

    Height from the head (crown to chin ≈ spec.head_ratio of the height), kept inside the face-width
    range; then the eye line chosen inside its range so that the crown margin lands in its range too.
    """
    aspect = spec.width / spec.height
    eye_x, eye_y = _eye_centre(face)
    chin = face.y + face.h
    head = max(1.0, chin - crown)
    c = head / spec.head_ratio
    # Face width fraction = face.w / (c * aspect): keep it in the middle half of the spec's range (the
    # detector's box on the final image differs from this one by up to ~8 %).
    quarter = (spec.face_width_max - spec.face_width_min) / 4
    c_min = face.w / ((spec.face_width_max - quarter) * aspect)
    c_max = face.w / ((spec.face_width_min + quarter) * aspect)
    if c_min <= c_max:
        c = min(max(c, c_min), c_max)
    # Eye line e (fraction from the top); crown margin = e - (eye_y - crown) / c.
    d = (eye_y - crown) / c
    e_target = (spec.eye_line_min + spec.eye_line_max) / 2
    pad_e = 0.1 * (spec.eye_line_max - spec.eye_line_min)
    pad_c = 0.1 * (spec.crown_margin_max - spec.crown_margin_min)
    lo = max(spec.eye_line_min + pad_e, spec.crown_margin_min + pad_c + d)
    hi = min(spec.eye_line_max - pad_e, spec.crown_margin_max - pad_c + d)
    # Halfway between the eye line's and the crown margin's preferred positions: both land mid-range.
    crown_mid = (spec.crown_margin_min + spec.crown_margin_max) / 2
    e_pref = (e_target + crown_mid + d) / 2
    e = min(max(e_pref, lo), hi) if lo <= hi else e_target
    cw = c * aspect
    cx = (face.x + face.w / 2 + eye_x) / 2
    x0, y0 = cx - cw / 2, eye_y - e * c
    clamped = False
    if cw > img_w or c > img_h:  # the photo is too tight: shrink the box, geometry checks will tell
        k = min(img_w / cw, img_h / c)
        cw, c = cw * k, c * k
        x0, y0 = cx - cw / 2, eye_y - e * c
        clamped = True
    if x0 < 0 or y0 < 0 or x0 + cw > img_w or y0 + c > img_h:
        x0 = min(max(x0, 0.0), img_w - cw)
        y0 = min(max(y0, 0.0), img_h - c)
        clamped = True
    return CropPlan(x0=x0, y0=y0, x1=x0 + cw, y1=y0 + c, clamped=clamped)


def encode_jpeg(img: Image.Image, quality: int) -> bytes:
    buf = io.BytesIO()
    # 4:4:4 chroma above q90: no colour bleeding at the edges of the head, which reviewers notice.
    img.save(buf, "JPEG", quality=quality, subsampling=0 if quality >= 90 else 2)
    return buf.getvalue()


def encode_in_range(img: Image.Image, spec: PhotoSpec) -> tuple[bytes, int, str]:
    """JPEG bytes in [min_bytes, max_bytes] at the highest quality that fits (binary search, ≤ 7 encodes).

    Returns (bytes, quality, "ok" | "too_big" | "too_small"); out of range only when no quality between
    spec.min_jpeg_quality and 100 lands inside (the checks then report it; bytes are never padded).
    """
    best = encode_jpeg(img, 100)
    if len(best) <= spec.max_bytes:
        return best, 100, "ok" if len(best) >= spec.min_bytes else "too_small"
    lo, hi = spec.min_jpeg_quality, 99
    found: tuple[bytes, int] | None = None
    while lo <= hi:
        q = (lo + hi) // 2
        data = encode_jpeg(img, q)
        if len(data) <= spec.max_bytes:
            found = (data, q)
            lo = q + 1
        else:
            hi = q - 1
    if found is None:
        return encode_jpeg(img, spec.min_jpeg_quality), spec.min_jpeg_quality, "too_big"
    data, q = found
    return data, q, "ok" if len(data) >= spec.min_bytes else "too_small"


def encode_png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG", compress_level=6)
    return buf.getvalue()
