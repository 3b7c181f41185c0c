"""The student's home page (/h5/): the checklist of their batch's steps and where they stand."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import render_template

from app.auth.session import current_user, login_required
from app.extensions import db
from app.h5 import bp
from app.services import progress


@bp.get("/")
@login_required
def index() -> str:
    user = current_user()
    assert user is not None  # login_required
    return render_template("h5/index.html", now=progress.of(db.session, user.id, datetime.now(UTC)))
