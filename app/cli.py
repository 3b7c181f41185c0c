"""Command-line entry points: `flask worker`, `flask demo load`, and the groups of each area."""

from __future__ import annotations

import click
from flask import Flask, current_app
from flask.cli import with_appcontext


@click.command("worker")
@with_appcontext
def worker_command() -> None:
    """Run the outbox worker until interrupted (production runs one or more of these)."""
    from app.jobs.worker import run_forever

    run_forever(current_app._get_current_object())  # type: ignore[attr-defined]


def register_cli(app: Flask) -> None:
    from app.demo import demo_cli
    from app.pay_cli import pay_cli
    from app.pii_cli import pii_cli
    from app.schools_cli import schools_cli
    from app.staff_cli import staff_cli
    from app.wechat_cli import wechat_cli

    app.cli.add_command(worker_command)
    app.cli.add_command(demo_cli)
    app.cli.add_command(pii_cli)
    app.cli.add_command(wechat_cli)
    app.cli.add_command(schools_cli)
    app.cli.add_command(pay_cli)
    app.cli.add_command(staff_cli)
