"""Submissions: one paid attempt to have a photo verified and reviewed (开始核验).

Creating one needs everything complete first (as 武汉轻工大学's and 新疆自考's manuals have it: pay only
after the data is complete):
a bound identity, a link to a batch that is open now, and a photo of that batch that passed its
checks and that no reviewer rejected (nor the same picture in an earlier attempt). One attempt may
be in flight per student; after a final 不通过 in a batch none can follow.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.services import enrollments, identities, photos, wording
from app.services.errors import ServiceError
from models import Photo, utcnow
from models.submission import (
    IN_FLIGHT,
    STATUS_LABELS,
    OrderStatus,
    PaymentOrder,
    Submission,
    SubmissionStatus,
)

# Seeds 001/002: a payment QR code is valid for 3 minutes; an expired one is replaced, not reused.
ORDER_TTL = timedelta(minutes=3)


class SubmissionError(ServiceError):
    message = "暂时不能提交核验"


class SubmissionIncompleteError(SubmissionError):
    message = "请先完成实名绑定和关联学校。"


class PhotoNotUsableError(SubmissionError):
    message = "请先上传一张通过检查的照片，再开始核验。"


class PhotoRejectedError(PhotoNotUsableError):
    """The photo, or the same picture, was returned or refused by a reviewer in an earlier attempt."""

    message = "这张照片已被审核老师驳回，不能再次提交。请重新拍摄并上传一张新照片。"


class BatchNotOpenError(SubmissionError):
    message = "该批次不在开放时间内，不能提交。"


class SubmissionInFlightError(SubmissionError):
    message = "你已有一次提交正在进行中，请等待结果。"


class SubmissionFinalError(SubmissionError):
    message = "你在本批次的审核结果为「不通过」，这是最终结果，不能再次提交。"


def new_out_trade_no(now: datetime) -> str:
    """WeChat Pay: 6–32 characters of [A-Za-z0-9_-|*], unique per merchant."""
    return f"P{now:%Y%m%d}{secrets.token_hex(8).upper()}"


def in_flight(session: Session, user_id: int) -> Submission | None:
    return session.scalar(
        select(Submission).where(Submission.user_id == user_id, Submission.status.in_(IN_FLIGHT))
    )


def create(
    session: Session, user_id: int, photo_id: int, now: datetime, channel: str = "jsapi"
) -> Submission:
    """Create the attempt and its first payment order (no call to WeChat Pay here); commits.

    The caller then asks WeChat Pay for the prepay id or code_url (`payments.prepare`), after this
    commit, so a slow or failed call never leaves a half-written attempt.
    """
    identity = identities.active(session, user_id)
    enrollment = enrollments.active(session, user_id)
    if identity is None or enrollment is None:
        raise SubmissionIncompleteError()
    batch = enrollment.batch
    if not batch.is_open(now):
        raise BatchNotOpenError(enrollments.closed_message(batch, now))
    photo = session.get(Photo, photo_id)
    if photo is None or photo.user_id != user_id or photo.batch_id != batch.id or not photo.passed:
        raise PhotoNotUsableError()
    current = in_flight(session, user_id)
    if current is not None:
        raise SubmissionInFlightError(
            f"你已有一次提交正在进行中（{STATUS_LABELS[current.status]}），请等待结果。"
        )
    refused = session.scalar(
        select(Submission.id).where(
            Submission.user_id == user_id,
            Submission.batch_id == batch.id,
            Submission.status == SubmissionStatus.REFUSED,
        )
    )
    if refused is not None:
        raise SubmissionFinalError()
    rejection = photos.review_rejection(session, photo)
    if rejection is not None:
        raise PhotoRejectedError(wording.photo_rejected_by_review(rejection.status_label, rejection.reason))
    submission = Submission(user_id=user_id, batch_id=batch.id, photo_id=photo.id, identity_id=identity.id)
    session.add(submission)
    session.add(_order(submission, batch.fee_fen, channel, now))
    try:
        session.commit()
    except IntegrityError:
        # A double tap on 开始核验: the other request created the attempt first.
        session.rollback()
        raise SubmissionInFlightError() from None
    return submission


def renew_order(session: Session, submission: Submission, now: datetime, channel: str) -> PaymentOrder:
    """A fresh order for an unpaid attempt whose order expired (or for another channel); commits.

    The old order stays open at WeChat Pay until the expiry job closes it; if it is paid meanwhile,
    the payment is applied all the same (payments.apply_payment accepts a closed order).
    """
    if submission.status != SubmissionStatus.AWAITING_PAYMENT:
        raise SubmissionError("这次提交已不在待缴费状态。")
    order = _order(submission, submission.batch.fee_fen, channel, now)
    session.add(order)
    session.commit()
    return order


def current_order(submission: Submission, now: datetime) -> PaymentOrder | None:
    """The open order still valid now, if any."""
    for order in reversed(submission.orders):
        if order.status == OrderStatus.OPEN and order.expires_at > now:
            return order
    return None


def _order(submission: Submission, amount_fen: int, channel: str, now: datetime) -> PaymentOrder:
    if channel not in ("jsapi", "native"):
        raise ValueError(f"unknown payment channel {channel!r}")
    return PaymentOrder(
        submission=submission,
        out_trade_no=new_out_trade_no(now),
        channel=channel,
        amount_fen=amount_fen,
        expires_at=now + ORDER_TTL,
        created_at=utcnow(),
    )
