"""Applying what WeChat Pay says about an order: exactly once, after checking it matches the order.

A notification and a query answer (查询缴费结果, or the worker's query of an order whose notification
is late) go through the same `apply_payment`. The order changes by a conditional UPDATE (open or
closed → paid), so ten copies of one notification arriving at once change the state once, on SQLite
and PostgreSQL alike; the attempt moves to 核验中 and the identity check is queued in the same
commit (outbox). Every event is recorded, applied or not, for reconciliation.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Protocol

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.services import enrollments, identities, outbox, wording
from app.services.errors import ServiceError
from app.services.job_kinds import JobKind
from app.services.localtime import BEIJING
from models import Enrollment, Identity, User, utcnow
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
    moved = 0
    if superseded is None:
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
        outbox.enqueue(
            session,
            JobKind.VERIFY_SUBMISSION,
            {"submission_id": submission.id},
            key=f"verify:{submission.id}",
        )
        _record(session, notice, "applied")
        return "applied"
    # Paid twice (a second order of an attempt already paid) or for an attempt already replaced:
    # nothing to verify with this money, so it is refunded in full, in the same commit.
    log.error("payment for no attempt awaiting it, refunding", extra={"out_trade_no": order.out_trade_no})
    session.refresh(order)
    new_refund(session, order, "重复缴费，自动退款", "system")
    _record(session, notice, "applied: refunded, no attempt awaiting payment")
    return "applied"


def new_refund(session: Session, order: PaymentOrder, reason: str, requested_by: str) -> Refund:
    """A full refund of a paid order: the row and its outbox job (no commit: the caller's unit)."""
    refund = Refund(
        order=order,
        out_refund_no=f"R{order.out_trade_no[1:]}{secrets.token_hex(2).upper()}"[:64],
        amount_fen=order.amount_fen,
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


# -- 查询缴费结果, expiry, cancellation, stuck refunds, reconciliation, manual refunds ----------------
class PayQueryClient(Protocol):
    """What these functions need from app/pay/client.PayClient (a Protocol keeps services free of
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
        if state.amount_total is None or not state.currency or not state.transaction_id:
            _seen(session, out_trade_no, state, "rejected: incomplete answer")
            session.commit()
            raise PaymentRejectedError()
        apply_payment(
            session,
            PaidNotice(
                out_trade_no=out_trade_no,
                transaction_id=state.transaction_id,
                amount_fen=state.amount_total,
                currency=state.currency,
                payer_openid=state.payer_openid,
                success_time=state.success_time,
                source="query",
            ),
        )
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
        period = int((now - _aware(created_at)).total_seconds() // after_seconds)
        key = f"pay-query:{out_trade_no}:{period}"
        queued += _enqueue_once(session, JobKind.SYNC_ORDER, {"out_trade_no": out_trade_no}, key)
    for out_trade_no in expired:
        key = f"pay-query:{out_trade_no}:expired"
        queued += _enqueue_once(session, JobKind.SYNC_ORDER, {"out_trade_no": out_trade_no}, key)
    return queued


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
        period = int((now - _aware(created_at)).total_seconds() // after.total_seconds())
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


def _aware(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes; every stored time is UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


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
    """An admin's full refund of a paid order: the Refund row and its outbox job in one commit;
    the attempt becomes 已退款 (out of the review queue) and the student is told."""
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
        select(Refund.id).where(Refund.order_id == order.id, Refund.status != RefundStatus.FAILED)
    )
    if pending is not None:
        raise RefundRefusedError("该订单已有退款在处理中。")
    refund = new_refund(session, order, reason, requested_by)
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
                "text": wording.manual_refund(f"{order.amount_fen / 100:.2f}", reason[:80]),
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


# -- reconciliation against WeChat Pay's trade bill (交易账单) --------------------------------------
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


def _fen(value: int) -> str:
    return f"{value // 100}.{value % 100:02d} 元"


def reconcile(session: Session, day: date, bill: list[Any]) -> list[Difference]:
    """Compare a Beijing day's trade bill (BillRow list) with our orders and refunds of that day.

    Payments: a SUCCESS line per order paid that day; refunds: a REFUND line per refund that
    succeeded that day. Lists what is missing on either side, amounts that differ and states that
    disagree (paid there, unpaid here; refunded there, not here). Read-only.
    """
    start = datetime.combine(day, time.min, BEIJING).astimezone(UTC)
    end = start + timedelta(days=1)
    differences: list[Difference] = []

    paid_there = {row.out_trade_no: row for row in bill if row.trade_state == "SUCCESS"}
    paid_here = {
        o.out_trade_no: o
        for o in session.scalars(
            select(PaymentOrder).where(PaymentOrder.paid_at >= start, PaymentOrder.paid_at < end)
        )
    }
    for number in sorted(paid_there.keys() | paid_here.keys()):
        row, order = paid_there.get(number), paid_here.get(number)
        if order is None:
            assert row is not None
            other = session.scalar(select(PaymentOrder).where(PaymentOrder.out_trade_no == number))
            if other is None:
                differences.append(
                    Difference("支付", number, "无此订单", _fen(row.order_fen), "我方缺少该订单")
                )
            elif other.paid_at is None:
                differences.append(
                    Difference(
                        "支付",
                        number,
                        ORDER_LABELS[other.status],
                        f"已支付 {_fen(row.order_fen)}",
                        "微信支付已收款，我方未记为已支付",
                    )
                )
            else:
                paid_day = _aware(other.paid_at).astimezone(BEIJING).date()
                differences.append(
                    Difference("支付", number, f"已支付（{paid_day}）", f"已支付（{day}）", "支付日期不一致")
                )
            continue
        if row is None:
            differences.append(
                Difference(
                    "支付",
                    number,
                    f"{ORDER_LABELS[order.status]} {_fen(order.amount_fen)}",
                    "账单中没有",
                    "微信支付账单缺少该笔支付",
                )
            )
            continue
        if row.order_fen != order.amount_fen or row.settlement_fen != order.amount_fen:
            differences.append(
                Difference("支付", number, _fen(order.amount_fen), _fen(row.order_fen), "金额不一致")
            )
        if order.transaction_id and row.transaction_id != order.transaction_id:
            differences.append(
                Difference("支付", number, order.transaction_id, row.transaction_id, "微信支付订单号不一致")
            )

    refunded_there = {row.out_refund_no: row for row in bill if row.trade_state == "REFUND"}
    refunded_here = {
        r.out_refund_no: r
        for r in session.scalars(
            select(Refund).where(Refund.succeeded_at >= start, Refund.succeeded_at < end)
        )
    }
    for number in sorted(refunded_there.keys() | refunded_here.keys()):
        row, refund = refunded_there.get(number), refunded_here.get(number)
        if refund is None:
            assert row is not None
            known = session.scalar(select(Refund).where(Refund.out_refund_no == number))
            ours = "无此退款单" if known is None else REFUND_LABELS[known.status]
            differences.append(
                Difference(
                    "退款",
                    number,
                    ours,
                    f"已退款 {_fen(row.refund_fen)}（订单 {row.out_trade_no}）",
                    "微信支付已退款，我方未记为已退款",
                )
            )
            continue
        if row is None:
            differences.append(
                Difference(
                    "退款",
                    number,
                    f"已退款 {_fen(refund.amount_fen)}",
                    "账单中没有",
                    "微信支付账单缺少该笔退款",
                )
            )
            continue
        if row.refund_fen != refund.amount_fen:
            differences.append(
                Difference("退款", number, _fen(refund.amount_fen), _fen(row.refund_fen), "金额不一致")
            )
    return differences
