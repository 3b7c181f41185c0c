"""`flask demo load`: demo data for the embedded mode."""

from __future__ import annotations

import click
from flask.cli import AppGroup

demo_cli = AppGroup("demo", help="Demo data for trying the service out.")


@demo_cli.command("load")
def load() -> None:
    """Load the demo schools, batches and staff admin (idempotent)."""
    click.echo("demo data: nothing to load yet")
