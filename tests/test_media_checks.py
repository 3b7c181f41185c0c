"""Every check's pass and fail side, on the generated fixtures (scripts/make_photo_fixtures.py)."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from media import checks as ck
from media.detect import DetectedFace, _nms, default_detector
from media.pipeline import Result, hamming, phash, process
from media.spec import PhotoSpec

PHOTOS = Path(__file__).parent / "fixtures" / "photos"
SPEC = PhotoSpec()  # 480×640 JPG ≤ 500 KB, light blue: the national standard's geometry


@pytest.fixture(scope="module")
def detector():
    return default_detector()


@pytest.fixture(scope="module")
def results(detector) -> dict[str, Result]:
    return {p.name: process(p.read_bytes(), SPEC, detector=detector) for p in sorted(PHOTOS.glob("*.jpg"))}


def failing(r: Result) -> set[str]:
    return {c.name for c in r.checks if not c.ok}


def test_good_photo_passes_every_check(results) -> None:
    r = results["id_ok.jpg"]
    assert r.passed and failing(r) == set()
    names = {c.name for c in r.checks}
    expected = {"format", "pixel_size", "file_size", "color_mode", "face_count", "eye_height", "face_width"}
    expected |= {"crown_margin", "centering", "roll", "yaw", "background_color", "background_uniformity"}
    expected |= {"exposure", "sharpness", "border", "scan"}
    assert names == expected
    assert all(c.message == "符合要求" for c in r.checks)
    assert r.face is not None and 180 <= r.face.w <= 300
    assert r.fixes == [] and r.normalized == (PHOTOS / "id_ok.jpg").read_bytes()


@pytest.mark.parametrize(
    ("name", "must_fail", "words"),
    [
        ("greyscale_rgb.jpg", {"color_mode"}, "黑白"),
        ("greyscale_l.jpg", {"color_mode"}, "黑白"),
        ("tilted.jpg", {"roll"}, "歪斜"),
        ("off_centre.jpg", {"centering"}, "偏左"),
        ("head_too_small.jpg", {"face_width", "eye_height", "crown_margin"}, "靠近镜头"),
        ("head_too_high.jpg", {"eye_height", "crown_margin"}, "头顶"),
        ("wrong_background.jpg", {"background_color"}, "浅蓝色"),
        ("background_shadow.jpg", {"background_uniformity"}, "阴影"),
        ("background_object.jpg", {"background_uniformity"}, "杂物"),
        ("black_border.jpg", {"border"}, "黑边"),
        ("dark.jpg", {"exposure"}, "太暗"),
        ("bright.jpg", {"exposure"}, "过亮"),
        ("half_shadow.jpg", {"exposure"}, "阴阳脸"),
        ("blurred.jpg", {"sharpness"}, "模糊"),
    ],
)
def test_each_defect_fails_its_check_with_a_useful_message(results, name, must_fail, words) -> None:
    r = results[name]
    assert not r.passed
    assert must_fail <= failing(r), failing(r)
    messages = " ".join(c.message for c in r.checks if c.name in must_fail)
    assert words in messages
    assert r.normalized is not None  # a failing photo is still stored and shown


def test_only_the_intended_checks_fail_for_single_defects(results) -> None:
    # Geometry-only and pose-only defects must not trip the colour, exposure or sharpness checks.
    assert failing(results["tilted.jpg"]) == {"roll"}
    assert failing(results["off_centre.jpg"]) == {"centering"}
    assert failing(results["blurred.jpg"]) == {"sharpness"}
    assert failing(results["wrong_background.jpg"]) == {"background_color"}


def test_no_face_two_faces_and_tiny_face(results) -> None:
    for name in ("no_face_coffee.jpg", "no_face_cat.jpg"):
        r = results[name]
        assert (
            not r.passed
            and r.check("face_count").value == 0
            and "没有检测到人脸" in r.check("face_count").message
        )
        assert r.normalized is None  # nothing to crop around
    two = results["phone_two_faces.jpg"]
    assert two.check("face_count").value == 2 and "2 张人脸" in two.check("face_count").message
    tiny = results["phone_tiny_face.jpg"]
    assert not tiny.passed and "人脸太小" in tiny.check("face_width").message


def test_scan_check_is_advisory(results) -> None:
    r = results["halftone_scan.jpg"]
    scan = r.check("scan")
    assert not scan.ok and not scan.blocking and "翻拍" in scan.message
    assert r.passed  # a warning for staff, not a refusal
    assert results["id_ok.jpg"].check("scan").ok


def test_background_colour_follows_the_spec(detector) -> None:
    data = (PHOTOS / "id_ok.jpg").read_bytes()
    r = process(data, PhotoSpec(background="white"), detector=detector)
    bg = r.check("background_color")
    assert not bg.ok and "白色" in bg.message and bg.value > 20
    assert process(data, PhotoSpec(background="light_blue"), detector=detector).check("background_color").ok


def test_format_pixel_and_file_size_checks() -> None:
    jpg_only = PhotoSpec()
    assert ck.check_format("jpeg", jpg_only).ok
    bad = ck.check_format("png", jpg_only)
    assert not bad.ok and "JPG" in bad.message
    assert ck.check_format("png", PhotoSpec(formats=("jpeg", "png"))).ok

    assert ck.check_pixel_size(480, 640, jpg_only).ok
    small = ck.check_pixel_size(240, 320, jpg_only)
    assert not small.ok and "原图" in small.message
    assert not ck.check_pixel_size(600, 800, jpg_only).ok
    maxed = PhotoSpec(size_mode="max", formats=("jpeg", "png"), max_bytes=10 * 1024 * 1024)
    assert ck.check_pixel_size(300, 400, maxed).ok
    assert not ck.check_pixel_size(481, 640, maxed).ok

    seed4 = PhotoSpec(min_bytes=100 * 1024, max_bytes=200 * 1024)
    assert ck.check_file_size(150 * 1024, seed4).ok
    big = ck.check_file_size(250 * 1024, seed4)
    small_file = ck.check_file_size(50 * 1024, seed4)
    assert not big.ok and "太大" in big.message and big.limit == "100 KB–200 KB"
    assert not small_file.ok and "太小" in small_file.message


def test_colour_mode_check() -> None:
    rgb = np.asarray(Image.open(PHOTOS / "id_ok.jpg").convert("RGB"))
    assert ck.check_color_mode("RGB", rgb).ok
    assert not ck.check_color_mode("CMYK", rgb).ok
    assert not ck.check_color_mode("L", rgb).ok
    grey = np.repeat(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)
    assert not ck.check_color_mode("RGB", grey).ok  # stored as RGB, still black and white


def face_with(nose_dx: float, roll_deg: float = 0.0) -> DetectedFace:
    """A synthetic MTCNN answer: eyes 80 px apart around (240, 250), nose 60 px below, rotated by roll."""
    c, s = np.cos(np.radians(roll_deg)), np.sin(np.radians(roll_deg))

    def rot(x: float, y: float) -> tuple[float, float]:
        return (240 + x * c - y * s, 250 + x * s + y * c)

    return DetectedFace(
        x=140, y=170, w=200, h=250, score=0.99,
        left_eye=rot(-40, 0), right_eye=rot(40, 0), nose=rot(nose_dx, 60),
    )  # fmt: skip


def test_yaw_estimate_pass_and_fail() -> None:
    assert abs(ck.estimate_yaw(face_with(0))) < 0.5
    assert ck.check_yaw(face_with(4), SPEC).ok
    turned = ck.check_yaw(face_with(25), SPEC)  # nose well off the eye midpoint: a turned head
    assert not turned.ok and turned.value > 30 and "侧脸" in turned.message
    # A tilted but frontal head is a roll problem, not a yaw one.
    assert ck.check_yaw(face_with(0, roll_deg=20), SPEC).ok
    assert not ck.check_roll(face_with(0, roll_deg=20), SPEC).ok
    assert ck.check_roll(face_with(0, roll_deg=3), SPEC).ok


def test_blur_score_rises_with_blur() -> None:
    grey = np.asarray(Image.open(PHOTOS / "id_ok.jpg").convert("L"))[150:400, 140:340]
    scores = [ck.blur_score(cv2.GaussianBlur(grey, (0, 0), s) if s else grey) for s in (0, 1, 2, 4)]
    assert scores == sorted(scores) and scores[-1] > 0.8


def test_border_check_ignores_a_dark_jacket_at_the_bottom() -> None:
    rgb = np.asarray(Image.open(PHOTOS / "id_ok.jpg").convert("RGB")).copy()
    rng = np.random.default_rng(1)
    rgb[-60:] = rng.integers(0, 30, size=rgb[-60:].shape, dtype=np.uint8)  # textured dark clothes
    assert ck.check_border(rgb).ok


def test_phash_matches_the_same_photo_and_not_another() -> None:
    a = np.asarray(Image.open(PHOTOS / "id_ok.jpg").convert("RGB"))
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "JPEG", quality=60)
    again = np.asarray(Image.open(buf).convert("RGB"))
    other = np.asarray(Image.open(PHOTOS / "no_face_coffee.jpg").convert("RGB"))
    h = phash(a)
    assert len(h) == 16 and int(h, 16) >= 0
    assert hamming(h, phash(again)) <= 4
    assert hamming(h, phash(other)) > 10


def test_default_detector_is_one_per_thread() -> None:
    mine = default_detector()
    assert default_detector() is mine
    seen = []
    t = threading.Thread(target=lambda: seen.append(default_detector()))
    t.start()
    t.join()
    assert seen and seen[0] is not mine


def test_hamming() -> None:
    assert hamming("ffffffffffffffff", "fffffffffffffff0") == 4
    assert hamming("0000000000000000", "0000000000000000") == 0
    assert hamming("abc", "abcd") is None
    assert hamming("zz", "00") is None


def _greedy_nms(boxes: np.ndarray, threshold: float, method: str) -> list[int]:
    """MTCNN's reference NMS, one box at a time: what media.detect._nms must pick, in the same order."""
    x1, y1, x2, y2, s = boxes.T
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    order, pick = np.argsort(s), []
    while order.size:
        i, rest = order[-1], order[:-1]
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + 1)
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + 1)
        inter = w * h
        denom = np.minimum(area[i], area[rest]) if method == "Min" else area[i] + area[rest] - inter
        pick.append(int(i))
        order = rest[inter / denom <= threshold]
    return pick


def test_nms_picks_what_the_reference_picks() -> None:
    rng = np.random.default_rng(7)
    for trial in range(300):
        n = int(rng.integers(1, 80))
        xy = rng.integers(0, 300, (n, 2)).astype(float)
        score = rng.random(n)
        if trial % 3 == 0:
            score = np.round(score, 1)  # ties
        boxes = np.column_stack([xy, xy + rng.integers(5, 80, (n, 2)), score])
        for threshold, method in ((0.5, "Union"), (0.7, "Union"), (0.7, "Min")):
            assert _nms(boxes, threshold, method).tolist() == _greedy_nms(boxes, threshold, method)
