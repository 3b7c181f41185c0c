"""Staff pages under /review: sign-in here; queue, decisions, export and dashboard build on it."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, Response, current_app

bp = Blueprint("review", __name__, url_prefix="/review")


@bp.after_request
def _staff_page_headers(response: Response) -> Response:
    # Staff pages show personal data: never cached by a shared browser or proxy, never framed by
    # another site. With SANDBOX=1 the emulator's phone (/_sandbox/ on this origin, or on SANDBOX_URL's
    # when it runs as its own process) opens them in its "WeChat browser" frame, as operators open
    # them inside WeChat; in production no one may.
    response.headers["Cache-Control"] = "no-store"
    if current_app.config.get("SANDBOX"):
        parts = urlsplit(str(current_app.config.get("SANDBOX_URL") or current_app.config["PUBLIC_BASE_URL"]))
        sandbox_origin = f"{parts.scheme}://{parts.netloc}"
        response.headers.setdefault("X-Frame-Options", "SAMEORIGIN")
        response.headers.setdefault("Content-Security-Policy", f"frame-ancestors 'self' {sandbox_origin}")
    else:
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Content-Security-Policy", "frame-ancestors 'none'")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    return response


# Each module registers its views on `bp`: sign-in, the admin ZIP export, the queue and decision
# pages and the attempt's files, the inbox of students' messages, the receipt lookup, the preview of a
# batch's form, the exam check-in.
from app.review import admin, auth, documents, exams, export, inbox, previews, queue, receipts  # noqa: E402, F401
