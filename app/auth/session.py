"""Who is signed in on the H5 pages, and the decorators that require it.

The browser session (Flask's signed cookie: HttpOnly, SameSite=Lax, Secure in production) holds the
user's id after the WeChat OAuth2 callback. H5 views use `login_required` (→ sign-in redirect);
JSON API views use `api_login_required` (→ 401 JSON).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import Response, current_app, g, jsonify, redirect, request, session, url_for

from app.errors import MESSAGES
from app.extensions import db
from models import User

SESSION_USER_ID = "user_id"
DEFAULT_NEXT = "/h5/"

F = TypeVar("F", bound=Callable[..., Any])


def sign_in(user: User) -> None:
    session[SESSION_USER_ID] = user.id
    g.pop("current_user", None)


def sign_out() -> None:
    session.clear()
    g.pop("current_user", None)


def current_user() -> User | None:
    """The signed-in user of this request, or None (loaded once per request)."""
    if "current_user" not in g:
        user_id = session.get(SESSION_USER_ID)
        g.current_user = db.session.get(User, user_id) if isinstance(user_id, int) else None
    user: User | None = g.current_user
    return user


def safe_next(target: str | None) -> str:
    """A local path to return to after sign-in; anything else (other hosts, `//evil`, `\\evil`,
    schemes, control characters) becomes the H5 home page. Prevents open redirects."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return DEFAULT_NEXT
    if "\\" in target or any(ord(c) < 0x20 or ord(c) == 0x7F for c in target):
        return DEFAULT_NEXT
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return DEFAULT_NEXT
    return target


def _here() -> str:
    path = request.full_path
    return path[:-1] if path.endswith("?") else path


def login_required(view: F) -> F:
    """H5 pages: not signed in → start WeChat sign-in and come back here."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if current_user() is None:
            return redirect(url_for("auth.wechat_login", next=_here()), 302)
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _unauthorized() -> tuple[Response, int]:
    return jsonify(error={"code": 401, "message": MESSAGES[401]}), 401


def api_login_required(view: F) -> F:
    """JSON API views: not signed in → 401 with a Chinese message."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if current_user() is None:
            return _unauthorized()
        return view(*args, **kwargs)

    wrapper.requires_sign_in = True  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]


def refuse_anonymous_api_calls() -> tuple[Response, int] | None:
    """before_request, ahead of the CSRF check: a call to a sign-in-only API view without a session is
    answered 401, as the API documents — not 400 for a missing CSRF token, which would send the page
    looking for a token when what it needs is to sign in."""
    view = current_app.view_functions.get(request.endpoint or "")
    if getattr(view, "requires_sign_in", False) and current_user() is None:
        return _unauthorized()
    return None
