"""Reconciliation against WeChat Pay's trade bill (交易账单): a Beijing day's payments and refunds
there, line by line against ours of that day. Read-only: it lists differences for a person to
look at and changes nothing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import partial
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.services.localtime import BEIJING, stored_utc
from models.submission import OrderStatus, PaymentOrder, Refund, RefundStatus

ORDER_LABELS = {
    OrderStatus.OPEN: "未支付",
    OrderStatus.PAID: "已支付",
    OrderStatus.CLOSED: "已关闭",
    OrderStatus.REFUNDED: "已退款",
}
REFUND_LABELS = {
    RefundStatus.REQUESTED: "待发起",
    RefundStatus.PROCESSING: "退款中",
    RefundStatus.SUCCEEDED: "已退款",
    RefundStatus.FAILED: "退款失败",
}


@dataclass(frozen=True)
class Difference:
    kind: str  # "支付" or "退款"
    number: str  # out_trade_no or out_refund_no
    ours: str
    theirs: str
    problem: str


Finding = tuple[str, str, str]  # ours, theirs, problem
Ours = TypeVar("Ours", PaymentOrder, Refund)


def reconcile(session: Session, day: date, bill: list[Any]) -> list[Difference]:
    """Compare a Beijing day's trade bill (BillRow list) with our orders and refunds of that day.

    Payments: a SUCCESS line per order paid that day; refunds: a REFUND line per refund that
    succeeded that day. Lists what is missing on either side, amounts that differ and states that
    disagree (paid there, unpaid here; refunded there, not here).
    """
    start = datetime.combine(day, time.min, BEIJING).astimezone(UTC)
    end = start + timedelta(days=1)
    paid_here = {
        order.out_trade_no: order
        for order in session.scalars(
            select(PaymentOrder).where(PaymentOrder.paid_at >= start, PaymentOrder.paid_at < end)
        )
    }
    refunded_here = {
        refund.out_refund_no: refund
        for refund in session.scalars(
            select(Refund).where(Refund.succeeded_at >= start, Refund.succeeded_at < end)
        )
    }
    return _compare(
        "支付",
        {row.out_trade_no: row for row in bill if row.trade_state == "SUCCESS"},
        paid_here,
        partial(_payment_not_here, session, day),
        _payment_not_there,
        _payments_disagree,
    ) + _compare(
        "退款",
        {row.out_refund_no: row for row in bill if row.trade_state == "REFUND"},
        refunded_here,
        partial(_refund_not_here, session),
        _refund_not_there,
        _refunds_disagree,
    )


def _compare(
    kind: str,
    there: dict[str, Any],
    here: dict[str, Ours],
    not_here: Callable[[str, Any], Finding],
    not_there: Callable[[Ours], Finding],
    disagree: Callable[[Any, Ours], list[Finding]],
) -> list[Difference]:
    """Walk the numbers on either side in order: on the bill only, ours only, or on both and
    differing. Payments and refunds differ only in what each of those three means."""
    differences: list[Difference] = []
    for number in sorted(there.keys() | here.keys()):
        row, ours = there.get(number), here.get(number)
        if ours is None:
            findings = [not_here(number, row)]
        elif row is None:
            findings = [not_there(ours)]
        else:
            findings = disagree(row, ours)
        differences += [Difference(kind, number, *finding) for finding in findings]
    return differences


def _fen(value: int) -> str:
    # Accounting precision, as WeChat Pay's bill writes amounts (students read wording.yuan: "2 元").
    return f"{value // 100}.{value % 100:02d} 元"


# -- payments: a SUCCESS line of the bill against an order paid that day ---------------------------
def _payment_not_here(session: Session, day: date, number: str, row: Any) -> Finding:
    other = session.scalar(select(PaymentOrder).where(PaymentOrder.out_trade_no == number))
    if other is None:
        return "无此订单", _fen(row.order_fen), "我方缺少该订单"
    if other.paid_at is None:
        return ORDER_LABELS[other.status], f"已支付 {_fen(row.order_fen)}", "微信支付已收款，我方未记为已支付"
    paid_day = stored_utc(other.paid_at).astimezone(BEIJING).date()
    return f"已支付（{paid_day}）", f"已支付（{day}）", "支付日期不一致"


def _payment_not_there(order: PaymentOrder) -> Finding:
    return f"{ORDER_LABELS[order.status]} {_fen(order.amount_fen)}", "账单中没有", "微信支付账单缺少该笔支付"


def _payments_disagree(row: Any, order: PaymentOrder) -> list[Finding]:
    findings: list[Finding] = []
    if row.order_fen != order.amount_fen or row.settlement_fen != order.amount_fen:
        findings.append((_fen(order.amount_fen), _fen(row.order_fen), "金额不一致"))
    if order.transaction_id and row.transaction_id != order.transaction_id:
        findings.append((order.transaction_id, row.transaction_id, "微信支付订单号不一致"))
    return findings


# -- refunds: a REFUND line of the bill against a refund that succeeded that day -------------------
def _refund_not_here(session: Session, number: str, row: Any) -> Finding:
    known = session.scalar(select(Refund).where(Refund.out_refund_no == number))
    ours = "无此退款单" if known is None else REFUND_LABELS[known.status]
    theirs = f"已退款 {_fen(row.refund_fen)}（订单 {row.out_trade_no}）"
    return ours, theirs, "微信支付已退款，我方未记为已退款"


def _refund_not_there(refund: Refund) -> Finding:
    return f"已退款 {_fen(refund.amount_fen)}", "账单中没有", "微信支付账单缺少该笔退款"


def _refunds_disagree(row: Any, refund: Refund) -> list[Finding]:
    if row.refund_fen != refund.amount_fen:
        return [(_fen(refund.amount_fen), _fen(row.refund_fen), "金额不一致")]
    return []
