"""/h5/form (填写报名信息): the linked batch's form, rendered from its definition with the saved answers.
Saving goes through PUT /api/v1/me/form (app/static/h5/form.js); this view only reads."""

from __future__ import annotations

from flask import render_template

from app.auth.session import current_user, login_required
from app.extensions import db
from app.h5 import bp
from app.integrations import pii_keyring
from app.services import applications
from app.services.applications import FormState, NoFormError


@bp.get("/form")
@login_required
def form() -> str:
    user = current_user()
    assert user is not None  # login_required ran first
    state: FormState | None
    try:
        state = applications.form(db.session, pii_keyring(), user.id)
    except NoFormError:
        state = None
    return render_template("h5/form.html", state=state)
