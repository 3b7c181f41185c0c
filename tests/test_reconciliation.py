"""Reconciliation against the trade bill, as a service: every kind of difference on both sides."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from flask import Flask
from pay_students import student

from app.extensions import db
from app.services import payments, reconciliation, submissions
from app.services.reconciliation import Difference
from models import OrderStatus, PaymentOrder, RefundStatus, utcnow

DAY = date(2026, 11, 20)
NOON = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)  # 12:00 in Beijing


@pytest.fixture
def ctx(app: Flask) -> Any:
    with app.app_context():
        yield
        db.session.remove()


def _order(
    submission_id: int, number: str, paid_at: datetime | None, transaction_id: str | None
) -> PaymentOrder:
    order = PaymentOrder(
        submission_id=submission_id,
        out_trade_no=number,
        channel="jsapi",
        amount_fen=200,
        status=OrderStatus.PAID if paid_at else OrderStatus.CLOSED,
        expires_at=NOON,
        transaction_id=transaction_id,
        paid_at=paid_at,
    )
    db.session.add(order)
    return order


def _sale(number: str, fen: int = 200, transaction_id: str = "", settlement_fen: int | None = None) -> Any:
    settled = fen if settlement_fen is None else settlement_fen
    return SimpleNamespace(
        trade_state="SUCCESS",
        out_trade_no=number,
        order_fen=fen,
        settlement_fen=settled,
        transaction_id=transaction_id,
    )


def _refund_line(number: str, fen: int, out_trade_no: str) -> Any:
    return SimpleNamespace(
        trade_state="REFUND", out_refund_no=number, refund_fen=fen, out_trade_no=out_trade_no
    )


def test_every_difference_on_either_side_is_listed_payments_first(ctx: Any) -> None:
    user_id, photo_id = student()
    attempt = submissions.create(db.session, user_id, photo_id, utcnow())
    sid = attempt.id
    _order(sid, "PA-MATCH", NOON, "T-MATCH")
    _order(sid, "PB-AMOUNT", NOON, "T-B")
    _order(sid, "PC-TXN", NOON, "T-C-OURS")
    _order(sid, "PD-NOTBILLED", NOON, "T-D")
    unpaid = _order(sid, "PE-UNPAID", None, None)
    _order(sid, "PF-OTHERDAY", NOON - timedelta(days=1), "T-F")
    db.session.flush()
    matched = payments.new_refund(db.session, unpaid, "test", "test")
    short = payments.new_refund(db.session, unpaid, "test", "test")
    processing = payments.new_refund(db.session, unpaid, "test", "test")
    unbilled = payments.new_refund(db.session, unpaid, "test", "test")
    for refund in (matched, short, unbilled):
        refund.status, refund.succeeded_at = RefundStatus.SUCCEEDED, NOON
    processing.status = RefundStatus.PROCESSING
    db.session.commit()
    bill = [
        _sale("PA-MATCH", transaction_id="T-MATCH"),
        _sale("PB-AMOUNT", fen=300, transaction_id="T-B"),
        _sale("PC-TXN", transaction_id="T-C-THEIRS"),
        _sale("PE-UNPAID", transaction_id="T-E"),
        _sale("PF-OTHERDAY", transaction_id="T-F"),
        _sale("PG-STRAY", transaction_id="T-G"),
        _refund_line(matched.out_refund_no, 200, "PE-UNPAID"),
        _refund_line(short.out_refund_no, 150, "PE-UNPAID"),
        _refund_line(processing.out_refund_no, 200, "PE-UNPAID"),
        _refund_line("R-UNKNOWN", 200, "PX"),
    ]

    differences = reconciliation.reconcile(db.session, DAY, bill)

    payments_side = [
        Difference("支付", "PB-AMOUNT", "2.00 元", "3.00 元", "金额不一致"),
        Difference("支付", "PC-TXN", "T-C-OURS", "T-C-THEIRS", "微信支付订单号不一致"),
        Difference("支付", "PD-NOTBILLED", "已支付 2.00 元", "账单中没有", "微信支付账单缺少该笔支付"),
        Difference("支付", "PE-UNPAID", "已关闭", "已支付 2.00 元", "微信支付已收款，我方未记为已支付"),
        Difference("支付", "PF-OTHERDAY", "已支付（2026-11-19）", "已支付（2026-11-20）", "支付日期不一致"),
        Difference("支付", "PG-STRAY", "无此订单", "2.00 元", "我方缺少该订单"),
    ]
    refunds_side = sorted(
        [
            Difference("退款", short.out_refund_no, "2.00 元", "1.50 元", "金额不一致"),
            Difference(
                "退款",
                processing.out_refund_no,
                "退款中",
                "已退款 2.00 元（订单 PE-UNPAID）",
                "微信支付已退款，我方未记为已退款",
            ),
            Difference(
                "退款", unbilled.out_refund_no, "已退款 2.00 元", "账单中没有", "微信支付账单缺少该笔退款"
            ),
            Difference(
                "退款",
                "R-UNKNOWN",
                "无此退款单",
                "已退款 2.00 元（订单 PX）",
                "微信支付已退款，我方未记为已退款",
            ),
        ],
        key=lambda d: d.number,
    )
    assert differences == payments_side + refunds_side  # a matching line (PA-MATCH) is not listed
