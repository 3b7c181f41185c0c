"""Staff sign-in at /review/login through HTTP: argon2 check, lockout per username and per address
(Redis), CSRF, session rotation and expiry, the `next` guard, logout, role checks, the audit log."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app.extensions import db
from app.integrations import redis_client
from app.review import bp as review_bp
from app.review.auth import (
    BAD_CREDENTIALS,
    INACTIVE,
    SESSION_STAFF_ID,
    SESSION_STAFF_SEEN,
    staff_required,
    visible_school_ids,
)
from app.services import schools
from app.services import staff as staff_service
from models import AuditEntry, Staff, StaffRole

PASSWORD = "correct horse battery"
WRONG = "wrong password 123"
CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')


def _make_staff(app: Flask, username: str = "rev1", role: StaffRole = StaffRole.REVIEWER) -> int:
    with app.app_context():
        if db.session.scalar(select(Staff.id).limit(1)) is None:
            schools.upsert_school(db.session, "10542", "湖南师范大学", "湖南省", "长沙市")
            schools.upsert_school(db.session, "10699", "西北工业大学", "陕西省", "西安市")
            db.session.commit()
        codes = ["10542"] if role == StaffRole.REVIEWER else []
        return staff_service.create(db.session, username, PASSWORD, role, codes).id


def _csrf(client: FlaskClient) -> str:
    page = client.get("/review/login")
    assert page.status_code == 200
    found = CSRF_INPUT.search(page.get_data(as_text=True))
    assert found
    return found.group(1)


def _login(client: FlaskClient, username: str, password: str, **extra: str) -> Any:
    data = {"username": username, "password": password, "csrf_token": _csrf(client), **extra}
    return client.post("/review/login", data=data)


def _logout(client: FlaskClient) -> None:
    token = CSRF_INPUT.search(client.get("/review/").get_data(as_text=True))
    assert token
    assert client.post("/review/logout", data={"csrf_token": token.group(1)}).status_code == 303


def _audit(app: Flask) -> list[tuple[str, int | None, dict[str, Any]]]:
    with app.app_context():
        rows = db.session.scalars(select(AuditEntry).order_by(AuditEntry.id))
        return [(e.action, e.staff_id, dict(e.detail)) for e in rows]


def _signed_in(client: FlaskClient) -> bool:
    response = client.get("/review/")
    if response.status_code == 200:
        return True
    assert response.status_code == 302 and response.location.startswith("/review/login")
    return False


def test_login_success_shows_landing_page_and_audits(app: Flask, client: FlaskClient) -> None:
    staff_id = _make_staff(app)
    assert not _signed_in(client)
    response = _login(client, " Rev1 ", PASSWORD)  # trimmed, case-insensitive
    assert response.status_code == 303 and response.location == "/review/"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie

    page = client.get("/review/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "rev1" in html and "审核员" in html and "湖南师范大学（10542）" in html
    assert "西北工业大学" not in html and "审核队列" in html
    assert page.headers["Cache-Control"] == "no-store"
    assert [(a, s) for a, s, _ in _audit(app)] == [("staff_create", None), ("login", staff_id)]


def test_wrong_password_and_unknown_user_get_one_message(app: Flask, client: FlaskClient) -> None:
    staff_id = _make_staff(app)
    for username in ("rev1", "nobody"):
        response = _login(client, username, WRONG)
        assert response.status_code == 401
        assert BAD_CREDENTIALS in response.get_data(as_text=True)
        assert not _signed_in(client)
    failed = [(s, d["reason"]) for a, s, d in _audit(app) if a == "login_failed"]
    assert failed == [(staff_id, "bad_password"), (None, "unknown_user")]
    logged = json.dumps([d for _, _, d in _audit(app)], ensure_ascii=False)
    assert WRONG not in logged and PASSWORD not in logged and "nobody" not in logged


def test_post_without_csrf_token_is_refused(app: Flask, client: FlaskClient) -> None:
    _make_staff(app)
    client.get("/review/login")
    response = client.post("/review/login", data={"username": "rev1", "password": PASSWORD})
    assert response.status_code == 400
    assert "页面已过期" in response.get_data(as_text=True)
    bad = client.post("/review/login", data={"username": "rev1", "password": PASSWORD, "csrf_token": "x"})
    assert bad.status_code == 400
    assert not _signed_in(client)
    assert [a for a, _, _ in _audit(app)] == ["staff_create"]


def test_lockout_refuses_even_the_right_password_until_the_window_ends(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    staff_id = _make_staff(app)
    threshold = app.config["STAFF_LOCKOUT_THRESHOLD"]
    window = app.config["STAFF_LOCKOUT_WINDOW_SECONDS"]
    first_attempt = time.monotonic()
    for _ in range(threshold):
        assert _login(client, "rev1", WRONG).status_code == 401

    checks: list[str] = []
    real_check = staff_service.check_password
    monkeypatch.setattr(staff_service, "check_password", lambda s, p: checks.append(p) or real_check(s, p))
    for _ in range(2):
        locked = _login(client, "rev1", PASSWORD)
        assert locked.status_code == 429
        text = locked.get_data(as_text=True)
        assert "登录失败次数过多" in text and f"{window // 60} 分钟后" in text
    assert checks == []  # no password was verified while locked
    assert not _signed_in(client)
    reasons = [d["reason"] for a, s, d in _audit(app) if a == "login_failed" and s == staff_id]
    assert reasons == ["bad_password"] * threshold + ["locked"]  # one entry per lock, not per refusal

    with app.app_context():
        r = redis_client()
        user_key, ip_key = staff_service.lockout_keys("rev1", "127.0.0.1")
        # The window runs from the first attempt and was not extended by the refusals since (each
        # attempt hashes a password: on a busy machine they take seconds).
        elapsed = time.monotonic() - first_attempt
        assert window - elapsed - 2 <= r.ttl(user_key) <= window
        r.pexpire(user_key, 1)  # the window passes
        r.pexpire(ip_key, 1)
        deadline = time.monotonic() + 2
        while r.exists(user_key, ip_key) and time.monotonic() < deadline:
            time.sleep(0.005)
        assert not r.exists(user_key, ip_key)
    assert _login(client, "rev1", PASSWORD).status_code == 303
    assert checks == [PASSWORD]
    assert _signed_in(client)


def test_success_clears_the_username_counter(app: Flask, client: FlaskClient) -> None:
    _make_staff(app)
    threshold = app.config["STAFF_LOCKOUT_THRESHOLD"]
    for _ in range(2):
        for _ in range(threshold - 1):
            assert _login(client, "rev1", WRONG).status_code == 401
        assert _login(client, "rev1", PASSWORD).status_code == 303
        _logout(client)
    assert not _signed_in(client)


def test_lockout_per_client_address_across_usernames(app_factory: Any) -> None:
    app = app_factory(STAFF_LOCKOUT_IP_THRESHOLD=3)
    _make_staff(app)
    attacker = app.test_client()
    attacker.environ_base["REMOTE_ADDR"] = "203.0.113.9"
    for name in ("alice", "bob", "carol"):
        assert _login(attacker, name, WRONG).status_code == 401
    assert _login(attacker, "rev1", PASSWORD).status_code == 429
    office = app.test_client()
    office.environ_base["REMOTE_ADDR"] = "198.51.100.7"
    assert _login(office, "rev1", PASSWORD).status_code == 303


def test_successful_logins_do_not_use_up_the_address_allowance(app_factory: Any) -> None:
    app = app_factory(STAFF_LOCKOUT_IP_THRESHOLD=2)
    _make_staff(app)
    client = app.test_client()
    for _ in range(4):
        assert _login(client, "rev1", PASSWORD).status_code == 303
        _logout(client)


def test_inactive_account_cannot_sign_in_and_its_session_ends(app: Flask, client: FlaskClient) -> None:
    _make_staff(app)
    assert _login(client, "rev1", PASSWORD).status_code == 303
    assert _signed_in(client)
    with app.app_context():
        staff_service.deactivate(db.session, "rev1")
    assert not _signed_in(client)
    refused = _login(client, "rev1", PASSWORD)
    assert refused.status_code == 403 and INACTIVE in refused.get_data(as_text=True)
    wrong = _login(client, "rev1", WRONG)  # the state shows only with the right password
    assert wrong.status_code == 401 and INACTIVE not in wrong.get_data(as_text=True)
    assert not _signed_in(client)


@pytest.mark.parametrize(
    ("next_value", "expected"),
    [
        ("/review/queue?school=10542", "/review/queue?school=10542"),
        ("https://evil.example/review/", "/review/"),
        ("//evil.example/review/", "/review/"),
        ("/\\evil.example", "/review/"),
        ("javascript:alert(1)", "/review/"),
        ("/h5/me", "/review/"),
        ("/review/../h5/me", "/review/"),
        ("/review/\r\nSet-Cookie: x=1", "/review/"),
        ("", "/review/"),
    ],
)
def test_next_only_to_local_review_paths(
    app: Flask, client: FlaskClient, next_value: str, expected: str
) -> None:
    _make_staff(app)
    response = _login(client, "rev1", PASSWORD, next=next_value)
    assert response.status_code == 303
    assert response.location == expected


def test_protected_page_sends_to_login_with_next_and_back(app: Flask, client: FlaskClient) -> None:
    _make_staff(app)
    response = client.get("/review/?tab=1")
    assert response.status_code == 302 and response.location == "/review/login?next=/review/?tab%3D1"
    page = client.get(response.location).get_data(as_text=True)
    assert 'name="next" value="/review/?tab=1"' in page
    assert _login(client, "rev1", PASSWORD, next="/review/?tab=1").location == "/review/?tab=1"


def test_logout_needs_post_and_csrf(app: Flask, client: FlaskClient) -> None:
    _make_staff(app)
    _login(client, "rev1", PASSWORD)
    assert client.get("/review/logout").status_code == 405
    assert client.post("/review/logout").status_code == 400
    assert _signed_in(client)
    page = client.get("/review/").get_data(as_text=True)
    token = CSRF_INPUT.search(page)
    assert token
    response = client.post("/review/logout", data={"csrf_token": token.group(1)})
    assert response.status_code == 303 and response.location == "/review/login"
    assert not _signed_in(client)


def test_sign_in_rotates_the_session_and_drops_a_student(app: Flask, client: FlaskClient) -> None:
    _make_staff(app)
    csrf_before = _csrf(client)
    with client.session_transaction() as sess:
        sess["user_id"] = 1  # a student signed in on this browser
    _login(client, "rev1", PASSWORD)
    with client.session_transaction() as sess:
        assert "user_id" not in sess
        assert isinstance(sess[SESSION_STAFF_ID], int)
    page = client.get("/review/").get_data(as_text=True)
    token = CSRF_INPUT.search(page)
    assert token and token.group(1) != csrf_before


def test_student_session_is_not_a_staff_session(app: Flask, client: FlaskClient) -> None:
    staff_id = _make_staff(app)
    with client.session_transaction() as sess:
        sess["user_id"] = staff_id  # same number, other kind of account
    assert not _signed_in(client)


def test_session_expires_after_idle_time(app: Flask, client: FlaskClient) -> None:
    _make_staff(app)
    _login(client, "rev1", PASSWORD)
    idle = app.config["STAFF_SESSION_IDLE_SECONDS"]
    with client.session_transaction() as sess:
        sess[SESSION_STAFF_SEEN] = int(time.time()) - idle + 120
    assert _signed_in(client)  # still inside: and the request moved the clock forward
    with client.session_transaction() as sess:
        assert sess[SESSION_STAFF_SEEN] >= int(time.time()) - 5
        sess[SESSION_STAFF_SEEN] = int(time.time()) - idle - 1
    assert not _signed_in(client)
    with client.session_transaction() as sess:
        assert SESSION_STAFF_ID not in sess


def test_password_change_ends_open_sessions(app: Flask, client: FlaskClient) -> None:
    _make_staff(app)
    _login(client, "rev1", PASSWORD)
    assert _signed_in(client)
    with app.app_context():
        staff_service.change_password(db.session, redis_client(), "rev1", "another long password")
    assert not _signed_in(client)


def test_staff_required_roles_and_api_answers(app: Flask) -> None:
    def admin_page() -> str:
        return "admin only"

    def admin_api() -> dict[str, bool]:
        return {"ok": True}

    def any_api() -> dict[str, bool]:
        return {"ok": True}

    # Routes for this test only: the real staff pages come with the queue.
    app.add_url_rule("/review/_t/admin", "t_admin", staff_required("admin")(admin_page))
    app.add_url_rule("/review/api/_t/admin", "t_admin_api", staff_required(StaffRole.ADMIN)(admin_api))
    app.add_url_rule("/review/api/_t/any", "t_any_api", staff_required()(any_api))
    _make_staff(app, "rev1")
    _make_staff(app, "boss", StaffRole.ADMIN)

    anonymous = app.test_client()
    assert anonymous.get("/review/_t/admin").status_code == 302
    refused = anonymous.get("/review/api/_t/any")
    assert refused.status_code == 401 and refused.get_json()["error"]["message"] == "请先登录"

    reviewer = app.test_client()
    _login(reviewer, "rev1", PASSWORD)
    assert reviewer.get("/review/_t/admin").status_code == 403
    forbidden = reviewer.get("/review/api/_t/admin")
    assert forbidden.status_code == 403 and forbidden.get_json()["error"]["code"] == 403
    assert reviewer.get("/review/api/_t/any").get_json() == {"ok": True}

    admin = app.test_client()
    _login(admin, "boss", PASSWORD)
    assert admin.get("/review/_t/admin").get_data(as_text=True) == "admin only"
    assert admin.get("/review/api/_t/admin").get_json() == {"ok": True}
    assert review_bp.name == "review"


def test_visible_school_ids(app: Flask) -> None:
    reviewer_id = _make_staff(app, "rev1")
    admin_id = _make_staff(app, "boss", StaffRole.ADMIN)
    with app.app_context():
        reviewer = db.session.get(Staff, reviewer_id)
        admin = db.session.get(Staff, admin_id)
        assert reviewer and admin
        assert visible_school_ids(admin) is None
        assert visible_school_ids(reviewer) == {reviewer.schools[0].id}
        assert reviewer.schools[0].code == "10542"
