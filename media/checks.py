"""The checks on a normalised photo. Each returns a Check whose Chinese message tells the student what to do.

Numbers come from the batch's PhotoSpec; the reasons behind the default thresholds and the methods
are in docs/photo-checks.md. Colour distances are CIELAB ΔE76 (cv2 on float RGB gives true L*a*b*).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import cv2
import numpy as np

from media.detect import DetectedFace
from media.spec import BACKGROUND_LABELS, PhotoSpec
from media.types import Check

OK = "符合要求"
FORMAT_NAMES = {"jpeg": "JPG", "png": "PNG"}


def _check(
    name: str, ok: bool, value: float | str | None, limit: str | None, message: str, *, blocking: bool = True
) -> Check:
    return Check(name=name, ok=ok, value=value, limit=limit, message=OK if ok else message, blocking=blocking)


def to_lab(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb.astype(np.float32) * (1.0 / 255.0), cv2.COLOR_RGB2Lab)


def rgb_to_lab(color: tuple[int, int, int]) -> np.ndarray:
    return to_lab(np.array([[color]], dtype=np.uint8))[0, 0]


# ---------------------------------------------------------------- file facts


def check_format(kind: str, spec: PhotoSpec) -> Check:
    allowed = "/".join(FORMAT_NAMES[f] for f in spec.formats)
    return _check(
        "format",
        kind in spec.formats,
        FORMAT_NAMES.get(kind, kind),
        allowed,
        f"照片格式应为 {allowed}，请另存为 {allowed} 格式后上传",
    )


def check_pixel_size(width: int, height: int, spec: PhotoSpec) -> Check:
    value = f"{width}×{height}"
    if spec.size_mode == "exact":
        ok = (width, height) == (spec.width, spec.height)
        limit = f"{spec.width}×{spec.height}"
        small = width < spec.width or height < spec.height
        msg = (
            f"照片像素不足（{value}），请上传手机拍摄的原图（不要截图或压缩），系统会自动裁剪为 {limit}"
            if small
            else f"照片尺寸应为 {limit} 像素（宽×高），当前为 {value}"
        )
    else:
        ok = width <= spec.width and height <= spec.height
        limit = f"≤{spec.width}×{spec.height}"
        msg = f"照片尺寸不能超过 {spec.width}×{spec.height} 像素（宽×高），当前为 {value}"
    return _check("pixel_size", ok, value, limit, msg)


def _kb(n: int) -> str:
    return f"{n / 1024:.0f} KB" if n < 1024 * 1024 else f"{n / 1048576:.1f} MB"


def check_file_size(nbytes: int, spec: PhotoSpec) -> Check:
    limit = f"{_kb(spec.min_bytes)}–{_kb(spec.max_bytes)}" if spec.min_bytes else f"≤{_kb(spec.max_bytes)}"
    if nbytes > spec.max_bytes:
        msg = (
            f"文件太大（{_kb(nbytes)}），应在 {limit} 之间"
            if spec.min_bytes
            else f"文件太大（{_kb(nbytes)}），不能超过 {_kb(spec.max_bytes)}"
        )
    else:
        msg = f"文件太小（{_kb(nbytes)}），应在 {limit} 之间：请上传未经压缩的原图，不要截图或从聊天记录另存"
    return _check("file_size", spec.min_bytes <= nbytes <= spec.max_bytes, nbytes, limit, msg)


def is_greyscale(rgb: np.ndarray) -> bool:
    """True when the colours carry no chroma: a black-and-white photo saved as RGB is still greyscale."""
    small = rgb[::4, ::4].astype(np.int16)
    spread = np.abs(small[..., 0] - small[..., 1]) + np.abs(small[..., 1] - small[..., 2])
    return float(spread.mean()) < 3.0


def check_color_mode(mode: str, rgb: np.ndarray) -> Check:
    if mode in ("L", "LA", "1", "I;16", "I", "F") or is_greyscale(rgb):
        return _check(
            "color_mode", False, "灰度", "24 位 RGB 彩色", "照片必须是彩色照片，不能是黑白（灰度）照片"
        )
    if mode == "CMYK":
        return _check(
            "color_mode",
            False,
            "CMYK",
            "24 位 RGB 彩色",
            "照片是印刷用的 CMYK 格式，请用手机重新拍摄彩色照片",
        )
    return _check("color_mode", True, "RGB", "24 位 RGB 彩色", "")


# ---------------------------------------------------------------- face geometry


def check_face_count(faces: list[DetectedFace]) -> Check:
    n = len(faces)
    if n == 0:
        msg = "没有检测到人脸：请正对镜头、露出完整五官，头部约占照片高度的一半，光线充足后重新拍摄"
    else:
        msg = f"检测到 {n} 张人脸：照片中只能有本人一人，背景中不能有其他人或人像"
    return _check("face_count", n == 1, n, "1", msg)


def _eyes(face: DetectedFace) -> tuple[tuple[float, float], tuple[float, float]] | None:
    if face.left_eye is None or face.right_eye is None:
        return None
    return face.left_eye, face.right_eye


def check_eye_height(face: DetectedFace, height: int, spec: PhotoSpec) -> Check | None:
    eyes = _eyes(face)
    if eyes is None:
        return None
    y = (eyes[0][1] + eyes[1][1]) / 2
    lo, hi = spec.eye_line_min * height, spec.eye_line_max * height
    msg = (
        "眼睛位置太靠上：头顶上方留的空白太少，请把镜头稍微抬高或人往下移"
        if y < lo
        else "眼睛位置太靠下：头顶上方空白太多，请靠近镜头或把镜头放低一些"
    )
    return _check("eye_height", lo <= y <= hi, round(y), f"{lo:.0f}–{hi:.0f} px（距上边缘）", msg)


def check_face_width(face: DetectedFace, width: int, spec: PhotoSpec) -> Check:
    lo, hi = spec.face_width_min * width, spec.face_width_max * width
    msg = (
        "脸部太小：请靠近镜头，让头部约占照片高度的一半"
        if face.w < lo
        else "脸部太大：请离镜头远一些，露出双耳和肩膀"
    )
    return _check("face_width", lo <= face.w <= hi, round(face.w), f"{lo:.0f}–{hi:.0f} px", msg)


def check_centering(face: DetectedFace, width: int, spec: PhotoSpec) -> Check:
    eyes = _eyes(face)
    cx = face.x + face.w / 2
    if eyes is not None:
        cx = (cx + (eyes[0][0] + eyes[1][0]) / 2) / 2
    off = (cx - width / 2) / width
    side = "左" if off < 0 else "右"
    return _check(
        "centering",
        abs(off) <= spec.center_tolerance,
        round(off * width),
        f"±{spec.center_tolerance * width:.0f} px",
        f"人脸偏{side}：请让头部位于照片左右居中的位置",
    )


def check_roll(face: DetectedFace, spec: PhotoSpec) -> Check | None:
    eyes = _eyes(face)
    if eyes is None:
        return None
    (lx, ly), (rx, ry) = eyes
    angle = math.degrees(math.atan2(ry - ly, rx - lx))
    return _check(
        "roll",
        abs(angle) <= spec.max_roll_deg,
        round(angle, 1),
        f"±{spec.max_roll_deg:g}°",
        "头部歪斜（两眼不在同一水平线上）：请端正头部、双眼平视镜头后重新拍摄",
    )


# Nose-tip depth in front of the eye plane, relative to the distance between the eyes (anthropometric mean).
NOSE_DEPTH = 0.45


def estimate_yaw(face: DetectedFace) -> float | None:
    """Head turn in degrees from how far the nose tip sits off the eye midpoint (a rough estimate)."""
    eyes = _eyes(face)
    if eyes is None or face.nose is None:
        return None
    (lx, ly), (rx, ry) = eyes
    iod = math.hypot(rx - lx, ry - ly)
    if iod < 1:
        return None
    # Project onto the eye line so that roll does not read as yaw.
    ux, uy = (rx - lx) / iod, (ry - ly) / iod
    mx, my = (lx + rx) / 2, (ly + ry) / 2
    along = (face.nose[0] - mx) * ux + (face.nose[1] - my) * uy
    return math.degrees(math.atan((along / iod) / NOSE_DEPTH))


def check_yaw(face: DetectedFace, spec: PhotoSpec) -> Check | None:
    yaw = estimate_yaw(face)
    if yaw is None:
        return None
    return _check(
        "yaw",
        abs(yaw) <= spec.max_yaw_deg,
        round(yaw, 1),
        f"±{spec.max_yaw_deg:g}°",
        "脸没有正对镜头（侧脸）：请正面朝向镜头，双耳都能看到",
    )


# ---------------------------------------------------------------- background


@dataclass(frozen=True)
class Regions:
    """Where the background is, relative to the face, in a half-size Lab image."""

    top: np.ndarray
    left: np.ndarray
    right: np.ndarray

    def all(self) -> np.ndarray:
        parts = [p for p in (self.top, self.left, self.right) if p.size]
        return np.concatenate(parts) if parts else np.empty((0, 3), np.float32)


def background_regions(lab: np.ndarray, face: DetectedFace, f: float) -> Regions:
    """Bands around the head: above it, and left and right of it down to the chin. ``f``: lab's scale."""
    h, w = lab.shape[:2]
    x0 = int(max(0, (face.x - 0.55 * face.w) * f))
    x1 = int(min(w, (face.x + 1.55 * face.w) * f))
    chin = int(min(h, (face.y + face.h) * f))
    head_top = int(max(0, (face.y - 0.75 * face.h) * f))
    top_rows = max(2, int(head_top * 0.8)) if head_top >= 4 else 2
    top = lab[:top_rows].reshape(-1, 3)
    left = lab[:chin, : max(0, x0 - 2)].reshape(-1, 3)
    right = lab[:chin, min(w, x1 + 2) :].reshape(-1, 3)
    return Regions(top=top, left=left, right=right)


def _de(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(((a - b) ** 2).sum()))


def check_background(lab: np.ndarray, face: DetectedFace, f: float, spec: PhotoSpec) -> list[Check]:
    regions = background_regions(lab, face, f)
    px = regions.all()
    label = BACKGROUND_LABELS[spec.background]
    if px.shape[0] < 200:
        msg = "头部周围几乎没有背景：请离镜头远一些，头部上方和两侧都要露出背景"
        return [_check("background_color", False, None, f"ΔE≤{spec.background_max_delta_e:g}", msg)]
    target = rgb_to_lab(spec.background_rgb)
    mean = px.mean(axis=0)
    de = _de(mean, target)
    color = _check(
        "background_color",
        de <= spec.background_max_delta_e,
        round(de, 1),
        f"ΔE≤{spec.background_max_delta_e:g}（{label}）",
        f"背景颜色不符合要求：应为{label}纯色背景，请在{label}背景前重新拍摄，不要换底或修图",
    )
    std_l = float(px[:, 0].std())
    bands = [p.mean(axis=0) for p in (regions.top, regions.left, regions.right) if p.shape[0] >= 50]
    band_de = max((_de(a, b) for i, a in enumerate(bands) for b in bands[i + 1 :]), default=0.0)
    median = np.median(px, axis=0)
    outliers = float((np.sqrt(((px - median) ** 2).sum(axis=1)) > 15).mean())
    problems = []
    if std_l > spec.background_max_std_l or band_de > spec.background_max_band_delta_e:
        problems.append("背景明暗或颜色不均匀（有阴影或渐变）")
    if outliers > spec.background_max_outliers:
        problems.append("背景中有杂物、其他人或图案")
    uniform = _check(
        "background_uniformity",
        not problems,
        f"std L*={std_l:.1f}, 区域差 ΔE={band_de:.1f}, 杂点 {outliers:.1%}",
        f"std L*≤{spec.background_max_std_l:g}, ΔE≤{spec.background_max_band_delta_e:g}, "
        f"杂点≤{spec.background_max_outliers:.0%}",
        "；".join(problems) + "：请站在纯色墙或背景布前，背景上不要有阴影和其他物体，灯光均匀",
    )
    return [color, uniform]


def crown_row(lab: np.ndarray, face: DetectedFace, f: float, bg: np.ndarray) -> int | None:
    """First row (in lab's pixels) above the eyes where the face column leaves the background colour."""
    h, w = lab.shape[:2]
    cx = (face.x + face.w / 2) * f
    half = max(2, int(face.w * f / 4))
    x0, x1 = int(max(0, cx - half)), int(min(w, cx + half))
    y1 = int(min(h, face.y * f + 1))
    if x1 <= x0 or y1 <= 0:
        return None
    strip = lab[:y1, x0:x1]
    off = np.sqrt(((strip - bg) ** 2).sum(axis=2)) > 20
    rows = np.nonzero(off.mean(axis=1) > 0.3)[0]
    return int(rows[0]) if rows.size else None


def check_crown(lab: np.ndarray, face: DetectedFace, f: float, height: int, spec: PhotoSpec) -> Check | None:
    regions = background_regions(lab, face, f)
    ref = regions.top if regions.top.shape[0] >= 50 else regions.all()
    if ref.shape[0] < 50:
        return None
    row = crown_row(lab, face, f, np.median(ref, axis=0))
    if row is None:
        return None
    px = row / f
    lo, hi = spec.crown_margin_min * height, spec.crown_margin_max * height
    msg = (
        "头顶离照片上边缘太近（或被裁掉）：头顶上方要留出空白"
        if px < lo
        else "头顶上方空白太多：请靠近镜头，让头部在照片中大一些"
    )
    return _check("crown_margin", lo <= px <= hi, round(px), f"{lo:.0f}–{hi:.0f} px", msg)


# ---------------------------------------------------------------- borders, exposure, sharpness, scans


def check_border(rgb: np.ndarray) -> Check:
    """Black borders (from a scan, a screenshot or a bad crop): near-black outer lines."""
    h, w = rgb.shape[:2]
    depth = max(2, min(h, w) // 100)

    def strip(part: np.ndarray) -> np.ndarray:
        # The brightest channel, of the outer lines only (the whole image's max cost more than the rest).
        return part.max(axis=2).reshape(-1)

    def dark(line: np.ndarray) -> bool:
        return float((line < 35).mean()) > 0.9

    sides = {
        "上": strip(rgb[:depth]),
        "左": strip(rgb[:, :depth]),
        "右": strip(rgb[:, w - depth :]),
    }
    found = [name for name, line in sides.items() if dark(line)]
    bottom = strip(rgb[h - depth :])
    if dark(bottom) and (found or float(bottom.std()) < 4):  # a dark jacket alone is not a border
        found.append("下")
    return _check(
        "border",
        not found,
        "、".join(found) or "无",
        "无黑边",
        f"照片{'、'.join(found)}边有黑边：请上传原始照片，不要截图、扫描或加边框",
    )


def _face_region(rgb: np.ndarray, face: DetectedFace) -> np.ndarray:
    h, w = rgb.shape[:2]
    x0 = int(max(0, face.x + 0.15 * face.w))
    x1 = int(min(w, face.x + 0.85 * face.w))
    y0 = int(max(0, face.y + 0.1 * face.h))
    y1 = int(min(h, face.y + 0.9 * face.h))
    return rgb[y0:y1, x0:x1]


def check_exposure(rgb: np.ndarray, face: DetectedFace, spec: PhotoSpec) -> Check:
    region = _face_region(rgb, face)
    if region.size == 0:
        return _check("exposure", False, None, None, "无法评估脸部曝光：请正对镜头重新拍摄")
    lab = to_lab(region)
    lum = lab[..., 0]
    mean = float(lum.mean())
    clipped = float(((lum > 97) | (lum < 3)).mean())
    half = lum.shape[1] // 2
    lr = abs(float(lum[:, :half].mean()) - float(lum[:, half:].mean()))
    problems = []
    if mean < spec.face_l_min:
        problems.append("脸部太暗：请在光线充足、均匀的地方拍摄")
    elif mean > spec.face_l_max:
        problems.append("脸部过亮（曝光过度）：请避免强光直射，不要开美颜或闪光过强")
    if clipped > spec.max_clipped:
        problems.append("脸部有大片过曝或死黑")
    if lr > spec.max_face_lr_diff:
        problems.append("脸部左右明暗不均（阴阳脸）：请让光线从正面均匀照射")
    return _check(
        "exposure",
        not problems,
        f"L*={mean:.0f}, 过曝/死黑 {clipped:.1%}, 左右差 {lr:.0f}",
        f"L* {spec.face_l_min:g}–{spec.face_l_max:g}, ≤{spec.max_clipped:.0%}, "
        f"左右差≤{spec.max_face_lr_diff:g}",
        "；".join(problems),
    )


def blur_score(grey: np.ndarray) -> float:
    """Crété-Roffet no-reference blur (0 sharp … 1 blurred): how much re-blurring still removes.

    F. Crété-Roffet et al., "The blur effect: perception and estimation with a new no-reference
    perceptual blur metric", SPIE 2007 (the same method as skimage.measure.blur_effect).
    """
    f = grey.astype(np.float32)
    scores = []
    for axis in (0, 1):
        # Sobel along the axis, on the image and on the image blurred along that axis by an 11-tap box.
        b = cv2.blur(f, (1, 11) if axis == 0 else (11, 1), borderType=cv2.BORDER_REFLECT)  # ksize is (w, h)
        dx, dy = (0, 1) if axis == 0 else (1, 0)
        sharp = np.abs(cv2.Sobel(f, cv2.CV_32F, dx, dy, ksize=3))[2:-1, 2:-1]
        blurred = np.abs(cv2.Sobel(b, cv2.CV_32F, dx, dy, ksize=3))[2:-1, 2:-1]
        m1 = float(sharp.sum())
        m2 = float(np.maximum(0.0, sharp - blurred).sum())
        scores.append(abs(m1 - m2) / m1 if m1 > 0 else 1.0)
    return max(scores)


def check_sharpness(rgb: np.ndarray, face: DetectedFace, spec: PhotoSpec) -> Check:
    h, w = rgb.shape[:2]
    x0, x1 = int(max(0, face.x)), int(min(w, face.x + face.w))
    y0, y1 = int(max(0, face.y)), int(min(h, face.y + face.h))
    crop = rgb[y0:y1, x0:x1]
    if crop.shape[0] < 8 or crop.shape[1] < 8:
        return _check("sharpness", False, None, None, "无法评估清晰度：请正对镜头重新拍摄")
    grey = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
    # At a normalised face width, so that the figure does not depend on the photo's resolution.
    scale = 200 / grey.shape[1]
    grey = cv2.resize(grey, (200, max(8, round(grey.shape[0] * scale))), interpolation=cv2.INTER_AREA)
    lap = float(cv2.Laplacian(grey, cv2.CV_64F).var())
    blur = blur_score(grey)
    ok = blur <= spec.max_blur and lap >= spec.min_sharpness
    return _check(
        "sharpness",
        ok,
        f"模糊度 {blur:.2f}, 拉普拉斯方差 {lap:.0f}",
        f"模糊度≤{spec.max_blur:g}, 方差≥{spec.min_sharpness:g}",
        "照片模糊：请对准脸部对焦、拿稳手机，在光线充足处重新拍摄，不要使用美颜或磨皮",
    )


# Above this, the spectrum has the isolated high-frequency peaks of a halftone screen or of moiré.
SCAN_PEAK_RATIO = 60.0


@functools.lru_cache(maxsize=4)
def _scan_masks(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The window, the whitening radius and the ring to look in, for an n×n tile (the same every photo),
    laid out as ``np.fft.rfft2`` returns the spectrum (frequency 0 first, non-negative columns only)."""
    window = np.outer(np.hanning(n), np.hanning(n))
    fu = np.fft.fftfreq(n, 1.0 / n)[:, None]
    fv = np.arange(n // 2 + 1, dtype=np.float64)[None, :]
    r = np.hypot(fu, fv)
    # JPEG's 8×8 blocks put peaks where both frequencies are multiples of n/8: not a print's screen.
    grid = n // 8
    du, dv = fu % grid, fv % grid
    on_grid = ((du <= 1) | (du >= grid - 1)) & ((dv <= 1) | (dv >= grid - 1))
    # A real tile's spectrum is symmetric (|F(u, v)| = |F(-u, -v)|): one of each pair, so the ring's
    # maximum and median are those of the whole ring. On column 0 that is the positive rows only.
    half_plane = (fv > 0) | (fu > 0)
    ring = (r > n / 6) & (r < n / 2) & ~on_grid & half_plane
    return window, r, ring


def check_scan(rgb: np.ndarray) -> Check:
    """Advisory: a printed photo that was scanned or photographed again shows a periodic dot pattern.

    Cheap and not reliable (fine fabrics and hair can trigger it; a good re-photograph may not), so it
    never fails a photo on its own: staff review sees the warning. Looks at the middle 256×256 only
    (an even side, so that the spectrum's pairs are exact).
    """
    h, w = rgb.shape[:2]
    n = min(256, h, w) // 2 * 2
    y0, x0 = (h - n) // 2, (w - n) // 2
    tile = cv2.cvtColor(rgb[y0 : y0 + n, x0 : x0 + n], cv2.COLOR_RGB2GRAY).astype(np.float64)
    window, r, ring_mask = _scan_masks(n)
    tile = (tile - tile.mean()) * window
    # Natural images fall off as 1/f: whitening by r leaves a screen's isolated peaks standing out.
    # The real FFT in float64: a third of the complex one's time, and half the spectrum to look at.
    ring = (np.abs(np.fft.rfft2(tile)) * r)[ring_mask]
    ratio = float(ring.max() / (np.median(ring) + 1e-6)) if ring.size else 0.0
    return _check(
        "scan",
        ratio <= SCAN_PEAK_RATIO,
        round(ratio, 1),
        f"≤{SCAN_PEAK_RATIO:g}",
        "照片可能是翻拍或扫描的纸质照片（有网纹）：请直接拍摄本人，不要翻拍照片（仅提示，由人工审核确认）",
        blocking=False,
    )


def half_size(rgb: np.ndarray) -> np.ndarray:
    h, w = rgb.shape[:2]
    return cv2.resize(rgb, (w // 2, h // 2), interpolation=cv2.INTER_AREA)


def run_face_checks(
    rgb: np.ndarray, face: DetectedFace, spec: PhotoSpec, half: np.ndarray | None = None
) -> list[Check]:
    """Everything that needs the one face: geometry, pose, background, exposure, sharpness.

    ``half``: ``half_size(rgb)``, when the caller has made it already (the face detector uses it too).
    """
    h, w = rgb.shape[:2]
    if half is None:
        half = half_size(rgb)
    lab = to_lab(half)
    out: list[Check | None] = [
        check_eye_height(face, h, spec),
        check_face_width(face, w, spec),
        check_crown(lab, face, 0.5, h, spec),
        check_centering(face, w, spec),
        check_roll(face, spec),
        check_yaw(face, spec),
        *check_background(lab, face, 0.5, spec),
        check_exposure(rgb, face, spec),
        check_sharpness(rgb, face, spec),
    ]
    return [c for c in out if c is not None]
