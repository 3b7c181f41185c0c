"""The payment flow end to end through the sandbox's WeChat Pay, over HTTP: pay on the sheet → a
signed, encrypted notification to /pay/notify → 核验中 → the worker's identity check → 未审核; and
an outage of the verification provider ending in a real refund."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from pay_students import student
from sqlalchemy import select

from app.extensions import db
from app.integrations import pay_client, redis_client
from app.jobs.worker import run_due
from app.sandbox.pay import notifications as sandbox_notify
from app.services import submissions
from models import (
    OrderStatus,
    OutboxItem,
    PaymentOrder,
    Refund,
    RefundStatus,
    Submission,
    SubmissionStatus,
    utcnow,
)


def _paid_on_the_sheet(app: Flask, client: FlaskClient) -> int:
    with app.app_context():
        user_id, photo_id = student("o-payer")
        attempt = submissions.create(db.session, user_id, photo_id, utcnow())
        order = attempt.orders[0]
        params = pay_client().create_jsapi(
            order.out_trade_no, "证件照核验服务费", order.amount_fen, "o-payer", order.expires_at
        )
        assert params["package"].startswith("prepay_id=")
        out_trade_no, submission_id = order.out_trade_no, attempt.id
    paid = client.post(f"/_sandbox/pay/{out_trade_no}", json={"action": "pay", "openid": "o-payer"})
    assert paid.status_code == 200, paid.get_json()
    with app.app_context():
        deliveries = sandbox_notify.deliver_due_notifications(redis_client())
    assert deliveries and all(d.get("status") == 204 for d in deliveries), deliveries
    return submission_id


def _status(app: Flask, submission_id: int) -> SubmissionStatus:
    with app.app_context():
        attempt = db.session.get(Submission, submission_id)
        assert attempt is not None
        status = attempt.status
        db.session.remove()
        return status


def test_pay_then_verify_then_review(app_factory: Any) -> None:
    app = app_factory(WECHAT_PAY_SANDBOX_NOTIFY_THREAD=False)
    client = app.test_client()
    submission_id = _paid_on_the_sheet(app, client)
    assert _status(app, submission_id) == SubmissionStatus.VERIFYING
    while run_due(app):
        pass
    assert _status(app, submission_id) == SubmissionStatus.PENDING_REVIEW
    with app.app_context():
        order = db.session.scalars(select(PaymentOrder)).one()
        assert order.status == OrderStatus.PAID and order.transaction_id


def test_a_provider_outage_ends_in_a_refund_at_wechat_pay(app_factory: Any) -> None:
    app = app_factory(WECHAT_PAY_SANDBOX_NOTIFY_THREAD=False, VERIFY_MAX_ATTEMPTS=2)
    client = app.test_client()
    roster = {"id_number": "210101200101010011", "name": "张三", "result": "error"}
    assert client.post("/_sandbox/roster", json=roster).status_code in (200, 201)
    submission_id = _paid_on_the_sheet(app, client)
    for _ in range(6):  # the worker's retries, without waiting for the backoff
        with app.app_context():
            for item in db.session.scalars(select(OutboxItem).where(OutboxItem.status == "pending")):
                item.next_attempt_at = utcnow()
            db.session.commit()
            db.session.remove()
        run_due(app)
    assert _status(app, submission_id) == SubmissionStatus.REFUNDED
    with app.app_context():
        sandbox_notify.deliver_due_notifications(redis_client())  # REFUND.SUCCESS
        refund = db.session.scalars(select(Refund)).one()
        assert refund.status == RefundStatus.SUCCEEDED and refund.refund_id
        assert db.session.scalars(select(PaymentOrder.status)).one() == OrderStatus.REFUNDED
        texts = [i.payload.get("text", "") for i in db.session.scalars(select(OutboxItem))]
        assert any("已原路退回" in t for t in texts)
