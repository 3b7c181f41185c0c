"""The sandbox's message sender: WeChat's XML, signatures, encryption, retries, reply parsing.

The integration tests post over real HTTP (live_server) to the service's /wechat, so they prove the
messenger's posts pass the service's checks in each encryption mode.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
import xmltodict
from flask import Flask
from wechatpy import events, messages, parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.replies import ArticlesReply, TextReply
from wechatpy.utils import check_signature

from app.integrations import redis_client
from app.sandbox import messenger, state

AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
OPENID = "oSandboxStudent0000000000001"


def _xml(fields: list[messenger.Field]) -> str:
    return messenger.to_xml(fields)


# --- XML shapes -----------------------------------------------------------------------------------


def test_text_message_parses_as_wechat_text(app_ctx: None) -> None:
    xml = _xml(messenger.text_fields(OPENID, "帮助 <b>&</b> ]]> end", msg_id=1234567890123456789))
    msg = parse_message(xml)
    assert isinstance(msg, messages.TextMessage)
    assert msg.content == "帮助 <b>&</b> ]]> end"
    assert msg.id == 1234567890123456789
    assert msg.source == OPENID
    assert msg.target == messenger.DEFAULT_ACCOUNT_ID
    assert abs(msg.create_time.timestamp() - __import__("time").time()) < 5
    names = list(xmltodict.parse(xml)["xml"])
    assert names == ["ToUserName", "FromUserName", "CreateTime", "MsgType", "Content", "MsgId"]


def test_control_characters_are_dropped_not_sent_as_invalid_xml(app_ctx: None) -> None:
    msg = parse_message(_xml(messenger.text_fields(OPENID, "a\x00b\x1bc\ud800d")))
    assert msg.content == "abcd"


def test_image_message_points_at_the_sandbox_media(app: Flask, app_ctx: None) -> None:
    msg = parse_message(_xml(messenger.image_fields(OPENID, "MEDIA123")))
    assert isinstance(msg, messages.ImageMessage)
    assert msg.media_id == "MEDIA123"
    assert msg.image == f"{app.config['PUBLIC_BASE_URL']}/_sandbox/media/MEDIA123"
    assert 10**18 <= msg.id < 2**63


def test_voice_and_location_messages(app_ctx: None) -> None:
    voice = parse_message(_xml(messenger.voice_fields(OPENID, "VOICE1", "amr")))
    assert isinstance(voice, messages.VoiceMessage)
    assert (voice.media_id, voice.format) == ("VOICE1", "amr")
    loc = parse_message(_xml(messenger.location_fields(OPENID, 28.19, 112.94, "湖南师范大学", 16)))
    assert isinstance(loc, messages.LocationMessage)
    assert tuple(float(v) for v in loc.location) == (28.19, 112.94)
    assert (int(loc.scale), loc.label) == (16, "湖南师范大学")


@pytest.mark.parametrize(
    ("fields", "cls", "checks"),
    [
        (lambda: messenger.event_fields(OPENID, "subscribe"), events.SubscribeEvent, {}),
        (lambda: messenger.event_fields(OPENID, "unsubscribe"), events.UnsubscribeEvent, {}),
        (
            lambda: messenger.event_fields(OPENID, "subscribe", "qrscene_school:10542", ticket="gQTICKET"),
            events.SubscribeScanEvent,
            {"scene_id": "school:10542", "ticket": "gQTICKET"},
        ),
        (
            lambda: messenger.event_fields(OPENID, "SCAN", "school:10542", ticket="gQTICKET"),
            events.ScanEvent,
            {"scene_id": "school:10542", "ticket": "gQTICKET"},
        ),
        (lambda: messenger.event_fields(OPENID, "CLICK", "HELP"), events.ClickEvent, {"key": "HELP"}),
        (
            lambda: messenger.event_fields(OPENID, "VIEW", "http://x.test/h5/me"),
            events.ViewEvent,
            {"url": "http://x.test/h5/me"},
        ),
    ],
)
def test_events_parse_as_wechat_events(
    app_ctx: None, fields: Callable[[], list[messenger.Field]], cls: type, checks: dict[str, Any]
) -> None:
    msg = parse_message(_xml(fields()))
    assert type(msg) is cls
    assert msg.source == OPENID
    for name, value in checks.items():
        assert getattr(msg, name) == value
    names = list(xmltodict.parse(_xml(fields()))["xml"])
    assert names[:5] == ["ToUserName", "FromUserName", "CreateTime", "MsgType", "Event"]


# --- signing and encryption -----------------------------------------------------------------------


def test_plain_envelope_is_signed_like_wechat(app: Flask, app_ctx: None) -> None:
    env = messenger.envelope(messenger.text_fields(OPENID, "hi"), OPENID)
    params = env.params
    assert set(params) == {"signature", "timestamp", "nonce", "openid"}
    check_signature(app.config["WECHAT_TOKEN"], params["signature"], params["timestamp"], params["nonce"])
    assert params["openid"] == OPENID
    assert parse_message(env.body).content == "hi"


@pytest.mark.parametrize("mode", ["safe", "compatible"])
def test_encrypted_envelope_decrypts_with_msg_signature(app_factory: Any, mode: str) -> None:
    app = app_factory(WECHAT_ENCRYPT_MODE=mode, WECHAT_AES_KEY=AES_KEY)
    with app.app_context():
        env = messenger.envelope(messenger.text_fields(OPENID, "加密"), OPENID)
    params = env.params
    assert params["encrypt_type"] == "aes"
    crypto = WeChatCrypto(app.config["WECHAT_TOKEN"], AES_KEY, app.config["WECHAT_APPID"])
    plain = crypto.decrypt_message(env.body, params["msg_signature"], params["timestamp"], params["nonce"])
    assert parse_message(plain).content == "加密"
    outer = xmltodict.parse(env.body)["xml"]
    if mode == "safe":
        assert set(outer) == {"ToUserName", "Encrypt"}
    else:  # compatible: the plaintext fields travel beside their encrypted copy
        assert outer["Content"] == "加密"
        assert "Encrypt" in outer
        assert parse_message(env.body).content == "加密"


# --- reply parsing --------------------------------------------------------------------------------


def _text_reply(content: str, to: str = OPENID, source: str = messenger.DEFAULT_ACCOUNT_ID) -> str:
    return str(TextReply(source=source, target=to, content=content).render())


def test_no_reply_forms(app_ctx: None) -> None:
    assert messenger.parse_reply(b"", OPENID) is None
    assert messenger.parse_reply(b"success", OPENID) is None
    assert messenger.parse_reply(b"  \n", OPENID) is None


def test_text_and_news_replies(app_ctx: None) -> None:
    entry = messenger.parse_reply(_text_reply("你好 <a href='http://x'>x</a>").encode(), OPENID)
    assert entry == {
        "direction": "out",
        "type": "text",
        "via": "reply",
        "text": "你好 <a href='http://x'>x</a>",
    }
    news = ArticlesReply(source=messenger.DEFAULT_ACCOUNT_ID, target=OPENID)
    news.add_article({"title": "须知", "description": "d", "image": "http://p/1.jpg", "url": "http://u/1"})
    entry = messenger.parse_reply(news.render().encode(), OPENID)
    assert entry is not None
    assert (entry["type"], entry["text"], entry["url"], entry["media_url"]) == (
        "news",
        "须知",
        "http://u/1",
        "http://p/1.jpg",
    )


@pytest.mark.parametrize(
    "raw",
    [
        "hello",
        "<xml><MsgType>nonsense</MsgType></xml>",
        "<html><body>error</body></html>",
        "<!DOCTYPE x [<!ENTITY a 'b'>]><xml><MsgType>&a;</MsgType></xml>",
    ],
)
def test_invalid_replies_are_refused(app_ctx: None, raw: str) -> None:
    with pytest.raises(messenger.InvalidReplyError):
        messenger.parse_reply(raw.encode(), OPENID)


def test_reply_to_someone_else_is_refused(app_ctx: None) -> None:
    with pytest.raises(messenger.InvalidReplyError):
        messenger.parse_reply(_text_reply("hi", to="oSomeoneElse").encode(), OPENID)
    with pytest.raises(messenger.InvalidReplyError):
        messenger.parse_reply(_text_reply("hi", source="gh_other").encode(), OPENID)


def test_safe_mode_reply_must_be_encrypted_and_correctly_signed(app_factory: Any) -> None:
    app = app_factory(WECHAT_ENCRYPT_MODE="safe", WECHAT_AES_KEY=AES_KEY)
    crypto = WeChatCrypto(app.config["WECHAT_TOKEN"], AES_KEY, app.config["WECHAT_APPID"])
    with app.app_context():
        good = crypto.encrypt_message(_text_reply("密文回复"), "12345")
        assert messenger.parse_reply(good.encode(), OPENID)["text"] == "密文回复"
        forged = good.replace("<MsgSignature><![CDATA[", "<MsgSignature><![CDATA[0")
        with pytest.raises(messenger.InvalidReplyError):
            messenger.parse_reply(forged.encode(), OPENID)
        with pytest.raises(messenger.InvalidReplyError):
            messenger.parse_reply(_text_reply("明文").encode(), OPENID)
        other = WeChatCrypto(app.config["WECHAT_TOKEN"], AES_KEY, "wx-another-app")
        with pytest.raises(messenger.InvalidReplyError):
            messenger.parse_reply(other.encrypt_message(_text_reply("x"), "1").encode(), OPENID)


# --- through HTTP to the service ------------------------------------------------------------------


def _new_user(nickname: str = "小明") -> str:
    openid: str = state.create_user(redis_client(), nickname)["openid"]
    return openid


@pytest.mark.parametrize("mode", ["plain", "compatible", "safe"])
def test_posts_pass_the_service_checks_in_every_mode(app_factory: Any, mode: str) -> None:
    overrides = {} if mode == "plain" else {"WECHAT_ENCRYPT_MODE": mode, "WECHAT_AES_KEY": AES_KEY}
    app = app_factory(**overrides)
    with app.app_context():
        r = redis_client()
        openid = _new_user()
        followed = messenger.subscribe(r, openid)
        assert (followed.status, followed.tries, followed.failed) == (200, 1, False)
        assert followed.reply is not None and "实名绑定" in followed.reply["text"]
        assert state.get_user(r, openid)["subscribed"] is True

        delivery = messenger.send_text(r, openid, "帮助")
        assert (delivery.status, delivery.failed) == (200, False)
        assert delivery.reply is not None and delivery.reply["text"]
        chat = state.chat(r, openid)
        assert [(e["direction"], e["via"], e["type"]) for e in chat] == [
            ("in", "user", "event"),
            ("out", "reply", "text"),
            ("in", "user", "text"),
            ("out", "reply", "text"),
        ]
        assert chat[2]["text"] == "帮助"


def test_a_refused_post_shows_the_service_unavailable_notice(
    app: Flask, app_ctx: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_post = messenger._post

    def forged(url: str, params: dict[str, str], body: bytes, timeout: float) -> Any:
        return real_post(url, {**params, "signature": "0" * 40}, body, timeout)

    monkeypatch.setattr(messenger, "_post", forged)
    r = redis_client()
    openid = _new_user()
    delivery = messenger.send_text(r, openid, "帮助")
    assert (delivery.status, delivery.failed, delivery.tries) == (403, True, 1)
    assert state.chat(r, openid)[-1]["text"] == messenger.SERVICE_UNAVAILABLE


def test_unsubscribe_marks_the_user_and_shows_no_reply(app: Flask, app_ctx: None) -> None:
    r = redis_client()
    openid = _new_user()
    messenger.subscribe(r, openid)
    delivery = messenger.unsubscribe(r, openid)
    assert (delivery.status, delivery.failed) == (200, False)
    assert state.get_user(r, openid)["subscribed"] is False
    assert state.chat(r, openid)[-1]["event"] == "unsubscribe"


def test_messages_open_the_custom_message_window_but_view_does_not(app: Flask, app_ctx: None) -> None:
    from app.sandbox import store

    r = redis_client()
    openid = _new_user()
    messenger.view(r, openid, app.config["PUBLIC_BASE_URL"] + "/h5/me")
    assert store.last_seen(r, openid) is None
    messenger.click(r, openid, "HELP")
    assert store.within_custom_window(r, openid)


def test_no_server_at_all_is_three_tries_then_the_notice(app: Flask, app_ctx: None) -> None:
    app.config["SANDBOX_WECHAT_URL"] = "http://127.0.0.1:9/wechat"  # the discard port: refused
    r = redis_client()
    openid = _new_user()
    delivery = messenger.send_text(r, openid, "有人吗")
    assert (delivery.tries, delivery.status, delivery.failed) == (3, None, True)
    assert [e.get("text") for e in state.chat(r, openid)] == ["有人吗", messenger.SERVICE_UNAVAILABLE]


def test_slow_service_gets_wechats_retries_and_answers_once(
    app: Flask, app_ctx: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first try times out while the handler works; WeChat retries the same message, the
    service runs the handler once, and the user sees its reply once."""
    from wechat_handlers import registry

    app.config["SANDBOX_WECHAT_TIMEOUT_SECONDS"] = 1.0  # WeChat's 5 s, shortened for the test
    release = threading.Event()
    runs: list[str] = []

    def slow_handler(message: Any, ctx: Any) -> str:
        runs.append(message.content)
        assert release.wait(20), "the messenger never retried"
        return "慢慢来的回复"

    monkeypatch.setitem(registry.HANDLERS, ("text", None, "慢"), slow_handler)

    posted: list[dict[str, Any]] = []
    real_post = messenger._post

    def watching(url: str, params: dict[str, str], body: bytes, timeout: float) -> Any:
        posted.append({"params": dict(params), "body": xmltodict.parse(body)["xml"]})
        if len(posted) == 2:
            release.set()  # the retry is on its way: let the first try's handler finish
        return real_post(url, params, body, timeout)

    monkeypatch.setattr(messenger, "_post", watching)
    r = redis_client()
    openid = _new_user()
    delivery = messenger.send_text(r, openid, "慢")

    assert delivery.tries >= 2 and len(posted) == delivery.tries
    assert len({p["body"]["MsgId"] for p in posted}) == 1
    assert len({p["body"]["CreateTime"] for p in posted}) == 1
    assert runs == ["慢"]
    assert (delivery.failed, delivery.reply and delivery.reply["text"]) == (False, "慢慢来的回复")
    texts = [e.get("text") for e in state.chat(r, openid)]
    assert texts == ["慢", "慢慢来的回复"]
