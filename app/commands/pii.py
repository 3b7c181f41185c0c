"""`flask pii rotate`: re-encrypt personal data under the first key of PII_ENCRYPTION_KEYS.
`flask pii backfill-name-hashes`: give identities bound before names were searchable their name hash."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from app.extensions import db
from app.integrations import pii_keyring
from app.services import idcard_fill, identities

pii_cli = AppGroup("pii", help="Personal data at rest.")


@pii_cli.command("rotate")
def rotate() -> None:
    """Re-encrypt every identity and ID card reading under the newest key (run after adding a key in
    front)."""
    count = identities.rotate_keys(db.session, pii_keyring())
    click.echo(f"re-encrypted {count} identities under the first PII_ENCRYPTION_KEYS key")
    readings = idcard_fill.rotate_keys(db.session, pii_keyring())
    click.echo(f"re-encrypted {readings} ID card readings under the first PII_ENCRYPTION_KEYS key")


@pii_cli.command("backfill-name-hashes")
@click.option("--batch-size", default=500, show_default=True, type=click.IntRange(1, 10_000))
def backfill_name_hashes(batch_size: int) -> None:
    """Hash the names of identities that have no name hash yet (run once after the migration)."""
    count = identities.backfill_name_hashes(db.session, pii_keyring(), batch_size=batch_size)
    click.echo(f"hashed the names of {count} identities")
