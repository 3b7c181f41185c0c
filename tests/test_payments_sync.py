"""查询缴费结果 and the WeChat Pay upkeep, against the sandbox's WeChat Pay over HTTP: an order whose
notification never comes is completed by a query (exactly once, also when the notification turns
up later); expired orders are closed here and there, a last-second payment still counts; unpaid
attempts are cancelled after a day; a refund stuck in "processing" is completed by a query."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Flask
from pay_students import (
    load_order,
    load_submission,
    ordered_at_sandbox,
    pay_at_sandbox,
    set_pay_faults,
    sync_app,
)
from sqlalchemy import func, select

from app.extensions import db
from app.integrations import pay_client, redis_client
from app.jobs import periodic
from app.jobs.worker import run_due
from app.sandbox import store
from app.sandbox.pay import notifications as sandbox_notify
from app.sandbox.pay import orders as sandbox_orders
from app.services import payment_sync, payments, submissions
from app.services.job_kinds import JobKind
from models import (
    OrderStatus,
    OutboxItem,
    OutboxStatus,
    PaymentEvent,
    PaymentOrder,
    Refund,
    RefundStatus,
    Submission,
    SubmissionStatus,
    utcnow,
)


def _drain(app: Flask) -> None:
    while run_due(app):
        pass


def _verify_jobs(app: Flask, submission_id: int) -> int:
    with app.app_context():
        count = db.session.scalar(
            select(func.count())
            .select_from(OutboxItem)
            .where(
                OutboxItem.kind == "submissions.verify",
                OutboxItem.idempotency_key == f"verify:{submission_id}",
            )
        )
        db.session.remove()
        return int(count or 0)


def _queue_queries(app: Flask, seconds_later: float) -> int:
    with app.app_context():
        queued = payment_sync.queue_order_queries(
            db.session, utcnow() + timedelta(seconds=seconds_later), 30, timedelta(minutes=10)
        )
        db.session.remove()
        return queued


def test_a_payment_whose_notification_is_late_is_completed_by_the_query_exactly_once(
    app_factory: Any,
) -> None:
    app = sync_app(app_factory)
    set_pay_faults(app, notify_delay_seconds=3600)  # the notification comes an hour late
    submission_id, out_trade_no = ordered_at_sandbox(app)
    pay_at_sandbox(app, out_trade_no)
    assert _queue_queries(app, 10) == 0  # too early: the notification usually comes within seconds
    assert load_submission(app, submission_id).status == SubmissionStatus.AWAITING_PAYMENT
    assert _queue_queries(app, 31) == 1
    assert _queue_queries(app, 31) == 0  # another worker, the same moment: queued once
    with app.app_context():
        run_due(app, limit=1)  # the query only
    assert load_submission(app, submission_id).status == SubmissionStatus.VERIFYING
    order = load_order(app, out_trade_no)
    assert order.status == OrderStatus.PAID and order.transaction_id and order.paid_at
    assert _verify_jobs(app, submission_id) == 1
    # The late notification arrives: acknowledged, nothing applied twice.
    with app.app_context():
        r = redis_client()
        delivered = sandbox_notify.deliver_due_notifications(r, store.now(r) + 3601)
    assert [d["status"] for d in delivered] == [204]
    assert _verify_jobs(app, submission_id) == 1
    with app.app_context():
        outcomes = db.session.scalars(
            select(PaymentEvent.source + ":" + PaymentEvent.outcome).where(
                PaymentEvent.out_trade_no == out_trade_no
            )
        ).all()
    assert sorted(outcomes) == ["notify:duplicate", "query:applied"]
    _drain(app)
    assert load_submission(app, submission_id).status == SubmissionStatus.PENDING_REVIEW


def test_a_dropped_notification_and_the_worker_loop(app_factory: Any) -> None:
    """The periodic task as the worker runs it (no hand-picked clock): the query goes through the
    outbox once the order is old enough."""
    app = sync_app(app_factory)
    set_pay_faults(app, drop_notifications=True)
    submission_id, out_trade_no = ordered_at_sandbox(app)
    pay_at_sandbox(app, out_trade_no)
    with app.app_context():
        db.session.execute(
            PaymentOrder.__table__.update()  # type: ignore[attr-defined]
            .where(PaymentOrder.out_trade_no == out_trade_no)
            .values(created_at=utcnow() - timedelta(seconds=40))
        )
        db.session.commit()
    runner = periodic.PeriodicRunner(app)
    runner.tick()
    _drain(app)
    assert load_submission(app, submission_id).status == SubmissionStatus.PENDING_REVIEW
    assert _verify_jobs(app, submission_id) == 1


def test_sync_order_reports_pending_and_closed(app_factory: Any) -> None:
    app = sync_app(app_factory)
    submission_id, out_trade_no = ordered_at_sandbox(app)
    with app.app_context():
        assert payment_sync.sync_order(db.session, pay_client(), out_trade_no) == "pending"
        pay_client().close(out_trade_no)
        assert payment_sync.sync_order(db.session, pay_client(), out_trade_no) == "closed"
        seen = db.session.scalars(
            select(PaymentEvent.trade_state).where(
                PaymentEvent.out_trade_no == out_trade_no, PaymentEvent.source == "query"
            )
        ).all()
    assert seen == ["NOTPAY", "CLOSED"]
    assert load_order(app, out_trade_no).status == OrderStatus.CLOSED
    assert load_submission(app, submission_id).status == SubmissionStatus.AWAITING_PAYMENT


def test_a_wechat_pay_outage_is_retried_later_and_never_stops_the_worker(app_factory: Any) -> None:
    app = sync_app(app_factory)
    set_pay_faults(app, drop_notifications=True)
    submission_id, out_trade_no = ordered_at_sandbox(app)
    pay_at_sandbox(app, out_trade_no)
    assert _queue_queries(app, 31) == 1
    set_pay_faults(app, fail_500=5)
    run_due(app)  # must not raise
    with app.app_context():
        item = db.session.scalars(select(OutboxItem).where(OutboxItem.kind == JobKind.SYNC_ORDER)).one()
        assert (
            item.status == OutboxStatus.PENDING
            and item.attempts == 1
            and "SYSTEM_ERROR" in (item.last_error or "")
        )
        item.next_attempt_at = utcnow()
        db.session.commit()
    set_pay_faults(app, fail_500=None)
    run_due(app, limit=1)
    assert load_submission(app, submission_id).status == SubmissionStatus.VERIFYING


def test_expired_orders_are_closed_here_and_at_wechat_pay(app_factory: Any) -> None:
    app = sync_app(app_factory)
    submission_id, out_trade_no = ordered_at_sandbox(app)
    order = load_order(app, out_trade_no)
    with app.app_context():
        assert payment_sync.close_expired_orders(db.session, order.expires_at - timedelta(seconds=1)) == []
        later = order.expires_at + timedelta(seconds=1)
        assert payment_sync.close_expired_orders(db.session, later) == [out_trade_no]
        assert payment_sync.close_expired_orders(db.session, later) == []  # a second worker: nothing
    assert load_order(app, out_trade_no).status == OrderStatus.CLOSED
    _drain(app)
    with app.app_context():
        there = sandbox_orders.get_order(redis_client(), pay_client().config.mchid, out_trade_no)
    assert there is not None and there["trade_state"] == "CLOSED" and there["closed_by"] == "merchant"
    assert load_submission(app, submission_id).status == SubmissionStatus.AWAITING_PAYMENT


def test_a_payment_in_the_last_second_is_applied_instead_of_closed(app_factory: Any) -> None:
    app = sync_app(app_factory)
    set_pay_faults(app, drop_notifications=True)
    submission_id, out_trade_no = ordered_at_sandbox(app)
    pay_at_sandbox(app, out_trade_no)  # paid, and WeChat Pay's word has not come when the expiry job runs
    order = load_order(app, out_trade_no)
    with app.app_context():
        assert payment_sync.close_expired_orders(db.session, order.expires_at + timedelta(seconds=1)) == [
            out_trade_no
        ]
    assert load_order(app, out_trade_no).status == OrderStatus.CLOSED
    with app.app_context():
        run_due(app, limit=1)  # the close: ORDERPAID → query → applied
    assert load_order(app, out_trade_no).status == OrderStatus.PAID
    assert load_submission(app, submission_id).status == SubmissionStatus.VERIFYING
    assert _verify_jobs(app, submission_id) == 1


def test_unpaid_attempts_are_cancelled_a_day_after_their_last_order_expired(app_factory: Any) -> None:
    app = sync_app(app_factory)
    submission_id, out_trade_no = ordered_at_sandbox(app)
    order = load_order(app, out_trade_no)
    with app.app_context():
        payment_sync.close_expired_orders(db.session, order.expires_at + timedelta(seconds=1))
        assert (
            payment_sync.cancel_unpaid(
                db.session, order.expires_at + timedelta(hours=23), timedelta(hours=24)
            )
            == []
        )
        later = order.expires_at + timedelta(hours=24, seconds=1)
        assert payment_sync.cancel_unpaid(db.session, later, timedelta(hours=24)) == [submission_id]
        assert payment_sync.cancel_unpaid(db.session, later, timedelta(hours=24)) == []
    attempt = load_submission(app, submission_id)
    assert attempt.status == SubmissionStatus.CANCELLED
    assert attempt.status_reason and "24 小时未缴费" in attempt.status_reason


def test_an_attempt_with_a_fresh_order_is_not_cancelled(app_factory: Any) -> None:
    app = sync_app(app_factory)
    submission_id, out_trade_no = ordered_at_sandbox(app)
    order = load_order(app, out_trade_no)
    with app.app_context():
        payment_sync.close_expired_orders(db.session, order.expires_at + timedelta(seconds=1))
        attempt = db.session.get(Submission, submission_id)
        assert attempt is not None
        submissions.renew_order(db.session, attempt, order.expires_at + timedelta(hours=23), "native")
        later = order.expires_at + timedelta(hours=25)
        assert payment_sync.cancel_unpaid(db.session, later, timedelta(hours=24)) == []
    assert load_submission(app, submission_id).status == SubmissionStatus.AWAITING_PAYMENT


def test_a_refund_stuck_in_processing_is_completed_by_a_query(app_factory: Any) -> None:
    app = sync_app(app_factory)
    set_pay_faults(app, drop_notifications=True)
    submission_id, out_trade_no = ordered_at_sandbox(app)
    pay_at_sandbox(app, out_trade_no)
    with app.app_context():
        assert payment_sync.sync_order(db.session, pay_client(), out_trade_no) == "paid"
        done = payments.request_refund(db.session, out_trade_no, "测试退款", "staff:test")
        db.session.remove()
    with app.app_context():
        for item in db.session.scalars(select(OutboxItem).where(OutboxItem.kind != JobKind.REFUND)):
            item.status = OutboxStatus.DONE  # only the refund matters here
        db.session.commit()
    _drain(app)
    with app.app_context():
        refund = db.session.get(Refund, done.refund_id)
        assert refund is not None and refund.status == RefundStatus.PROCESSING  # REFUND.SUCCESS was dropped
        assert payment_sync.queue_refund_queries(db.session, utcnow(), timedelta(minutes=10)) == 0
        later = utcnow() + timedelta(minutes=11)
        assert payment_sync.queue_refund_queries(db.session, later, timedelta(minutes=10)) == 1
        assert payment_sync.queue_refund_queries(db.session, later, timedelta(minutes=10)) == 0
        db.session.remove()
    _drain(app)
    with app.app_context():
        refund = db.session.get(Refund, done.refund_id)
        assert refund is not None and refund.status == RefundStatus.SUCCEEDED and refund.refund_id
        assert refund.succeeded_at is not None
        assert (
            db.session.scalar(select(PaymentOrder.status).where(PaymentOrder.out_trade_no == out_trade_no))
            == OrderStatus.REFUNDED
        )
    assert load_submission(app, submission_id).status == SubmissionStatus.REFUNDED
