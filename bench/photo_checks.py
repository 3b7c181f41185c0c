"""Photo pipeline timings on one core: a full check of a 480×640 upload, and a 12 MP auto-fix.

    .venv/bin/python bench/photo_checks.py [--runs 50]

Prints a markdown table (median, p95, peak memory) with the machine and its load. Targets:
< 45 ms median for a full 480×640 check, < 200 ms for a 12 MP auto-fix.
"""

from __future__ import annotations

import argparse
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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from media.detect import default_detector  # noqa: E402
from media.pipeline import process  # noqa: E402
from media.spec import PhotoSpec  # noqa: E402

PHOTOS = ROOT / "tests" / "fixtures" / "photos"
HUNAN_NORMAL_SPEC = PhotoSpec(
    width=480, height=640, formats=("jpeg",), min_bytes=100 * 1024, max_bytes=200 * 1024
)


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def measure(data: bytes, spec: PhotoSpec, runs: int) -> tuple[list[float], float]:
    det = default_detector()
    process(data, spec, detector=det)  # warm-up
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        process(data, spec, detector=det)
        times.append((time.perf_counter() - t) * 1000)
    tracemalloc.start()
    process(data, spec, detector=det)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return times, peak / 1048576


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
    load_before = os.getloadavg()
    rows = []
    for name, data, spec in cases:
        times, peak = measure(data, spec, args.runs)
        rows.append((name, statistics.median(times), p95(times), min(times), peak))
    load_after = os.getloadavg()
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    print(
        f"Machine: {cpu_name()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"OpenCV {cv2.__version__}; pinned to one core, cv2.setNumThreads(1), {args.runs} runs each."
    )
    print(
        f"Load average (1/5/15 min) before: {'/'.join(f'{x:.2f}' for x in load_before)}, "
        f"after: {'/'.join(f'{x:.2f}' for x in load_after)}."
    )
    print()
    print("| case | median ms | p95 ms | min ms | peak traced MB |")
    print("|---|---:|---:|---:|---:|")
    for name, med, p, lo, peak in rows:
        print(f"| {name} | {med:.1f} | {p:.1f} | {lo:.1f} | {peak:.1f} |")
    print()
    print(f"Process max RSS: {maxrss:.0f} MB (interpreter, numpy, OpenCV and MTCNN included).")


if __name__ == "__main__":
    main()
