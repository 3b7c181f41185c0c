"""`flask worker`: the outbox worker."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

import click
from flask import current_app
from flask.cli import with_appcontext


@click.command("worker")
@with_appcontext
def worker_command() -> None:
    """Run the outbox worker until interrupted (production runs one or more of these).

    SIGTERM (a deploy, `systemctl stop`, a container stop) and Ctrl-C finish the running job and hand
    the rest of its batch back, so nothing waits out a lease and no push is cut between WeChat's
    answer and its row being marked done."""
    from app.jobs.worker import run_forever

    stop = threading.Event()

    def stopping(signum: int, frame: FrameType | None) -> None:
        logging.getLogger("app.jobs.worker").info("worker stopping after the running job")
        stop.set()

    signal.signal(signal.SIGTERM, stopping)
    signal.signal(signal.SIGINT, stopping)
    run_forever(current_app._get_current_object(), stop)  # type: ignore[attr-defined]
