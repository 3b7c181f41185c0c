"""Checkout: asking WeChat Pay for the means to pay an attempt's order (开始核验 → 确认支付).

`submissions.create` writes the attempt and its order and commits first; only then is WeChat Pay
called (JSAPI 下单 → prepay_id, Native 下单 → code_url), so a slow or failed call never leaves a
half-written attempt: the attempt stays 待缴费 and the next try prepares the same order again (the
same out_trade_no with the same parameters gets the same prepay_id from WeChat Pay) or, once it
expired, a fresh one (`submissions.renew_order`). No business rule lives here beyond that.

查询缴费结果 (`refresh`) asks WeChat Pay about the attempt's unpaid orders and applies a payment
it reports through `payments.apply_payment`, the same path a notification takes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from app.integrations.wechat_pay import PayClient, PayError
from app.services import flows, payment_sync, payments, submissions
from app.services.errors import ServiceError
from app.services.pledges import Pledge
from media.storage import Storage
from models.submission import OrderStatus, PaymentOrder, Submission, SubmissionStatus

log = logging.getLogger(__name__)

# What the payer sees on the pay sheet and in the WeChat Pay bill (1–127 characters).
DESCRIPTION = "证件照核验技术服务费"
# An order with less time left than this is renewed rather than shown: a QR code that expires
# while the student is still reaching for the phone is worse than a fresh one.
MIN_TIME_LEFT = timedelta(seconds=15)
# 查询缴费结果 looks at this many of the attempt's latest unpaid orders.
REFRESH_ORDERS = 3
CHANNELS = ("jsapi", "native")


class CheckoutUnavailableError(ServiceError):
    """WeChat Pay did not answer as it should: the attempt is kept, the student tries again."""

    message = "微信支付暂时无法下单，请稍后再试。你的提交已保留，不会重复收费。"

    def __init__(self, submission_id: int, message: str | None = None) -> None:
        super().__init__(message)
        self.submission_id = submission_id


@dataclass(frozen=True)
class Checkout:
    """An attempt and, while it awaits payment, the order to pay now with what the page needs."""

    submission: Submission
    order: PaymentOrder | None
    jsapi: dict[str, str] | None
    code_url: str | None


def start(
    session: Session,
    client: PayClient,
    user_id: int,
    payer_openid: str,
    photo_id: int,
    now: datetime,
    channel: str = "jsapi",
    *,
    pledge: Pledge | None = None,
    storage: Storage | None = None,
) -> Checkout:
    """开始核验 / 提交审核: the attempt (all of submissions.create's refusals apply), then, where
    the batch takes its fee now, its order at WeChat Pay. Raises SubmissionError, or
    CheckoutUnavailableError once the attempt exists."""
    submission = submissions.create(session, user_id, photo_id, now, channel, pledge=pledge, storage=storage)
    if submission.status != SubmissionStatus.AWAITING_PAYMENT:
        return Checkout(submission, None, None, None)
    order = submission.orders[-1]
    jsapi, code_url = prepare(session, client, order, payer_openid)
    return Checkout(submission, order, jsapi, code_url)


def order_to_pay(
    session: Session,
    client: PayClient,
    submission: Submission,
    payer_openid: str,
    now: datetime,
    channel: str,
) -> Checkout:
    """The order to pay now: the current one (prepared at WeChat Pay if that has not happened
    yet), or a fresh one when it expired, is about to, or is for the other channel."""
    if channel not in CHANNELS:
        raise ValueError(f"unknown payment channel {channel!r}")
    if not flows.payable(submission.status):
        return Checkout(submission, None, None, None)
    order = submissions.current_order(submission, now + MIN_TIME_LEFT)
    if order is None or order.channel != channel:
        order = submissions.renew_order(session, submission, now, channel)
    jsapi, code_url = prepare(session, client, order, payer_openid)
    return Checkout(submission, order, jsapi, code_url)


def prepare(
    session: Session, client: PayClient, order: PaymentOrder, payer_openid: str
) -> tuple[dict[str, str] | None, str | None]:
    """(jsapi params, code_url) for an open order, calling WeChat Pay only the first time; commits
    what WeChat Pay returned. JSAPI parameters are signed afresh each time (no call)."""
    try:
        if order.channel == "jsapi":
            if order.prepay_id is None:
                params = client.create_jsapi(
                    order.out_trade_no, DESCRIPTION, order.amount_fen, payer_openid, order.expires_at
                )
                order.prepay_id = params["package"].removeprefix("prepay_id=")
                session.commit()
                return params, None
            return client.jsapi_params(order.prepay_id), None
        if order.code_url is None:
            order.code_url = client.create_native(
                order.out_trade_no, DESCRIPTION, order.amount_fen, order.expires_at
            )
            session.commit()
        return None, order.code_url
    except PayError as exc:
        session.rollback()
        log.warning(
            "wechat pay order not created",
            extra={"out_trade_no": order.out_trade_no, "code": exc.code, "retryable": exc.retryable},
        )
        raise CheckoutUnavailableError(order.submission_id) from exc


def refresh(session: Session, client: PayClient, submission: Submission) -> str:
    """查询缴费结果: ask WeChat Pay about the attempt's latest unpaid orders (`payment_sync.sync_order`,
    which applies a payment exactly once, as for a notification). Returns "paid" or "unpaid".
    Raises CheckoutUnavailableError when WeChat Pay cannot be asked."""
    if submission.status not in (
        SubmissionStatus.AWAITING_PAYMENT,
        SubmissionStatus.CANCELLED,
        SubmissionStatus.APPROVED_UNPAID,
    ):
        return "paid" if submission.paid_at is not None else "unpaid"
    asked = [
        o.out_trade_no
        for o in reversed(submission.orders)
        if o.status in (OrderStatus.OPEN, OrderStatus.CLOSED) and (o.prepay_id or o.code_url)
    ][:REFRESH_ORDERS]
    for out_trade_no in asked:
        try:
            outcome = payment_sync.sync_order(session, client, out_trade_no)
        except PayError as exc:
            session.rollback()
            log.warning("wechat pay query failed", extra={"out_trade_no": out_trade_no, "code": exc.code})
            raise CheckoutUnavailableError(submission.id, "暂时查询不到缴费结果，请稍后再试。") from exc
        except payments.PaymentRejectedError:
            continue  # logged and kept by sync_order; someone must look, the student cannot help
        if outcome == "paid":
            return "paid"
    return "unpaid"
