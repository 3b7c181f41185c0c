"""The exam course cancellation migration (d2f4a6b8c0e3) adds and drops exactly its columns and index."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import inspect

from app import create_app
from app.extensions import db
from tests.conftest import TEST_SECRET_KEY

REVISION = "d2f4a6b8c0e3"
BEFORE = "b8d3f5a7c9e1"


def _shape() -> tuple[set[str], set[str]]:
    found = inspect(db.engine)
    columns = {c["name"] for c in found.get_columns("exam_courses")}
    indexes = {i["name"] for i in found.get_indexes("exam_registrations")}
    return columns, indexes


def test_upgrade_and_downgrade(tmp_path: Path) -> None:
    from flask_migrate import downgrade, upgrade

    app = create_app(
        APP_ENV="testing", DATABASE_URL=f"sqlite:///{tmp_path / 'm.db'}", SECRET_KEY=TEST_SECRET_KEY
    )
    with app.app_context():
        upgrade(revision=REVISION)
        columns, indexes = _shape()
        assert {"cancelled_at", "cancel_reason"} <= columns
        assert "ix_exam_registrations_batch_id_site_id" in indexes
        downgrade(revision=BEFORE)
        columns, indexes = _shape()
        assert not {"cancelled_at", "cancel_reason"} & columns
        assert "ix_exam_registrations_batch_id_site_id" not in indexes
        upgrade(revision=REVISION)
        db.engine.dispose()
