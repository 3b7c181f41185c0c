"""ID card OCR on synthetic cards (tests/idcards.py, made-up people, seeded): field accuracy and time per card
on one core.

    .venv/bin/python bench/idcard_ocr.py                # 100 cards, seeds 1000–1099
    .venv/bin/python bench/idcard_ocr.py --cards 10 --misses

Each card's front and back photo is read with media.idcard.read_front / read_back, as an upload would be
(decode, find and straighten the card, OCR, parse). Timing covers the reading only, not drawing the card;
the process is pinned to one core and ONNX Runtime / OpenMP to one thread. Both wall-clock and CPU time are
given: on a machine shared with other work the wall clock includes waiting for the core, the CPU time not.
Targets: ID number exact ≥ 98 %, name exact ≥ 95 %, < 1.5 s a card on one core.
"""

from __future__ import annotations

import os

# Before numpy / onnxruntime load: one thread everywhere.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import platform
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import cv2

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import idcards  # noqa: E402
from machine import cpu_model  # noqa: E402

from media import idcard  # noqa: E402


def _distance(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cards", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1000, help="first seed; card i uses seed + i")
    parser.add_argument("--misses", action="store_true", help="print every field read wrong")
    args = parser.parse_args()
    if not idcards.font_available():
        sys.exit(idcards.FONT_MISSING)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[-1]})
    cv2.setNumThreads(1)

    fields = ("number", "name", "sex", "ethnicity", "birth", "address", "authority", "validity", "card_found")
    right = dict.fromkeys(fields, 0)
    chars = chars_right = 0
    wall: list[float] = []
    cpu: list[float] = []
    back_wall: list[float] = []
    back_cpu: list[float] = []
    # The engine's first use builds its ONNX sessions: not a reading's cost.
    idcard.read_front(idcards.card_photos(args.seed - 1)[1])
    for i in range(args.cards):
        ident, front_jpeg, back_jpeg = idcards.card_photos(args.seed + i)
        w0, c0 = time.perf_counter(), time.process_time()
        front = idcard.read_front(front_jpeg)
        w1, c1 = time.perf_counter(), time.process_time()
        back = idcard.read_back(back_jpeg)
        w2, c2 = time.perf_counter(), time.process_time()
        wall.append(w1 - w0)
        cpu.append(c1 - c0)
        back_wall.append(w2 - w1)
        back_cpu.append(c2 - c1)

        def val(f: idcard.Field | None) -> object:  # type: ignore[type-arg]
            return None if f is None else f.value

        got = {
            "number": (val(front.number), ident.number),
            "name": (val(front.name), ident.name),
            "sex": (val(front.sex), ident.sex),
            "ethnicity": (val(front.ethnicity), ident.ethnicity),
            "birth": (val(front.birth_date), ident.birth),
            "address": (val(front.address), ident.address),
            "authority": (val(back.authority), ident.authority),
            "validity": (
                (val(back.valid_from), val(back.valid_until), back.long_term),
                (ident.valid_from, ident.valid_to, ident.valid_to is None),
            ),
            "card_found": (front.card_found and back.card_found, True),
        }
        for key, (read, truth) in got.items():
            if read == truth:
                right[key] += 1
            elif args.misses:
                print(f"seed {args.seed + i} {key}: read {read!r}, is {truth!r}")
        address = str(val(front.address) or "")
        chars += len(ident.address)
        chars_right += max(0, len(ident.address) - _distance(address, ident.address))

    n = args.cards
    print(f"ID card OCR bench — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(f"CPU: {cpu_model()} ({os.cpu_count()} cores, pinned to 1); load average {os.getloadavg()}")
    print(f"Python {platform.python_version()}, OpenCV {cv2.__version__}, onnxruntime {_ort_version()}")
    print(f"{n} synthetic cards, seeds {args.seed}–{args.seed + n - 1}")
    for key in fields:
        print(f"  {key:<11} {right[key] / n:7.1%}  ({right[key]}/{n})")
    print(f"  address characters {chars_right / max(chars, 1):7.2%}  (1 − edit distance / length)")

    def stats(label: str, xs: list[float]) -> None:
        q = statistics.quantiles(xs, n=20) if len(xs) > 1 else xs * 19
        print(
            f"  {label:<18} median {statistics.median(xs):.3f} s, mean {statistics.fmean(xs):.3f} s, "
            f"p95 {q[18]:.3f} s"
        )

    print("time a card (reading only):")
    stats("front, wall", wall)
    stats("front, CPU", cpu)
    stats("back, wall", back_wall)
    stats("back, CPU", back_cpu)
    met = right["number"] / n >= 0.98 and right["name"] / n >= 0.95 and statistics.median(cpu) < 1.5
    print("targets (number ≥ 98 %, name ≥ 95 %, < 1.5 s a card):", "met" if met else "NOT met")


def _ort_version() -> str:
    import onnxruntime

    return str(onnxruntime.__version__)


if __name__ == "__main__":
    main()
