"""Job kinds and periodic tasks of WeChat Pay upkeep: late notifications (查询订单), expired orders
(关闭订单), unpaid attempts, refunds stuck in "processing" (查询单笔退款).

Periodic tasks only read and queue (outbox rows under idempotency keys, or conditional UPDATEs),
so several workers running them at once do each thing once; the calls to WeChat Pay happen in the
jobs, where a retryable PayError is retried with the worker's backoff.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from flask import current_app
from sqlalchemy import select

from app.extensions import db
from app.integrations import pay_client
from app.integrations.wechat_pay import PayError
from app.jobs import PermanentJobError, job
from app.services import pay_deadlines, payment_sync, payments
from app.services.job_kinds import JobKind
from app.services.pushes import ResultPush
from models import OrderStatus, PaymentOrder, utcnow

log = logging.getLogger(__name__)

# Orders that expired this recently are queried once more (a payment in the last second).
EXPIRED_QUERY_WINDOW = timedelta(minutes=10)


def _out_trade_no(payload: dict[str, Any]) -> str:
    value = payload.get("out_trade_no")
    if not isinstance(value, str) or not value:
        raise PermanentJobError("payload lacks out_trade_no")
    return value


def _pay_error(exc: PayError) -> Exception:
    """Retryable trouble is raised as is (the worker retries); the rest ends the job."""
    if exc.retryable:
        return exc
    return PermanentJobError(f"WeChat Pay refused: {exc.code} {exc.message}")


@job(JobKind.SYNC_ORDER)
def sync_order(payload: dict[str, Any]) -> None:
    """查询订单 for one order and apply the answer (SUCCESS → the same path as a notification)."""
    out_trade_no = _out_trade_no(payload)
    try:
        outcome = payment_sync.sync_order(db.session, pay_client(), out_trade_no)
    except PayError as exc:
        db.session.rollback()
        raise _pay_error(exc) from exc
    except payments.PaymentRejectedError as exc:
        db.session.rollback()
        raise PermanentJobError(f"{out_trade_no}: {exc.message}") from exc
    log.info("order queried", extra={"out_trade_no": out_trade_no, "outcome": outcome})


@job(JobKind.CLOSE_ORDER)
def close_order(payload: dict[str, Any]) -> None:
    """关闭订单 at WeChat Pay for an order closed here. ORDERPAID: it was paid at the last second,
    so the payment is fetched and applied instead."""
    out_trade_no = _out_trade_no(payload)
    status = db.session.scalar(select(PaymentOrder.status).where(PaymentOrder.out_trade_no == out_trade_no))
    db.session.rollback()
    if status != OrderStatus.CLOSED:
        return  # paid meanwhile (a late notification), or unknown: nothing to close
    client = pay_client()
    try:
        client.close(out_trade_no)
    except PayError as exc:
        if exc.code == "ORDERPAID":
            sync_order({"out_trade_no": out_trade_no})
            return
        if exc.code == "ORDER_NOT_EXIST":
            return  # never created there (the prepay call failed): nothing to close
        raise _pay_error(exc) from exc
    log.info("order closed at WeChat Pay", extra={"out_trade_no": out_trade_no})


@job(JobKind.SYNC_REFUND)
def sync_refund(payload: dict[str, Any]) -> None:
    """查询单笔退款 for a refund whose notification is late; apply the answer."""
    try:
        refund_id = int(payload["refund_id"])
    except (KeyError, TypeError, ValueError):
        raise PermanentJobError("payload lacks refund_id") from None
    try:
        payment_sync.sync_refund(db.session, pay_client(), refund_id)
    except PayError as exc:
        db.session.rollback()
        raise _pay_error(exc) from exc
    except payments.UnknownOrderError as exc:
        raise PermanentJobError("no such refund") from exc


# -- periodic tasks (listed in app/jobs/periodic.py) -----------------------------------------------
def queue_order_queries() -> None:
    payment_sync.queue_order_queries(
        db.session, utcnow(), current_app.config["PAY_QUERY_AFTER_SECONDS"], EXPIRED_QUERY_WINDOW
    )


def close_expired_orders() -> None:
    payment_sync.close_expired_orders(db.session, utcnow())


def cancel_unpaid_submissions() -> None:
    hours: float = current_app.config["SUBMISSION_UNPAID_CANCEL_HOURS"]
    payment_sync.cancel_unpaid(db.session, utcnow(), timedelta(hours=hours))


def void_overdue_approvals() -> None:
    pay_deadlines.void_overdue(db.session, utcnow(), ResultPush.from_config(current_app.config))


def queue_refund_queries() -> None:
    seconds: int = current_app.config["PAY_REFUND_QUERY_AFTER_SECONDS"]
    payment_sync.queue_refund_queries(db.session, utcnow(), timedelta(seconds=seconds))
