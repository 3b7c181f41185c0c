"""Applying what WeChat Pay says about an order: exactly once, after checking it matches the order.

A notification and a query answer (查询缴费结果, or the worker's query of an order whose notification
is late) go through the same `apply_payment`. The order changes by a conditional UPDATE (open or
closed → paid), so ten copies of one notification arriving at once change the state once, on SQLite
and PostgreSQL alike; the attempt moves to 核验中 and the identity check is queued in the same
commit (outbox). Every event is recorded, applied or not, for reconciliation.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.services import enrollments, identities, outbox
from app.services.errors import ServiceError
from models import utcnow
from models.submission import (
    OrderStatus,
    PaymentEvent,
    PaymentOrder,
    Refund,
    RefundStatus,
    Submission,
    SubmissionStatus,
)

log = logging.getLogger(__name__)

VERIFY_JOB = "submissions.verify"


@dataclass(frozen=True)
class PaidNotice:
    """WeChat Pay's word that an order is paid (a TRANSACTION.SUCCESS notification or a query)."""

    out_trade_no: str
    transaction_id: str
    amount_fen: int
    currency: str
    payer_openid: str | None
    success_time: datetime | None
    source: str  # "notify" or "query"
    event_id: str | None = None


class PaymentRejectedError(ServiceError):
    """The notice cannot be applied; WeChat Pay should retry (unknown order) or someone must look."""

    message = "支付结果与订单不符"


class UnknownOrderError(PaymentRejectedError):
    # Also what a notification that overtakes its order's creation commit sees: WeChat Pay retries.
    message = "订单不存在"


def apply_payment(session: Session, notice: PaidNotice) -> str:
    """Apply a paid notice; returns "applied" or "duplicate"; commits. Raises PaymentRejectedError."""
    order = session.scalar(select(PaymentOrder).where(PaymentOrder.out_trade_no == notice.out_trade_no))
    if order is None:
        _record(session, notice, "rejected: unknown order")
        raise UnknownOrderError()
    if notice.amount_fen != order.amount_fen or notice.currency != order.currency:
        log.error(
            "payment amount differs from the order",
            extra={"out_trade_no": order.out_trade_no, "paid": notice.amount_fen, "due": order.amount_fen},
        )
        _record(session, notice, f"rejected: amount {notice.amount_fen} {notice.currency}")
        raise PaymentRejectedError()
    now = utcnow()
    applied = session.execute(
        update(PaymentOrder)
        .where(
            PaymentOrder.id == order.id,
            PaymentOrder.status.in_((OrderStatus.OPEN, OrderStatus.CLOSED)),
        )
        .values(
            status=OrderStatus.PAID,
            transaction_id=notice.transaction_id,
            payer_openid=notice.payer_openid,
            paid_at=notice.success_time or now,
        )
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    if applied != 1:
        session.rollback()
        same = session.scalar(select(PaymentOrder.transaction_id).where(PaymentOrder.id == order.id)) in (
            None,
            notice.transaction_id,
        )
        if not same:
            log.error("order already paid by another transaction", extra={"out_trade_no": order.out_trade_no})
            _record(session, notice, "rejected: another transaction")
            raise PaymentRejectedError()
        _record(session, notice, "duplicate")
        return "duplicate"
    submission = session.get(Submission, order.submission_id)
    assert submission is not None  # a foreign key
    moved = session.execute(
        update(Submission)
        .where(
            Submission.id == submission.id,
            Submission.status.in_((SubmissionStatus.AWAITING_PAYMENT, SubmissionStatus.CANCELLED)),
        )
        .values(status=SubmissionStatus.VERIFYING, paid_at=notice.success_time or now, updated_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    if moved == 1:
        # From here on the identity and the school link are what was paid for (seed 002: no changes).
        identities.lock(session, submission.user_id)
        enrollments.lock(session, submission.user_id)
        outbox.enqueue(session, VERIFY_JOB, {"submission_id": submission.id}, key=f"verify:{submission.id}")
    else:
        # A second order of the same attempt was paid too: keep the money traceable for a refund.
        log.error("attempt already paid through another order", extra={"out_trade_no": order.out_trade_no})
    _record(session, notice, "applied" if moved == 1 else "applied: attempt already paid")
    return "applied"


def _record(session: Session, notice: PaidNotice, outcome: str) -> None:
    """Keep the event and commit the unit of work (the applied changes, when there are any)."""
    session.add(
        PaymentEvent(
            out_trade_no=notice.out_trade_no,
            source=notice.source,
            event_id=notice.event_id,
            event_type="TRANSACTION.SUCCESS",
            trade_state="SUCCESS",
            amount_fen=notice.amount_fen,
            currency=notice.currency,
            transaction_id=notice.transaction_id,
            outcome=outcome[:120],
        )
    )
    session.commit()


def expire_orders(session: Session, now: datetime) -> list[str]:
    """Mark open orders past their expiry as closed here; returns their out_trade_no (the caller
    queues the close at WeChat Pay). A payment that still arrives for one is applied anyway."""
    expired = session.scalars(
        select(PaymentOrder.out_trade_no).where(
            PaymentOrder.status == OrderStatus.OPEN, PaymentOrder.expires_at <= now
        )
    ).all()
    if expired:
        session.execute(
            update(PaymentOrder)
            .where(PaymentOrder.out_trade_no.in_(expired), PaymentOrder.status == OrderStatus.OPEN)
            .values(status=OrderStatus.CLOSED, closed_at=now)
            .execution_options(synchronize_session=False)
        )
        session.commit()
    return list(expired)


def apply_refund(
    session: Session, out_refund_no: str, refund_id: str | None, status: str, success_time: datetime | None
) -> str:
    """Apply WeChat Pay's word on a refund (REFUND.* notification or the refund call's answer);
    returns "applied", "pending" or "duplicate"; commits. Unknown refunds raise UnknownOrderError."""
    refund = session.scalar(select(Refund).where(Refund.out_refund_no == out_refund_no))
    if refund is None:
        raise UnknownOrderError("退款单不存在")
    if status != "SUCCESS":
        target = RefundStatus.PROCESSING if status == "PROCESSING" else RefundStatus.FAILED
        if refund.status not in (RefundStatus.SUCCEEDED, target):
            refund.status = target
            refund.refund_id = refund_id or refund.refund_id
            session.commit()
        if target is RefundStatus.FAILED:
            log.error("refund did not go through", extra={"out_refund_no": out_refund_no, "status": status})
        return "pending"
    done = session.execute(
        update(Refund)
        .where(Refund.id == refund.id, Refund.status != RefundStatus.SUCCEEDED)
        .values(status=RefundStatus.SUCCEEDED, refund_id=refund_id, succeeded_at=success_time or utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    if done != 1:
        session.rollback()
        return "duplicate"
    session.execute(
        update(PaymentOrder)
        .where(PaymentOrder.id == refund.order_id)
        .values(status=OrderStatus.REFUNDED)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return "applied"
