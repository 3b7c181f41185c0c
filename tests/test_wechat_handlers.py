"""Every WeChat handler, through HTTP: what the student or operator sees, and what is stored."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from wechat_posts import (
    WeChat,
    event_message,
    image_message,
    location_message,
    message,
    text_message,
    voice_message,
)

from app.extensions import db
from app.services import wording
from models import Batch, Flow, InboxMessage, SubmissionStatus, User
from tests.factories import NOW
from wechat_handlers import registry


@pytest.fixture
def say(client: FlaskClient, app: Flask) -> Any:
    """say(xml) -> the reply's Content ("" for an empty reply), after checking the reply's shape."""
    wx = WeChat.for_app(app)

    def send(xml: str) -> str:
        signed = wx.post(xml)
        response = client.post(signed.path, data=signed.body, content_type="text/xml")
        assert response.status_code == 200
        reply = wx.reply_of(response.data)
        if reply is None:
            return ""
        assert reply["MsgType"] == "text"
        content: str = reply["Content"]
        return content

    return send


def user(app: Flask, openid: str) -> User | None:
    with app.app_context():
        found = db.session.scalar(select(User).where(User.openid == openid))
        if found is not None:
            db.session.expunge(found)
        return found


def make_operator(app: Flask, openid: str) -> None:
    with app.app_context():
        db.session.add(User(openid=openid, subscribed=True, is_operator=True))
        db.session.commit()


def bind_link(app: Flask) -> str:
    return f"{app.config['PUBLIC_BASE_URL']}/h5/bind"


# --- follow, unfollow, scenes -----------------------------------------------------------------


def test_subscribe_creates_the_user_and_welcomes_with_the_bind_link(app: Flask, say: Any) -> None:
    reply = say(event_message("o-new", "subscribe"))
    assert "欢迎关注" in reply and "实名绑定" in reply
    assert bind_link(app) in reply
    created = user(app, "o-new")
    assert created is not None and created.subscribed and created.subscribed_at is not None


def test_unsubscribe_marks_the_user_and_keeps_the_data(app: Flask, say: Any) -> None:
    say(event_message("o-leaving", "subscribe", "qrscene_school:10542"))
    before = user(app, "o-leaving")
    assert say(event_message("o-leaving", "unsubscribe")) == ""
    after = user(app, "o-leaving")
    assert before is not None and after is not None
    assert after.id == before.id
    assert not after.subscribed and after.unsubscribed_at is not None
    assert after.last_scene == "school:10542"  # nothing else was touched


def test_a_returning_follower_is_reactivated_not_duplicated(app: Flask, say: Any) -> None:
    say(event_message("o-back", "subscribe", create_time=int(time.time()) - 100))
    first = user(app, "o-back")
    say(event_message("o-back", "unsubscribe", create_time=int(time.time()) - 50))
    reply = say(event_message("o-back", "subscribe"))
    assert "欢迎回来" in reply and bind_link(app) in reply
    again = user(app, "o-back")
    assert first is not None and again is not None
    assert again.id == first.id and again.subscribed
    assert again.unsubscribed_at is not None  # the history stays


def test_unsubscribe_of_an_unknown_user_is_harmless(app: Flask, say: Any) -> None:
    assert say(event_message("o-stranger", "unsubscribe")) == ""
    assert user(app, "o-stranger") is None


def test_subscribe_through_a_scene_qr_code_records_the_scene(app: Flask, say: Any) -> None:
    reply = say(
        event_message("o-school", "subscribe", "qrscene_school:10542", Ticket="gQH47joAAAAAAAAAASxodHRw")
    )
    assert "已记录您扫描的学校二维码" in reply
    assert "欢迎关注" in reply and bind_link(app) in reply
    found = user(app, "o-school")
    assert found is not None and found.last_scene == "school:10542" and found.subscribed


def test_scan_by_a_follower_records_the_scene(app: Flask, say: Any) -> None:
    say(event_message("o-scan", "subscribe"))
    reply = say(event_message("o-scan", "SCAN", "school:10699", Ticket="gQH47joAAAAAAAAAASxodHRw"))
    assert reply == wording.scene_recorded("school:10699")
    found = user(app, "o-scan")
    assert found is not None and found.last_scene == "school:10699"


def test_scan_of_another_kind_of_scene_is_recorded_too(app: Flask, say: Any) -> None:
    reply = say(event_message("o-scan2", "SCAN", "poster-2026"))
    assert "已记录您扫码的来源" in reply
    found = user(app, "o-scan2")
    assert found is not None and found.last_scene == "poster-2026"


# --- menu -------------------------------------------------------------------------------------


def test_menu_help(app: Flask, say: Any) -> None:
    reply = say(event_message("o-menu", "CLICK", "HELP"))
    assert reply.startswith("使用帮助") and bind_link(app) in reply


def test_menu_status_shows_the_current_step(app: Flask, say: Any) -> None:
    say(event_message("o-menu", "subscribe"))
    reply = say(event_message("o-menu", "CLICK", "STATUS"))
    assert "当前进度" in reply and "第一步：请先完成实名绑定" in reply and bind_link(app) in reply


def test_menu_contact(say: Any) -> None:
    # Not linked to a school: leave a message here; no school phone to give.
    reply = say(event_message("o-menu", "CLICK", "CONTACT"))
    assert reply == wording.contact(None)
    assert "请直接在本对话框留言" in reply and "电话" not in reply


def test_menu_key_this_code_does_not_know_points_to_help(say: Any) -> None:
    assert say(event_message("o-menu", "CLICK", "SOMETHING_NEW")).startswith("使用帮助")


def test_menu_view_and_location_events_get_no_reply(say: Any) -> None:
    assert say(event_message("o-menu", "VIEW", "http://127.0.0.1/h5/bind")) == ""
    assert say(event_message("o-menu", "LOCATION", Latitude=28.19, Longitude=112.97, Precision=65.0)) == ""


def test_today_stats_for_an_operator(app: Flask, say: Any) -> None:
    make_operator(app, "o-operator")
    now = int(time.time())
    for openid in ("o-s1", "o-s2", "o-s3"):
        say(event_message(openid, "subscribe", create_time=now - 10))
    say(event_message("o-s3", "unsubscribe", create_time=now - 5))
    reply = say(event_message("o-operator", "CLICK", "TODAY_STATS"))
    assert reply.startswith("今日统计")
    assert "新增关注：3" in reply
    assert "取消关注：1" in reply
    assert "当前关注总数：3" in reply  # o-s1, o-s2 and the operator


def test_today_stats_refused_to_a_non_operator(say: Any) -> None:
    say(event_message("o-student", "subscribe"))
    assert say(event_message("o-student", "CLICK", "TODAY_STATS")) == wording.NOT_OPERATOR


# --- text -------------------------------------------------------------------------------------


@pytest.mark.parametrize("keyword", ["帮助", "help", "HELP", " Help ", "?", "？"])
def test_help_keywords(app: Flask, say: Any, keyword: str) -> None:
    reply = say(text_message("o-text", keyword))
    assert reply.startswith("使用帮助") and bind_link(app) in reply


@pytest.mark.parametrize("keyword", ["绑定", "实名绑定"])
def test_bind_keyword_gives_the_bind_link(app: Flask, say: Any, keyword: str) -> None:
    reply = say(text_message("o-text", keyword))
    assert "实名绑定" in reply and bind_link(app) in reply


@pytest.mark.parametrize("keyword", ["进度", "查询"])
def test_progress_keywords_tell_the_current_step(app: Flask, say: Any, keyword: str) -> None:
    reply = say(text_message("o-text", keyword))
    assert "当前进度" in reply and "第一步：请先完成实名绑定" in reply and bind_link(app) in reply


def linked_student(app: Flask, openid: str, **school: Any) -> None:
    """A student linked to 湖南师范大学's batch with a 3.50 元 fee; `school` sets its columns."""
    from tests.factories import NOW, add_batch, add_enrollment, add_school, add_user

    with app.app_context():
        found = add_school("10542", "湖南师范大学")
        for column, value in school.items():
            setattr(found, column, value)
        batch = add_batch(
            found.id,
            "成人教育 2026 批次",
            opens_at=NOW - timedelta(days=1),
            closes_at=NOW + timedelta(days=30),
            fee_fen=350,
        )
        add_enrollment(add_user(openid).id, batch.id)
        db.session.commit()


@pytest.mark.parametrize("keyword", ["费用", "多少钱", "怎么交费", "怎么交费？", "缴费", "多少钱?"])
def test_fee_questions_get_the_fee_and_how_to_pay(app: Flask, say: Any, keyword: str) -> None:
    reply = say(text_message("o-fee", keyword))
    assert wording.FEE_GENERAL in reply and "开始核验" in reply and "/h5/photo" in reply
    linked_student(app, "o-fee-linked")
    reply = say(text_message("o-fee-linked", keyword))
    assert "3.50 元" in reply and "开始核验" in reply and "/h5/photo" in reply
    with app.app_context():
        assert db.session.scalars(select(InboxMessage)).all() == []  # answered: nothing for staff


def test_contact_gives_the_linked_schools_phone_and_email(app: Flask, say: Any) -> None:
    linked_student(app, "o-contact", contact_phone="0731-88872114", contact_email="zsb@hunnu.edu.cn")
    reply = say(event_message("o-contact", "CLICK", "CONTACT"))
    assert "湖南师范大学电话：0731-88872114" in reply and "湖南师范大学邮箱：zsb@hunnu.edu.cn" in reply
    assert "请直接在本对话框留言" in reply


def test_a_linked_students_message_is_kept_with_the_school(app: Flask, say: Any) -> None:
    linked_student(app, "o-ask")
    assert say(text_message("o-ask", "请问可以用手机拍吗")) == wording.MESSAGE_KEPT
    with app.app_context():
        [kept] = db.session.scalars(select(InboxMessage)).all()
        assert kept.school_id is not None and kept.wechat_msg_id


def test_progress_follows_the_student_through_binding(app: Flask, say: Any) -> None:
    from datetime import date

    from app.extensions import db
    from app.integrations import pii_keyring
    from app.services import identities

    say(text_message("o-bound", "你好"))
    found = user(app, "o-bound")
    assert found is not None
    with app.app_context():
        identities.bind(
            db.session,
            pii_keyring(),
            found.id,
            identities.IdentityInput("resident_id", "210101200101010011", "张三"),
            date.today(),
        )
    reply = say(text_message("o-bound", "进度"))
    assert "第二步：请关联你的学校和批次" in reply and "/h5/school" in reply


def test_unknown_text_is_kept_for_staff_and_registers_an_earlier_follower(app: Flask, say: Any) -> None:
    # Someone who followed before the service existed: we learn about them from their first message.
    assert user(app, "o-old-follower") is None
    reply = say(text_message("o-old-follower", "你好，请问怎么交照片"))
    assert reply == wording.MESSAGE_KEPT and "人工回复" in reply
    with app.app_context():
        [kept] = db.session.scalars(select(InboxMessage)).all()
        assert (kept.openid, kept.text, kept.school_id) == ("o-old-follower", "你好，请问怎么交照片", None)
    found = user(app, "o-old-follower")
    assert found is not None and found.subscribed and found.subscribed_at is None


def test_a_message_from_a_user_marked_unsubscribed_marks_them_following(app: Flask, say: Any) -> None:
    say(event_message("o-drift", "subscribe", create_time=int(time.time()) - 20))
    say(event_message("o-drift", "unsubscribe", create_time=int(time.time()) - 10))
    say(text_message("o-drift", "帮助"))  # only followers can write: our record was out of date
    found = user(app, "o-drift")
    assert found is not None and found.subscribed


# --- other message types ----------------------------------------------------------------------


def test_image_is_acknowledged_with_the_upload_page(app: Flask, say: Any) -> None:
    reply = say(image_message("o-photo"))
    assert "已收到您的图片" in reply
    assert f"{app.config['PUBLIC_BASE_URL']}/h5/photo" in reply


@pytest.mark.parametrize(
    "xml",
    [
        voice_message("o-other"),
        location_message("o-other"),
        message("o-other", "video", MediaId="v1", ThumbMediaId="t1"),
        message("o-other", "shortvideo", MediaId="v1", ThumbMediaId="t1"),
        message("o-other", "link", Title="标题", Description="描述", Url="https://example.com/"),
        message("o-other", "miniprogrampage", Title="小程序"),
    ],
    ids=["voice", "location", "video", "shortvideo", "link", "unknown-type"],
)
def test_other_message_types_get_a_polite_default(say: Any, xml: str) -> None:
    assert say(xml) == wording.OTHER_MESSAGE


@pytest.mark.parametrize(
    "event",
    ["TEMPLATESENDJOBFINISH", "subscribe_msg_popup_event", "MASSSENDJOBFINISH", "something_new"],
)
def test_unknown_events_get_an_empty_reply(say: Any, event: str) -> None:
    assert say(event_message("o-evt", event, Status="success")) == ""


# --- the registry itself ----------------------------------------------------------------------


def test_registering_a_key_twice_raises() -> None:
    with pytest.raises(registry.DuplicateHandlerError):
        registry.register("text", None, "帮助")(lambda message, ctx: None)


def test_dispatch_falls_back_from_exact_key_to_type_to_default() -> None:
    assert registry.find(("event", "click", "HELP")).__name__ == "handle_help_click"
    assert registry.find(("event", "click", "NOPE")).__name__ == "handle_unknown_click"
    assert registry.find(("event", "nope", None)).__name__ == "handle_unknown_event"
    assert registry.find(("text", None, "随便")).__name__ == "handle_text"
    assert registry.find(("voice", None, None)).__name__ == "handle_other"
    assert all(h.__name__.startswith("handle_") for h in registry.HANDLERS.values())


# --- the checklist in the chat ------------------------------------------------------------------


def test_welcome_lists_the_steps_with_the_first_one_linked(app: Flask, say: Any) -> None:
    reply = say(event_message("o-welcome", "subscribe"))
    assert f'办理清单：\n→ <a href="{bind_link(app)}">实名绑定</a>：' in reply
    assert "\n○ 关联学校\n○ 上传照片\n○ 审核\n" in reply


def test_welcome_back_lists_where_the_student_stands(app: Flask, say: Any) -> None:
    from tests.factories import make_batch, make_student

    with app.app_context():
        make_student(make_batch(), SubmissionStatus.PENDING_REVIEW, openid="o-back")
    reply = say(event_message("o-back", "subscribe"))
    assert reply.startswith("欢迎回来")
    assert "✓ 实名绑定\n✓ 关联学校\n✓ 上传照片\n✓ 缴费核验\n✓ 身份核验\n→ " in reply
    assert f'<a href="{app.config["PUBLIC_BASE_URL"]}/h5/status">审核</a>：照片已提交审核' in reply


def test_progress_keyword_lists_the_steps_of_a_review_first_batch(app: Flask, say: Any) -> None:
    from tests.factories import make_batch, make_student

    with app.app_context():
        attempt = make_student(make_batch(), SubmissionStatus.APPROVED_UNPAID, openid="o-rf")
        batch = db.session.get(Batch, attempt.batch_id)
        assert batch is not None
        batch.flow = Flow.REVIEW_FIRST
        batch.verify_identity = False
        batch.pay_opens_at = NOW - timedelta(days=1)
        batch.pay_closes_at = NOW + timedelta(days=5)
        db.session.commit()
    reply = say(text_message("o-rf", "进度"))
    assert reply.startswith("当前进度：审核通过，待缴费")
    assert "✓ 上传照片\n✓ 提交审核\n✓ 审核\n→ " in reply
    assert f'<a href="{app.config["PUBLIC_BASE_URL"]}/h5/pay/{attempt.submission_id}">缴费</a>' in reply
