"""/pay/notify with the real handler (app/services/pay_notifications.py → payments.apply_payment), over
HTTP: signed, encrypted notifications built the way WeChat Pay builds them (tests/pay_support.py)."""

from __future__ import annotations

import threading
from typing import Any

import requests
from flask import Flask
from pay_students import student
from pay_support import envelope_bytes, post_notify, resource_for, signed_headers
from sqlalchemy import func, select

from app.extensions import db
from app.services import submissions
from models import OutboxItem, PaymentEvent, PaymentOrder, Submission, SubmissionStatus, utcnow


def _attempt(app: Flask) -> tuple[int, str]:
    with app.app_context():
        user_id, photo_id = student("o-notify")
        attempt = submissions.create(db.session, user_id, photo_id, utcnow())
        found = (attempt.id, attempt.orders[0].out_trade_no)
        db.session.remove()
        return found


def _signed(app: Flask, out_trade_no: str, **changes: Any) -> tuple[bytes, dict[str, str]]:
    body = envelope_bytes(app, resource_for(app, out_trade_no=out_trade_no, **changes))
    return body, signed_headers(app, body)


def _state(app: Flask, submission_id: int) -> tuple[SubmissionStatus, int]:
    with app.app_context():
        status = db.session.scalar(select(Submission.status).where(Submission.id == submission_id))
        jobs = db.session.scalar(select(func.count()).select_from(OutboxItem)) or 0
        db.session.remove()
        assert status is not None
        return status, jobs


def test_a_wrong_amount_is_refused_and_changes_nothing(app_factory: Any, live_server: Any) -> None:
    app = app_factory(WECHAT_PAY_SANDBOX_NOTIFY_THREAD=False)
    submission_id, out_trade_no = _attempt(app)
    body, headers = _signed(app, out_trade_no, amount={"total": 1, "payer_total": 1, "currency": "CNY"})
    answer = post_notify(live_server.url, body, headers)
    assert answer.status_code == 400 and answer.json()["code"] == "FAIL"
    assert _state(app, submission_id) == (SubmissionStatus.AWAITING_PAYMENT, 0)
    with app.app_context():
        assert db.session.scalar(select(PaymentOrder.status)) == "open"
        assert db.session.scalar(select(PaymentEvent.outcome)).startswith("rejected: amount")


def test_the_same_notification_ten_times_at_once_changes_the_state_once(
    app_factory: Any, live_server: Any
) -> None:
    app = app_factory(WECHAT_PAY_SANDBOX_NOTIFY_THREAD=False)
    submission_id, out_trade_no = _attempt(app)
    body, headers = _signed(app, out_trade_no)
    barrier = threading.Barrier(10)
    statuses: list[int] = []

    def deliver() -> None:
        barrier.wait()
        statuses.append(
            requests.post(f"{live_server.url}/pay/notify", data=body, headers=headers, timeout=20).status_code
        )

    threads = [threading.Thread(target=deliver) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert statuses == [204] * 10
    assert _state(app, submission_id) == (SubmissionStatus.VERIFYING, 1)  # one verification job
    with app.app_context():
        outcomes = sorted(db.session.scalars(select(PaymentEvent.outcome)))
    assert outcomes == ["applied"] + ["duplicate"] * 9


def test_a_notification_before_its_order_is_committed_is_retried_then_applied(
    app_factory: Any, live_server: Any
) -> None:
    app = app_factory(WECHAT_PAY_SANDBOX_NOTIFY_THREAD=False)
    early_no = submissions.new_out_trade_no(utcnow())
    body, headers = _signed(app, early_no)
    refused = post_notify(live_server.url, body, headers)
    assert refused.status_code == 500 and refused.json()["code"] == "FAIL"  # WeChat Pay will retry
    with app.app_context():
        user_id, photo_id = student("o-early")
        attempt = submissions.create(db.session, user_id, photo_id, utcnow())
        attempt.orders[0].out_trade_no = early_no  # the order whose commit was still under way
        db.session.commit()
        submission_id = attempt.id
        db.session.remove()
    retried = post_notify(live_server.url, body, signed_headers(app, body))
    assert retried.status_code == 204
    assert _state(app, submission_id) == (SubmissionStatus.VERIFYING, 1)
