"""Fixed-window counters in Redis: the staff sign-in lockout and the per-student limit on ID card readings.

A window starts at the first attempt and later ones never extend it, so a steady trickle is let through
again as soon as the window ends.
"""

from __future__ import annotations

from redis import Redis


def reserve(r: Redis, keys: tuple[str, ...], window: int) -> list[tuple[int, int]]:
    """Count this attempt on each key, atomically, before the work it guards is done: concurrent
    attempts cannot slip past a threshold together. Returns (count, seconds left) per key."""
    pipe = r.pipeline(transaction=True)
    for key in keys:
        pipe.set(key, 0, ex=window, nx=True)
        pipe.incr(key)
        pipe.ttl(key)
    replies = pipe.execute()
    counted = []
    for i, key in enumerate(keys):
        count, ttl = int(replies[3 * i + 1]), int(replies[3 * i + 2])
        if ttl < 0:  # no expiry (should not happen): never lock forever
            r.expire(key, window)
            ttl = window
        counted.append((count, ttl))
    return counted


def over_limit(r: Redis, key: str, limit: int, window: int) -> int | None:
    """Count one attempt on `key`; the seconds until the window ends when this attempt is past `limit`,
    else None."""
    [(count, ttl)] = reserve(r, (key,), window)
    return ttl if count > limit else None
