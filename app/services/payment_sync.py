"""Keeping orders in step with WeChat Pay when its notifications are late or lost: 查询订单 for
late payments, closing expired orders (关闭订单 is queued), cancelling unpaid attempts, and
查询单笔退款 for refunds stuck in "processing".

The periodic parts only read and queue (outbox rows under idempotency keys, or conditional
UPDATEs), so several workers running them at once do each thing once; what an answer says is
applied through app/services/payments.py, the notifications' exactly-once path.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.services import outbox
from app.services.job_kinds import JobKind
from app.services.localtime import stored_utc
from app.services.payments import (
    PaidNotice,
    PaymentRejectedError,
    UnknownOrderError,
    apply_payment,
    apply_refund,
)
from models import OrderStatus, PaymentEvent, PaymentOrder, Refund, RefundStatus, utcnow
from models.submission import Submission, SubmissionStatus

log = logging.getLogger(__name__)


class PayQueryClient(Protocol):
    """What these functions need from app/integrations/wechat_pay.PayClient (a Protocol keeps services free of
    the transport module)."""

    @property
    def config(self) -> Any: ...

    def query(self, out_trade_no: str) -> Any: ...

    def query_refund(self, out_refund_no: str) -> Any: ...


# WeChat Pay's trade states that end an unpaid order (查询订单: trade_state).
# https://pay.weixin.qq.com/doc/v3/merchant/4012791858
ENDED_UNPAID = frozenset({"CLOSED", "REVOKED", "PAYERROR"})
PENDING_STATES = frozenset({"NOTPAY", "USERPAYING"})
CANCEL_REASON = "超过 {hours} 小时未缴费，本次提交已自动取消。如需核验，请重新提交。"


def _seen(session: Session, out_trade_no: str, state: Any, outcome: str) -> None:
    """Keep what a query saw (reconciliation, audit); the caller commits."""
    session.add(
        PaymentEvent(
            out_trade_no=out_trade_no,
            source="query",
            event_type=None,
            trade_state=str(state.trade_state)[:16],
            amount_fen=state.amount_total,
            currency=state.currency,
            transaction_id=state.transaction_id,
            outcome=outcome[:120],
        )
    )


def sync_order(session: Session, client: PayQueryClient, out_trade_no: str) -> str:
    """查询缴费结果: ask WeChat Pay about one order and act on the answer; commits.

    Returns "paid" (applied now or earlier), "pending" (NOTPAY/USERPAYING), "closed", "refund"
    (left to the refund handling) or "missing" (WeChat Pay never saw the order). A SUCCESS goes
    through `apply_payment`, the notifications' exactly-once path. Raises UnknownOrderError for an
    order we do not have, PaymentRejectedError when the answer does not match the order, and the
    client's PayError (with .retryable) when WeChat Pay cannot be asked.
    """
    order = session.scalar(select(PaymentOrder).where(PaymentOrder.out_trade_no == out_trade_no))
    if order is None:
        raise UnknownOrderError()
    try:
        state = client.query(out_trade_no)
    except Exception as exc:
        if getattr(exc, "code", None) != "ORDER_NOT_EXIST":
            raise
        # Created here, never at WeChat Pay (the prepay call failed): nothing can pay it.
        session.rollback()
        return "missing"
    cfg = client.config
    if (state.appid and state.appid != cfg.appid) or (state.mchid and state.mchid != cfg.mchid):
        log.error("query answer for another merchant or app", extra={"out_trade_no": out_trade_no})
        _seen(session, out_trade_no, state, "rejected: appid/mchid")
        session.commit()
        raise PaymentRejectedError()
    if state.trade_state == "SUCCESS":
        notice = PaidNotice.of(state, "query")
        if notice is None:
            _seen(session, out_trade_no, state, "rejected: incomplete answer")
            session.commit()
            raise PaymentRejectedError()
        apply_payment(session, notice)
        return "paid"
    if state.trade_state in PENDING_STATES:
        _seen(session, out_trade_no, state, "ignored: not paid yet")
        session.commit()
        return "pending"
    if state.trade_state in ENDED_UNPAID:
        closed = session.execute(
            update(PaymentOrder)
            .where(PaymentOrder.id == order.id, PaymentOrder.status == OrderStatus.OPEN)
            .values(status=OrderStatus.CLOSED, closed_at=utcnow())
            .execution_options(synchronize_session=False)
        ).rowcount  # type: ignore[attr-defined]
        _seen(session, out_trade_no, state, "applied: closed" if closed else "duplicate")
        session.commit()
        return "closed"
    # REFUND (or a state WeChat Pay adds later): the refund's own notification or query settles it.
    _seen(session, out_trade_no, state, f"ignored: {state.trade_state}")
    session.commit()
    return "refund" if state.trade_state == "REFUND" else "pending"


def _enqueue_once(session: Session, kind: JobKind, payload: dict[str, Any], key: str) -> bool:
    """Queue a job under an idempotency key and commit; False when it was already queued (also by
    another worker at the same moment: the unique key decides)."""
    try:
        item = outbox.enqueue(session, kind, payload, key=key)
        session.commit()
    except IntegrityError:
        session.rollback()
        return False
    return item is not None


def queue_order_queries(
    session: Session, now: datetime, after_seconds: int, expired_window: timedelta
) -> int:
    """Queue a 查询订单 for each order whose notification is late: open orders every `after_seconds`
    after creation while they are valid, and once for orders that expired within `expired_window`.
    Safe on several workers at once (idempotency key per order and period). Returns how many."""
    open_orders = session.execute(
        select(PaymentOrder.out_trade_no, PaymentOrder.created_at).where(
            PaymentOrder.status == OrderStatus.OPEN,
            PaymentOrder.created_at <= now - timedelta(seconds=after_seconds),
            PaymentOrder.expires_at > now,
        )
    ).all()
    expired = session.scalars(
        select(PaymentOrder.out_trade_no).where(
            PaymentOrder.status.in_((OrderStatus.OPEN, OrderStatus.CLOSED)),
            PaymentOrder.expires_at <= now,
            PaymentOrder.expires_at > now - expired_window,
        )
    ).all()
    session.rollback()  # end the read transaction before the one-commit-per-job writes
    queued = 0
    for out_trade_no, created_at in open_orders:
        period = int((now - stored_utc(created_at)).total_seconds() // after_seconds)
        key = f"pay-query:{out_trade_no}:{period}"
        queued += _enqueue_once(session, JobKind.SYNC_ORDER, {"out_trade_no": out_trade_no}, key)
    for out_trade_no in expired:
        key = f"pay-query:{out_trade_no}:expired"
        queued += _enqueue_once(session, JobKind.SYNC_ORDER, {"out_trade_no": out_trade_no}, key)
    return queued


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


def close_expired_orders(session: Session, now: datetime) -> list[str]:
    """Mark open orders past their expiry closed here and queue their close at WeChat Pay, each in
    one commit (a crash leaves no order closed here and forgotten there); returns them. Several
    workers may run it at once: the conditional UPDATE gives each order to one of them."""
    candidates = session.scalars(
        select(PaymentOrder.id).where(PaymentOrder.status == OrderStatus.OPEN, PaymentOrder.expires_at <= now)
    ).all()
    closed: list[str] = []
    for order_id in candidates:
        won = session.execute(
            update(PaymentOrder)
            .where(PaymentOrder.id == order_id, PaymentOrder.status == OrderStatus.OPEN)
            .values(status=OrderStatus.CLOSED, closed_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount  # type: ignore[attr-defined]
        if won != 1:
            session.rollback()
            continue
        out_trade_no = session.scalar(select(PaymentOrder.out_trade_no).where(PaymentOrder.id == order_id))
        assert out_trade_no is not None
        outbox.enqueue(
            session, JobKind.CLOSE_ORDER, {"out_trade_no": out_trade_no}, key=f"pay-close:{out_trade_no}"
        )
        session.commit()
        closed.append(out_trade_no)
    return closed


def cancel_unpaid(session: Session, now: datetime, after: timedelta) -> list[int]:
    """待缴费 attempts with no order valid in the last `after` → 已取消 with a reason; commits.
    Returns the cancelled submission ids. A payment that still comes is applied (apply_payment
    accepts a cancelled attempt)."""
    cutoff = now - after
    live_order = (
        select(PaymentOrder.id)
        .where(
            PaymentOrder.submission_id == Submission.id,
            (PaymentOrder.status != OrderStatus.CLOSED) | (PaymentOrder.expires_at > cutoff),
        )
        .exists()
    )
    stale = session.scalars(
        select(Submission.id).where(
            Submission.status == SubmissionStatus.AWAITING_PAYMENT,
            Submission.created_at <= cutoff,
            ~live_order,
        )
    ).all()
    hours = after.total_seconds() / 3600
    reason = CANCEL_REASON.format(hours=f"{hours:g}")
    cancelled: list[int] = []
    for submission_id in stale:
        # The same conditions again: a renewed order or a payment in between keeps the attempt.
        won = session.execute(
            update(Submission)
            .where(
                Submission.id == submission_id,
                Submission.status == SubmissionStatus.AWAITING_PAYMENT,
                ~live_order,
            )
            .values(status=SubmissionStatus.CANCELLED, status_reason=reason, updated_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount  # type: ignore[attr-defined]
        if won == 1:
            cancelled.append(submission_id)
    session.commit()
    if cancelled:
        log.info("unpaid attempts cancelled", extra={"count": len(cancelled)})
    return cancelled


def queue_refund_queries(session: Session, now: datetime, after: timedelta) -> int:
    """Queue a 查询单笔退款 for refunds still "processing" `after` their creation (their notification
    is late or lost); once per refund and period of `after`. Returns how many were queued."""
    stuck = session.execute(
        select(Refund.id, Refund.created_at).where(
            Refund.status == RefundStatus.PROCESSING, Refund.created_at <= now - after
        )
    ).all()
    session.rollback()
    queued = 0
    for refund_id, created_at in stuck:
        period = int((now - stored_utc(created_at)).total_seconds() // after.total_seconds())
        queued += _enqueue_once(
            session, JobKind.SYNC_REFUND, {"refund_id": refund_id}, f"refund-query:{refund_id}:{period}"
        )
    return queued


def sync_refund(session: Session, client: PayQueryClient, refund_id: int) -> str:
    """Ask WeChat Pay about one refund and apply the answer (`apply_refund`); commits."""
    refund = session.get(Refund, refund_id)
    if refund is None:
        raise UnknownOrderError("退款单不存在")
    if refund.status in (RefundStatus.SUCCEEDED, RefundStatus.FAILED):
        return "duplicate"
    out_refund_no = refund.out_refund_no
    session.rollback()
    state = client.query_refund(out_refund_no)
    return apply_refund(session, out_refund_no, state.refund_id, state.status, state.success_time)
