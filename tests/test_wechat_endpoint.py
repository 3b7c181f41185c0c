"""/wechat through HTTP: signatures, encryption modes, XML hostility, body limit, dedupe of retries."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import fakeredis
import pytest
import redis
import requests
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from wechat_posts import (
    AES_KEY,
    WeChat,
    event_message,
    image_message,
    text_message,
    to_xml,
)

from app.extensions import db
from app.integrations import redis_client
from app.services import users
from app.wechat import answering, dedupe, parked
from models import User
from wechat_handlers import registry

SAFE = {"WECHAT_ENCRYPT_MODE": "safe", "WECHAT_AES_KEY": AES_KEY}
COMPATIBLE = {"WECHAT_ENCRYPT_MODE": "compatible", "WECHAT_AES_KEY": AES_KEY}


@pytest.fixture
def dispatched(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every message that reached a handler (the real handlers still run)."""
    seen: list[Any] = []
    real = registry.route

    def recording(message: Any, fields: Any) -> registry.Route:
        found = real(message, fields)

        def run(message: Any, ctx: registry.Context) -> registry.Reply:
            seen.append(message)
            return found.handler(message, ctx)

        return found._replace(handler=run)

    monkeypatch.setattr(registry, "route", recording)
    return seen


def post(client: FlaskClient, wx: WeChat, xml: str, **kwargs: Any) -> tuple[int, dict[str, Any] | None]:
    signed = wx.post(xml, **kwargs)
    response = client.post(signed.path, data=signed.body, content_type="text/xml")
    if response.status_code != 200:
        return response.status_code, None
    return 200, wx.reply_of(response.data, encrypted=signed.encrypted)


def user_count(app: Flask) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count(User.id))) or 0


# --- URL verification (GET) -------------------------------------------------------------------


def test_url_verification_echoes_echostr(client: FlaskClient, app: Flask) -> None:
    query = WeChat.for_app(app).query()
    response = client.get("/wechat", query_string={**query, "echostr": "5837397520818950787"})
    assert response.status_code == 200
    assert response.data == b"5837397520818950787"
    assert response.mimetype == "text/plain"


def test_url_verification_works_in_safe_mode_too(app_factory: Callable[..., Flask]) -> None:
    # For an official account the echostr stays plain in every mode.
    app = app_factory(**SAFE)
    query = WeChat.for_app(app).query()
    response = app.test_client().get("/wechat", query_string={**query, "echostr": "12345"})
    assert (response.status_code, response.data) == (200, b"12345")


def test_url_verification_refuses_forged_signature(client: FlaskClient, app: Flask) -> None:
    query = WeChat(token="not-our-token").query()
    response = client.get("/wechat", query_string={**query, "echostr": "123"})
    assert response.status_code == 403
    assert b"123" not in response.data


@pytest.mark.parametrize("missing", ["signature", "timestamp", "nonce"])
def test_url_verification_refuses_missing_parameter(client: FlaskClient, app: Flask, missing: str) -> None:
    query = WeChat.for_app(app).query()
    del query[missing]
    assert client.get("/wechat", query_string={**query, "echostr": "123"}).status_code == 403


def test_url_verification_refuses_non_ascii_signature(client: FlaskClient, app: Flask) -> None:
    query = {**WeChat.for_app(app).query(), "signature": "签名", "echostr": "123"}
    assert client.get("/wechat", query_string=query).status_code == 403


@pytest.mark.parametrize("offset", [-301, 301, -86400])
def test_url_verification_refuses_stale_timestamp(client: FlaskClient, app: Flask, offset: int) -> None:
    # Correctly signed, but too far from now (default skew: 300 s).
    query = WeChat.for_app(app).query(timestamp=int(time.time()) + offset)
    assert client.get("/wechat", query_string={**query, "echostr": "123"}).status_code == 403


def test_url_verification_accepts_small_clock_skew(client: FlaskClient, app: Flask) -> None:
    query = WeChat.for_app(app).query(timestamp=int(time.time()) - 200)
    assert client.get("/wechat", query_string={**query, "echostr": "123"}).status_code == 200


# --- plain mode -------------------------------------------------------------------------------


def test_text_round_trip_in_plain_mode(client: FlaskClient, app: Flask) -> None:
    wx = WeChat.for_app(app)
    status, reply = post(client, wx, text_message("o-student-1", "帮助", to="gh_account"))
    assert status == 200 and reply is not None
    assert reply["MsgType"] == "text"
    assert reply["ToUserName"] == "o-student-1"
    assert reply["FromUserName"] == "gh_account"
    assert "/h5/bind" in reply["Content"]


def test_post_with_forged_signature_is_refused_and_nothing_processed(
    client: FlaskClient, app: Flask, dispatched: list[Any]
) -> None:
    status, _ = post(client, WeChat(token="forged"), text_message("o-x", "帮助"))
    assert status == 403
    assert dispatched == []
    assert user_count(app) == 0


def test_post_with_stale_timestamp_is_refused(client: FlaskClient, app: Flask, dispatched: list[Any]) -> None:
    status, _ = post(
        client, WeChat.for_app(app), text_message("o-x", "帮助"), timestamp=int(time.time()) - 3600
    )
    assert status == 403
    assert dispatched == []


def test_post_without_signature_is_refused(client: FlaskClient, dispatched: list[Any]) -> None:
    response = client.post("/wechat", data=text_message("o-x", "帮助"), content_type="text/xml")
    assert response.status_code == 403
    assert dispatched == []


def test_plain_mode_refuses_an_encrypted_post(
    app_factory: Callable[..., Flask], dispatched: list[Any]
) -> None:
    # The AES key is configured but the admin page says 明文模式: encrypted posts are not ours.
    app = app_factory(WECHAT_AES_KEY=AES_KEY)
    status, _ = post(app.test_client(), WeChat.for_app(app), text_message("o-x", "帮助"), mode="safe")
    assert status == 403
    assert dispatched == []


# --- safe and compatible modes ----------------------------------------------------------------


def test_safe_mode_round_trip(app_factory: Callable[..., Flask]) -> None:
    app = app_factory(**SAFE)
    wx = WeChat.for_app(app)
    signed = wx.post(text_message("o-safe", "绑定"))
    assert b"<Encrypt>" in signed.body and "绑定".encode() not in signed.body
    response = app.test_client().post(signed.path, data=signed.body, content_type="text/xml")
    assert response.status_code == 200
    # The reply is encrypted: no plaintext content on the wire, an Encrypt + MsgSignature envelope.
    assert b"<Encrypt>" in response.data and b"<MsgSignature>" in response.data
    assert b"/h5/bind" not in response.data
    reply = wx.reply_of(response.data, encrypted=True)  # verifies MsgSignature, then decrypts
    assert reply is not None
    assert reply["ToUserName"] == "o-safe"
    assert "/h5/bind" in reply["Content"]


def test_safe_mode_empty_reply_is_plain_success(app_factory: Callable[..., Flask]) -> None:
    app = app_factory(**SAFE)
    signed = WeChat.for_app(app).post(event_message("o-safe", "VIEW", "https://example.com/"))
    response = app.test_client().post(signed.path, data=signed.body, content_type="text/xml")
    assert (response.status_code, response.data) == (200, b"success")


def test_safe_mode_refuses_a_plain_post(app_factory: Callable[..., Flask], dispatched: list[Any]) -> None:
    app = app_factory(**SAFE)
    status, _ = post(app.test_client(), WeChat.for_app(app), text_message("o-x", "帮助"), mode="plain")
    assert status == 403
    assert dispatched == []
    assert user_count(app) == 0


def test_safe_mode_refuses_a_post_verified_with_signature_instead_of_msg_signature(
    app_factory: Callable[..., Flask], dispatched: list[Any]
) -> None:
    # The classic bug: checking the Encrypt field against `signature`. That value is valid for the
    # query, but does not sign the encrypted body, so the post must be refused.
    app = app_factory(**SAFE)
    signed = WeChat.for_app(app).post(text_message("o-x", "帮助"))
    signed.query["msg_signature"] = signed.query["signature"]
    response = app.test_client().post(signed.path, data=signed.body, content_type="text/xml")
    assert response.status_code == 403
    assert dispatched == []


def test_safe_mode_refuses_a_tampered_encrypt_field(
    app_factory: Callable[..., Flask], dispatched: list[Any]
) -> None:
    app = app_factory(**SAFE)
    wx = WeChat.for_app(app)
    signed = wx.post(text_message("o-x", "帮助"))
    other = wx.post(
        text_message("o-y", "绑定"), timestamp=int(signed.query["timestamp"]), nonce=signed.query["nonce"]
    )
    # Right query signatures, someone else's ciphertext.
    response = app.test_client().post(signed.path, data=other.body, content_type="text/xml")
    assert response.status_code == 403
    assert dispatched == []


def test_safe_mode_refuses_a_post_encrypted_with_another_key(
    app_factory: Callable[..., Flask], dispatched: list[Any]
) -> None:
    # Signed with our token (msg_signature is valid) but encrypted with a different EncodingAESKey.
    app = app_factory(**SAFE)
    intruder = WeChat(
        token=app.config["WECHAT_TOKEN"], appid=app.config["WECHAT_APPID"], aes_key="Z" * 43, mode="safe"
    )
    status, _ = post(app.test_client(), intruder, text_message("o-x", "帮助"))
    assert status == 400
    assert dispatched == []


@pytest.mark.parametrize("mode", ["plain", "compatible"])
def test_compatible_mode_accepts_plain_and_encrypted_posts(
    app_factory: Callable[..., Flask], mode: str
) -> None:
    app = app_factory(**COMPATIBLE)
    wx = WeChat.for_app(app)
    signed = wx.post(text_message("o-compat", "进度"), mode=mode)
    response = app.test_client().post(signed.path, data=signed.body, content_type="text/xml")
    assert response.status_code == 200
    assert (b"<Encrypt>" in response.data) is signed.encrypted
    reply = wx.reply_of(response.data, encrypted=signed.encrypted)
    assert reply is not None and "当前进度" in reply["Content"]


# --- malformed and hostile XML, body size ----------------------------------------------------

BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE xml [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<xml><ToUserName>gh</ToUserName><FromUserName>o-evil</FromUserName><CreateTime>1</CreateTime>
<MsgType>text</MsgType><Content>&lol9;</Content><MsgId>1</MsgId></xml>"""

EXTERNAL_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<xml><ToUserName>gh</ToUserName><FromUserName>o-evil</FromUserName><CreateTime>1</CreateTime>
<MsgType>text</MsgType><Content>&xxe;</Content><MsgId>2</MsgId></xml>"""

PARAMETER_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE xml [<!ENTITY % remote SYSTEM "http://127.0.0.1:9/evil.dtd"> %remote;]>
<xml><ToUserName>gh</ToUserName><FromUserName>o-evil</FromUserName><CreateTime>1</CreateTime>
<MsgType>text</MsgType><Content>hi</Content><MsgId>3</MsgId></xml>"""

EXTERNAL_DTD = """<?xml version="1.0"?>
<!DOCTYPE xml SYSTEM "http://127.0.0.1:9/evil.dtd">
<xml><ToUserName>gh</ToUserName><FromUserName>o-evil</FromUserName><CreateTime>1</CreateTime>
<MsgType>text</MsgType><Content>hi</Content><MsgId>4</MsgId></xml>"""


@pytest.mark.parametrize(
    "body",
    [BILLION_LAUGHS, EXTERNAL_ENTITY, PARAMETER_ENTITY, EXTERNAL_DTD],
    ids=["billion-laughs", "external-entity", "parameter-entity", "external-dtd"],
)
def test_hostile_xml_is_refused_without_expansion(
    client: FlaskClient, app: Flask, dispatched: list[Any], body: str
) -> None:
    signed = WeChat.for_app(app).post(text_message("o-x", "placeholder"))
    started = time.perf_counter()
    response = client.post(signed.path, data=body.encode(), content_type="text/xml")
    assert response.status_code == 400
    assert time.perf_counter() - started < 1.0  # nothing was expanded (a billion laughs takes ~GB)
    assert b"root:" not in response.data
    assert dispatched == []
    assert user_count(app) == 0


def test_hostile_xml_inside_the_encrypted_payload_is_refused(
    app_factory: Callable[..., Flask], dispatched: list[Any]
) -> None:
    app = app_factory(**SAFE)
    signed = WeChat.for_app(app).post(BILLION_LAUGHS)
    response = app.test_client().post(signed.path, data=signed.body, content_type="text/xml")
    assert response.status_code == 400
    assert dispatched == []


@pytest.mark.parametrize(
    "body",
    [
        "not xml at all",
        "<xml><MsgType>text</MsgType>",
        "<other><MsgType>text</MsgType></other>",
        "",
        "<xml></xml>",
        to_xml({"ToUserName": "gh", "FromUserName": "o-x", "CreateTime": 1}),  # no MsgType
        to_xml({"ToUserName": "gh", "CreateTime": 1, "MsgType": "text", "Content": "hi", "MsgId": 9}),
        to_xml(
            {"ToUserName": "gh", "FromUserName": "o" * 65, "CreateTime": 1, "MsgType": "text", "MsgId": 9}
        ),
    ],
    ids=["text", "unclosed", "wrong-root", "empty", "empty-xml", "no-msgtype", "no-sender", "long-sender"],
)
def test_malformed_xml_is_400(client: FlaskClient, app: Flask, dispatched: list[Any], body: str) -> None:
    signed = WeChat.for_app(app).post(text_message("o-x", "placeholder"))
    response = client.post(signed.path, data=body.encode(), content_type="text/xml")
    assert response.status_code == 400
    assert dispatched == []


def test_oversize_body_is_413(client: FlaskClient, app: Flask, dispatched: list[Any]) -> None:
    limit = app.config["WECHAT_MAX_BODY_BYTES"]
    signed = WeChat.for_app(app).post(text_message("o-x", "长" * limit))
    assert len(signed.body) > limit
    response = client.post(signed.path, data=signed.body, content_type="text/xml")
    assert response.status_code == 413
    assert dispatched == []


def test_oversize_chunked_body_is_413_without_reading_it_all(app: Flask, live_server: Any) -> None:
    # No Content-Length, and a body that never ends: the 413 can only come back if the endpoint
    # stops reading at the limit.
    signed = WeChat.for_app(app).post(text_message("o-x", "hi"))
    host, port = live_server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            f"POST {signed.path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: text/xml\r\n"
            "Transfer-Encoding: chunked\r\n\r\n".encode()
        )
        chunk = b"<xml>" + b"a" * 8192
        for _ in range(2 * app.config["WECHAT_MAX_BODY_BYTES"] // len(chunk)):
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        # ... and no terminating zero-length chunk.
        status_line = sock.recv(64).split(b"\r\n", 1)[0]
    assert status_line.startswith(b"HTTP/1.1 413")


def test_body_at_the_limit_is_accepted(app_factory: Callable[..., Flask]) -> None:
    app = app_factory(WECHAT_MAX_BODY_BYTES=2048)
    wx = WeChat.for_app(app)
    xml = text_message("o-x", "x")
    padded = text_message("o-x", "x" * (2048 - len(xml.encode()) + 1))
    assert len(padded.encode()) == 2048
    status, reply = post(app.test_client(), wx, padded)
    assert status == 200 and reply is not None


# --- retries and dedupe -----------------------------------------------------------------------


@pytest.fixture
def later(monkeypatch: pytest.MonkeyPatch) -> Callable[[float], None]:
    """later(s): from now on the endpoint's clock, which tells retries from first tries, is s ahead."""

    def move(seconds: float) -> None:
        monkeypatch.setattr(answering, "_now", lambda: time.time() + seconds)

    return move


@pytest.mark.parametrize("content", ["帮助", "进度"])  # a read-only handler's message, answered first
def test_sequential_retries_get_the_first_reply_and_run_the_handler_once(
    client: FlaskClient, app: Flask, dispatched: list[Any], later: Callable[[float], None], content: str
) -> None:
    wx = WeChat.for_app(app)
    xml = text_message("o-retry", content, msg_id=880001)
    post(client, wx, event_message("o-retry", "subscribe"))
    dispatched.clear()
    replies = []
    for delay in (0, 5, 10):  # WeChat's three tries, 5 s apart: same message, fresh signature each
        later(delay)
        status, reply = post(client, wx, xml)
        assert status == 200
        replies.append(reply)
    assert len(dispatched) == 1
    assert replies[0] is not None
    assert replies[1] == replies[0] and replies[2] == replies[0]


def test_copies_of_a_read_only_message_answer_what_the_first_answered(
    client: FlaskClient, app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Copies sooner than WeChat's 5 s (a replay, an impatient proxy) are not told from first tries:
    # a read-only handler computes an answer for each, and each gets the first one.
    answers = iter(["第一次", "第二次", "第三次"])

    def changing(message: Any, ctx: registry.Context) -> registry.Reply:
        return next(answers)

    monkeypatch.setitem(registry.HANDLERS, ("text", None, None), changing)
    monkeypatch.setattr(registry, "READ_ONLY", registry.READ_ONLY | {changing})
    wx = WeChat.for_app(app)
    xml = text_message("o-copies", "随便说点", msg_id=880002)
    contents = []
    for _ in range(3):
        reply = post(client, wx, xml)[1]
        assert reply is not None
        contents.append(reply["Content"])
    assert contents == ["第一次"] * 3


def test_a_read_only_answer_records_an_unknown_sender_once(client: FlaskClient, app: Flask) -> None:
    wx = WeChat.for_app(app)
    xml = text_message("o-stranger", "帮助", msg_id=880003)
    replies = [post(client, wx, xml)[1] for _ in range(2)]
    assert replies[0] is not None and replies[1] == replies[0]
    assert user_count(app) == 1
    assert app.extensions["redis"].get(users.follower_mark("o-stranger")) == "1"


def test_progress_of_an_unknown_sender_is_answered_first_and_records_them(
    client: FlaskClient, app: Flask, dispatched: list[Any], later: Callable[[float], None]
) -> None:
    wx = WeChat.for_app(app)
    xml = text_message("o-stranger-2", "进度", msg_id=880004)
    reply = post(client, wx, xml)[1]
    assert reply is not None and reply["Content"].startswith("当前进度：实名绑定")
    assert user_count(app) == 1
    assert app.extensions["redis"].get(users.follower_mark("o-stranger-2")) == "1"
    # Answered before the claim, once: an unknown sender's progress needs no write.
    assert len(dispatched) == 1
    later(5)
    assert post(client, wx, xml)[1] == reply
    assert len(dispatched) == 1


def test_a_redis_without_set_nx_get_claims_read_only_messages_first(
    app: Flask, monkeypatch: pytest.MonkeyPatch, dispatched: list[Any], later: Callable[[float], None]
) -> None:
    # Redis before 7.0 refuses SET with both NX and GET (fakeredis plays 6.2 here).
    old = fakeredis.FakeRedis(server=fakeredis.FakeServer(version=(6, 2)), decode_responses=True)
    monkeypatch.setitem(app.extensions, "redis", old)
    client, wx = app.test_client(), WeChat.for_app(app)
    first = post(client, wx, text_message("o-old-redis", "帮助", msg_id=880005))[1]
    assert first is not None
    assert len(dispatched) == 2  # found out on the first message: answered, refused, claimed
    xml = text_message("o-old-redis", "绑定", msg_id=880006)
    reply = post(client, wx, xml)[1]
    assert reply is not None and len(dispatched) == 3  # known now: claimed first, run once
    later(5)
    assert post(client, wx, xml)[1] == reply
    assert len(dispatched) == 3


def test_event_retries_are_deduplicated_by_sender_time_and_event(
    client: FlaskClient, app: Flask, dispatched: list[Any]
) -> None:
    wx = WeChat.for_app(app)
    created = int(time.time())
    subscribe = event_message("o-evt", "subscribe", create_time=created)
    for _ in range(3):
        assert post(client, wx, subscribe)[0] == 200
    assert len(dispatched) == 1
    # Same sender and second, another event: a different message.
    post(client, wx, event_message("o-evt", "CLICK", "HELP", create_time=created))
    post(client, wx, event_message("o-evt", "CLICK", "CONTACT", create_time=created))
    assert len(dispatched) == 3


def test_different_messages_are_not_deduplicated(
    client: FlaskClient, app: Flask, dispatched: list[Any]
) -> None:
    wx = WeChat.for_app(app)
    post(client, wx, text_message("o-a", "帮助", msg_id=1))
    post(client, wx, text_message("o-a", "帮助", msg_id=2))
    post(client, wx, image_message("o-a", msg_id=3))
    assert len(dispatched) == 3


def test_safe_mode_retry_gets_the_same_reply_freshly_encrypted(app_factory: Callable[..., Flask]) -> None:
    app = app_factory(**SAFE)
    client, wx = app.test_client(), WeChat.for_app(app)
    xml = text_message("o-safe-retry", "进度", msg_id=770001)
    first_post, second_post = wx.post(xml), wx.post(xml)
    first = client.post(first_post.path, data=first_post.body, content_type="text/xml")
    second = client.post(second_post.path, data=second_post.body, content_type="text/xml")
    assert first.status_code == second.status_code == 200
    assert wx.reply_of(first.data, encrypted=True) == wx.reply_of(second.data, encrypted=True)
    assert first.data != second.data  # each answer is encrypted for its own request


class SlowHandler:
    """Replaces the text handler: counts runs and holds the first until released."""

    def __init__(self) -> None:
        self.runs = 0
        self.started = threading.Event()
        self.release = threading.Event()
        self.lock = threading.Lock()

    def __call__(self, message: Any, ctx: registry.Context) -> registry.Reply:
        with self.lock:
            self.runs += 1
        self.started.set()
        self.release.wait(timeout=10)
        return f"慢回复 {message.content}"


@pytest.fixture
def slow_handler(monkeypatch: pytest.MonkeyPatch) -> SlowHandler:
    handler = SlowHandler()
    monkeypatch.setitem(registry.HANDLERS, ("text", None, None), handler)
    return handler


@pytest.fixture
def waiting_retries(monkeypatch: pytest.MonkeyPatch) -> Callable[[int], bool]:
    """wait_for(n): True once n distinct retry requests are polling for the first reply."""
    waiting: set[int] = set()
    cond = threading.Condition()
    real_pause = dedupe._pause

    def pause(seconds: float) -> None:
        with cond:
            waiting.add(threading.get_ident())
            cond.notify_all()
        real_pause(seconds)

    def wait_for(count: int) -> bool:
        with cond:
            return cond.wait_for(lambda: len(waiting) >= count, timeout=10)

    monkeypatch.setattr(dedupe, "_pause", pause)
    return wait_for


def test_concurrent_duplicates_run_the_handler_once_and_share_the_reply(
    app: Flask, live_server: Any, slow_handler: SlowHandler, waiting_retries: Callable[[int], bool]
) -> None:
    wx = WeChat.for_app(app)
    xml = text_message("o-concurrent", "同时到达", msg_id=990001)

    def send() -> requests.Response:
        signed = wx.post(xml)  # every try is signed afresh, like WeChat's
        return requests.post(live_server.url + signed.path, data=signed.body, timeout=15)

    with ThreadPoolExecutor(max_workers=5) as pool:
        first = pool.submit(send)
        assert slow_handler.started.wait(timeout=10)
        retries = [pool.submit(send) for _ in range(4)]
        # All four retries are now waiting on the first request, which is still in its handler.
        assert waiting_retries(4)
        slow_handler.release.set()
        responses = [first.result(), *(f.result() for f in retries)]

    assert slow_handler.runs == 1
    assert {r.status_code for r in responses} == {200}
    bodies = [wx.reply_of(r.content) for r in responses]
    assert bodies[0] is not None and bodies[0]["Content"] == "慢回复 同时到达"
    assert all(b == bodies[0] for b in bodies)


def test_retry_answers_empty_after_a_bounded_wait_then_later_tries_get_the_reply(
    app: Flask, live_server: Any, slow_handler: SlowHandler, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dedupe, "WAIT_SECONDS", 0.3)
    wx = WeChat.for_app(app)
    xml = text_message("o-slow", "很慢", msg_id=990002)

    def send() -> requests.Response:
        signed = wx.post(xml)
        return requests.post(live_server.url + signed.path, data=signed.body, timeout=15)

    with ThreadPoolExecutor(max_workers=2) as pool:
        first = pool.submit(send)
        assert slow_handler.started.wait(timeout=10)
        retry = send()  # the first is still held: the retry gives up after WAIT_SECONDS
        assert (retry.status_code, retry.content) == (200, b"success")
        slow_handler.release.set()
        assert wx.reply_of(first.result().content) is not None
    third = send()
    assert wx.reply_of(third.content) == wx.reply_of(first.result().content)
    assert slow_handler.runs == 1


def test_a_failing_handler_gives_an_empty_reply_and_is_logged(
    client: FlaskClient, app: Flask, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    runs: list[str] = []

    def broken(message: Any, ctx: registry.Context) -> registry.Reply:
        runs.append(message.content)
        raise RuntimeError("boom")

    monkeypatch.setitem(registry.HANDLERS, ("text", None, None), broken)
    wx = WeChat.for_app(app)
    xml = text_message("o-broken", "随便说点", msg_id=660001)
    with caplog.at_level(logging.ERROR, logger="app.wechat.answering"):
        signed = wx.post(xml)
        response = client.post(signed.path, data=signed.body, content_type="text/xml")
    assert (response.status_code, response.data) == (200, b"success")
    failures = [r for r in caplog.records if r.message == "wechat handler failed"]
    assert len(failures) == 1 and failures[0].exc_info is not None
    # Its work was rolled back and no reply was kept for the message: WeChat's retry runs it again.
    signed = wx.post(xml)
    assert client.post(signed.path, data=signed.body, content_type="text/xml").data == b"success"
    assert runs == ["随便说点", "随便说点"]
    with app.app_context():
        # Not a read-only handler: each failed try is parked, to be applied when it can be.
        assert parked.count(redis_client()) == 2


def test_a_parked_message_is_applied_once_when_its_handler_works_again(
    client: FlaskClient, app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs: list[str] = []
    healthy = False

    def flaky(message: Any, ctx: registry.Context) -> registry.Reply:
        runs.append(message.source)
        if not healthy:
            raise RuntimeError("database away")
        return "收到"

    monkeypatch.setitem(registry.HANDLERS, ("text", None, None), flaky)
    wx = WeChat.for_app(app)
    xml = text_message("o-parked", "随便说点", msg_id=660002)
    for _ in range(2):  # the post and a WeChat retry both fail
        signed = wx.post(xml)
        assert client.post(signed.path, data=signed.body, content_type="text/xml").data == b"success"
    with app.app_context():
        settings = app.config["SETTINGS"]
        assert answering.replay_parked(settings) == 0  # still failing: kept, in order
        assert parked.count(redis_client()) == 2
        healthy = True
        assert answering.replay_parked(settings) == 2  # the first applies it, the second finds it done
        assert parked.count(redis_client()) == 0
    assert runs == ["o-parked"] * 4  # two posts, one failed replay, one replay that worked
    signed = wx.post(xml)  # a late retry gets the stored reply; the handler does not run again
    assert "收到" in client.post(signed.path, data=signed.body, content_type="text/xml").get_data(
        as_text=True
    )
    assert len(runs) == 4


def test_a_message_that_cannot_be_kept_asks_wechat_to_retry(
    client: FlaskClient, app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(message: Any, ctx: registry.Context) -> registry.Reply:
        raise RuntimeError("database away")

    def no_redis(cache: Any, xml: str) -> None:
        raise redis.ConnectionError("redis away too")

    monkeypatch.setitem(registry.HANDLERS, ("text", None, None), broken)
    monkeypatch.setattr(parked, "park", no_redis)
    signed = WeChat.for_app(app).post(text_message("o-lost", "x", msg_id=660003))
    response = client.post(signed.path, data=signed.body, content_type="text/xml")
    assert response.status_code == 503


def test_a_failing_handler_leaves_the_session_usable(
    client: FlaskClient, app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(message: Any, ctx: registry.Context) -> registry.Reply:
        ctx.session.add(User(openid=message.source))
        ctx.session.flush()
        ctx.session.add(User(openid=message.source))  # unique violation
        ctx.session.flush()
        return "unreachable"

    monkeypatch.setitem(registry.HANDLERS, ("text", None, None), broken)
    wx = WeChat.for_app(app)
    assert post(client, wx, text_message("o-dup", "x"))[0] == 200
    # The failed unit of work was rolled back, and the session then served the endpoint's own
    # write in the same request: the sender, recorded once.
    with app.app_context():
        assert db.session.scalars(select(User.openid)).all() == ["o-dup"]
    monkeypatch.undo()
    assert post(client, wx, text_message("o-ok", "帮助"))[1] is not None
    assert user_count(app) == 2


def test_an_error_outside_the_handler_is_still_not_a_500(
    client: FlaskClient, app: Flask, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken_key(message: Any) -> str:
        raise RuntimeError("bug in the endpoint itself")

    monkeypatch.setattr(dedupe, "key_for", broken_key)
    signed = WeChat.for_app(app).post(text_message("o-x", "帮助"))
    with caplog.at_level(logging.ERROR, logger="app.wechat.views"):
        response = client.post(signed.path, data=signed.body, content_type="text/xml")
    assert (response.status_code, response.data) == (200, b"success")
    assert any(r.message == "wechat endpoint failed" for r in caplog.records)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port  # nothing listens there now: connections are refused


def test_redis_down_still_answers(client: FlaskClient, app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    down = redis.Redis(host="127.0.0.1", port=closed_port(), socket_connect_timeout=1, decode_responses=True)
    monkeypatch.setattr("app.wechat.answering.redis_client", lambda: down)
    status, reply = post(client, WeChat.for_app(app), text_message("o-noredis", "帮助"))
    assert status == 200 and reply is not None and reply["Content"].startswith("使用帮助")
    assert user_count(app) == 1


@pytest.mark.parametrize("timestamp", ["²³", "١٧٠٠٠٠٠٠٠٠", "１７００", "17e8", "-1"])
def test_a_timestamp_in_anything_but_ascii_digits_is_refused(
    client: FlaskClient, app: Flask, dispatched: list[Any], caplog: pytest.LogCaptureFixture, timestamp: str
) -> None:
    # "²³".isdigit() is True and int("²³") raises: this answered 200 "success" with a traceback logged.
    query = {**WeChat.for_app(app).query(), "timestamp": timestamp}
    response = client.post("/wechat", query_string=query, data=text_message("o-x", "帮助"))
    assert response.status_code == 403
    assert dispatched == []
    assert not [r for r in caplog.records if r.exc_info]
    assert client.get("/wechat", query_string={**query, "echostr": "1"}).status_code == 403
