"""Photo pipeline timings on one core: a full check of a 480×640 upload, and a 12 MP auto-fix.

    .venv/bin/python bench/photo_checks.py [--runs 50]

Absolute times do not carry from one CPU to another, so every case is also given as a ratio to a reference
measured in the same run and process: Pillow decoding a fixed 12-megapixel JPEG (4000×3000, quality 90,
generated here from a seeded pattern, so every machine decodes the same bytes). The ratios are the figures
of record. Prints a markdown table (median, p95, ratio, peak memory) with the CPU model and the load.
Targets (ratio of the medians): full 480×640 check ≤ 0.20, 12 MP auto-fix ≤ 0.80.
"""

from __future__ import annotations

import argparse
import io
import os

# One core: set before numpy/OpenCV load their thread pools.
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = "1"

import platform  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from machine import cpu_model  # noqa: E402

from media.detect import default_detector  # noqa: E402
from media.pipeline import process  # noqa: E402
from media.spec import PhotoSpec  # noqa: E402

PHOTOS = ROOT / "tests" / "fixtures" / "photos"
HUNAN_NORMAL_SPEC = PhotoSpec(
    width=480, height=640, formats=("jpeg",), min_bytes=100 * 1024, max_bytes=200 * 1024
)


def reference_jpeg() -> bytes:
    """A fixed 4000×3000 JPEG at quality 90: smooth gradients, soft shapes and seeded fine noise, so its
    entropy (and its decode time) is close to a phone photo's. Same bytes on every run with the same
    Pillow/libjpeg."""
    h, w = 3000, 4000
    rng = np.random.default_rng(20261207)
    coarse = cv2.resize(
        rng.normal(0.0, 6.0, size=(h // 4, w // 4, 3)).astype(np.float32),
        (w, h),
        interpolation=cv2.INTER_LINEAR,
    )
    out = np.empty((h, w, 3), np.uint8)
    xx = np.arange(w, dtype=np.float32)[None, :]
    for y0 in range(0, h, 500):  # in bands: the float planes of the whole image would cost ~300 MB of RSS
        yy = np.arange(y0, y0 + 500, dtype=np.float32)[:, None]
        band = np.stack(
            [
                128 + 90 * np.sin(xx / 310.0) * np.cos(yy / 270.0),
                128 + 80 * np.cos((xx + yy) / 450.0),
                128 + 70 * np.sin(np.hypot(xx - 1800, yy - 1300) / 120.0),
            ],
            axis=2,
        )
        band += coarse[y0 : y0 + 500] + rng.normal(0.0, 2.0, size=(500, w, 1)).astype(np.float32)
        out[y0 : y0 + 500] = np.clip(band, 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(out).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def decode_reference(data: bytes) -> None:
    with Image.open(io.BytesIO(data)) as img:
        img.load()


def measure(
    data: bytes, spec: PhotoSpec, runs: int, ref_data: bytes
) -> tuple[list[float], list[float], float]:
    """The case's times and the reference's, interleaved run by run: load from elsewhere on a shared
    machine touches both alike, so their ratio holds better than either time."""
    det = default_detector()
    process(data, spec, detector=det)  # warm-up
    decode_reference(ref_data)
    times, ref_times = [], []
    for _ in range(runs):
        t = time.perf_counter()
        process(data, spec, detector=det)
        times.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        decode_reference(ref_data)
        ref_times.append((time.perf_counter() - t) * 1000)
    tracemalloc.start()
    process(data, spec, detector=det)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return times, ref_times, peak / 1048576


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[18]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=50)
    args = ap.parse_args()
    cv2.setNumThreads(1)
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

    cases = [
        ("full check, 480×640 upload (as-is)", (PHOTOS / "id_ok.jpg").read_bytes(), PhotoSpec()),
        (
            "12 MP auto-fix (4000×3000 → 480×640, 100–200 KB)",
            (PHOTOS / "phone_4000x3000.jpg").read_bytes(),
            HUNAN_NORMAL_SPEC,
        ),
    ]
    ref_data = reference_jpeg()
    load_before = os.getloadavg()
    ref_times: list[float] = []
    rows = []
    for name, data, spec in cases:
        times, refs, peak = measure(data, spec, args.runs, ref_data)
        ref_times += refs
        rows.append((name, statistics.median(times), p95(times), min(times), peak))
    ref = statistics.median(ref_times)
    ref_min = min(ref_times)
    load_after = os.getloadavg()
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    print(
        f"Machine: {cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"OpenCV {cv2.__version__}; pinned to one core, cv2.setNumThreads(1), {args.runs} runs each."
    )
    print(
        f"Load average (1/5/15 min) before: {'/'.join(f'{x:.2f}' for x in load_before)}, "
        f"after: {'/'.join(f'{x:.2f}' for x in load_after)}."
    )
    print(
        f"Reference: Pillow {Image.__version__} decoding a 4000×3000 JPEG (quality 90, "
        f"{len(ref_data) / 1048576:.1f} MB): median {ref:.1f} ms, min {ref_min:.1f} ms "
        f"({len(ref_times)} runs)."
    )
    print()
    print("| case | median ms | p95 ms | min ms | ratio of medians | ratio of minima | peak traced MB |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, med, p, lo, peak in rows:
        print(
            f"| {name} | {med:.1f} | {p:.1f} | {lo:.1f} | {med / ref:.3f} | {lo / ref_min:.3f} | {peak:.1f} |"
        )
    print()
    print(f"Process max RSS: {maxrss:.0f} MB (interpreter, numpy, OpenCV and MTCNN included).")


if __name__ == "__main__":
    main()
