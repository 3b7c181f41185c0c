"""Faults for tests (POST /_sandbox/pay/_ctl/faults): switches the emulated WeChat Pay obeys."""

from __future__ import annotations

from typing import Any

from redis import Redis

from app.sandbox.pay import PREFIX

FAULTS = PREFIX + "faults"  # hash of fault switches
FAULT_NAMES = ("drop_notifications", "notify_delay_seconds", "wrong_key", "fail_500")


def set_faults(r: Redis, **faults: Any) -> None:
    """drop_notifications / wrong_key (bool), notify_delay_seconds (float), fail_500 (int). None clears."""
    for name, value in faults.items():
        if name not in FAULT_NAMES:
            raise ValueError(f"unknown fault {name!r}")
        if value in (None, False, 0):
            r.hdel(FAULTS, name)
        else:
            r.hset(FAULTS, name, "1" if value is True else str(value))
