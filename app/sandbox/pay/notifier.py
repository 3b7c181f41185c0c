"""The embedded deliverer of sandbox notifications: one daemon thread per app, started when something
is queued, gone when the queue is empty (so finished tests leave no thread behind).

WECHAT_PAY_SANDBOX_NOTIFY_THREAD (on by default) turns it off: tests then deliver by hand, with the
clock they choose.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from flask import Flask
from redis import Redis

from app.integrations import redis_client

log = logging.getLogger(__name__)

_THREADS_LOCK = threading.Lock()

Deliver = Callable[[Redis], None]
NextDue = Callable[[Redis], float | None]


def wake(app: Flask, deliver: Deliver, next_due: NextDue) -> None:
    """Something was queued: make sure a thread runs `deliver` until `next_due` says nothing is left."""
    if not app.config.get("WECHAT_PAY_SANDBOX_NOTIFY_THREAD", True):
        return
    with _THREADS_LOCK:
        slot = app.extensions.setdefault("sandbox_pay_notifier", {"thread": None, "event": threading.Event()})
        slot["event"].set()
        thread = slot["thread"]
        if thread is None or not thread.is_alive():
            slot["thread"] = threading.Thread(
                target=_run, args=(app, slot, deliver, next_due), name="sandbox-pay-notifier", daemon=True
            )
            slot["thread"].start()


def _run(app: Flask, slot: dict[str, Any], deliver: Deliver, next_due: NextDue) -> None:
    event: threading.Event = slot["event"]
    while True:
        event.clear()
        try:
            with app.app_context():
                r = redis_client()
                deliver(r)
                with _THREADS_LOCK:
                    due = next_due(r)
                    if due is None:
                        slot["thread"] = None
                        return
        except Exception:  # the emulator's thread must not die on a bad item; try again shortly
            log.exception("sandbox pay notifier")
            due = time.time() + 1
        event.wait(timeout=max(0.05, min(1.0, due - time.time())))
