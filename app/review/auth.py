"""Staff sign-in at /review/login, sign-out, and the guards every staff view uses.

Staff and students share Flask's signed session cookie (HttpOnly, SameSite=Lax, Secure in
production) but never its keys: staff live under `staff_*`, students under `user_id`. Signing in
either way clears the whole session first, so one browser is never both, and a token fixed before
sign-in (CSRF, an old id) does not survive it. A staff session ends after
STAFF_SESSION_IDLE_SECONDS without a request, when the account is deactivated, or when its
password changes (the session keeps a keyed fingerprint of the password hash).
"""

from __future__ import annotations

import hashlib
import hmac
import math
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import wraps
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import current_app, g, jsonify, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import CSRFError

from app.errors import MESSAGES, error_response
from app.extensions import db
from app.integrations import redis_client
from app.review import bp
from app.services import staff as staff_service
from app.services.localtime import BEIJING
from models import Staff, StaffRole

SESSION_STAFF_ID = "staff_id"
SESSION_STAFF_SEEN = "staff_seen"  # epoch seconds of the last request
SESSION_STAFF_PW = "staff_pw"  # keyed fingerprint of the password hash at sign-in
SEEN_REFRESH_SECONDS = 60  # rewrite the cookie at most once a minute for the idle clock
DEFAULT_NEXT = "/review/"

BAD_CREDENTIALS = "用户名或密码错误"
INACTIVE = "该账号已停用，请联系管理员"
EXPIRED_FORM = "页面已过期，请重新登录"

F = TypeVar("F", bound=Callable[..., Any])


def _password_fingerprint(staff: Staff) -> str:
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, staff.password_hash.encode(), hashlib.sha256).hexdigest()[:32]


def _now() -> float:
    return time.time()


def sign_in(staff: Staff) -> None:
    session.clear()  # rotate: nothing from before sign-in survives (fixation, a student's id)
    session[SESSION_STAFF_ID] = staff.id
    session[SESSION_STAFF_SEEN] = int(_now())
    session[SESSION_STAFF_PW] = _password_fingerprint(staff)
    g.current_staff = staff


def sign_out() -> None:
    session.clear()
    g.current_staff = None


def current_staff() -> Staff | None:
    """The signed-in, active staff member of this request, or None (loaded once per request)."""
    if "current_staff" in g:
        staff: Staff | None = g.current_staff
        return staff
    g.current_staff = None
    staff_id = session.get(SESSION_STAFF_ID)
    if not isinstance(staff_id, int):
        return None
    seen = session.get(SESSION_STAFF_SEEN)
    now = _now()
    idle: int = current_app.config["STAFF_SESSION_IDLE_SECONDS"]
    if not isinstance(seen, int | float) or now - seen > idle:
        session.clear()
        return None
    found = db.session.get(Staff, staff_id)
    if (
        found is None
        or not found.is_active
        or not hmac.compare_digest(str(session.get(SESSION_STAFF_PW, "")), _password_fingerprint(found))
    ):
        session.clear()
        return None
    if now - seen > SEEN_REFRESH_SECONDS:
        session[SESSION_STAFF_SEEN] = int(now)
    g.current_staff = found
    return found


def signed_in_staff() -> Staff:
    """The staff member of a view behind `staff_required` (which has made sure there is one)."""
    staff = current_staff()
    assert staff is not None  # staff_required ran first
    return staff


def visible_school_ids(staff: Staff) -> set[int] | None:
    """The schools whose records `staff` may see: None means all (admins)."""
    if staff.role == StaffRole.ADMIN:
        return None
    return {school.id for school in staff.schools}


def safe_next(target: str | None) -> str:
    """Only a local /review path (no other host, scheme, `//`, backslash or control character)."""
    if not target or "\\" in target or any(ord(c) < 0x20 or ord(c) == 0x7F for c in target):
        return DEFAULT_NEXT
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or target.startswith("//"):
        return DEFAULT_NEXT
    if parts.path != "/review" and not parts.path.startswith("/review/"):
        return DEFAULT_NEXT
    if "/.." in parts.path or parts.path.startswith(("/review/login", "/review/logout")):
        return DEFAULT_NEXT
    return target


def _here() -> str:
    path = request.full_path
    return path[:-1] if path.endswith("?") else path


def _is_api() -> bool:
    return request.path.startswith("/review/api/")


def _refuse(status: int) -> ResponseReturnValue:
    if _is_api():
        return jsonify(error={"code": status, "message": MESSAGES[status]}), status
    return error_response(status)


def staff_required(role: StaffRole | str | None = None) -> Callable[[F], F]:
    """Staff views: not signed in → the login page (401 JSON under /review/api/); signed in with
    another role than `role` → 403. Admins pass every role check."""

    def decorator(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            staff = current_staff()
            if staff is None:
                if _is_api():
                    return _refuse(401)
                return redirect(url_for("review.login", next=_here()), 302)
            if role is not None and staff.role != StaffRole.ADMIN and staff.role != role:
                return _refuse(403)
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorator


def _policy() -> staff_service.LockoutPolicy:
    config = current_app.config
    return staff_service.LockoutPolicy(
        threshold=config["STAFF_LOCKOUT_THRESHOLD"],
        ip_threshold=config["STAFF_LOCKOUT_IP_THRESHOLD"],
        window_seconds=config["STAFF_LOCKOUT_WINDOW_SECONDS"],
    )


def locked_message(retry_after_seconds: int) -> str:
    minutes = max(1, math.ceil(retry_after_seconds / 60))
    at = (datetime.now(UTC) + timedelta(seconds=retry_after_seconds)).astimezone(BEIJING)
    return f"登录失败次数过多，已暂时锁定。请在 {minutes} 分钟后（北京时间 {at:%H:%M} 以后）再试。"


def _login_page(status: int = 200, error: str | None = None, username: str = "") -> ResponseReturnValue:
    next_path = safe_next(request.values.get("next"))
    return (
        render_template("review/login.html", error=error, username=username, next_path=next_path),
        status,
    )


@bp.get("/login")
def login() -> ResponseReturnValue:
    if current_staff() is not None:
        return redirect(safe_next(request.args.get("next")), 302)
    return _login_page()


@bp.post("/login")
def login_post() -> ResponseReturnValue:
    username = request.form.get("username", "")
    password = request.form.get("password", "")
    if not username.strip() or not password:
        return _login_page(422, "请输入用户名和密码", username[:64])
    result = staff_service.authenticate(
        db.session, redis_client(), username, password, request.remote_addr or "unknown", _policy()
    )
    if result.outcome == staff_service.LoginOutcome.LOCKED:
        return _login_page(429, locked_message(result.retry_after_seconds), username[:64])
    if result.outcome == staff_service.LoginOutcome.INACTIVE:
        return _login_page(403, INACTIVE, username[:64])
    if result.staff is None:
        return _login_page(401, BAD_CREDENTIALS, username[:64])
    next_path = safe_next(request.form.get("next"))
    sign_in(result.staff)
    return redirect(next_path, 303)


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    sign_out()
    return redirect(url_for("review.login"), 303)


@bp.errorhandler(CSRFError)
def _csrf_refused(exc: CSRFError) -> ResponseReturnValue:
    if request.endpoint == "review.login_post":
        # Usually a form left open past its token's life, or cookies blocked: say so, offer it again.
        return _login_page(400, EXPIRED_FORM, request.form.get("username", "")[:64])
    return _refuse(400)
