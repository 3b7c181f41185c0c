"""客服留言: students' messages kept for staff, who may read which, and answers within WeChat's 48 hours."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from app.extensions import db
from app.integrations import redis_client
from app.jobs.worker import run_due
from app.sandbox import state, store
from app.services import inbox, wording
from app.services.inbox import (
    InboxNotFoundError,
    InboxReplyInvalidError,
    InboxWindowClosedError,
)
from app.services.job_kinds import JobKind
from models import (
    AuditEntry,
    Enrollment,
    InboxDelivery,
    InboxDirection,
    InboxMessage,
    OutboxItem,
    User,
    utcnow,
)
from tests.factories import World, add_enrollment, add_user, get_staff, make_world


def linked(openid: str, batch_id: int) -> None:
    user = add_user(openid)
    add_enrollment(user.id, batch_id)
    db.session.commit()


def sandbox_follower(openid: str) -> None:
    """A following sandbox user who just wrote (custom messages are deliverable)."""
    r = redis_client()
    user = state.create_user(r, "学生", openid=openid)
    user["subscribed"] = True
    state.save_user(r, user)
    store.touch_user(r, openid)


@pytest.fixture
def world(app_ctx: None) -> World:
    """School A's student o-a, school B's o-b, and o-none linked to no school, each with a message."""
    found = make_world()
    linked("o-a", found.batch_a)
    linked("o-b", found.batch_b)
    now = utcnow()
    inbox.record(db.session, "o-a", "照片什么时候审核？", msg_id="1", at=now - timedelta(hours=2))
    inbox.record(db.session, "o-b", "我的学校选错了", msg_id="2", at=now - timedelta(hours=1))
    inbox.record(db.session, "o-none", "你好", msg_id="3", at=now)
    return found


def handle_of(openid: str) -> int:
    found = db.session.scalar(
        select(InboxMessage.id).where(InboxMessage.openid == openid).order_by(InboxMessage.id.desc())
    )
    assert found is not None
    return found


def test_a_message_keeps_the_school_the_student_is_linked_to(world: World) -> None:
    rows = {m.openid: m for m in db.session.scalars(select(InboxMessage))}
    assert rows["o-a"].school_id == world.school_a
    assert rows["o-b"].school_id == world.school_b
    assert rows["o-none"].school_id is None
    assert all(m.direction == InboxDirection.IN and m.answered_at is None for m in rows.values())


def test_the_same_wechat_message_is_kept_once(world: World) -> None:
    assert inbox.record(db.session, "o-a", "照片什么时候审核？", msg_id="1", at=utcnow()) is None
    assert db.session.query(InboxMessage).filter_by(openid="o-a").count() == 1


def test_reviewers_see_their_schools_and_admins_see_everyone(world: World) -> None:
    now = utcnow()

    def seen(staff_id: int) -> list[str]:
        return [c.openid for c in inbox.conversations(db.session, get_staff(staff_id), now)]

    assert seen(world.reviewer_a) == ["o-a"]
    assert seen(world.reviewer_b) == ["o-b"]
    # Newest first; students linked to no school only reach admins.
    assert seen(world.admin) == ["o-none", "o-b", "o-a"]
    [summary] = inbox.conversations(db.session, get_staff(world.reviewer_a), now)
    assert (summary.school_name, summary.last_text, summary.waiting) == (
        "湖南师范大学",
        "照片什么时候审核？",
        1,
    )
    assert summary.window_open


def test_a_conversation_outside_a_reviewers_schools_is_not_found(world: World) -> None:
    with pytest.raises(InboxNotFoundError):
        inbox.conversation(db.session, get_staff(world.reviewer_a), handle_of("o-b"))
    with pytest.raises(InboxNotFoundError):
        inbox.conversation(db.session, get_staff(world.reviewer_a), handle_of("o-none"))
    with pytest.raises(InboxNotFoundError):
        inbox.reply(db.session, get_staff(world.reviewer_a), handle_of("o-b"), "好的", utcnow())
    assert inbox.conversation(db.session, get_staff(world.admin), handle_of("o-none")).openid == "o-none"


def test_the_latest_message_decides_whose_conversation_it_is(world: World) -> None:
    # o-a moves to school B and writes again: school B's reviewer answers now, school A's no longer.
    user = db.session.scalars(select(User).where(User.openid == "o-a")).one()
    enrollment = db.session.scalars(select(Enrollment).where(Enrollment.user_id == user.id)).one()
    enrollment.batch_id = world.batch_b
    db.session.commit()
    inbox.record(db.session, "o-a", "我换了学校", msg_id="4", at=utcnow())
    handle = handle_of("o-a")
    assert [m.text for m in inbox.conversation(db.session, get_staff(world.reviewer_b), handle).messages] == [
        "照片什么时候审核？",
        "我换了学校",
    ]
    with pytest.raises(InboxNotFoundError):
        inbox.conversation(db.session, get_staff(world.reviewer_a), handle)


def test_a_reply_is_kept_queued_and_marks_the_students_messages_answered(world: World) -> None:
    me = get_staff(world.reviewer_a)
    now = utcnow()
    answer = inbox.reply(db.session, me, handle_of("o-a"), "  一般 7–10 个工作日，请耐心等待。 ", now)
    assert (answer.direction, answer.text, answer.staff_id) == (
        InboxDirection.OUT,
        "一般 7–10 个工作日，请耐心等待。",
        me.id,
    )
    assert answer.delivery == InboxDelivery.QUEUED
    [job] = db.session.scalars(select(OutboxItem)).all()
    assert (job.kind, job.payload) == (JobKind.SEND_INBOX_REPLY, {"message_id": answer.id})
    [audited] = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "inbox_reply")).all()
    assert (audited.staff_id, audited.target_id) == (me.id, answer.id)
    [summary] = inbox.conversations(db.session, me, now, waiting_only=False)
    assert summary.waiting == 0
    assert inbox.conversations(db.session, me, now, waiting_only=True) == []


def test_the_worker_sends_the_reply_as_a_custom_message(app: Flask, world: World) -> None:
    sandbox_follower("o-a")
    answer = inbox.reply(
        db.session, get_staff(world.reviewer_a), handle_of("o-a"), "已收到，请稍候", utcnow()
    )
    answer_id = answer.id
    db.session.remove()
    assert run_due(app) == 1
    out = [e for e in state.chat(redis_client(), "o-a") if e.get("direction") == "out"]
    assert [(e["via"], e["text"]) for e in out] == [("custom", wording.staff_reply("已收到，请稍候"))]
    sent = db.session.get(InboxMessage, answer_id)
    assert sent is not None and sent.delivery == InboxDelivery.SENT


def test_a_reply_wechat_refuses_is_marked_failed(app: Flask, world: World) -> None:
    # The sandbox never saw this student write: WeChat answers 45015 (outside the window).
    answer = inbox.reply(db.session, get_staff(world.reviewer_a), handle_of("o-a"), "已收到", utcnow())
    answer_id = answer.id
    db.session.remove()
    run_due(app)
    failed = db.session.get(InboxMessage, answer_id)
    assert failed is not None and failed.delivery == InboxDelivery.FAILED
    assert failed.delivery_error and "WeChat refused" in failed.delivery_error


def test_no_reply_after_48_hours(world: World) -> None:
    me = get_staff(world.reviewer_a)
    handle = handle_of("o-a")
    last = db.session.get(InboxMessage, handle)
    assert last is not None
    just_inside = last.at + inbox.WINDOW - timedelta(seconds=1)
    assert inbox.conversation(db.session, me, handle).window_open(just_inside)
    with pytest.raises(InboxWindowClosedError) as refused:
        inbox.reply(db.session, me, handle, "抱歉回复晚了", last.at + inbox.WINDOW)
    assert "48 小时" in refused.value.message and "请等学生再次留言" in refused.value.message
    assert db.session.scalars(select(OutboxItem)).all() == []
    assert [c.window_open for c in inbox.conversations(db.session, me, last.at + inbox.WINDOW)] == [False]
    # The student writes again: the window opens again.
    later = last.at + timedelta(days=3)
    inbox.record(db.session, "o-a", "还在吗？", msg_id="5", at=later)
    assert inbox.reply(db.session, me, handle_of("o-a"), "在的", later + timedelta(minutes=5)).id


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "请输入回复内容"),
        ("   ", "请输入回复内容"),
        ("很" * (inbox.MAX_REPLY_CHARS + 1), "回复最多 600 字"),
    ],
)
def test_an_empty_or_too_long_reply_is_refused(world: World, text: str, expected: Any) -> None:
    with pytest.raises(InboxReplyInvalidError) as refused:
        inbox.reply(db.session, get_staff(world.reviewer_a), handle_of("o-a"), text, utcnow())
    assert expected in refused.value.message
