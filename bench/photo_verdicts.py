"""Pass/fail of every photo check over a fixed set of photos: the guard that makes the checks faster without
changing what they decide.

    .venv/bin/python bench/photo_verdicts.py                 # print the table
    .venv/bin/python bench/photo_verdicts.py --out FILE      # write it (bench/photo_verdicts_*.txt)
    .venv/bin/python bench/photo_verdicts.py --check FILE    # exit 1 and show the rows that differ

The set: the test fixtures (tests/fixtures/photos/) and variants of them made here, deterministically (fixed
seeds, no downloads): crops and zooms, shifts, background recolouring, brightness and gamma, blur, noise, and
smaller and shifted versions of the 12 MP phone photo. Faces of several sizes, positions, backgrounds and
lighting; photos that pass and photos that fail each check. One row a photo: ``P`` passed, ``F`` failed,
``-`` not run (no single face, or the check had nothing to measure).
"""

from __future__ import annotations

import argparse
import io
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from media.detect import default_detector  # noqa: E402
from media.pipeline import process  # noqa: E402
from media.spec import PhotoSpec  # noqa: E402
from media.types import UnreadableImageError  # noqa: E402

PHOTOS = ROOT / "tests" / "fixtures" / "photos"
CHECKS = (
    "format",
    "pixel_size",
    "file_size",
    "color_mode",
    "face_count",
    "eye_height",
    "face_width",
    "crown_margin",
    "centering",
    "roll",
    "yaw",
    "background_color",
    "background_uniformity",
    "exposure",
    "sharpness",
    "border",
    "scan",
)
SPEC = PhotoSpec()
# The seed school's spec (100–200 KB): the auto-fix's JPEG quality search has to work for it.
HUNAN = PhotoSpec(width=480, height=640, formats=("jpeg",), min_bytes=100 * 1024, max_bytes=200 * 1024)

Variant = Callable[[np.ndarray], np.ndarray]


def _jpeg(rgb: np.ndarray, quality: int = 92) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def _rgb(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def zoom(k: float) -> Variant:
    """Zoom about the centre by k (k > 1 crops in, k < 1 shows more: the edges are replicated)."""

    def f(rgb: np.ndarray) -> np.ndarray:
        h, w = rgb.shape[:2]
        m = np.float32([[k, 0, (1 - k) * w / 2], [0, k, (1 - k) * h / 2]])
        return cv2.warpAffine(rgb, m, (w, h), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)

    return f


def shift(dx: int, dy: int) -> Variant:
    def f(rgb: np.ndarray) -> np.ndarray:
        h, w = rgb.shape[:2]
        m = np.float32([[1, 0, dx], [0, 1, dy]])
        return cv2.warpAffine(rgb, m, (w, h), borderMode=cv2.BORDER_REPLICATE)

    return f


def crop(x0: float, y0: float, x1: float, y1: float) -> Variant:
    """Crop to the fractions given and scale back to the original size."""

    def f(rgb: np.ndarray) -> np.ndarray:
        h, w = rgb.shape[:2]
        part = rgb[int(y0 * h) : int(y1 * h), int(x0 * w) : int(x1 * w)]
        return cv2.resize(part, (w, h), interpolation=cv2.INTER_CUBIC)

    return f


def brightness(k: float, add: float = 0.0) -> Variant:
    def f(rgb: np.ndarray) -> np.ndarray:
        return np.clip(rgb.astype(np.float32) * k + add, 0, 255).astype(np.uint8)

    return f


def gamma(g: float) -> Variant:
    def f(rgb: np.ndarray) -> np.ndarray:
        lut = np.clip(255 * (np.arange(256) / 255.0) ** g, 0, 255).astype(np.uint8)
        return lut[rgb]

    return f


def blur(sigma: float) -> Variant:
    def f(rgb: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(rgb, (0, 0), sigma)

    return f


def noise(sigma: float, seed: int) -> Variant:
    def f(rgb: np.ndarray) -> np.ndarray:
        n = np.random.default_rng(seed).normal(0, sigma, rgb.shape)
        return np.clip(rgb + n, 0, 255).astype(np.uint8)

    return f


def recolour(target: tuple[int, int, int], tol: float = 30.0) -> Variant:
    """Repaint the background (pixels near the light-blue backdrop in Lab, feathered) in another colour,
    keeping its shading: what a different backdrop would look like."""

    def f(rgb: np.ndarray) -> np.ndarray:
        lab = cv2.cvtColor(rgb.astype(np.float32) / 255, cv2.COLOR_RGB2Lab)
        ref = cv2.cvtColor(np.float32([[[100, 197, 255]]]) / 255, cv2.COLOR_RGB2Lab)[0, 0]
        de = np.sqrt(((lab - ref) ** 2).sum(axis=2))
        alpha = cv2.GaussianBlur(np.clip((tol - de) / 10, 0, 1).astype(np.float32), (0, 0), 1.5)[..., None]
        shade = lab[..., :1] / max(1.0, float(ref[0]))
        paint = np.clip(np.float32(target) * shade, 0, 255)
        return np.clip(rgb * (1 - alpha) + paint * alpha, 0, 255).astype(np.uint8)

    return f


def gradient(strength: float) -> Variant:
    """A light falling off from left to right (a window on one side)."""

    def f(rgb: np.ndarray) -> np.ndarray:
        w = rgb.shape[1]
        ramp = np.linspace(1 + strength, 1 - strength, w, dtype=np.float32)[None, :, None]
        return np.clip(rgb * ramp, 0, 255).astype(np.uint8)

    return f


def chain(*fs: Variant) -> Variant:
    def f(rgb: np.ndarray) -> np.ndarray:
        for g in fs:
            rgb = g(rgb)
        return rgb

    return f


# (base fixture, variant name, transform): every one a 480×640 photo checked as uploaded.
SMALL_VARIANTS: list[tuple[str, str, Variant]] = [
    ("id_ok.jpg", "zoom_in_1.15", zoom(1.15)),
    ("id_ok.jpg", "zoom_in_1.35", zoom(1.35)),
    ("id_ok.jpg", "zoom_out_0.85", zoom(0.85)),
    ("id_ok.jpg", "zoom_out_0.7", zoom(0.7)),
    ("id_ok.jpg", "shift_right_20", shift(20, 0)),
    ("id_ok.jpg", "shift_left_45", shift(-45, 0)),
    ("id_ok.jpg", "shift_down_40", shift(0, 40)),
    ("id_ok.jpg", "shift_up_60", shift(0, -60)),
    ("id_ok.jpg", "crop_top_left", crop(0.0, 0.0, 0.85, 0.85)),
    ("id_ok.jpg", "crop_bottom_right", crop(0.1, 0.1, 1.0, 1.0)),
    ("id_ok.jpg", "bg_white", recolour((255, 255, 255))),
    ("id_ok.jpg", "bg_grey", recolour((220, 220, 220))),
    ("id_ok.jpg", "bg_blue", recolour((67, 142, 219))),
    ("id_ok.jpg", "bg_pale_blue", recolour((120, 205, 250))),
    ("id_ok.jpg", "bg_red", recolour((200, 40, 40))),
    ("id_ok.jpg", "darker_0.8", brightness(0.8)),
    ("id_ok.jpg", "darker_0.6", brightness(0.6)),
    ("id_ok.jpg", "brighter_1.15", brightness(1.15)),
    ("id_ok.jpg", "brighter_1.4", brightness(1.3, 20)),
    ("id_ok.jpg", "gamma_0.7", gamma(0.7)),
    ("id_ok.jpg", "gamma_1.5", gamma(1.5)),
    ("id_ok.jpg", "blur_1", blur(1.0)),
    ("id_ok.jpg", "blur_2.5", blur(2.5)),
    ("id_ok.jpg", "noise_4", noise(4, 1)),
    ("id_ok.jpg", "noise_12", noise(12, 2)),
    ("id_ok.jpg", "side_light", gradient(0.25)),
    ("id_ok.jpg", "zoom_out_shift_bg_white", chain(zoom(0.8), shift(30, 10), recolour((255, 255, 255)))),
    ("id_ok.jpg", "zoom_in_dark_noise", chain(zoom(1.2), brightness(0.75), noise(6, 3))),
    ("off_centre.jpg", "shift_back", shift(60, 0)),
    ("off_centre.jpg", "darker", brightness(0.85)),
    ("tilted.jpg", "zoom_out", zoom(0.85)),
    ("tilted.jpg", "bg_white", recolour((255, 255, 255))),
    ("head_too_small.jpg", "zoom_in_1.3", zoom(1.3)),
    ("head_too_small.jpg", "zoom_in_1.6", zoom(1.6)),
    ("head_too_small.jpg", "zoom_in_2", chain(zoom(2.0), shift(0, 30))),
    ("head_too_high.jpg", "shift_down_50", shift(0, 50)),
    ("wrong_background.jpg", "zoom_in", zoom(1.2)),
    ("background_shadow.jpg", "blur", blur(1.5)),
    ("background_object.jpg", "shift_left", shift(-25, 0)),
    ("half_shadow.jpg", "brighter", brightness(1.1)),
    ("dark.jpg", "brighter_1.3", brightness(1.3)),
    ("bright.jpg", "darker_0.8", brightness(0.8)),
    ("blurred.jpg", "noise", noise(5, 4)),
    ("halftone_scan.jpg", "zoom_in", zoom(1.1)),
    ("black_border.jpg", "shift", shift(5, 0)),
]

# (variant name, transform) of the 12 MP phone photo: auto-fixed to the seed school's spec.
PHONE_VARIANTS: list[tuple[str, Variant]] = [
    ("half_size", lambda rgb: cv2.resize(rgb, (2000, 1500), interpolation=cv2.INTER_AREA)),
    ("crop_left_3000x2250", lambda rgb: rgb[375:2625, 0:3000].copy()),
    ("crop_right_2400x1800", lambda rgb: rgb[600:2400, 1300:3700].copy()),
    ("darker", lambda rgb: brightness(0.75)(cv2.resize(rgb, (2400, 1800), interpolation=cv2.INTER_AREA))),
    (
        "portrait_1500x2000",
        lambda rgb: cv2.resize(rgb[:, 500:3500], (1500, 1500), interpolation=cv2.INTER_AREA),
    ),
]


def photo_set(only: set[str] | None = None) -> Iterator[tuple[str, bytes, PhotoSpec]]:
    """(name, bytes, spec) of every photo in the set (or of those named in ``only``), in a fixed order."""
    for p in sorted(PHOTOS.glob("*.jpg")):
        if only is None or p.name in only:
            spec = HUNAN if p.name.startswith("phone_4000") else SPEC
            yield p.name, p.read_bytes(), spec
    cache: dict[str, np.ndarray] = {}
    for base, name, f in SMALL_VARIANTS:
        full = f"{base[:-4]}~{name}"
        if only is not None and full not in only:
            continue
        if base not in cache:
            cache[base] = _rgb(PHOTOS / base)
        yield full, _jpeg(f(cache[base])), SPEC
    wanted = [(f"phone_4000x3000~{name}", f) for name, f in PHONE_VARIANTS]
    wanted = [(n, f) for n, f in wanted if only is None or n in only]
    if wanted:
        phone = _rgb(PHOTOS / "phone_4000x3000.jpg")
        for full, f in wanted:
            yield full, _jpeg(f(phone), 90), HUNAN


def verdict_row(data: bytes, spec: PhotoSpec) -> str:
    try:
        r = process(data, spec, detector=default_detector())
    except UnreadableImageError:
        return "unreadable"
    marks = []
    for name in CHECKS:
        c = r.check(name)
        marks.append("-" if c is None else "P" if c.ok else "F")
    return f"{'PASS' if r.passed else 'fail'} {''.join(marks)}"


def header() -> str:
    return "# columns after the overall verdict: " + " ".join(f"{i + 1}={n}" for i, n in enumerate(CHECKS))


def table(only: set[str] | None = None) -> dict[str, str]:
    return {name: verdict_row(data, spec) for name, data, spec in photo_set(only)}


def read_table(path: Path) -> dict[str, str]:
    rows = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith("#"):
            name, row = line.split(None, 1)
            rows[name] = row
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path)
    ap.add_argument("--check", type=Path)
    args = ap.parse_args()
    cv2.setNumThreads(1)
    rows = table()
    width = max(map(len, rows))
    text = "\n".join([header(), *(f"{name:<{width}}  {row}" for name, row in rows.items())]) + "\n"
    if args.out:
        args.out.write_text(text)
    print(text, end="")
    print(f"# {len(rows)} photos")
    if args.check:
        want = read_table(args.check)
        diff = {n: (want.get(n), r) for n, r in rows.items() if want.get(n) != r}
        for n, (a, b) in diff.items():
            print(f"DIFFERS {n}: was {a}, now {b}")
        sys.exit(1 if diff else 0)


if __name__ == "__main__":
    main()
