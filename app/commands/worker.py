"""`flask worker`: the outbox worker."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext


@click.command("worker")
@with_appcontext
def worker_command() -> None:
    """Run the outbox worker until interrupted (production runs one or more of these)."""
    from app.jobs.worker import run_forever

    run_forever(current_app._get_current_object())  # type: ignore[attr-defined]
