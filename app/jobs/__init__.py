"""Background jobs: a registry of job kinds run by the outbox worker (app/jobs/worker.py).

A job takes the row's JSON payload (ids, never objects) plus `outbox_id` (the row's id: a stable
idempotency key for calls such as WeChat's client_msg_id), runs inside an app context, and must be
safe to run twice: the worker may be killed after the work and before it records success.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

JobFunc = Callable[[dict[str, Any]], None]
JOBS: dict[str, JobFunc] = {}


class PermanentJobError(Exception):
    """Retrying cannot help (bad payload, user gone): the row goes straight to dead."""


def job(kind: str) -> Callable[[JobFunc], JobFunc]:
    def register(func: JobFunc) -> JobFunc:
        if kind in JOBS:
            raise RuntimeError(f"job kind {kind!r} registered twice")
        JOBS[kind] = func
        return func

    return register


def load_jobs() -> None:
    """Import the modules that register job kinds (kept in one place so none is forgotten)."""
    from app.jobs import inbox, payments, photos, submissions, wechat  # noqa: F401
