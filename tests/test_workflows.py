"""Each batch's workflow, through the services against the real database: which state an attempt
enters, which window refuses what (a second before and after each edge), when the data freezes,
what a free batch never does, and what the pay window's close does to unpaid approvals."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from pay_students import paid_notice
from sqlalchemy import func, select

from app.extensions import db
from app.integrations import photo_storage, pii_keyring
from app.services import (
    enrollments,
    identities,
    pay_deadlines,
    payments,
    reviews,
    submissions,
)
from app.services.identities import (
    IdentityAwaitsConfirmationError,
    IdentityInput,
    IdentityInUseError,
    IdentityLockedError,
)
from app.services.pledges import Pledge
from app.services.pushes import ResultPush
from models import (
    Batch,
    Flow,
    LockOn,
    OutboxItem,
    PaymentOrder,
    Staff,
    StaffRole,
    Submission,
    SubmissionStatus,
    User,
    utcnow,
)
from tests.factories import add_photo, add_school, add_staff, signature_png

PUSH = ResultPush(base_url="http://example.test", template_id="")
SECOND = timedelta(seconds=1)
TODAY = date.today()


@pytest.fixture
def ctx(app: Flask) -> Iterator[None]:
    with app.app_context():
        yield
        db.session.remove()


@dataclass
class Student:
    user_id: int
    photo_id: int
    batch_id: int


def batch(**fields: Any) -> Batch:
    """A batch open since yesterday for a month; `fields` set its workflow."""
    now = utcnow()
    school = add_school(f"s{now.timestamp():.6f}"[-12:], "武汉轻工大学")
    values: dict[str, Any] = {
        "education": "成人教育",
        "fee_fen": 200,
        "photo_spec": {},
        "opens_at": now - timedelta(days=1),
        "closes_at": now + timedelta(days=30),
        **fields,
    }
    row = Batch(school_id=school.id, name="2026 年下半年报名", **values)
    db.session.add(row)
    db.session.commit()
    return row


def student(batch_row: Batch, openid: str = "o-flow", number: str = "210101200101010011") -> Student:
    """Bound and linked through the services (so locks apply), with one passing photo."""
    user = User(openid=openid)
    db.session.add(user)
    db.session.commit()
    identities.bind(db.session, pii_keyring(), user.id, IdentityInput("resident_id", number, "张三"), TODAY)
    enrollments.link(db.session, user.id, batch_row.id, utcnow())
    photo = add_photo(user.id, batch_row.id)
    db.session.commit()
    return Student(user.id, photo.id, batch_row.id)


def admin() -> Staff:
    """The test's admin, made on first use."""
    found = db.session.scalar(select(Staff).where(Staff.username == "admin"))
    if found is None:
        found = add_staff("admin", StaffRole.ADMIN, [])
        db.session.commit()
    return found


def orders() -> int:
    return db.session.scalar(select(func.count()).select_from(PaymentOrder)) or 0


def pushes_to(openid: str) -> list[str]:
    rows = db.session.scalars(select(OutboxItem.payload)).all()
    return [str(p.get("text", "")) for p in rows if p.get("openid") == openid]


def status(submission_id: int) -> SubmissionStatus:
    found = db.session.get(Submission, submission_id, populate_existing=True)
    assert found is not None
    return SubmissionStatus(found.status)


# --- the three flows ----------------------------------------------------------------------------


def test_pay_first_takes_the_fee_before_anything_else(ctx: None) -> None:
    s = student(batch())
    attempt = submissions.create(db.session, s.user_id, s.photo_id, utcnow())
    assert attempt.status == SubmissionStatus.AWAITING_PAYMENT
    assert [o.amount_fen for o in attempt.orders] == [200]


def test_a_free_batch_never_creates_an_order(ctx: None) -> None:
    free = batch(flow=Flow.FREE, fee_fen=0, verify_identity=False, lock_on=LockOn.APPROVE)
    s = student(free)
    attempt = submissions.create(db.session, s.user_id, s.photo_id, utcnow())
    assert attempt.status == SubmissionStatus.PENDING_REVIEW
    reviews.decide(db.session, admin(), attempt.id, "approve", None, utcnow(), push=PUSH)
    assert status(attempt.id) == SubmissionStatus.APPROVED
    assert orders() == 0


def test_a_free_batch_with_the_identity_check_runs_it_at_submission(ctx: None) -> None:
    free = batch(flow=Flow.FREE, fee_fen=0, lock_on=LockOn.APPROVE)
    s = student(free)
    attempt = submissions.create(db.session, s.user_id, s.photo_id, utcnow())
    assert attempt.status == SubmissionStatus.VERIFYING
    kinds = db.session.scalars(select(OutboxItem.kind)).all()
    assert "submissions.verify" in kinds
    assert orders() == 0


def test_review_first_pays_after_approval_within_the_pay_window(ctx: None) -> None:
    now = utcnow()
    row = batch(
        flow=Flow.REVIEW_FIRST,
        fee_fen=5000,
        verify_identity=False,
        pay_opens_at=now - timedelta(hours=1),
        pay_closes_at=now + timedelta(days=5),
    )
    s = student(row)
    attempt = submissions.create(db.session, s.user_id, s.photo_id, now)
    assert attempt.status == SubmissionStatus.PENDING_REVIEW and orders() == 0
    reviews.decide(db.session, admin(), attempt.id, "approve", None, now, push=PUSH)
    assert status(attempt.id) == SubmissionStatus.APPROVED_UNPAID
    [push] = pushes_to("o-flow")
    assert "审核通过" in push and "50 元" in push and "/h5/pay/" in push and "逾期未缴费报名无效" in push

    found = db.session.get(Submission, attempt.id)
    assert found is not None
    order = submissions.renew_order(db.session, found, now, "jsapi")
    assert order.amount_fen == 5000
    assert payments.apply_payment(db.session, paid_notice(order)) == "applied"
    assert status(attempt.id) == SubmissionStatus.APPROVED
    assert any("报名已完成" in text for text in pushes_to("o-flow"))


def test_the_approval_card_names_the_pay_deadline_within_the_template_limit(ctx: None) -> None:
    # The template's 说明 is clipped at 20 characters: the full sentence lost the window's close.
    now = utcnow()
    closes = datetime(2030, 12, 15, 12, 0, tzinfo=UTC)  # 20:00 in Beijing
    row = batch(flow=Flow.REVIEW_FIRST, fee_fen=5000, verify_identity=False, pay_closes_at=closes)
    row.pay_opens_at = now - timedelta(hours=1)
    db.session.commit()
    s = student(row)
    attempt = submissions.create(db.session, s.user_id, s.photo_id, now)
    template = ResultPush(base_url="http://example.test", template_id="tpl-result")
    reviews.decide(db.session, admin(), attempt.id, "approve", None, now, push=template)
    [payload] = [p for p in db.session.scalars(select(OutboxItem.payload)) if p.get("template_id")]
    assert payload["data"]["phrase1"]["value"] == "审核通过"
    assert payload["data"]["thing3"]["value"] == "请于12月15日20:00前缴费"
    assert payload["url"].endswith(f"/h5/pay/{attempt.id}")


def test_review_first_with_the_identity_check_checks_before_review(ctx: None) -> None:
    now = utcnow()
    row = batch(flow=Flow.REVIEW_FIRST, pay_opens_at=now, pay_closes_at=now + timedelta(days=5))
    s = student(row)
    attempt = submissions.create(db.session, s.user_id, s.photo_id, now)
    assert attempt.status == SubmissionStatus.VERIFYING and orders() == 0


def test_a_charging_batch_without_a_fee_is_refused_with_a_message_not_a_crash(ctx: None) -> None:
    s = student(batch(fee_fen=0))
    with pytest.raises(submissions.FeeMisconfiguredError, match="收费设置有误"):
        submissions.create(db.session, s.user_id, s.photo_id, utcnow())
    assert db.session.scalar(select(func.count()).select_from(Submission)) == 0


# --- windows: a second before and after each edge ------------------------------------------------


@pytest.mark.parametrize(
    ("offset", "accepted"),
    [
        (-SECOND, False),
        (timedelta(0), True),
        (timedelta(days=30) - SECOND, True),
        (timedelta(days=30), False),
    ],
)
def test_submitting_is_open_from_opens_at_until_closes_at(
    ctx: None, offset: timedelta, accepted: bool
) -> None:
    row = batch()
    s = student(row)
    at = row.opens_at + offset
    row.closes_at = row.opens_at + timedelta(days=30)
    db.session.commit()
    if accepted:
        assert submissions.create(db.session, s.user_id, s.photo_id, at).id
    else:
        with pytest.raises(submissions.BatchNotOpenError):
            submissions.create(db.session, s.user_id, s.photo_id, at)


@pytest.mark.parametrize(
    ("offset", "refusal"),
    [
        (-SECOND, "届时再来缴费"),
        (timedelta(0), None),
        (timedelta(days=5) - SECOND, None),
        (timedelta(days=5), "已截止"),
    ],
)
def test_paying_is_open_only_in_the_pay_window(ctx: None, offset: timedelta, refusal: str | None) -> None:
    now = utcnow()
    pay_opens = (now + timedelta(days=2)).replace(microsecond=0)
    row = batch(
        flow=Flow.REVIEW_FIRST,
        verify_identity=False,
        pay_opens_at=pay_opens,
        pay_closes_at=pay_opens + timedelta(days=5),
    )
    s = student(row)
    attempt = submissions.create(db.session, s.user_id, s.photo_id, now)
    reviews.decide(db.session, admin(), attempt.id, "approve", None, now, push=PUSH)
    found = db.session.get(Submission, attempt.id, populate_existing=True)
    assert found is not None
    at = pay_opens + offset
    if refusal is None:
        order = submissions.renew_order(db.session, found, at, "jsapi")
        # An order never outlives the window: a payment made on time cannot arrive after it.
        assert order.expires_at <= pay_opens + timedelta(days=5)
    else:
        with pytest.raises(submissions.PayWindowError, match=refusal) as refused:
            submissions.renew_order(db.session, found, at, "jsapi")
        assert "缴费时间为" in refused.value.message and "至" in refused.value.message


def test_the_pay_windows_close_voids_unpaid_approvals_and_tells_each_student_once(ctx: None) -> None:
    now = utcnow()
    row = batch(
        flow=Flow.REVIEW_FIRST,
        verify_identity=False,
        pay_opens_at=now - timedelta(days=1),
        pay_closes_at=now + timedelta(hours=1),
    )
    late = student(row, "o-late", "210101200101010011")
    paid = student(row, "o-paid", "11010519491231002X")
    staff = admin()
    attempts = {}
    for who in (late, paid):
        attempt = submissions.create(db.session, who.user_id, who.photo_id, now)
        reviews.decide(db.session, staff, attempt.id, "approve", None, now, push=PUSH)
        attempts[who.user_id] = attempt.id
    found = db.session.get(Submission, attempts[paid.user_id])
    assert found is not None
    order = submissions.renew_order(db.session, found, now, "jsapi")
    payments.apply_payment(db.session, paid_notice(order))

    assert pay_deadlines.void_overdue(db.session, now + timedelta(minutes=59), PUSH) == []
    closed = now + timedelta(hours=1)
    assert pay_deadlines.void_overdue(db.session, closed, PUSH) == [attempts[late.user_id]]
    assert pay_deadlines.void_overdue(db.session, closed + timedelta(minutes=1), PUSH) == []
    assert status(attempts[late.user_id]) == SubmissionStatus.VOID
    assert status(attempts[paid.user_id]) == SubmissionStatus.APPROVED
    assert [t for t in pushes_to("o-late") if "报名无效" in t] != []
    assert len([t for t in pushes_to("o-late") if "【审核结果通知】报名无效" in t]) == 1
    # Void is final in the batch: no new attempt.
    with pytest.raises(submissions.SubmissionFinalError, match="报名已无效"):
        submissions.create(db.session, late.user_id, late.photo_id, closed)


# --- fees per attempt or per batch -----------------------------------------------------------------


def test_a_resubmission_after_return_pays_again_only_where_each_attempt_pays(ctx: None) -> None:
    for per_attempt, openid, number in (
        (True, "o-each", "210101200101010011"),
        (False, "o-once", "11010519491231002X"),
    ):
        row = batch(fee_per_attempt=per_attempt, verify_identity=False)
        s = student(row, openid, number)
        first = submissions.create(db.session, s.user_id, s.photo_id, utcnow())
        payments.apply_payment(db.session, paid_notice(first.orders[0], transaction_id=f"4200{openid}"))
        assert status(first.id) == SubmissionStatus.PENDING_REVIEW
        reviews.decide(db.session, admin(), first.id, "return", "背景不符", utcnow(), push=PUSH)
        fixed = add_photo(s.user_id, row.id, original_sha256="f" * 64)
        db.session.commit()
        second = submissions.create(db.session, s.user_id, fixed.id, utcnow())
        if per_attempt:
            assert second.status == SubmissionStatus.AWAITING_PAYMENT and len(second.orders) == 1
        else:
            assert second.status == SubmissionStatus.PENDING_REVIEW and second.orders == []
            assert second.fee_paid_by_id == first.id


# --- locks per lock_on -------------------------------------------------------------------------------


def _change_name(user_id: int) -> None:
    identities.bind(
        db.session,
        pii_keyring(),
        user_id,
        IdentityInput("resident_id", "210101200101010011", "张三丰"),
        TODAY,
    )


def test_lock_on_pay_freezes_the_data_at_payment(ctx: None) -> None:
    s = student(batch(verify_identity=False))
    attempt = submissions.create(db.session, s.user_id, s.photo_id, utcnow())
    payments.apply_payment(db.session, paid_notice(attempt.orders[0]))
    assert identities.active(db.session, s.user_id).locked_at is not None  # type: ignore[union-attr]
    with pytest.raises(IdentityLockedError):
        _change_name(s.user_id)


def test_lock_on_approve_holds_the_data_during_review_and_freezes_it_at_approval(ctx: None) -> None:
    s = student(batch(flow=Flow.FREE, fee_fen=0, verify_identity=False, lock_on=LockOn.APPROVE))
    attempt = submissions.create(db.session, s.user_id, s.photo_id, utcnow())
    with pytest.raises(IdentityInUseError):
        _change_name(s.user_id)
    assert identities.active(db.session, s.user_id).locked_at is None  # type: ignore[union-attr]
    reviews.decide(db.session, admin(), attempt.id, "approve", None, utcnow(), push=PUSH)
    assert identities.active(db.session, s.user_id).locked_at is not None  # type: ignore[union-attr]
    assert enrollments.active(db.session, s.user_id).locked_at is not None  # type: ignore[union-attr]


def test_lock_on_approve_leaves_a_returned_student_free_to_correct(ctx: None) -> None:
    s = student(batch(flow=Flow.FREE, fee_fen=0, verify_identity=False, lock_on=LockOn.APPROVE))
    attempt = submissions.create(db.session, s.user_id, s.photo_id, utcnow())
    reviews.decide(db.session, admin(), attempt.id, "return", "姓名有误", utcnow(), push=PUSH)
    _change_name(s.user_id)  # no longer held, not frozen: the correction goes through


def test_lock_on_confirm_freezes_the_data_at_the_students_confirmation(ctx: None) -> None:
    row = batch(verify_identity=False, lock_on=LockOn.CONFIRM, pledge="以上信息真实准确", signature=True)
    s = student(row)
    attempt = submissions.create(db.session, s.user_id, s.photo_id, utcnow())
    payments.apply_payment(db.session, paid_notice(attempt.orders[0]))
    assert identities.active(db.session, s.user_id).locked_at is None  # type: ignore[union-attr]
    reviews.decide(db.session, admin(), attempt.id, "approve", None, utcnow(), push=PUSH)
    assert identities.active(db.session, s.user_id).locked_at is None  # type: ignore[union-attr]
    assert any("确认信息并签名" in text for text in pushes_to("o-flow"))
    # Approved, not yet confirmed: not frozen, but held; the student confirms what was approved.
    with pytest.raises(IdentityAwaitsConfirmationError, match="确认信息并签名"):
        _change_name(s.user_id)
    with pytest.raises(IdentityAwaitsConfirmationError):
        identities.unbind(db.session, s.user_id)
    other = batch(verify_identity=False)
    with pytest.raises(enrollments.EnrollmentLockedError, match="审核通过"):
        enrollments.link(db.session, s.user_id, other.id, utcnow())

    with pytest.raises(Exception, match="勾选承诺"):
        submissions.confirm(db.session, s.user_id, attempt.id, utcnow(), pledge=None, storage=photo_storage())
    confirmed = submissions.confirm(
        db.session,
        s.user_id,
        attempt.id,
        utcnow(),
        pledge=Pledge(accepted=True, signature_png=signature_png()),
        storage=photo_storage(),
    )
    assert confirmed.confirmed_at is not None and confirmed.signature_key is not None
    assert photo_storage().get(confirmed.signature_key) == signature_png()
    assert identities.active(db.session, s.user_id).locked_at is not None  # type: ignore[union-attr]
    with pytest.raises(IdentityLockedError):
        _change_name(s.user_id)
    # Confirming again changes nothing.
    again = submissions.confirm(
        db.session, s.user_id, attempt.id, utcnow(), pledge=None, storage=photo_storage()
    )
    assert again.confirmed_at == confirmed.confirmed_at


# --- notice and pledge at submission ---------------------------------------------------------------


def test_the_notice_must_be_acknowledged_once_before_submitting(ctx: None) -> None:
    s = student(batch(notice="请使用近期免冠照片。"))
    with pytest.raises(submissions.NoticeNotAcknowledgedError):
        submissions.create(db.session, s.user_id, s.photo_id, utcnow())
    first = enrollments.acknowledge_notice(db.session, s.user_id, utcnow()).notice_acked_at
    assert enrollments.acknowledge_notice(db.session, s.user_id, utcnow()).notice_acked_at == first
    assert submissions.create(db.session, s.user_id, s.photo_id, utcnow()).id


def test_a_pledge_made_at_submission_is_required_and_kept(ctx: None) -> None:
    from app.services.pledges import PledgeError

    row = batch(
        flow=Flow.FREE,
        fee_fen=0,
        verify_identity=False,
        lock_on=LockOn.APPROVE,
        pledge="我担保以上信息真实准确",
    )
    s = student(row)
    with pytest.raises(PledgeError, match="我担保以上信息真实准确"):
        submissions.create(db.session, s.user_id, s.photo_id, utcnow(), pledge=Pledge(accepted=False))
    assert db.session.scalar(select(func.count()).select_from(Submission)) == 0
    attempt = submissions.create(db.session, s.user_id, s.photo_id, utcnow(), pledge=Pledge(accepted=True))
    assert attempt.pledged_at is not None and attempt.signature_key is None


def test_times_in_messages_are_beijing_time(ctx: None) -> None:
    from app.services import wording

    opens = datetime(2026, 10, 15, 0, 0, tzinfo=UTC) - timedelta(hours=8)  # 10月15日 00:00 Beijing
    closes = datetime(2026, 10, 20, 12, 0, tzinfo=UTC)  # 20:00 Beijing
    assert wording.window_text(opens, closes) == "10月15日至10月20日20:00"
