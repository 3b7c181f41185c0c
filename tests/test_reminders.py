"""Reminders 24 h before a sign-up or pay window closes: once per student and window, only while it
is open, never at night in Beijing, never for those who have done the step."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask import Flask
from sqlalchemy import select

from app.extensions import db
from app.jobs import periodic
from app.services import reminders
from app.services.pushes import ResultPush
from models import Flow, OutboxItem, SubmissionStatus
from tests.factories import (
    add_batch,
    add_enrollment,
    add_identity,
    add_photo,
    add_school,
    add_submission,
    add_user,
)

S = SubmissionStatus
PUSH = ResultPush(base_url="http://example.test", template_id="")
OPENS = datetime(2026, 9, 1, 0, 0, tzinfo=UTC)
# Sign-up closes 10月10日20:00, the pay window 10月20日20:00 (Beijing).
CLOSES = datetime(2026, 10, 10, 12, 0, tzinfo=UTC)
PAY_OPENS = datetime(2026, 10, 14, 16, 0, tzinfo=UTC)
PAY_CLOSES = datetime(2026, 10, 20, 12, 0, tzinfo=UTC)
DAY_BEFORE_CLOSE = datetime(2026, 10, 10, 2, 0, tzinfo=UTC)  # 10:00 Beijing, 10 h before


def _student(
    batch_id: int, openid: str, status: SubmissionStatus | None = None, *, subscribed: bool = True
) -> int:
    user = add_user(openid)
    user.subscribed = subscribed
    identity = add_identity(user.id, number_hash=f"h-{openid}", number_enc="x", name_enc="x")
    add_enrollment(user.id, batch_id)
    if status is not None:
        photo = add_photo(user.id, batch_id)
        return add_submission(user.id, batch_id, photo.id, identity.id, status).id
    return user.id


def _batch(flow: Flow = Flow.PAY_FIRST) -> int:
    school = add_school("10542", "湖南师范大学")
    window = {"pay_opens_at": PAY_OPENS, "pay_closes_at": PAY_CLOSES} if flow == Flow.REVIEW_FIRST else {}
    return add_batch(
        school.id, "成人教育 2026 批次", opens_at=OPENS, closes_at=CLOSES, flow=flow, **window
    ).id


def _sent() -> dict[str, str]:
    """Outbox key → the message text, of every queued reminder."""
    db.session.expire_all()
    items = db.session.scalars(select(OutboxItem)).all()
    return {str(item.idempotency_key): str(item.payload.get("text")) for item in items}


def test_sign_up_reminder_once_per_student_for_those_not_submitted(app: Flask) -> None:
    with app.app_context():
        batch_id = _batch()
        nothing = _student(batch_id, "o-nothing")
        _student(batch_id, "o-unpaid", S.AWAITING_PAYMENT)  # pay-first: paying is what the window governs
        _student(batch_id, "o-waiting", S.PENDING_REVIEW)
        _student(batch_id, "o-approved", S.APPROVED)
        _student(batch_id, "o-gone", subscribed=False)
        db.session.commit()
        assert reminders.send_due(db.session, PUSH, DAY_BEFORE_CLOSE) == 2
        assert reminders.send_due(db.session, PUSH, DAY_BEFORE_CLOSE + timedelta(hours=1)) == 0
        sent = _sent()
    assert len(sent) == 2
    text = sent[f"remind:sign-up:{batch_id}:{nothing}"]
    assert "10月10日20:00（北京时间）截止" in text
    assert '<a href="http://example.test/h5/photo">上传照片并提交</a>' in text


def test_no_reminder_too_early_after_the_close_or_at_night(app: Flask) -> None:
    with app.app_context():
        batch_id = _batch()
        _student(batch_id, "o-nothing")
        db.session.commit()
        assert reminders.send_due(db.session, PUSH, CLOSES - timedelta(hours=30)) == 0  # too early
        assert reminders.send_due(db.session, PUSH, CLOSES + timedelta(hours=14)) == 0  # closed (10:00)
        night = datetime(2026, 10, 9, 15, 0, tzinfo=UTC)  # 23:00 Beijing, 21 h before the close
        assert reminders.is_night(night)
        assert reminders.send_due(db.session, PUSH, night) == 0
        assert reminders.send_due(db.session, PUSH, datetime(2026, 10, 9, 23, 50, tzinfo=UTC)) == 0  # 07:50
        # 08:00 Beijing: the night is over and the window still open.
        assert reminders.send_due(db.session, PUSH, datetime(2026, 10, 10, 0, 0, tzinfo=UTC)) == 1


def test_a_window_closing_at_night_is_reminded_the_evening_before(app: Flask) -> None:
    with app.app_context():
        school = add_school("10542", "湖南师范大学")
        closes = datetime(2026, 10, 10, 19, 0, tzinfo=UTC)  # 03:00 Beijing
        batch_id = add_batch(school.id, "夜间截止批次", opens_at=OPENS, closes_at=closes).id
        _student(batch_id, "o-nothing")
        db.session.commit()
        assert reminders.send_due(db.session, PUSH, datetime(2026, 10, 10, 13, 0, tzinfo=UTC)) == 1  # 21:00
        sent = _sent()
    assert "10月11日03:00（北京时间）截止" in next(iter(sent.values()))


def test_pay_reminders_only_for_approved_unpaid(app: Flask) -> None:
    during = datetime(2026, 10, 20, 2, 0, tzinfo=UTC)  # 10:00 Beijing, 10 h before the pay close
    with app.app_context():
        batch_id = _batch(Flow.REVIEW_FIRST)
        unpaid = _student(batch_id, "o-unpaid", S.APPROVED_UNPAID)
        _student(batch_id, "o-paid", S.APPROVED)
        _student(batch_id, "o-waiting", S.PENDING_REVIEW)
        _student(batch_id, "o-void", S.VOID)
        db.session.commit()
        assert reminders.send_due(db.session, PUSH, during) == 1
        assert reminders.send_due(db.session, PUSH, during) == 0
        assert reminders.send_due(db.session, PUSH, PAY_CLOSES + timedelta(hours=1)) == 0
        sent = _sent()
    (key, text), *_ = sent.items()
    assert len(sent) == 1 and key.startswith(f"remind:pay:{batch_id}:")
    assert "10月20日20:00（北京时间）截止" in text and "逾期未缴费报名无效" in text
    assert f'<a href="http://example.test/h5/pay/{unpaid}">缴费</a>' in text


def test_a_template_when_the_account_has_one(app: Flask) -> None:
    with app.app_context():
        batch_id = _batch()
        _student(batch_id, "o-nothing")
        db.session.commit()
        push = ResultPush(base_url="http://example.test", template_id="tpl-reminder")
        assert reminders.send_due(db.session, push, DAY_BEFORE_CLOSE) == 1
        item = db.session.scalars(select(OutboxItem)).one()
    assert item.kind == "wechat.send_template"
    assert (
        item.payload["template_id"] == "tpl-reminder"
        and item.payload["url"] == "http://example.test/h5/photo"
    )
    assert item.payload["data"]["time2"]["value"] == "2026年10月10日 20:00"


def test_the_worker_runs_the_reminders() -> None:
    assert "remind_windows_closing" in [task.name for task in periodic.tasks()]
