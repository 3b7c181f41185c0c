"""Applying what WeChat Pay says about an order or a refund: exactly once, after checking it matches.

A notification and a query answer (查询缴费结果, or the worker's query of an order whose notification
is late, app/services/payment_sync.py) go through the same `apply_payment`. The order changes by a
conditional UPDATE (open or closed → paid), so ten copies of one notification arriving at once
change the state once, on SQLite and PostgreSQL alike; the attempt moves to 核验中 and the identity
check is queued in the same commit (outbox). A payment for no attempt awaiting it is refunded in
full. Every event is recorded, applied or not, for reconciliation (app/services/reconciliation.py).
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app.services import flows, outbox, submissions, wording
from app.services.errors import ServiceError
from app.services.job_kinds import JobKind
from models import Enrollment, Identity, LockOn, User, utcnow
from models.submission import (
    IN_FLIGHT,
    OrderStatus,
    PaymentEvent,
    PaymentOrder,
    Refund,
    RefundStatus,
    Submission,
    SubmissionStatus,
)

log = logging.getLogger(__name__)


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

    @classmethod
    def of(cls, report: PaidReport, source: str, event_id: str | None = None) -> PaidNotice | None:
        """The notice a notification or a query answer gives; None when it lacks the amount, the
        currency or the transaction id, which a payment cannot be applied without."""
        if report.amount_total is None or not report.currency or not report.transaction_id:
            return None
        return cls(
            out_trade_no=report.out_trade_no,
            transaction_id=report.transaction_id,
            amount_fen=report.amount_total,
            currency=report.currency,
            payer_openid=report.payer_openid,
            success_time=report.success_time,
            source=source,
            event_id=event_id,
        )


class PaidReport(Protocol):
    """What WeChat Pay reports of a paid order, in a notification or in a query's answer."""

    @property
    def out_trade_no(self) -> str: ...
    @property
    def transaction_id(self) -> str | None: ...
    @property
    def amount_total(self) -> int | None: ...
    @property
    def currency(self) -> str | None: ...
    @property
    def payer_openid(self) -> str | None: ...
    @property
    def success_time(self) -> datetime | None: ...


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
    # Another attempt of this student in flight (this one was cancelled and replaced before the
    # late payment arrived): do not resurrect it; the money goes back.
    superseded = session.scalar(
        select(Submission.id).where(
            Submission.user_id == submission.user_id,
            Submission.id != submission.id,
            Submission.status.in_(IN_FLIGHT),
        )
    )
    before = SubmissionStatus(submission.status)
    target = flows.after_payment(submission.batch, before)
    moved = 0
    if superseded is None and target is not None:
        moved = session.execute(
            update(Submission)
            .where(Submission.id == submission.id, Submission.status == before)
            .values(status=target, paid_at=notice.success_time or now, updated_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount  # type: ignore[attr-defined]
    if moved == 1:
        assert target is not None
        _paid(session, submission, target)
        _record(session, notice, "applied")
        return "applied"
    # Paid twice (a second order of an attempt already paid) or for an attempt already replaced:
    # nothing to verify with this money, so it is refunded in full, in the same commit.
    log.error("payment for no attempt awaiting it, refunding", extra={"out_trade_no": order.out_trade_no})
    session.refresh(order)
    new_refund(session, order, "重复缴费，自动退款", "system")
    _record(session, notice, "applied: refunded, no attempt awaiting payment")
    return "applied"


def _paid(session: Session, submission: Submission, target: SubmissionStatus) -> None:
    """What follows a payment in its unit of work: the data frozen where the batch freezes it at
    payment (新疆自考's manual: no changes once the order exists), then the flow's next step."""
    submissions.lock_data(session, submission.batch, submission.user_id, LockOn.PAY)
    if target == SubmissionStatus.VERIFYING:
        outbox.enqueue(
            session,
            JobKind.VERIFY_SUBMISSION,
            {"submission_id": submission.id},
            key=f"verify:{submission.id}",
        )
        return
    openid = session.scalar(select(User.openid).where(User.id == submission.user_id))
    batch = submission.batch
    if target == SubmissionStatus.APPROVED:
        text = wording.paid_after_approval(batch.name, batch.after_approval)
    else:
        days = f"{batch.review_days_min}–{batch.review_days_max}"
        text = wording.PAID_TO_REVIEW.format(days=days)
    # The student paid seconds ago, well inside the 48 h custom-message window.
    outbox.enqueue(
        session, JobKind.SEND_TEXT, {"openid": openid, "text": text}, key=f"notice:paid:{submission.id}"
    )


def new_refund(
    session: Session, order: PaymentOrder, reason: str, requested_by: str, *, amount_fen: int | None = None
) -> Refund:
    """A refund of a paid order, in full or of `amount_fen` (one cancelled exam course: WeChat Pay's
    partial refund, the order's total stays its `amount.total`): the row and its outbox job (no
    commit: the caller's unit)."""
    amount = order.amount_fen if amount_fen is None else amount_fen
    if not 0 < amount <= order.amount_fen:
        raise ValueError(f"refund of {amount} fen from an order of {order.amount_fen}")
    refund = Refund(
        order=order,
        out_refund_no=f"R{order.out_trade_no[1:]}{secrets.token_hex(2).upper()}"[:64],
        amount_fen=amount,
        reason=reason[:80],
        requested_by=requested_by[:32],
    )
    session.add(refund)
    session.flush()
    outbox.enqueue(session, JobKind.REFUND, {"refund_id": refund.id}, key=f"refund:{refund.id}")
    return refund


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
    # A partial refund (one cancelled exam course) leaves the order paid until its whole amount is back.
    returned = session.scalar(
        select(func.coalesce(func.sum(Refund.amount_fen), 0)).where(
            Refund.order_id == refund.order_id, Refund.status == RefundStatus.SUCCEEDED
        )
    )
    order_total = session.scalar(select(PaymentOrder.amount_fen).where(PaymentOrder.id == refund.order_id))
    if int(returned or 0) >= int(order_total or 0):
        session.execute(
            update(PaymentOrder)
            .where(PaymentOrder.id == refund.order_id)
            .values(status=OrderStatus.REFUNDED)
            .execution_options(synchronize_session=False)
        )
    session.commit()
    return "applied"


# -- an admin's refund ----------------------------------------------------------------------------
class RefundRefusedError(ServiceError):
    message = "该订单不能退款"


@dataclass(frozen=True)
class RefundRequested:
    refund_id: int
    out_trade_no: str
    out_refund_no: str
    amount_fen: int
    submission_id: int


def request_refund(session: Session, out_trade_no: str, reason: str, requested_by: str) -> RefundRequested:
    """An admin's full refund of a paid order (what is left of it after a cancelled exam course's
    partial refund): the Refund row and its outbox job in one commit; the attempt becomes 已退款 (out
    of the review queue) and the student is told."""
    reason = reason.strip()
    if not reason:
        raise RefundRefusedError("请填写退款原因。")
    order = session.scalar(select(PaymentOrder).where(PaymentOrder.out_trade_no == out_trade_no))
    if order is None:
        raise UnknownOrderError()
    if order.status == OrderStatus.REFUNDED:
        raise RefundRefusedError("该订单已退款。")
    if order.status != OrderStatus.PAID:
        raise RefundRefusedError("该订单未支付，不能退款。")
    pending = session.scalar(
        select(Refund.id).where(
            Refund.order_id == order.id, Refund.status.in_((RefundStatus.REQUESTED, RefundStatus.PROCESSING))
        )
    )
    if pending is not None:
        raise RefundRefusedError("该订单已有退款在处理中。")
    returned = session.scalar(
        select(func.coalesce(func.sum(Refund.amount_fen), 0)).where(
            Refund.order_id == order.id, Refund.status == RefundStatus.SUCCEEDED
        )
    )
    left = order.amount_fen - int(returned or 0)
    if left <= 0:
        raise RefundRefusedError("该订单已全部退款。")
    refund = new_refund(session, order, reason, requested_by, amount_fen=left)
    submission = order.submission
    if submission.status not in (SubmissionStatus.REFUNDED, SubmissionStatus.CANCELLED):
        submission.status = SubmissionStatus.REFUNDED
        submission.status_reason = f"已退款：{reason[:80]}"
        _unlock(session, submission.user_id)
    openid = session.scalar(select(User.openid).where(User.id == submission.user_id))
    if openid:
        outbox.enqueue(
            session,
            JobKind.SEND_TEXT,
            {
                "openid": openid,
                "text": wording.MANUAL_REFUND.format(amount=wording.yuan(left), reason=reason[:80]),
            },
            key=f"notice:refund:{refund.id}",
        )
    session.commit()
    log.warning("manual refund requested", extra={"out_trade_no": out_trade_no, "by": requested_by})
    return RefundRequested(
        refund.id, order.out_trade_no, refund.out_refund_no, refund.amount_fen, submission.id
    )


def _unlock(session: Session, user_id: int) -> None:
    """The refunded attempt no longer holds the identity and school link."""
    identity = session.scalar(select(Identity).where(Identity.user_id == user_id, Identity.active))
    enrollment = session.scalar(select(Enrollment).where(Enrollment.user_id == user_id, Enrollment.active))
    for row in (identity, enrollment):
        if row is not None:
            row.locked_at = None
