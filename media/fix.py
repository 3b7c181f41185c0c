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
        # Lab of the two parts crown_row needs only: the rows above the head (the background colour)
        # and the column over the face down to the eyes; not the whole width above the face.
        bg = np.median(to_lab(rgb[:top_rows]).reshape(-1, 3), axis=0)
        x0, x1 = _crown_columns(face, rgb.shape[1])
        strip = face.scaled(1.0, dx=-x0)
        lab = to_lab(rgb[: int(face.y) + 1, x0:x1])
        row = crown_row(lab, strip, 1.0, bg)
        # Plausible only between 0.6 and 2.5 eye-to-chin distances above the eyes.
        if row is not None and eye_y - 2.5 * (chin - eye_y) <= row <= eye_y - 0.6 * (chin - eye_y):
            return float(row)
    return guess


def _crown_columns(face: DetectedFace, width: int) -> tuple[int, int]:
    """The columns crown_row (at scale 1) reads for this face, plus a pixel on each side."""
    cx = face.x + face.w / 2
    half = max(2, int(face.w / 4))
    return max(0, int(cx - half) - 1), min(width, int(cx + half) + 2)


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
    """JPEG bytes in [min_bytes, max_bytes] at the highest quality that fits.

    Returns (bytes, quality, "ok" | "too_big" | "too_small"); out of range only when no quality between
    spec.min_jpeg_quality and 100 lands inside (the checks then report it; bytes are never padded).

    The size grows with the quality, so the answer is the highest quality under max_bytes. It is usually
    high (a byte range is set for photos, not thumbnails): the search steps down from 100 by 1, 2, 4 …
    and then bisects the last step — 3–4 encodes for the seed school's 100–200 KB, where a bisection of
    60–99 took 7. Same answer as the bisection.
    """
    lo = spec.min_jpeg_quality
    fits: tuple[bytes, int] | None = None  # the lowest quality tried that fits
    over = 101  # the lowest quality tried that is too big
    step, q = 1, 100
    while True:
        data = encode_jpeg(img, q)
        if len(data) <= spec.max_bytes:
            fits = (data, q)
            break
        over = q
        if q == lo:
            break
        q = max(lo, q - step)
        step *= 2
    if fits is None:
        return data, lo, "too_big"
    # Bisect between the highest fit and the lowest miss.
    lo_q = fits[1]
    while over - lo_q > 1:
        q = (lo_q + over) // 2
        data = encode_jpeg(img, q)
        if len(data) <= spec.max_bytes:
            fits, lo_q = (data, q), q
        else:
            over = q
    data, q = fits
    return data, q, "ok" if len(data) >= spec.min_bytes else "too_small"


def encode_png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG", compress_level=6)
    return buf.getvalue()
