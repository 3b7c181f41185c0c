"""How much memory decoding a photo may take in one process, and giving it back afterwards.

A 400 KB PNG can declare 50 megapixels of 16-bit RGBA: Pillow holds it as 200 MB, and flattening and
converting it take as much again. Eight such uploads at once in one worker (its threads) took it past 5 GB,
and glibc kept most of it after the requests: the worker stayed 450 MB above its baseline.

Two rules keep a worker's memory bounded whatever students upload:

- a *large* decode (more than ``LARGE_DECODE_BYTES`` as Pillow holds it) waits for the previous large one
  in this process to finish, so a worker holds one at a time (small ones — every 480×640 upload — never
  wait); the work is CPU-bound, so waiting costs no throughput on this machine's cores;
- after a large decode the freed heap is handed back to the operating system (``malloc_trim``), since
  glibc would otherwise keep it for the process's lifetime.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import threading
from collections.abc import Iterator

log = logging.getLogger(__name__)

# A 12 MP phone photo decoded at half size (3 MP × 4 bytes) is 12 MB; anything above this is large.
LARGE_DECODE_BYTES = 16 * 1024 * 1024
_large = threading.Semaphore(1)


def _load_malloc_trim() -> ctypes._CFuncPtr | None:  # type: ignore[name-defined]
    # No library returns glibc's freed heap to the OS; ctypes reaches its malloc_trim. Elsewhere (musl,
    # macOS) the call does not exist and memory returns as that allocator decides.
    name = ctypes.util.find_library("c")
    try:
        trim = ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        return None
    if trim is not None:
        trim.argtypes = [ctypes.c_size_t]
        trim.restype = ctypes.c_int
    return trim


_malloc_trim = _load_malloc_trim()


def give_back() -> None:
    """Return the process's freed heap pages to the operating system (glibc only; a no-op elsewhere)."""
    if _malloc_trim is not None:
        _malloc_trim(0)


@contextlib.contextmanager
def decoding(decoded_bytes: int) -> Iterator[None]:
    """Hold the process's turn for a decode of this size: large ones one at a time, then give back."""
    if decoded_bytes <= LARGE_DECODE_BYTES:
        yield
        return
    with _large:
        try:
            yield
        finally:
            give_back()
