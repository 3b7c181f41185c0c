"""WeChat OAuth2 sign-in end to end over real HTTP (requests.Session against the live server):
login-as → sandbox authorize → /auth/wechat/callback → the H5 page, and the ways it must refuse."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from flask import Flask
from sqlalchemy import select

from app.auth.session import api_login_required, current_user, safe_next
from app.extensions import db
from app.integrations import redis_client
from app.sandbox import state
from models import User

OPENID = "oStudentSandbox000000000001"


def _url(response: requests.Response) -> str:
    """Where the browser ended, without the fragment: browsers (and requests) carry the authorize
    URL's #wechat_redirect through the redirects that follow it."""
    return response.url.split("#")[0]


def _exchanges(app: Flask) -> int:
    with app.app_context():
        return len(state.calls(redis_client(), "/sns/oauth2/access_token"))


def _users(app: Flask) -> list[User]:
    with app.app_context():
        found = list(db.session.scalars(select(User)))
        for user in found:
            db.session.expunge(user)
        return found


def _authorized_callback(base: str, browser: requests.Session, next_path: str = "/h5/") -> str:
    """Walk login → authorize without following the callback; returns the callback URL WeChat sends."""
    browser.cookies.set("sandbox_phone_user", OPENID, path="/_sandbox")
    login = browser.get(f"{base}/auth/wechat/login", params={"next": next_path}, allow_redirects=False)
    assert login.status_code == 302
    authorize = browser.get(login.headers["Location"], allow_redirects=False)
    assert authorize.status_code == 302
    return str(authorize.headers["Location"])


def test_login_as_walks_the_oauth_flow_and_lands_signed_in(app: Flask, live_server: Any) -> None:
    browser = requests.Session()
    page = browser.get(f"{live_server.url}/_sandbox/login-as/{OPENID}", params={"next": "/h5/"}, timeout=10)
    assert page.status_code == 200 and _url(page) == f"{live_server.url}/h5/"
    assert "你好" in page.text and "实名绑定" in page.text and "/h5/bind" in page.text
    hops = [urlsplit(r.url).path for r in page.history]
    assert hops == [
        f"/_sandbox/login-as/{OPENID}",
        "/auth/wechat/login",
        "/_sandbox/oauth/connect/oauth2/authorize",
        "/auth/wechat/callback",
    ]
    authorize = urlsplit(page.history[1].headers["Location"])
    query = parse_qs(authorize.query)
    assert query["scope"] == ["snsapi_base"] and query["response_type"] == ["code"]
    assert query["redirect_uri"] == [f"{live_server.url}/auth/wechat/callback"]
    assert len(query["state"][0]) >= 24
    # The session cookie the callback sets: HttpOnly and SameSite=Lax.
    cookie = page.history[-1].headers["Set-Cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie
    [user] = _users(app)
    assert user.openid == OPENID and not user.subscribed  # sign-in does not claim a follow
    assert _exchanges(app) == 1
    # Still signed in on the next visit, with no new exchange.
    assert browser.get(f"{live_server.url}/h5/", allow_redirects=False, timeout=10).status_code == 200
    assert _exchanges(app) == 1


def test_an_existing_user_is_reused(app: Flask, live_server: Any) -> None:
    with app.app_context():
        db.session.add(User(openid=OPENID, subscribed=True))
        db.session.commit()
    browser = requests.Session()
    page = browser.get(f"{live_server.url}/_sandbox/login-as/{OPENID}", params={"next": "/h5/"}, timeout=10)
    assert page.status_code == 200
    [user] = _users(app)
    assert user.subscribed


def test_next_keeps_its_query_string(app: Flask, live_server: Any) -> None:
    browser = requests.Session()
    page = browser.get(
        f"{live_server.url}/_sandbox/login-as/{OPENID}", params={"next": "/h5/?from=menu"}, timeout=10
    )
    assert _url(page) == f"{live_server.url}/h5/?from=menu"


def test_unauthenticated_h5_page_redirects_to_sign_in(app: Flask, live_server: Any) -> None:
    response = requests.get(f"{live_server.url}/h5/?from=menu", allow_redirects=False, timeout=10)
    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert location.path == "/auth/wechat/login"
    assert parse_qs(location.query)["next"] == ["/h5/?from=menu"]


def test_following_the_sign_in_redirect_from_an_h5_page(app: Flask, live_server: Any) -> None:
    browser = requests.Session()
    browser.cookies.set("sandbox_phone_user", OPENID, path="/_sandbox")
    with app.app_context():
        state.create_user(redis_client(), "小明", openid=OPENID)
    page = browser.get(f"{live_server.url}/h5/", timeout=10)
    assert _url(page) == f"{live_server.url}/h5/" and "你好" in page.text


def test_state_mismatch_is_refused_and_nothing_is_exchanged(app: Flask, live_server: Any) -> None:
    with app.app_context():
        state.create_user(redis_client(), "小明", openid=OPENID)
    browser = requests.Session()
    callback = _authorized_callback(live_server.url, browser)
    forged = callback.replace("state=", "state=x")
    response = browser.get(forged, allow_redirects=False, timeout=10)
    assert response.status_code == 400 and "登录链接已失效" in response.text and "重新登录" in response.text
    # Another browser (an attacker's login CSRF) has no state at all.
    response = requests.get(callback, allow_redirects=False, timeout=10)
    assert response.status_code == 400
    assert _exchanges(app) == 0
    assert _users(app) == []
    # The real callback in the right browser still works.
    assert _url(browser.get(callback, timeout=10)) == f"{live_server.url}/h5/"


def test_refreshing_the_callback_does_not_exchange_the_code_again(app: Flask, live_server: Any) -> None:
    with app.app_context():
        state.create_user(redis_client(), "小明", openid=OPENID)
    browser = requests.Session()
    callback = _authorized_callback(live_server.url, browser, "/h5/?step=1")
    assert _url(browser.get(callback, timeout=10)) == f"{live_server.url}/h5/?step=1"
    again = browser.get(callback, allow_redirects=False, timeout=10)  # back button / refresh
    assert again.status_code == 302 and again.headers["Location"] == "/h5/?step=1"
    assert _exchanges(app) == 1


def test_a_used_code_with_a_fresh_state_is_refused_without_exchanging(app: Flask, live_server: Any) -> None:
    with app.app_context():
        state.create_user(redis_client(), "小明", openid=OPENID)
    first = requests.Session()
    used = _authorized_callback(live_server.url, first)
    first.get(used, timeout=10)
    # A second browser starts its own flow and is handed the old code with its own valid state.
    second = requests.Session()
    fresh = _authorized_callback(live_server.url, second)
    own_state = parse_qs(urlsplit(fresh).query)["state"][0]
    old_code = parse_qs(urlsplit(used).query)["code"][0]
    replay = f"{live_server.url}/auth/wechat/callback?code={old_code}&state={own_state}"
    response = second.get(replay, allow_redirects=False, timeout=10)
    assert response.status_code == 400 and "已经使用过" in response.text
    assert _exchanges(app) == 1


def test_a_code_wechat_says_was_used_shows_a_retry_page(app: Flask, live_server: Any) -> None:
    with app.app_context():
        state.create_user(redis_client(), "小明", openid=OPENID)
    browser = requests.Session()
    callback = _authorized_callback(live_server.url, browser)
    code = parse_qs(urlsplit(callback).query)["code"][0]
    # Someone else exchanged it first (at WeChat): the service gets 40163.
    stolen = requests.get(
        f"{live_server.url}/_sandbox/api/sns/oauth2/access_token",
        params={
            "appid": app.config["WECHAT_APPID"],
            "secret": app.config["WECHAT_SECRET"],
            "code": code,
            "grant_type": "authorization_code",
        },
        timeout=10,
    )
    assert stolen.json()["openid"] == OPENID
    response = browser.get(callback, allow_redirects=False, timeout=10)
    assert response.status_code == 400 and "已过期或已使用" in response.text
    assert "/auth/wechat/login?next=" in response.text
    assert _users(app) == []


def test_callback_without_a_code_is_refused(app: Flask, live_server: Any) -> None:
    with app.app_context():
        state.create_user(redis_client(), "小明", openid=OPENID)
    browser = requests.Session()
    callback = _authorized_callback(live_server.url, browser)
    no_code = (
        callback.split("?")[0] + "?state=" + parse_qs(urlsplit(callback).query)["state"][0].split("#")[0]
    )
    response = browser.get(no_code, allow_redirects=False, timeout=10)
    assert response.status_code == 400 and "没有完成授权" in response.text


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/phish",
        "//evil.example/phish",
        "/\\evil.example/phish",
        "\\\\evil.example",
        "javascript:alert(1)",
        "h5/",
        "/h5/\r\nLocation: https://evil.example",
    ],
)
def test_open_redirects_are_refused(app: Flask, live_server: Any, target: str) -> None:
    browser = requests.Session()
    page = browser.get(f"{live_server.url}/_sandbox/login-as/{OPENID}", params={"next": target}, timeout=10)
    assert _url(page) == f"{live_server.url}/h5/"
    assert all(
        urlsplit(r.headers.get("Location", "/")).netloc in ("", urlsplit(live_server.url).netloc)
        for r in page.history
    )


def test_safe_next_keeps_local_paths() -> None:
    assert safe_next("/h5/me?tab=1#top") == "/h5/me?tab=1#top"
    assert safe_next(None) == "/h5/"
    assert safe_next("/%2F%2Fevil.example") == "/%2F%2Fevil.example"  # still a local path


def test_login_starts_fresh_and_signs_the_previous_user_out(app: Flask, live_server: Any) -> None:
    browser = requests.Session()
    browser.get(f"{live_server.url}/_sandbox/login-as/{OPENID}", timeout=10)
    browser.get(f"{live_server.url}/auth/wechat/login", allow_redirects=False, timeout=10)
    assert browser.get(f"{live_server.url}/h5/", allow_redirects=False, timeout=10).status_code == 302


def test_logout(app: Flask, live_server: Any) -> None:
    app.config["WTF_CSRF_ENABLED"] = False
    browser = requests.Session()
    browser.get(f"{live_server.url}/_sandbox/login-as/{OPENID}", timeout=10)
    assert (
        browser.post(f"{live_server.url}/auth/logout", allow_redirects=False, timeout=10).status_code == 302
    )
    assert browser.get(f"{live_server.url}/h5/", allow_redirects=False, timeout=10).status_code == 302


def test_logout_needs_the_csrf_token(app: Flask, live_server: Any) -> None:
    browser = requests.Session()
    browser.get(f"{live_server.url}/_sandbox/login-as/{OPENID}", timeout=10)
    assert (
        browser.post(f"{live_server.url}/auth/logout", allow_redirects=False, timeout=10).status_code == 400
    )
    assert browser.get(f"{live_server.url}/h5/", allow_redirects=False, timeout=10).status_code == 200


def test_api_views_answer_401_json_when_signed_out(app_factory: Any, live_server: Any) -> None:
    app = app_factory()

    @app.get("/api/v1/_test_me")
    @api_login_required
    def me() -> dict[str, str]:
        user = current_user()
        assert user is not None
        return {"openid": user.openid}

    signed_out = requests.get(f"{live_server.url}/api/v1/_test_me", timeout=10)
    assert signed_out.status_code == 401
    assert signed_out.json() == {"error": {"code": 401, "message": "请先登录"}}
    browser = requests.Session()
    browser.get(f"{live_server.url}/_sandbox/login-as/{OPENID}", timeout=10)
    assert browser.get(f"{live_server.url}/api/v1/_test_me", timeout=10).json() == {"openid": OPENID}


def test_sign_in_without_sandbox_phone_user_asks_to_pick_one(app: Flask, live_server: Any) -> None:
    with app.app_context():
        state.create_user(redis_client(), "小红", openid=OPENID)
    page = requests.get(f"{live_server.url}/h5/", timeout=10)
    assert page.status_code == 200 and "请先选择微信用户" in page.text and "小红" in page.text
    assert _exchanges(app) == 0
