"""The files of an attempt's 材料 for staff: GET /review/submissions/<id>/documents/<document_id> (the
file) and …/preview (a PDF's first page). Only staff who cover the attempt's school; ids in the path,
never anything personal."""

from __future__ import annotations

from flask import abort
from flask.typing import ResponseReturnValue

from app.extensions import db
from app.integrations import photo_storage
from app.links.files import personal_file
from app.review import bp
from app.review.auth import signed_in_staff, staff_required
from app.services import review_details
from app.services.reviews import ReviewNotFoundError
from media.storage import MediaNotFoundError

# Staff pages are never cached (the blueprint's after_request sets no-store on every answer).
NO_STORE = "private, no-store"


@bp.get("/submissions/<int:submission_id>/documents/<int:document_id>")
@staff_required()
def document(submission_id: int, document_id: int) -> ResponseReturnValue:
    try:
        data, mimetype = review_details.document_file(
            db.session, photo_storage(), signed_in_staff(), submission_id, document_id
        )
    except (ReviewNotFoundError, MediaNotFoundError):
        abort(404)
    # Images open in the browser; PDFs and Office files are downloaded, never rendered in the site's origin.
    disposition = "inline" if mimetype.startswith("image/") else "attachment"
    return personal_file(data, mimetype, NO_STORE, disposition)


@bp.get("/submissions/<int:submission_id>/documents/<int:document_id>/preview")
@staff_required()
def document_preview(submission_id: int, document_id: int) -> ResponseReturnValue:
    try:
        thumb = review_details.document_preview(
            db.session, photo_storage(), signed_in_staff(), submission_id, document_id
        )
    except (ReviewNotFoundError, MediaNotFoundError):
        abort(404)
    # Drawn again at each view (in a limited child process, about a second): the decision page shows
    # a handful, and a stored thumbnail would be one more copy of personal data.
    return personal_file(thumb, "image/jpeg", NO_STORE, "inline")
