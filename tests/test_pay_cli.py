"""`flask pay reconcile DATE` against the sandbox's trade bill, and `flask pay refund`."""

from __future__ import annotations

from datetime import datetime, timedelta
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
from sqlalchemy import select

from app.extensions import db
from app.integrations import pay_client
from app.services import payment_sync, payments, submissions
from app.services.localtime import BEIJING
from models import OrderStatus, OutboxItem, PaymentOrder, Refund, Submission, SubmissionStatus, utcnow


def _today() -> str:
    return datetime.now(BEIJING).date().isoformat()


def _paid(app: Flask, openid: str) -> tuple[int, str]:
    submission_id, out_trade_no = ordered_at_sandbox(app, openid)
    pay_at_sandbox(app, out_trade_no, openid)
    with app.app_context():
        assert payment_sync.sync_order(db.session, pay_client(), out_trade_no) == "paid"
        db.session.remove()
    return submission_id, out_trade_no


def _reconcile(app: Flask, day: str | None = None) -> Any:
    return app.test_cli_runner().invoke(args=["pay", "reconcile", day or _today()])


def test_a_matching_day_exits_zero(app_factory: Any) -> None:
    app = sync_app(app_factory)
    set_pay_faults(app, drop_notifications=True)
    submission_id, refunded = _paid(app, "o-cli-1")
    runner = app.test_cli_runner()
    assert runner.invoke(args=["pay", "refund", refunded, "--reason", "重复缴费"]).exit_code == 0
    with app.app_context():
        refund = db.session.scalars(select(Refund)).one()
        client = pay_client()
        state = client.refund(
            refunded, refund.out_refund_no, refund.amount_fen, refund.amount_fen, refund.reason
        )
        payments.apply_refund(db.session, state.out_refund_no, state.refund_id, "SUCCESS", state.success_time)
        # The student's next attempt, paid the same day.
        first = db.session.get(Submission, submission_id)
        assert first is not None
        second = submissions.create(db.session, first.user_id, first.photo_id, utcnow())
        order = second.orders[0]
        client.create_jsapi(
            order.out_trade_no, "证件照核验服务费", order.amount_fen, "o-cli-1", order.expires_at
        )
        again = order.out_trade_no
        db.session.remove()
    pay_at_sandbox(app, again, "o-cli-1")
    with app.app_context():
        assert payment_sync.sync_order(db.session, pay_client(), again) == "paid"
    result = _reconcile(app)
    assert result.exit_code == 0, result.output
    assert "支付 2 笔，退款 1 笔" in result.output and "无差异" in result.output


def test_an_order_we_miss_and_an_amount_difference_are_listed(app_factory: Any) -> None:
    app = sync_app(app_factory)
    set_pay_faults(app, drop_notifications=True)
    _, ours = _paid(app, "o-cli-3")
    with app.app_context():
        # A payment WeChat Pay took for an order this service never recorded.
        stray = "PSTRAY0000000001"
        pay_client().create_jsapi(
            stray, "证件照核验服务费", 200, "o-cli-4", datetime.now(BEIJING) + timedelta(minutes=3)
        )
        order = db.session.scalars(select(PaymentOrder).where(PaymentOrder.out_trade_no == ours)).one()
        order.amount_fen = 300  # and one whose amount differs
        db.session.commit()
    pay_at_sandbox(app, stray, "o-cli-4")
    result = _reconcile(app)
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    assert any(stray in line and "我方缺少该订单" in line for line in lines), result.output
    assert any(ours in line and "金额不一致" in line and "3.00" in line and "2.00" in line for line in lines)
    assert "2 处差异" in result.output


def test_paid_here_but_missing_from_the_bill(app_factory: Any) -> None:
    app = sync_app(app_factory)
    _, out_trade_no = _paid(app, "o-cli-5")
    yesterday = (datetime.now(BEIJING) - timedelta(days=1)).date().isoformat()
    with app.app_context():
        order = db.session.scalars(select(PaymentOrder)).one()
        order.paid_at = order.paid_at - timedelta(days=1)  # type: ignore[operator]
        db.session.commit()
    result = _reconcile(app, yesterday)
    assert result.exit_code == 1 and out_trade_no in result.output and "账单缺少" in result.output
    assert "支付日期不一致" in _reconcile(app).output


def test_a_bad_date_is_refused(app_factory: Any) -> None:
    result = _reconcile(sync_app(app_factory), "2026-13-01")
    assert result.exit_code == 2 and "YYYY-MM-DD" in result.output


def test_manual_refund_creates_the_refund_and_its_job(app_factory: Any) -> None:
    app = sync_app(app_factory)
    submission_id, out_trade_no = _paid(app, "o-cli-6")
    runner = app.test_cli_runner()
    result = runner.invoke(args=["pay", "refund", out_trade_no, "--reason", "学生申请退款"])
    assert result.exit_code == 0, result.output
    assert out_trade_no in result.output and "2.00 元" in result.output
    with app.app_context():
        refund = db.session.scalars(select(Refund)).one()
        assert (
            refund.requested_by == "staff:cli"
            and refund.amount_fen == 200
            and refund.reason == "学生申请退款"
        )
        jobs = db.session.scalars(select(OutboxItem).where(OutboxItem.kind == "payments.refund")).all()
        assert [j.payload["refund_id"] for j in jobs] == [refund.id]
    assert load_submission(app, submission_id).status == SubmissionStatus.REFUNDED
    again = runner.invoke(args=["pay", "refund", out_trade_no, "--reason", "再来一次"])
    assert again.exit_code == 1 and "退款在处理中" in again.output
    with app.app_context():
        assert len(db.session.scalars(select(Refund)).all()) == 1


def test_manual_refund_refuses_unpaid_and_unknown_orders(app_factory: Any) -> None:
    app = sync_app(app_factory)
    _, out_trade_no = ordered_at_sandbox(app, "o-cli-7")
    runner = app.test_cli_runner()
    unpaid = runner.invoke(args=["pay", "refund", out_trade_no, "--reason", "x"])
    assert unpaid.exit_code == 1 and "未支付" in unpaid.output
    assert load_order(app, out_trade_no).status == OrderStatus.OPEN
    unknown = runner.invoke(args=["pay", "refund", "PNOSUCHORDER", "--reason", "x"])
    assert unknown.exit_code == 1 and "不存在" in unknown.output
    with app.app_context():
        assert db.session.scalars(select(Refund)).all() == []
