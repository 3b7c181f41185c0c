"""GET /verify/<token>: whether a printed receipt is genuine (public: staff scan its QR code)."""

from __future__ import annotations

from flask import current_app, render_template
from flask.typing import ResponseReturnValue

from app.extensions import db
from app.integrations import pii_keyring
from app.links import bp
from app.services import receipts
from app.services.localtime import chinese_time


@bp.get("/verify/<token>")
def verify_receipt(token: str) -> ResponseReturnValue:
    found = receipts.verify(db.session, pii_keyring(), current_app.config["SECRET_KEY"], token)
    response = current_app.make_response(
        (render_template("h5/verify.html", receipt=found, local=chinese_time), 200 if found else 404)
    )
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response
