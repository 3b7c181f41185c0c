"""GET /verify/ticket/<token>: what an exam ticket's QR code opens. Staff at the door scan it; the
check itself (the photo, the seat, 签到) is a staff page, so the link leads there and the staff
sign-in guards it (a student scanning their own ticket sees the staff sign-in)."""

from __future__ import annotations

from flask import redirect, url_for
from flask.typing import ResponseReturnValue

from app.links import bp


@bp.get("/verify/ticket/<token>")
def verify_ticket(token: str) -> ResponseReturnValue:
    response = redirect(url_for("review.exam_door", token=token), 302)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response
