"""`flask pii rotate`: re-encrypt personal data under the first key of PII_ENCRYPTION_KEYS."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from app.extensions import db
from app.integrations import pii_keyring
from app.services import identities

pii_cli = AppGroup("pii", help="Personal data at rest.")


@pii_cli.command("rotate")
def rotate() -> None:
    """Re-encrypt every identity under the newest key (run after adding a key in front)."""
    count = identities.rotate_keys(db.session, pii_keyring())
    click.echo(f"re-encrypted {count} identities under the first PII_ENCRYPTION_KEYS key")
