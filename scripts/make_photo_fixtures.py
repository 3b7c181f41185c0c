"""Generate the photo fixtures under tests/fixtures/photos/ (committed; tests never need scikit-image).

Real faces come only from public-domain images shipped in a registry package: scikit-image's
``data.astronaut()`` (Eileen Collins, NASA, public domain); ``coffee()`` and ``chelsea()`` give the
no-face cases. The head and shoulders are cut from the astronaut photo (GrabCut) and composited onto a
light-blue wall — the face itself is never synthesised or altered. Every other case derives from that:
scaled into a 4000×3000 "phone photo", two people, a tiny face, rotated, darkened, blurred, on the
original background, greyscale, with a shadow, an object, a halftone screen, a black border.

    .venv/bin/pip install -r requirements-fixtures.txt
    .venv/bin/python scripts/make_photo_fixtures.py
"""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
from PIL import Image
from skimage import data

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "photos"
LIGHT_BLUE = (100, 197, 255)
RNG = np.random.default_rng(4)  # fixed seed: the same bytes on every run


def cutout() -> tuple[np.ndarray, np.ndarray]:
    """The astronaut's head and shoulders (RGB) and a soft alpha mask, from GrabCut on the original."""
    sub = data.astronaut()[0:512, 95:365].copy()
    mask = np.zeros(sub.shape[:2], np.uint8)
    bgd, fgd = np.zeros((1, 65)), np.zeros((1, 65))
    cv2.grabCut(
        cv2.cvtColor(sub, cv2.COLOR_RGB2BGR), mask, (20, 5, 230, 507), bgd, fgd, 5, cv2.GC_INIT_WITH_RECT
    )
    alpha = np.where((mask == 1) | (mask == 3), 255, 0).astype(np.uint8)
    alpha = cv2.GaussianBlur(alpha, (5, 5), 0)
    return sub, alpha


def composite(canvas: np.ndarray, sub: np.ndarray, alpha: np.ndarray, scale: float, x: int, y: int) -> None:
    """Paste the cut-out, scaled, with its top-left at (x, y); parts outside the canvas are dropped."""
    h, w = sub.shape[:2]
    sw, sh = round(w * scale), round(h * scale)
    interp = cv2.INTER_CUBIC if scale > 1 else cv2.INTER_AREA
    s = cv2.resize(sub, (sw, sh), interpolation=interp).astype(np.float32)
    a = cv2.resize(alpha, (sw, sh), interpolation=cv2.INTER_LINEAR).astype(np.float32)[..., None] / 255
    ch, cw = canvas.shape[:2]
    x0, y0, x1, y1 = max(0, x), max(0, y), min(cw, x + sw), min(ch, y + sh)
    if x1 <= x0 or y1 <= y0:
        return
    ps, pa = s[y0 - y : y1 - y, x0 - x : x1 - x], a[y0 - y : y1 - y, x0 - x : x1 - x]
    region = canvas[y0:y1, x0:x1].astype(np.float32)
    canvas[y0:y1, x0:x1] = (ps * pa + region * (1 - pa)).round().clip(0, 255).astype(np.uint8)


def wall(w: int, h: int, color: tuple[int, int, int] = LIGHT_BLUE, noise: float = 0.0) -> np.ndarray:
    canvas = np.empty((h, w, 3), np.uint8)
    canvas[:] = color
    if noise:
        canvas = add_noise(canvas, noise)
    return canvas


def add_noise(img: np.ndarray, sigma: float) -> np.ndarray:
    return (img.astype(np.float32) + RNG.normal(0, sigma, img.shape)).round().clip(0, 255).astype(np.uint8)


def id_photo(scale: float = 2.25, dx: int = 0, dy: int = 0, bg: np.ndarray | None = None) -> np.ndarray:
    """A 480×640 ID-style photo: face ≈ 200 px wide, eyes ≈ 250 px from the top, crown ≈ 80 px.

    In the cut-out the eyes' midpoint is at (129, 102), the hair's top at y ≈ 15.
    """
    canvas = wall(480, 640) if bg is None else bg.copy()
    sub, alpha = cutout()
    composite(canvas, sub, alpha, scale, round(240 - 129 * scale) + dx, round(250 - 102 * scale) + dy)
    return canvas


def jpeg(img: np.ndarray | Image.Image, quality: int = 90, **kw: object) -> bytes:
    pil = img if isinstance(img, Image.Image) else Image.fromarray(img)
    buf = io.BytesIO()
    pil.save(buf, "JPEG", quality=quality, **kw)
    return buf.getvalue()


def phone_exif() -> bytes:
    """EXIF as a phone writes it, with a GPS position: the normalised file must not carry it."""
    exif = Image.Exif()
    exif[0x010F] = "FixturePhone"  # Make
    exif[0x0110] = "Model 4"  # Model
    exif[0x0132] = "2026:11:02 09:30:00"  # DateTime
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2] = "N", (39.0, 54.0, 27.0)  # GPSLatitudeRef, GPSLatitude
    gps[3], gps[4] = "E", (116.0, 23.0, 50.0)
    return exif.tobytes()


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    sub, alpha = cutout()
    files: dict[str, bytes] = {}

    ok = id_photo()
    files["id_ok.jpg"] = jpeg(ok)

    # A 12 MP phone photo: the person in front of a light-blue wall, some sensor noise, EXIF with GPS.
    phone = wall(4000, 3000)
    composite(phone, sub, alpha, 4.0, 2000 - 129 * 4, 700)
    phone = add_noise(phone, 2.0)
    files["phone_4000x3000.jpg"] = jpeg(phone, 85, exif=phone_exif())

    two = wall(1600, 1200)
    composite(two, sub, alpha, 1.6, 300, 300)
    composite(two, sub, alpha, 1.6, 950, 300)
    files["phone_two_faces.jpg"] = jpeg(add_noise(two, 2.0), 85)

    tiny = wall(1600, 1200)
    composite(tiny, sub, alpha, 0.55, 720, 800)
    files["phone_tiny_face.jpg"] = jpeg(add_noise(tiny, 2.0), 85)

    files["no_face_coffee.jpg"] = jpeg(data.coffee())
    files["no_face_cat.jpg"] = jpeg(data.chelsea())

    rot = cv2.getRotationMatrix2D((240, 250), 20, 1.0)
    files["tilted.jpg"] = jpeg(cv2.warpAffine(ok, rot, (480, 640), borderValue=LIGHT_BLUE))

    lab = ok.astype(np.float32) / 255
    files["dark.jpg"] = jpeg((np.power(lab, 3.2) * 255).round().astype(np.uint8))
    files["bright.jpg"] = jpeg((np.power(lab, 0.3) * 255).round().astype(np.uint8))
    half = ok.astype(np.float32)
    ramp = np.clip(np.linspace(1.3, 0.35, 480), 0, 1.3)[None, :, None]
    files["half_shadow.jpg"] = jpeg((half * ramp).clip(0, 255).round().astype(np.uint8))
    files["blurred.jpg"] = jpeg(cv2.GaussianBlur(ok, (0, 0), 3.5))

    # The astronaut's own studio background (grey backdrop, flag, shuttle model), framed the same way.
    orig = cv2.resize(data.astronaut(), None, fx=2.25, fy=2.25, interpolation=cv2.INTER_CUBIC)
    x0, y0 = round((95 + 129) * 2.25 - 240), round(102 * 2.25 - 250)
    pad = cv2.copyMakeBorder(orig, 100, 0, 0, 0, cv2.BORDER_REPLICATE)
    files["wrong_background.jpg"] = jpeg(pad[y0 + 100 : y0 + 740, x0 : x0 + 480])

    grey = cv2.cvtColor(cv2.cvtColor(ok, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
    files["greyscale_rgb.jpg"] = jpeg(grey)  # stored as RGB, three equal channels
    files["greyscale_l.jpg"] = jpeg(Image.fromarray(ok).convert("L"))

    shadow = ok.astype(np.float32)
    yy, xx = np.mgrid[0:640, 0:480]
    fall = np.clip((xx - 300) / 180, 0, 1) * np.clip((yy - 40) / 300, 0, 1)
    shadow *= (1 - 0.45 * fall)[..., None]
    files["background_shadow.jpg"] = jpeg(shadow.round().astype(np.uint8))

    obj = ok.copy()
    cat = cv2.resize(data.chelsea()[40:250, 120:330], (120, 120), interpolation=cv2.INTER_AREA)
    obj[60:180, 350:470] = cat
    files["background_object.jpg"] = jpeg(obj)

    # A printed photo scanned or photographed again: a halftone dot screen at a 3-pixel period.
    screen = 0.82 + 0.18 * (np.cos(2 * np.pi * xx / 3) * np.cos(2 * np.pi * yy / 3))
    files["halftone_scan.jpg"] = jpeg(
        (ok.astype(np.float32) * screen[..., None]).clip(0, 255).astype(np.uint8)
    )

    bordered = ok.copy()
    bordered[:14], bordered[-14:], bordered[:, :14], bordered[:, -14:] = 0, 0, 0, 0
    files["black_border.jpg"] = jpeg(bordered)

    files["head_too_small.jpg"] = jpeg(id_photo(scale=1.3, dy=60))  # face ≈ 115 px wide, lots of headroom
    files["head_too_high.jpg"] = jpeg(id_photo(dy=-110))  # crown cut off, eyes at ≈ 140 px
    files["off_centre.jpg"] = jpeg(id_photo(dx=-110))

    # Other file types, small: the decoder must name them, not crash on them.
    gif = io.BytesIO()
    Image.fromarray(ok).resize((60, 80)).save(gif, "GIF")
    files["not_a_photo.gif"] = gif.getvalue()
    files["document.pdf"] = (
        b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\n"
        b"trailer<</Root 1 0 R>>\n%%EOF\n"
    )

    for old in OUT.glob("*"):
        if old.name not in files and old.suffix in (".jpg", ".png", ".gif", ".pdf"):
            old.unlink()
    total = 0
    for name, blob in sorted(files.items()):
        (OUT / name).write_bytes(blob)
        total += len(blob)
        print(f"{name:28s} {len(blob) / 1024:8.1f} KB")
    print(f"{'total':28s} {total / 1024:8.1f} KB")


if __name__ == "__main__":
    main()
