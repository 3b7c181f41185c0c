"""Submissions and payments, against the real database: the rules the pay endpoints call."""

from __future__ import annotations

import threading
from datetime import date, timedelta
from typing import Any

import pytest
from flask import Flask
from pay_students import paid_notice, student
from sqlalchemy import func, select

from app.extensions import db
from app.services import enrollments, payment_sync, payments, submissions
from models import (
    Identity,
    OrderStatus,
    OutboxItem,
    PaymentEvent,
    Submission,
    SubmissionStatus,
    User,
    utcnow,
)

TODAY = date.today()


@pytest.fixture
def ctx(app: Flask) -> Any:
    with app.app_context():
        yield
        db.session.remove()


def test_an_attempt_needs_a_complete_file_and_a_passing_photo(ctx: Any) -> None:
    lonely = User(openid="o-nobody")
    db.session.add(lonely)
    db.session.commit()
    with pytest.raises(submissions.SubmissionIncompleteError):
        submissions.create(db.session, lonely.id, 1, utcnow())
    user_id, failed_photo = student(passed=False)
    with pytest.raises(submissions.PhotoNotUsableError, match="通过检查的照片"):
        submissions.create(db.session, user_id, failed_photo, utcnow())
    assert db.session.scalar(select(func.count()).select_from(Submission)) == 0


def test_creating_an_attempt_opens_an_order_for_the_batch_fee(ctx: Any) -> None:
    user_id, photo_id = student()
    now = utcnow()
    attempt = submissions.create(db.session, user_id, photo_id, now)
    assert attempt.status == SubmissionStatus.AWAITING_PAYMENT
    [order] = attempt.orders
    assert (order.amount_fen, order.currency, order.status) == (200, "CNY", OrderStatus.OPEN)
    assert order.expires_at == now + timedelta(minutes=3)
    assert 6 <= len(order.out_trade_no) <= 32 and order.out_trade_no.isalnum()
    assert submissions.current_order(attempt, now) is order
    assert submissions.current_order(attempt, now + timedelta(minutes=4)) is None
    with pytest.raises(submissions.SubmissionInFlightError, match="待缴费"):
        submissions.create(db.session, user_id, photo_id, now)


def test_after_a_final_refusal_no_new_attempt_in_that_batch(ctx: Any) -> None:
    user_id, photo_id = student()
    attempt = submissions.create(db.session, user_id, photo_id, utcnow())
    attempt.status = SubmissionStatus.REFUSED
    db.session.commit()
    with pytest.raises(submissions.SubmissionFinalError, match="最终结果"):
        submissions.create(db.session, user_id, photo_id, utcnow())


def test_a_payment_moves_the_attempt_to_verifying_locks_and_queues_the_check(ctx: Any) -> None:
    user_id, photo_id = student()
    attempt = submissions.create(db.session, user_id, photo_id, utcnow())
    order = attempt.orders[0]
    assert payments.apply_payment(db.session, paid_notice(order)) == "applied"
    db.session.expire_all()
    assert attempt.status == SubmissionStatus.VERIFYING and attempt.paid_at is not None
    assert order.status == OrderStatus.PAID and order.transaction_id
    assert db.session.scalar(select(Identity.locked_at).where(Identity.active)) is not None
    assert enrollments.active(db.session, user_id).locked_at is not None  # type: ignore[union-attr]
    jobs = db.session.scalars(select(OutboxItem)).all()
    assert [(j.kind, j.payload) for j in jobs] == [("submissions.verify", {"submission_id": attempt.id})]
    # The same notification again (WeChat Pay retries until acknowledged) changes nothing.
    assert payments.apply_payment(db.session, paid_notice(order, event_id="EV-1")) == "duplicate"
    assert db.session.scalar(select(func.count()).select_from(OutboxItem)) == 1
    outcomes = db.session.scalars(select(PaymentEvent.outcome).order_by(PaymentEvent.id)).all()
    assert outcomes == ["applied", "duplicate"]


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"amount_fen": 1}, payments.PaymentRejectedError),
        ({"currency": "USD"}, payments.PaymentRejectedError),
        ({"out_trade_no": "PNOSUCHORDER0001"}, payments.UnknownOrderError),
    ],
)
def test_a_notice_that_does_not_match_changes_nothing(
    ctx: Any, changes: dict[str, Any], error: type[Exception]
) -> None:
    user_id, photo_id = student()
    attempt = submissions.create(db.session, user_id, photo_id, utcnow())
    with pytest.raises(error):
        payments.apply_payment(db.session, paid_notice(attempt.orders[0], **changes))
    db.session.expire_all()
    assert attempt.status == SubmissionStatus.AWAITING_PAYMENT
    assert attempt.orders[0].status == OrderStatus.OPEN
    assert db.session.scalar(select(func.count()).select_from(OutboxItem)) == 0
    assert db.session.scalar(select(PaymentEvent.outcome)).startswith("rejected")


def test_a_second_transaction_for_a_paid_order_is_rejected(ctx: Any) -> None:
    user_id, photo_id = student()
    order = submissions.create(db.session, user_id, photo_id, utcnow()).orders[0]
    payments.apply_payment(db.session, paid_notice(order))
    with pytest.raises(payments.PaymentRejectedError):
        payments.apply_payment(db.session, paid_notice(order, transaction_id="4200000009999"))


def test_ten_copies_at_once_apply_once(app: Flask) -> None:
    with app.app_context():
        user_id, photo_id = student()
        order = submissions.create(db.session, user_id, photo_id, utcnow()).orders[0]
        notice = paid_notice(order)
        db.session.remove()
    results: list[str] = []
    barrier = threading.Barrier(10)

    def deliver() -> None:
        with app.app_context():
            barrier.wait()
            try:
                results.append(payments.apply_payment(db.session, notice))
            finally:
                db.session.remove()

    threads = [threading.Thread(target=deliver) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert sorted(results) == ["applied"] + ["duplicate"] * 9
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(OutboxItem)) == 1
        assert db.session.scalar(select(Submission.status)) == SubmissionStatus.VERIFYING


def test_expired_orders_close_and_a_late_payment_still_counts(ctx: Any) -> None:
    user_id, photo_id = student()
    start = utcnow()
    attempt = submissions.create(db.session, user_id, photo_id, start)
    order = attempt.orders[0]
    assert payment_sync.expire_orders(db.session, start + timedelta(minutes=2)) == []
    assert payment_sync.expire_orders(db.session, start + timedelta(minutes=3)) == [order.out_trade_no]
    db.session.expire_all()
    assert order.status == OrderStatus.CLOSED
    fresh = submissions.renew_order(db.session, attempt, start + timedelta(minutes=4), "native")
    assert fresh.channel == "native" and fresh.out_trade_no != order.out_trade_no
    # The student had paid the old QR code just before it expired: the money counts.
    assert payments.apply_payment(db.session, paid_notice(order)) == "applied"
    db.session.expire_all()
    assert attempt.status == SubmissionStatus.VERIFYING


def test_a_second_order_of_a_paid_attempt_is_refunded_not_verified_twice(ctx: Any) -> None:
    from models import Refund

    user_id, photo_id = student()
    attempt = submissions.create(db.session, user_id, photo_id, utcnow())
    first = attempt.orders[0]
    second = submissions.renew_order(db.session, attempt, utcnow(), "native")
    assert payments.apply_payment(db.session, paid_notice(first)) == "applied"
    assert payments.apply_payment(db.session, paid_notice(second, transaction_id="4200000002")) == "applied"
    refund = db.session.scalars(select(Refund)).one()
    assert (refund.order_id, refund.amount_fen, refund.requested_by) == (second.id, 200, "system")
    kinds = sorted(j.kind for j in db.session.scalars(select(OutboxItem)))
    assert kinds == ["payments.refund", "submissions.verify"]


def test_a_late_payment_for_a_replaced_attempt_is_refunded(ctx: Any) -> None:
    from models import Refund

    user_id, photo_id = student()
    old = submissions.create(db.session, user_id, photo_id, utcnow())
    old.status = SubmissionStatus.CANCELLED
    db.session.commit()
    new = submissions.create(db.session, user_id, photo_id, utcnow())
    assert payments.apply_payment(db.session, paid_notice(old.orders[0])) == "applied"
    db.session.expire_all()
    assert (old.status, new.status) == (SubmissionStatus.CANCELLED, SubmissionStatus.AWAITING_PAYMENT)
    assert db.session.scalars(select(Refund.order_id)).one() == old.orders[0].id
