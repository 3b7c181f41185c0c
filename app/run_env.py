"""var/run.env: the settings `make run` serves with, for the commands run beside it (wsgi.py)."""

from __future__ import annotations

import os
from pathlib import Path


def read_run_env(path: Path, environ: dict[str, str] | os._Environ[str]) -> None:
    recorded: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        name, sep, value = line.partition("=")
        if sep and not line.startswith("#") and value:
            recorded[name.strip()] = value.strip()
    # The recorded emulator belongs to the recorded service: a command pointed at another service
    # (its own PUBLIC_BASE_URL) must not send WeChat calls to that run's sandbox process.
    if environ.get("PUBLIC_BASE_URL", recorded.get("PUBLIC_BASE_URL")) != recorded.get("PUBLIC_BASE_URL"):
        recorded.pop("SANDBOX_URL", None)
    for name, value in recorded.items():
        environ.setdefault(name, value)
