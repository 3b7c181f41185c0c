"""Staff pages under /review: sign-in here; queue, decisions, export and dashboard build on it."""

from __future__ import annotations

from flask import Blueprint, Response

bp = Blueprint("review", __name__, url_prefix="/review")


@bp.after_request
def _staff_page_headers(response: Response) -> Response:
    # Staff pages show personal data: never cached by a shared browser or proxy, never framed.
    response.headers["Cache-Control"] = "no-store"
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    return response


# Each module registers its views on `bp`: sign-in, the admin ZIP export, the queue and decision pages.
from app.review import admin, auth, export, queue, receipts  # noqa: E402, F401
