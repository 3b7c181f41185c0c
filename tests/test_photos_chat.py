"""A picture sent in the chat: the sandbox posts the image message to /wechat, the account answers at
once, the worker downloads the picture through the media API (the sandbox serves what the phone
sent), checks it like an upload, and the verdict arrives in the sandbox chat as a custom message."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from photo_students import fixture, no_face_480x640, prepare
from sqlalchemy import func, select
from wechat_posts import WeChat, image_message

from app.extensions import db
from app.integrations import redis_client
from app.jobs.photos import check_chat_image
from app.jobs.worker import run_due, wait_for_idle
from app.sandbox import messenger, state, store
from app.services import identities
from models import OutboxItem, Photo

PHONE = "phone_4000x3000.jpg"


@pytest.fixture
def base(live_server: Any, app: Flask) -> str:
    url: str = live_server.url
    return url


def _follow(app: Flask, openid: str) -> None:
    with app.app_context():
        r = redis_client()
        state.create_user(r, "学生", openid)
        messenger.subscribe(r, openid)


def _send_picture(app: Flask, openid: str, data: bytes) -> tuple[str, str]:
    """The phone sends a picture: returns (media_id, the account's immediate reply)."""
    with app.app_context():
        r = redis_client()
        media_id = store.save_media(r, data, "image/jpeg")
        delivery = messenger.send_image(r, openid, media_id)
        assert delivery.reply is not None, delivery
        return media_id, str(delivery.reply.get("text"))


def _custom_texts(app: Flask, openid: str) -> list[str]:
    with app.app_context():
        return [
            str(e.get("text"))
            for e in state.chat(redis_client(), openid)
            if e.get("direction") == "out" and e.get("via") == "custom"
        ]


def _count(app: Flask, model: Any) -> int:
    with app.app_context():
        return int(db.session.scalar(select(func.count()).select_from(model)) or 0)


def test_a_good_picture_in_the_chat_passes(app: Flask, base: str) -> None:
    _follow(app, "o-chat-good")
    user_id = prepare(app, "o-chat-good")
    media_id, reply = _send_picture(app, "o-chat-good", fixture(PHONE))
    assert "已收到您的图片，正在检查" in reply
    assert _custom_texts(app, "o-chat-good") == []  # the verdict comes from the worker

    wait_for_idle(app)
    [verdict] = _custom_texts(app, "o-chat-good")
    assert verdict.startswith("照片检查通过")
    assert "480×640 像素" in verdict and f"{base}/h5/photo" in verdict
    with app.app_context():
        [photo] = db.session.scalars(select(Photo))
        assert photo.user_id == user_id and photo.source == "chat" and photo.passed
        assert photo.width == 480 and photo.height == 640
        # The media API was how the picture arrived.
        assert any(
            c["query"].get("media_id") == media_id for c in state.calls(redis_client(), "/cgi-bin/media/get")
        )


def test_a_bad_picture_gets_what_to_fix(app: Flask, base: str) -> None:
    _follow(app, "o-chat-bad")
    prepare(app, "o-chat-bad")
    _send_picture(app, "o-chat-bad", no_face_480x640())
    wait_for_idle(app)
    [verdict] = _custom_texts(app, "o-chat-bad")
    assert verdict.startswith("照片未通过检查")
    assert "没有检测到人脸" in verdict and f"{base}/h5/photo" in verdict
    assert len(verdict.encode()) <= 2048  # WeChat's limit for a custom text


def test_the_check_is_safe_to_run_twice(app: Flask, base: str) -> None:
    _follow(app, "o-chat-twice")
    user_id = prepare(app, "o-chat-twice")
    _send_picture(app, "o-chat-twice", no_face_480x640())
    with app.app_context():
        [job] = db.session.scalars(select(OutboxItem).where(OutboxItem.kind == "photos.check_chat_image"))
        payload = dict(job.payload)
    wait_for_idle(app)
    # The worker dies after the work and before recording it: the job runs again.
    with app.app_context():
        check_chat_image({**payload, "outbox_id": 999})
        db.session.remove()
    wait_for_idle(app)
    assert _count(app, Photo) == 1
    assert len(_custom_texts(app, "o-chat-twice")) == 1
    with app.app_context():
        [photo] = db.session.scalars(select(Photo))
        assert photo.user_id == user_id and photo.source_ref == f"wechat-msg:{payload['msg_id']}"


def test_a_retried_post_queues_one_check(app: Flask, base: str) -> None:
    _follow(app, "o-chat-retry")
    prepare(app, "o-chat-retry")
    with app.app_context():
        media_id = store.save_media(redis_client(), no_face_480x640(), "image/jpeg")
    wx = WeChat.for_app(app)
    post = wx.post(image_message("o-chat-retry", media_id, msg_id=424242))
    client = app.test_client()
    first = client.post(post.path, data=post.body, content_type="text/xml")
    again = wx.post(image_message("o-chat-retry", media_id, msg_id=424242))
    second = client.post(again.path, data=again.body, content_type="text/xml")
    assert first.status_code == second.status_code == 200
    assert "正在检查" in (wx.reply_of(first.data) or {}).get("Content", "")
    with app.app_context():
        store.touch_user(redis_client(), "o-chat-retry")
    wait_for_idle(app)
    assert _count(app, Photo) == 1
    assert len(_custom_texts(app, "o-chat-retry")) == 1


def test_unbound_and_unlinked_senders_get_the_next_step(app: Flask, base: str) -> None:
    _follow(app, "o-chat-unbound")
    _, reply = _send_picture(app, "o-chat-unbound", no_face_480x640())
    assert "实名绑定" in reply and f"{base}/h5/bind" in reply
    _follow(app, "o-chat-unlinked")
    prepare(app, "o-chat-unlinked", link=False)
    _, reply = _send_picture(app, "o-chat-unlinked", no_face_480x640())
    assert "关联" in reply and f"{base}/h5/school" in reply
    wait_for_idle(app)
    assert _count(app, Photo) == 0 and _count(app, OutboxItem) == 0


def test_unbinding_before_the_check_runs_gets_guidance(app: Flask, base: str) -> None:
    _follow(app, "o-chat-gone")
    user_id = prepare(app, "o-chat-gone")
    _send_picture(app, "o-chat-gone", no_face_480x640())
    with app.app_context():
        identities.unbind(db.session, user_id)
        db.session.remove()
    wait_for_idle(app)
    [text] = _custom_texts(app, "o-chat-gone")
    assert "暂时不能检查" in text and "实名绑定" in text
    assert _count(app, Photo) == 0


def test_expired_media_asks_for_the_picture_again(app: Flask, base: str) -> None:
    _follow(app, "o-chat-expired")
    prepare(app, "o-chat-expired")
    with app.app_context():
        r = redis_client()
        media_id = store.save_media(r, no_face_480x640(), "image/jpeg")
        r.delete(store._media_key(media_id))  # WeChat keeps temporary media three days
        messenger.send_image(r, "o-chat-expired", media_id)
    assert run_due(app) == 1  # the check: refused for good, not retried
    wait_for_idle(app)
    [text] = _custom_texts(app, "o-chat-expired")
    assert "图片已过期" in text and "重新发送" in text
    assert _count(app, Photo) == 0
