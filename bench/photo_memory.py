"""A worker's memory while it checks large uploads: eight at once, in threads, as a gthread worker would.

    .venv/bin/python bench/photo_memory.py [--parallel 8]

Each case runs in a fresh process (so one case's heap does not carry into the next): a warm-up check of a
small photo sets the baseline, then `--parallel` threads check the same large upload at once while a
sampler reads the process's resident memory every 5 ms. Reported: baseline, peak, and the resident memory
half a second after the last check returned — what the worker keeps. Targets: peak under 300 MB, and back
within 50 MB of the baseline afterwards.

The cases are generated here (no files to download): the largest PNG the decoder accepts (16-bit RGBA,
just under the decoded-size cap), a 48-megapixel phone JPEG, a 12-megapixel one, and a small PNG that
declares 50 megapixels of 16-bit RGBA (refused before decoding; it took a worker past 5 GB before the cap).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import struct
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PHOTOS = ROOT / "tests" / "fixtures" / "photos"


def _chunk(ctype: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + ctype + body + struct.pack(">I", zlib.crc32(ctype + body))


def png16(width: int, height: int) -> bytes:
    """A 16-bit RGBA PNG of a flat colour: a few hundred KB that decode to width × height × 4 bytes."""
    row = b"\x00" + b"\x40\x00\x80\x00\xc0\x00\xff\xff" * width
    comp = zlib.compressobj(9)
    idat = b"".join(comp.compress(row) for _ in range(height)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 16, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def phone_jpeg(width: int, height: int) -> bytes:
    from PIL import Image

    base = Image.open(PHOTOS / "phone_4000x3000.jpg").convert("RGB").resize((width, height))
    out = io.BytesIO()
    base.save(out, "JPEG", quality=90)
    return out.getvalue()


CASES = {
    "PNG 16-bit RGBA, 4,800×3,400 (largest accepted)": lambda: png16(4800, 3400),
    "JPEG 48 MP phone photo, 8,000×6,000": lambda: phone_jpeg(8000, 6000),
    "JPEG 12 MP phone photo, 4,000×3,000": lambda: (PHOTOS / "phone_4000x3000.jpg").read_bytes(),
    "PNG 16-bit RGBA, 11,999×4,166 in 0.6 MB (refused)": lambda: png16(11999, 4166),
}


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def run_case(name: str, parallel: int) -> dict[str, object]:
    """In this (fresh) process: baseline, `parallel` checks at once, peak and afterwards."""
    from media.pipeline import process
    from media.spec import PhotoSpec
    from media.types import UnreadableImageError

    data = CASES[name]()
    spec = PhotoSpec()
    process((PHOTOS / "id_ok.jpg").read_bytes(), spec)  # loads the detector: part of the baseline
    base = rss_mb()
    peak = base
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, rss_mb())
            time.sleep(0.005)

    outcomes: list[str] = []

    def check() -> None:
        try:
            result = process(data, spec)
            outcomes.append("checked" if result.normalized or not result.passed else "?")
        except UnreadableImageError:
            outcomes.append("refused")

    sampler = threading.Thread(target=sample)
    sampler.start()
    started = time.perf_counter()
    threads = [threading.Thread(target=check) for _ in range(parallel)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - started
    time.sleep(0.5)
    done.set()
    sampler.join()
    return {
        "case": name,
        "bytes": len(data),
        "outcome": sorted(set(outcomes)),
        "base": base,
        "peak": peak,
        "after": rss_mb(),
        "seconds": seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--parallel", type=int, default=8)
    parser.add_argument("--case", help=argparse.SUPPRESS)  # the child process's own case
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case, args.parallel)))
        return
    print(f"{args.parallel} checks at once per case, one process per case (resident memory, MB)\n")
    print("| upload | file | outcome | baseline | peak | after | wall time |")
    print("|---|---:|---|---:|---:|---:|---:|")
    for name in CASES:
        out = subprocess.run(
            [sys.executable, __file__, "--case", name, "--parallel", str(args.parallel)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        r = json.loads(out.strip().splitlines()[-1])
        print(
            f"| {r['case']} | {r['bytes'] / 1024:,.0f} KB | {', '.join(r['outcome'])} | {r['base']:.0f} "
            f"| {r['peak']:.0f} | {r['after']:.0f} | {r['seconds']:.1f} s |"
        )


if __name__ == "__main__":
    main()
