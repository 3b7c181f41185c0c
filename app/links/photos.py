"""GET /media/photos/<token>: a photo file, to the user the signed link was made for or to signed-in
staff who cover the photo's school."""

from __future__ import annotations

import time

from flask import current_app
from flask.typing import ResponseReturnValue

from app.auth.session import current_user
from app.errors import error_response
from app.extensions import db
from app.integrations import photo_storage
from app.links import bp
from app.links.files import personal_file
from app.review.auth import current_staff
from app.services import photos
from app.services.photos import PhotoForbiddenError, PhotoLinkExpiredError, PhotoNotFoundError


@bp.get("/media/photos/<token>")
def photo_file(token: str) -> ResponseReturnValue:
    ttl: int = current_app.config["MEDIA_URL_TTL_SECONDS"]
    viewer = current_user()
    try:
        data, mimetype = photos.open_link(
            db.session,
            photo_storage(),
            current_app.config["SECRET_KEY"],
            token,
            time.time(),
            ttl,
            viewer_id=viewer.id if viewer is not None else None,
            staff=current_staff,
        )
    except (PhotoLinkExpiredError, PhotoForbiddenError) as exc:
        return error_response(403, exc.message)
    except PhotoNotFoundError as exc:
        return error_response(404, exc.message)
    # Personal data: the browser may keep it for the link's life, shared caches never.
    return personal_file(data, mimetype, f"private, max-age={ttl}", "inline")
