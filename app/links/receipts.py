"""GET /verify/<token>: whether a printed receipt is genuine (public: staff scan its QR code),
/verify/<token>/photo: the approved photo, for matching the face at the counter, and
/verify/<token>/signature: the signature printed under the batch's 承诺."""

from __future__ import annotations

from flask import current_app, render_template
from flask.typing import ResponseReturnValue

from app.errors import error_response
from app.extensions import db
from app.integrations import photo_storage, pii_keyring
from app.links import bp
from app.links.files import personal_file
from app.review.auth import current_staff
from app.services import receipts
from app.services.localtime import chinese_time


@bp.get("/verify/<token>")
def verify_receipt(token: str) -> ResponseReturnValue:
    found = receipts.verify(
        db.session, pii_keyring(), current_app.config["SECRET_KEY"], token, staff=current_staff()
    )
    response = current_app.make_response(
        (render_template("h5/verify.html", receipt=found, local=chinese_time), 200 if found else 404)
    )
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@bp.get("/verify/<token>/photo")
def receipt_photo(token: str) -> ResponseReturnValue:
    found = receipts.photo(db.session, photo_storage(), current_app.config["SECRET_KEY"], token)
    if found is None:
        return error_response(404, "没有这张回执的照片")
    data, mimetype = found
    # A face: never in a shared cache, and gone from this browser once the page is left.
    return personal_file(data, mimetype, "private, no-store")


@bp.get("/verify/<token>/signature")
def receipt_signature(token: str) -> ResponseReturnValue:
    found = receipts.signature(db.session, photo_storage(), current_app.config["SECRET_KEY"], token)
    if found is None:
        return error_response(404, "没有这张回执的签名")
    # Like the photo: personal, never in a shared cache.
    return personal_file(found, "image/png", "private, no-store")
