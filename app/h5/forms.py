"""/h5/form (填写报名信息) and /h5/documents (上传材料): the linked batch's form rendered from its
definition with the saved answers, and its document slots with the files uploaded. Changes go through
the JSON API (app/static/h5/form.js); these views only read."""

from __future__ import annotations

from flask import current_app, render_template

from app.auth.session import current_user, login_required
from app.extensions import db
from app.h5 import bp
from app.integrations import pii_keyring
from app.services import applications, batch_forms, idcard_fill
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
    autofilled = idcard_fill.autofilled(db.session, user.id) if state is not None else set()
    return render_template("h5/form.html", state=state, autofilled=autofilled)


@bp.get("/documents")
@login_required
def documents() -> str:
    user = current_user()
    assert user is not None  # login_required ran first
    try:
        state = applications.documents(db.session, user.id)
    except NoFormError:
        return render_template("h5/documents.html", slots=None, reopened=None)
    secret = current_app.config["SECRET_KEY"]
    allowed = state.reopened
    slots = [
        {
            "slot": slot,
            "shown": batch_forms.visible(slot.when, state.answers),
            "editable": allowed.slot_editable(slot.key),
            "rejected": allowed.slots.get(slot.key),
            "files": [
                (
                    f,
                    "/media/documents/" + applications.file_token(secret, f.id, user.id),
                    idcard_fill.filled_fields(state.definition, f.reading),
                )
                for f in state.files
                if f.slot == slot.key
            ],
        }
        for slot in state.definition.documents
    ]
    return render_template("h5/documents.html", slots=slots, reopened=allowed)
