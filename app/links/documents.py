"""GET /media/documents/<token>: a document a student uploaded, to that student only (staff open it
from the decision page, app/review/documents.py)."""

from __future__ import annotations

from flask import current_app
from flask.typing import ResponseReturnValue

from app.auth.session import current_user
from app.errors import error_response
from app.extensions import db
from app.integrations import photo_storage
from app.links import bp
from app.links.files import personal_file
from app.services import applications
from app.services.applications import DocumentLinkError, DocumentNotFoundError
from media.storage import MediaNotFoundError


@bp.get("/media/documents/<token>")
def document_file(token: str) -> ResponseReturnValue:
    ttl: int = current_app.config["MEDIA_URL_TTL_SECONDS"]
    viewer = current_user()
    try:
        data, mimetype = applications.open_link(
            db.session,
            photo_storage(),
            current_app.config["SECRET_KEY"],
            token,
            ttl,
            viewer.id if viewer is not None else None,
        )
    except DocumentLinkError as exc:
        return error_response(403, exc.message)
    except (DocumentNotFoundError, MediaNotFoundError):
        return error_response(404, DocumentNotFoundError.message)
    # Personal data: the browser may keep it for the link's life, shared caches never. Office files
    # and PDFs are downloaded, never rendered in the site's origin.
    disposition = "inline" if mimetype.startswith("image/") else "attachment"
    return personal_file(data, mimetype, f"private, max-age={ttl}", disposition)
