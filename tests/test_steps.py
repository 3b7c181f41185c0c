"""The student's checklist for each flow and the states that matter, built from rows set directly
(the services that move attempts between states are not needed to read where a student stands)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask

from app.extensions import db
from app.services import progress, steps
from app.services.steps import Step
from models import Flow, LockOn, SubmissionStatus, utcnow
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
# Sign-up 9月1日–10月10日; the pay window of review-first batches 10月15日至10月20日20:00 (Beijing).
OPENS = datetime(2026, 8, 31, 16, 0, tzinfo=UTC)
CLOSES = datetime(2026, 10, 10, 16, 0, tzinfo=UTC)
PAY_OPENS = datetime(2026, 10, 14, 16, 0, tzinfo=UTC)
PAY_CLOSES = datetime(2026, 10, 20, 12, 0, tzinfo=UTC)
DURING_SIGN_UP = datetime(2026, 9, 20, 2, 0, tzinfo=UTC)
BEFORE_PAY = datetime(2026, 10, 12, 2, 0, tzinfo=UTC)
DURING_PAY = datetime(2026, 10, 16, 2, 0, tzinfo=UTC)
AFTER_PAY = datetime(2026, 10, 21, 2, 0, tzinfo=UTC)


def _student(
    flow: Flow = Flow.PAY_FIRST,
    status: SubmissionStatus | None = None,
    *,
    notice_acked: bool = True,
    photo: bool = True,
    reason: str | None = None,
    confirmed: bool = False,
    **batch: Any,
) -> tuple[int, int | None]:
    """A bound student linked to a batch of `flow` with its latest attempt in `status`:
    (user_id, submission_id)."""
    school = add_school("10542", "湖南师范大学")
    pay_window = {"pay_opens_at": PAY_OPENS, "pay_closes_at": PAY_CLOSES} if flow == Flow.REVIEW_FIRST else {}
    found = add_batch(
        school.id,
        "成人教育 2026 批次",
        opens_at=OPENS,
        closes_at=CLOSES,
        flow=flow,
        fee_fen=0 if flow == Flow.FREE else 200,
        **{**pay_window, **batch},
    )
    user = add_user("o-steps")
    identity = add_identity(user.id, number_hash="h", number_enc="x", name_enc="x")
    enrollment = add_enrollment(user.id, found.id)
    enrollment.notice_acked_at = OPENS if notice_acked else None
    submission_id = None
    if photo or status is not None:
        picture = add_photo(user.id, found.id, passed=photo, created_at=OPENS)
        if status is not None:
            submission_id = add_submission(
                user.id,
                found.id,
                picture.id,
                identity.id,
                status,
                status_reason=reason,
                created_at=OPENS + timedelta(days=1),
                confirmed_at=OPENS if confirmed else None,
            ).id
    db.session.commit()
    return user.id, submission_id


def _shape(checklist: list[Step]) -> list[tuple[str, str]]:
    return [(step.key, step.status) for step in checklist]


def _one(checklist: list[Step], key: str) -> Step:
    return next(step for step in checklist if step.key == key)


def _currents(checklist: list[Step]) -> int:
    return sum(step.status == "current" for step in checklist)


def test_nothing_bound(app: Flask) -> None:
    with app.app_context():
        user = add_user("o-new")
        db.session.commit()
        checklist = steps.of(db.session, user.id, utcnow())
    assert _shape(checklist) == [
        ("bind", "current"),
        ("school", "todo"),
        ("photo", "todo"),
        ("review", "todo"),
    ]
    assert checklist[0].url == "/h5/bind" and checklist[0].hint


def test_linked_with_the_notice_not_read(app: Flask) -> None:
    with app.app_context():
        user_id, _ = _student(notice="请认真阅读报名须知。", notice_acked=False, photo=False)
        checklist = steps.of(db.session, user_id, DURING_SIGN_UP)
        now = progress.of(db.session, user_id, DURING_SIGN_UP)
    assert _shape(checklist) == [
        ("bind", "done"),
        ("school", "done"),
        ("notice", "current"),
        ("photo", "todo"),
        ("pay", "todo"),
        ("verify", "todo"),
        ("review", "todo"),
    ]
    assert _one(checklist, "notice").url == "/h5/notice"
    assert now.step == "notice" and now.path == "/h5/notice"


def test_pay_first_photo_passed_then_paying(app: Flask) -> None:
    with app.app_context():
        user_id, _ = _student()
        passed = steps.of(db.session, user_id, DURING_SIGN_UP)
    pay = _one(passed, "pay")
    assert (pay.status, pay.url, pay.label) == ("current", "/h5/photo", "缴费核验")
    assert "开始核验" in pay.hint
    assert _one(passed, "photo").status == "done"


@pytest.mark.parametrize(
    ("status", "current", "url"),
    [
        (S.AWAITING_PAYMENT, "pay", "/h5/pay/{id}"),
        (S.VERIFYING, "verify", "/h5/status"),
        (S.PENDING_REVIEW, "review", "/h5/status"),
        (S.IN_REVIEW, "review", "/h5/status"),
    ],
)
def test_pay_first_in_flight(app: Flask, status: SubmissionStatus, current: str, url: str) -> None:
    with app.app_context():
        user_id, submission_id = _student(Flow.PAY_FIRST, status)
        checklist = steps.of(db.session, user_id, DURING_SIGN_UP)
        now = progress.of(db.session, user_id, DURING_SIGN_UP)
    found = steps.current(checklist)
    assert found is not None and found.key == current and found.url == url.format(id=submission_id)
    assert found.hint
    keys = [step.key for step in checklist]
    assert all(step.status == "done" for step in checklist[: keys.index(current)])
    assert all(step.status == "todo" for step in checklist[keys.index(current) + 1 :])
    # progress is the checklist's current step, from the same row.
    assert now.step == current and now.path == found.url and list(now.checklist) == checklist


def test_returned_with_the_window_open_then_closed(app: Flask) -> None:
    with app.app_context():
        user_id, _ = _student(Flow.PAY_FIRST, S.RETURNED, reason="背景颜色不符")
        open_ = steps.of(db.session, user_id, DURING_SIGN_UP)
        closed = steps.of(db.session, user_id, BEFORE_PAY)
    photo = _one(open_, "photo")
    assert photo.status == "current" and "背景颜色不符" in photo.hint and photo.url == "/h5/photo"
    assert _one(open_, "pay").status == "todo"
    # After the close nothing can be resubmitted: the photo is locked, another batch is what is left.
    photo = _one(closed, "photo")
    assert photo.status == "locked" and "10月11日 00:00 截止" in photo.hint
    school = _one(closed, "school")
    assert school.status == "current" and "如有新的批次，请重新关联" in school.hint
    assert _currents(closed) == 1


def test_approved_with_lock_on_confirm(app: Flask) -> None:
    with app.app_context():
        user_id, submission_id = _student(
            Flow.PAY_FIRST,
            S.APPROVED,
            lock_on=LockOn.CONFIRM,
            signature=True,
            after_approval="请邮寄纸质照片。",
        )
        unconfirmed = steps.of(db.session, user_id, DURING_SIGN_UP)
    confirm = _one(unconfirmed, "confirm")
    assert (confirm.status, confirm.url, confirm.label) == (
        "current",
        f"/h5/confirm/{submission_id}",
        "确认并签名",
    )
    assert _shape(unconfirmed)[-2:] == [("confirm", "current"), ("after", "todo")]
    with app.app_context():
        db.session.execute(db.text("UPDATE submissions SET confirmed_at = :at"), {"at": DURING_SIGN_UP})
        db.session.commit()
        confirmed = steps.of(db.session, user_id, DURING_SIGN_UP)
        now = progress.of(db.session, user_id, DURING_SIGN_UP)
    assert _shape(confirmed)[-2:] == [("confirm", "done"), ("after", "current")]
    assert _one(confirmed, "after").hint == "请邮寄纸质照片。"
    assert now.step == "result"


def test_approved_without_anything_left_has_no_current_step(app: Flask) -> None:
    with app.app_context():
        user_id, _ = _student(Flow.PAY_FIRST, S.APPROVED)
        checklist = steps.of(db.session, user_id, DURING_SIGN_UP)
        now = progress.of(db.session, user_id, DURING_SIGN_UP)
    assert all(step.status == "done" for step in checklist)
    assert now.step == "result" and "审核通过" in now.message


@pytest.mark.parametrize(
    ("at", "status", "hint"),
    [
        (BEFORE_PAY, "locked", "缴费时间为10月15日至10月20日20:00，届时再来缴费。"),
        (DURING_PAY, "current", "缴费时间为10月15日至10月20日20:00。"),
        (AFTER_PAY, "locked", "缴费时间为10月15日至10月20日20:00，已截止。"),
    ],
)
def test_review_first_approved_unpaid_and_the_pay_window(
    app: Flask, at: datetime, status: str, hint: str
) -> None:
    with app.app_context():
        user_id, submission_id = _student(Flow.REVIEW_FIRST, S.APPROVED_UNPAID)
        checklist = steps.of(db.session, user_id, at)
        now = progress.of(db.session, user_id, at)
    assert [step.key for step in checklist] == [
        "bind",
        "school",
        "photo",
        "submit",
        "verify",
        "review",
        "pay",
    ]
    pay = _one(checklist, "pay")
    assert (pay.status, pay.hint, pay.label, pay.url) == (status, hint, "缴费", f"/h5/pay/{submission_id}")
    assert all(step.status == "done" for step in checklist[:-1])
    assert now.step == "pay" and now.path == f"/h5/pay/{submission_id}"
    assert now.title == "审核通过，待缴费"


def test_review_first_submits_first(app: Flask) -> None:
    with app.app_context():
        user_id, _ = _student(Flow.REVIEW_FIRST, verify_identity=False)
        checklist = steps.of(db.session, user_id, DURING_SIGN_UP)
    assert _shape(checklist) == [
        ("bind", "done"),
        ("school", "done"),
        ("photo", "done"),
        ("submit", "current"),
        ("review", "todo"),
        ("pay", "todo"),
    ]
    assert _one(checklist, "submit").url == "/h5/photo"


def test_void_and_refused_are_final(app: Flask) -> None:
    with app.app_context():
        user_id, _ = _student(Flow.REVIEW_FIRST, S.VOID)
        void = steps.of(db.session, user_id, AFTER_PAY)
        void_now = progress.of(db.session, user_id, AFTER_PAY)
    assert _one(void, "pay").status == "locked" and "逾期未缴费" in _one(void, "pay").hint
    assert _currents(void) == 0 and void_now.step == "result"
    with app.app_context():
        db.session.execute(
            db.text("UPDATE submissions SET status = 'refused', status_reason = '证件照非本人'")
        )
        db.session.commit()
        refused = steps.of(db.session, user_id, DURING_PAY)
        refused_now = progress.of(db.session, user_id, DURING_PAY)
    review = _one(refused, "review")
    assert review.status == "locked" and "证件照非本人" in review.hint
    assert _one(refused, "pay").status == "locked"
    assert _currents(refused) == 0 and refused_now.step == "result"


def test_a_free_batch_has_no_pay_step(app: Flask) -> None:
    with app.app_context():
        user_id, _ = _student(Flow.FREE, S.PENDING_REVIEW)
        checklist = steps.of(db.session, user_id, DURING_SIGN_UP)
    assert [step.key for step in checklist] == ["bind", "school", "photo", "submit", "verify", "review"]
    assert _one(checklist, "review").status == "current"


def test_verify_failed_sends_the_student_back_to_their_identity(app: Flask) -> None:
    with app.app_context():
        user_id, _ = _student(Flow.PAY_FIRST, S.VERIFY_FAILED, reason="姓名与证件号码不一致")
        checklist = steps.of(db.session, user_id, DURING_SIGN_UP)
    bind = _one(checklist, "bind")
    assert bind.status == "current" and "姓名与证件号码不一致" in bind.hint
    assert _currents(checklist) == 1


def test_closed_before_submitting_locks_the_sign_up_steps(app: Flask) -> None:
    with app.app_context():
        user_id, _ = _student(Flow.PAY_FIRST, notice="须知", notice_acked=False, photo=False)
        checklist = steps.of(db.session, user_id, BEFORE_PAY)
    assert _shape(checklist)[:5] == [
        ("bind", "done"),
        ("school", "current"),
        ("notice", "locked"),
        ("photo", "locked"),
        ("pay", "locked"),
    ]
