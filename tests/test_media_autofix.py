"""Auto-fix: a 12 MP phone photo becomes the spec's exact size and byte range, then passes every check."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from media.decode import sniff
from media.detect import DetectedFace, default_detector
from media.fix import encode_in_range, plan_crop
from media.pipeline import process
from media.spec import PhotoSpec

PHOTOS = Path(__file__).parent / "fixtures" / "photos"
# 湖南师范大学: 480×640 JPG, 100–200 KB, light-blue background.
HUNAN_NORMAL_SPEC = PhotoSpec(
    width=480, height=640, formats=("jpeg",), min_bytes=100 * 1024, max_bytes=200 * 1024
)


@pytest.fixture(scope="module")
def detector():
    return default_detector()


@pytest.fixture(scope="module")
def phone() -> bytes:
    return (PHOTOS / "phone_4000x3000.jpg").read_bytes()


def test_phone_photo_is_cropped_sized_compressed_and_passes(phone, detector) -> None:
    r = process(phone, HUNAN_NORMAL_SPEC, detector=detector)
    assert (r.width, r.height, r.format) == (480, 640, "jpeg")
    assert 100 * 1024 <= len(r.normalized) <= 200 * 1024
    assert r.passed, [c for c in r.checks if not c.ok]
    assert all(c.ok for c in r.checks)
    assert any("480×640" in f for f in r.fixes) and any("KB" in f for f in r.fixes)
    out = Image.open(io.BytesIO(r.normalized))
    assert out.size == (480, 640) and out.mode == "RGB" and sniff(r.normalized) == "jpeg"
    assert not out.getexif() and b"FixturePhone" not in r.normalized  # the phone's EXIF and GPS are gone
    # Standard proportions: eyes near the middle of their band, face inside its width range.
    eyes_y = (r.face.left_eye[1] + r.face.right_eye[1]) / 2
    assert 220 <= eyes_y <= 280 and 190 <= r.face.w <= 290
    assert r.phash and len(r.phash) == 16


def test_other_specs_get_their_own_size(phone, detector) -> None:
    two_inch = PhotoSpec(width=413, height=579, background="light_blue", max_bytes=500 * 1024)
    r = process(phone, two_inch, detector=detector)
    assert (r.width, r.height) == (413, 579) and len(r.normalized) <= 500 * 1024
    assert r.passed, [c for c in r.checks if not c.ok]
    small = PhotoSpec(min_bytes=20 * 1024, max_bytes=40 * 1024)  # the national standard's usual 20–40 KB
    r = process(phone, small, detector=detector)
    assert 20 * 1024 <= len(r.normalized) <= 40 * 1024 and r.passed


def test_sideways_phone_photo_is_turned_before_cropping(phone, detector) -> None:
    img = Image.open(io.BytesIO(phone))
    exif = Image.Exif()
    exif[0x0112] = 8  # "rotate 90° counter-clockwise to view"
    buf = io.BytesIO()
    img.transpose(Image.Transpose.ROTATE_270).save(buf, "JPEG", quality=85, exif=exif.tobytes())
    r = process(buf.getvalue(), HUNAN_NORMAL_SPEC, detector=detector)
    assert (r.width, r.height) == (480, 640)
    assert r.check("roll").ok and r.passed
    assert any("转正" in f for f in r.fixes)


def test_right_size_photo_is_kept_not_reframed(detector) -> None:
    data = (PHOTOS / "id_ok.jpg").read_bytes()
    r = process(data, PhotoSpec(), detector=detector)
    assert r.normalized == data and r.fixes == []


def test_right_size_but_too_few_bytes_is_reencoded_not_padded(detector) -> None:
    data = (PHOTOS / "id_ok.jpg").read_bytes()  # ≈ 45 KB
    r = process(data, HUNAN_NORMAL_SPEC, detector=detector)
    assert 100 * 1024 <= len(r.normalized) <= 200 * 1024
    assert r.normalized.rstrip(b"\x00").endswith(b"\xff\xd9") and not r.normalized.endswith(b"\x00" * 16)
    assert "重新编码" in r.fixes[0] and r.passed


def test_impossible_byte_range_is_reported_never_padded(detector) -> None:
    data = (PHOTOS / "id_ok.jpg").read_bytes()
    spec = PhotoSpec(min_bytes=400 * 1024, max_bytes=900 * 1024)  # a 480×640 JPEG never weighs this much
    r = process(data, spec, detector=detector)
    assert not r.passed and not r.check("file_size").ok and "太小" in r.check("file_size").message
    assert len(r.normalized) < 400 * 1024


def test_encode_in_range_binary_search() -> None:
    img = Image.open(PHOTOS / "id_ok.jpg").convert("RGB")
    big = encode_in_range(img, PhotoSpec(min_bytes=10 * 1024, max_bytes=30 * 1024))
    assert big[2] == "ok" and 10 * 1024 <= len(big[0]) <= 30 * 1024 and 60 <= big[1] < 100
    too_small = encode_in_range(img, PhotoSpec(min_bytes=1024, max_bytes=2 * 1024))
    assert too_small[2] == "too_big" and too_small[1] == 60  # never below the standard's quality 60


def test_crop_plan_keeps_proportions_and_flags_a_tight_photo() -> None:
    face = DetectedFace(
        x=1800, y=1000, w=400, h=500, score=1.0, left_eye=(1910, 1200), right_eye=(2090, 1200)
    )
    plan = plan_crop(face, crown=900, img_w=4000, img_h=3000, spec=PhotoSpec())
    w, h = plan.x1 - plan.x0, plan.y1 - plan.y0
    assert abs(w / h - 480 / 640) < 1e-6 and not plan.clamped
    assert PhotoSpec().eye_line_min <= (1200 - plan.y0) / h <= PhotoSpec().eye_line_max
    assert 180 / 480 <= 400 / w <= 300 / 480
    tight = plan_crop(face, crown=900, img_w=2400, img_h=1300, spec=PhotoSpec())
    assert tight.clamped and tight.y0 >= 0 and tight.y1 <= 1300


def test_large_photo_without_a_face_gives_no_file(detector) -> None:
    coffee = np.asarray(Image.open(PHOTOS / "no_face_coffee.jpg"))
    big = Image.fromarray(coffee).resize((2400, 1600))
    buf = io.BytesIO()
    big.save(buf, "JPEG", quality=85)
    r = process(buf.getvalue(), HUNAN_NORMAL_SPEC, detector=detector)
    assert not r.passed and r.normalized is None and r.check("face_count").value == 0
