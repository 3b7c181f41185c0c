"""GET /review/export?batch=<id> (admin): the batch's approved photos as a ZIP (app/services/exports.py),
streamed as it is built; without a batch, the page to choose one. GET /review/export/answers?batch=<id>
and /review/export/files?batch=<id> (admin): the form's answers as CSV and the documents as a ZIP
(app/services/answer_exports.py), for batches with a definition."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote

from flask import Response, render_template, request, stream_with_context
from flask.typing import ResponseReturnValue

from app.errors import error_response
from app.extensions import db
from app.inputs import row_id
from app.integrations import photo_storage, pii_keyring
from app.review import bp
from app.review.auth import current_staff, staff_required
from app.services import answer_exports, exports
from models import StaffRole


@bp.get("/export")
@staff_required(StaffRole.ADMIN)
def export() -> ResponseReturnValue:
    staff = current_staff()
    assert staff is not None
    asked = request.args.get("batch", "").strip()
    if not asked:
        return render_template("review/export.html", staff=staff, choices=exports.choices(db.session))
    batch_id = row_id(asked)
    if batch_id is None:  # not an id at all: no such batch
        return error_response(404, exports.ExportBatchNotFoundError.message)
    try:
        made = exports.export_batch(db.session, pii_keyring(), photo_storage(), staff.id, batch_id)
    except exports.ExportBatchNotFoundError as exc:
        return error_response(404, exc.message)
    return _download(made, f"batch-{batch_id}.zip", "application/zip")


@bp.get("/export/answers")
@staff_required(StaffRole.ADMIN)
def export_answers() -> ResponseReturnValue:
    return _form_export(
        lambda staff_id, batch_id: answer_exports.export_answers(
            db.session, pii_keyring(), staff_id, batch_id
        ),
        "answers.csv",
        "text/csv",
    )


@bp.get("/export/files")
@staff_required(StaffRole.ADMIN)
def export_files() -> ResponseReturnValue:
    return _form_export(
        lambda staff_id, batch_id: answer_exports.export_files(
            db.session, pii_keyring(), photo_storage(), staff_id, batch_id
        ),
        "files.zip",
        "application/zip",
    )


def _form_export(
    make: Callable[[int, int], exports.BatchExport], suffix: str, mimetype: str
) -> ResponseReturnValue:
    """One of a form batch's exports for ?batch=<id>; 404 for no such batch or one without a form."""
    staff = current_staff()
    assert staff is not None
    batch_id = row_id(request.args.get("batch", "").strip())
    if batch_id is None:
        return error_response(404, exports.ExportBatchNotFoundError.message)
    try:
        made = make(staff.id, batch_id)
    except (exports.ExportBatchNotFoundError, answer_exports.NoDefinitionError) as exc:
        return error_response(404, exc.message)
    return _download(made, f"batch-{batch_id}-{suffix}", mimetype)


def _download(made: exports.BatchExport, ascii_name: str, mimetype: str) -> Response:
    """The export streamed as it is made; the Chinese file name for browsers that read RFC 5987."""
    response = Response(stream_with_context(made.chunks), mimetype=mimetype)
    response.headers["Content-Disposition"] = (
        f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(made.filename)}"
    )
    return response
