"""GET /review/batches/<id>/preview (报名信息) and /review/batches/<id>/preview/documents (上传材料): the
batch's form and document slots drawn by the student pages' own templates and script in preview mode
(app/services/form_previews.py), for the staff of its school. `when` works as the student sees it;
nothing can be saved or uploaded."""

from __future__ import annotations

from flask import redirect, render_template, url_for
from flask.typing import ResponseReturnValue

from app.errors import error_response
from app.extensions import db
from app.review import bp
from app.review.auth import current_staff, staff_required
from app.services import form_previews, returns
from app.services.batch_forms import Definition
from models import Batch


def _load(batch_id: int) -> tuple[Batch, Definition]:
    staff = current_staff()
    assert staff is not None  # staff_required ran first
    return form_previews.definition(db.session, staff, batch_id)


def _refused(exc: form_previews.PreviewError) -> ResponseReturnValue:
    return error_response(403 if isinstance(exc, form_previews.PreviewScopeError) else 404, exc.message)


def _preview(batch: Batch, definition: Definition, page: str) -> dict[str, object]:
    """What the student templates need to draw a preview: where it is, the tabs, the way back."""
    return {
        "page": page,
        "batch": batch,
        "form_url": url_for("review.form_preview", batch_id=batch.id) if definition.sections else None,
        "documents_url": (
            url_for("review.documents_preview", batch_id=batch.id) if definition.documents else None
        ),
        "back": url_for("review.dashboard_page"),
    }


@bp.get("/batches/<int:batch_id>/preview")
@staff_required()
def form_preview(batch_id: int) -> ResponseReturnValue:
    try:
        batch, definition = _load(batch_id)
    except form_previews.PreviewError as exc:
        return _refused(exc)
    if not definition.sections:  # slots only: the preview starts where there is something to see
        return redirect(url_for("review.documents_preview", batch_id=batch_id), 302)
    return render_template(
        "h5/form.html",
        state=form_previews.empty_form(definition),
        autofilled=set(),
        preview=_preview(batch, definition, "form"),
    )


@bp.get("/batches/<int:batch_id>/preview/documents")
@staff_required()
def documents_preview(batch_id: int) -> ResponseReturnValue:
    try:
        batch, definition = _load(batch_id)
    except form_previews.PreviewError as exc:
        return _refused(exc)
    # Every slot is drawn, a conditional one with its rule: the preview has no answers to hide it by.
    slots = [
        {
            "slot": slot,
            "shown": True,
            "editable": True,
            "rejected": None,
            "files": [],
            "condition": form_previews.condition(definition, slot),
        }
        for slot in definition.documents
    ]
    return render_template(
        "h5/documents.html",
        slots=slots,
        reopened=returns.OPEN,
        preview=_preview(batch, definition, "documents"),
    )
