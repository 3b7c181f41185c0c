"""The phone page's JSON endpoints, through HTTP; each action reaches the service's /wechat for real."""

from __future__ import annotations

import io
import json
import re
from typing import Any
from urllib.parse import quote

import pytest
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image

from app.integrations import redis_client
from app.sandbox import messenger, phone, state, store

XSS = "<img src=x onerror=alert(1)></script><script>alert(2)</script>"
XSS_NAME = "</script><b>x</b>"


def _create(client: FlaskClient, nickname: str = "小明") -> dict[str, Any]:
    response = client.post("/_sandbox/phone/users", json={"nickname": nickname})
    assert response.status_code == 201, response.get_data(as_text=True)
    user: dict[str, Any] = response.get_json()["user"]
    return user


def _png(width: int = 48, height: int = 64) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (90, 160, 220)).save(buffer, "PNG")
    return buffer.getvalue()


def test_creating_a_user_makes_it_the_phones_user(client: FlaskClient) -> None:
    response = client.post("/_sandbox/phone/users", json={"nickname": "  小红 "})
    assert response.status_code == 201
    user = response.get_json()["user"]
    assert (user["nickname"], user["subscribed"]) == ("小红", False)
    assert re.fullmatch(r"o[A-Za-z0-9_-]{27}", user["openid"])
    cookie = response.headers["Set-Cookie"]
    assert f"{phone.COOKIE}={user['openid']}" in cookie
    assert "Path=/_sandbox" in cookie
    snapshot = client.get("/_sandbox/phone/state").get_json()
    assert snapshot["user"]["openid"] == user["openid"]
    assert [u["nickname"] for u in snapshot["users"]] == ["小红"]


@pytest.mark.parametrize(("nickname", "message"), [("", "请填写昵称"), ("长" * 33, "昵称最多")])
def test_bad_nicknames_are_refused(client: FlaskClient, nickname: str, message: str) -> None:
    response = client.post("/_sandbox/phone/users", json={"nickname": nickname})
    assert response.status_code == 422
    assert message in response.get_json()["error"]["message"]


def test_selecting_a_user_switches_the_cookie(client: FlaskClient) -> None:
    first = _create(client, "甲")
    second = _create(client, "乙")
    assert client.get("/_sandbox/phone/state").get_json()["user"]["openid"] == second["openid"]
    response = client.post(f"/_sandbox/phone/users/{first['openid']}/select")
    assert response.status_code == 200
    assert response.get_json()["user"]["nickname"] == "甲"
    assert client.get("/_sandbox/phone/users").get_json()["current"] == first["openid"]
    assert client.post("/_sandbox/phone/users/oNobody/select").status_code == 404


def test_actions_need_a_user_and_messages_need_following(client: FlaskClient) -> None:
    response = client.post("/_sandbox/phone/text", json={"text": "帮助"})
    assert response.status_code == 400
    assert response.get_json()["error"]["message"] == "请先选择或新建一个用户"
    _create(client)
    response = client.post("/_sandbox/phone/text", json={"text": "帮助"})
    assert response.status_code == 409
    assert response.get_json()["error"]["message"] == "请先关注公众号"


def test_follow_text_and_chat_polling(app: Flask, client: FlaskClient) -> None:
    user = _create(client)
    followed = client.post("/_sandbox/phone/follow")
    assert followed.status_code == 200
    entries = followed.get_json()["entries"]
    assert [e["event"] for e in entries if e["type"] == "event"] == ["subscribe"]
    assert "实名绑定" in entries[-1]["text"]
    assert client.post("/_sandbox/phone/follow").status_code == 409

    sent = client.post("/_sandbox/phone/text", json={"text": "帮助"}).get_json()
    assert [(e["direction"], e["type"]) for e in sent["entries"]] == [("in", "text"), ("out", "text")]
    assert sent["entries"][0]["text"] == "帮助"
    assert "使用帮助" in sent["entries"][1]["text"]

    everything = client.get("/_sandbox/phone/chat?since=0").get_json()
    assert len(everything["entries"]) == 4
    assert everything["subscribed"] is True
    last = everything["entries"][-1]["at"]
    assert client.get(f"/_sandbox/phone/chat?since={last}").get_json()["entries"] == []

    # A custom message the service sends later (through the sandbox API) shows up in the next poll.
    with app.app_context():
        state.append_chat(
            redis_client(),
            user["openid"],
            {"direction": "out", "type": "text", "via": "custom", "text": "稍后"},
        )
    newer = client.get(f"/_sandbox/phone/chat?since={last}").get_json()["entries"]
    assert [(e["via"], e["text"]) for e in newer] == [("custom", "稍后")]
    assert client.get("/_sandbox/phone/chat?since=abc").status_code == 400


def test_blank_and_overlong_texts_are_refused(client: FlaskClient) -> None:
    _create(client)
    client.post("/_sandbox/phone/follow")
    assert client.post("/_sandbox/phone/text", json={"text": "  "}).status_code == 422
    assert client.post("/_sandbox/phone/text", json={"text": "字" * 2001}).status_code == 422


def test_chat_content_is_never_html_on_the_page(client: FlaskClient) -> None:
    _create(client, XSS_NAME)
    client.post("/_sandbox/phone/follow")
    sent = client.post("/_sandbox/phone/text", json={"text": XSS}).get_json()
    assert sent["entries"][0]["text"] == XSS  # kept as typed; the page shows it as text
    page = client.get("/_sandbox/").get_data(as_text=True)
    assert "<img src=x" not in page
    assert "<script>alert" not in page
    assert "<b>x</b>" not in page
    initial = re.search(r'<script id="initial-state" type="application/json">(.*?)</script>', page, re.S)
    assert initial is not None
    data = json.loads(initial.group(1))
    assert data["user"]["nickname"] == XSS_NAME
    assert any(e.get("text") == XSS for e in data["chat"])


def test_phone_page_renders_in_chinese(client: FlaskClient) -> None:
    page = client.get("/_sandbox/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert '<html lang="zh-CN">' in html
    assert "关注公众号" in html and "新建用户" in html
    assert client.get("/_sandbox/static/phone.js").status_code == 200
    assert client.get("/_sandbox/static/phone.css").status_code == 200


def test_send_image_stores_media_and_the_service_acknowledges(app: Flask, client: FlaskClient) -> None:
    _create(client)
    client.post("/_sandbox/phone/follow")
    content = _png()
    response = client.post(
        "/_sandbox/phone/image",
        data={"file": (io.BytesIO(content), "photo.jpg")},  # the name lies: the bytes decide
        content_type="multipart/form-data",
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    data = response.get_json()
    sent, reply = data["entries"]
    assert sent["type"] == "image" and sent["media_url"] == f"/_sandbox/media/{data['media_id']}"
    assert reply["direction"] == "out" and reply["text"]
    with app.app_context():
        assert store.get_media(redis_client(), data["media_id"]) == (content, "image/png")


def test_a_file_that_is_not_an_image_is_refused(client: FlaskClient) -> None:
    _create(client)
    client.post("/_sandbox/phone/follow")
    response = client.post(
        "/_sandbox/phone/image",
        data={"file": (io.BytesIO(b"%PDF-1.4 not a picture"), "photo.jpg")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 422
    assert response.get_json()["error"]["message"] == "只能发送图片文件"


def test_menu_click_and_view(app: Flask, client: FlaskClient) -> None:
    user = _create(client)
    client.post("/_sandbox/phone/follow")
    clicked = client.post("/_sandbox/phone/click", json={"key": "HELP"}).get_json()
    assert clicked["entries"][0]["event"] == "CLICK" and clicked["entries"][0]["event_key"] == "HELP"
    assert "使用帮助" in clicked["entries"][1]["text"]

    url = f"{app.config['PUBLIC_BASE_URL']}/h5/me?tab=1"
    viewed = client.post("/_sandbox/phone/view", json={"url": url}).get_json()
    assert [e["event"] for e in viewed["entries"]] == ["VIEW"]  # WeChat shows no reply to VIEW
    assert viewed["open"] == f"/_sandbox/login-as/{user['openid']}?next={quote('/h5/me?tab=1', safe='')}"
    assert client.post("/_sandbox/phone/view", json={"url": "javascript:alert(1)"}).status_code == 422


def test_open_url_for_links(app: Flask, app_ctx: None) -> None:
    base = app.config["PUBLIC_BASE_URL"]
    assert phone.open_url("oA", f"{base}/h5/bind") == "/_sandbox/login-as/oA?next=%2Fh5%2Fbind"
    assert phone.open_url("oA", "https://example.org/x") == "https://example.org/x"
    authorize = f"{app.config['WECHAT_OAUTH_BASE']}/connect/oauth2/authorize?appid=wx&redirect_uri=x"
    assert phone.open_url("oA", authorize) == authorize


def test_links_tapped_in_chat_open_as_the_user(client: FlaskClient) -> None:
    user = _create(client)
    opened = client.post("/_sandbox/phone/open", json={"url": "/h5/bind"}).get_json()
    assert opened["open"] == f"/_sandbox/login-as/{user['openid']}?next=%2Fh5%2Fbind"
    assert client.post("/_sandbox/phone/open", json={"url": "data:text/html,x"}).status_code == 422


def test_scanning_a_scene_qr_code(app: Flask, client: FlaskClient) -> None:
    user = _create(client)
    with app.app_context():
        code = store.create_qrcode(redis_client(), "QR_STR_SCENE", None, "school:10542", 600)
    first = client.post("/_sandbox/phone/scan", json={"code": code.url}).get_json()["entries"][0]
    assert (first["event"], first["event_key"]) == ("subscribe", "qrscene_school:10542")
    again = client.post("/_sandbox/phone/scan", json={"code": code.ticket}).get_json()["entries"][0]
    assert (again["event"], again["event_key"]) == ("SCAN", "school:10542")
    assert client.post("/_sandbox/phone/scan", json={"code": "gQexpired"}).status_code == 404
    with app.app_context():
        assert state.get_user(redis_client(), user["openid"])["subscribed"] is True


def test_unfollow(app: Flask, client: FlaskClient) -> None:
    _create(client)
    assert client.post("/_sandbox/phone/unfollow").status_code == 409
    client.post("/_sandbox/phone/follow")
    response = client.post("/_sandbox/phone/unfollow")
    assert response.status_code == 200
    assert [e["event"] for e in response.get_json()["entries"]] == ["unsubscribe"]
    assert client.get("/_sandbox/phone/chat").get_json()["subscribed"] is False
    assert client.post("/_sandbox/phone/text", json={"text": "在吗"}).status_code == 409


def test_menu_before_and_after_push(app: Flask, client: FlaskClient, runner: Any) -> None:
    _create(client)
    before = client.get("/_sandbox/phone/menu").get_json()
    assert before == {"menu": None, "push_command": "flask wechat push-menu"}
    result = runner.invoke(args=["wechat", "push-menu"])
    assert result.exit_code == 0, result.output
    after = client.get("/_sandbox/phone/menu").get_json()["menu"]
    assert after["button"] and all(b.get("name") for b in after["button"])


def test_service_down_shows_wechats_notice(app: Flask, client: FlaskClient) -> None:
    _create(client)
    app.config["SANDBOX_WECHAT_URL"] = "http://127.0.0.1:9/wechat"
    data = client.post("/_sandbox/phone/follow").get_json()
    assert data["failed"] is True and data["tries"] == messenger.TRIES
    assert data["entries"][-1] == {
        **data["entries"][-1],
        "type": "system",
        "text": messenger.SERVICE_UNAVAILABLE,
    }
