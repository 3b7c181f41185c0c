"""Submissions: one attempt to have a photo verified and reviewed (开始核验 / 提交审核).

Creating one needs everything complete first (as 武汉轻工大学's and 新疆自考's manuals have it: pay only
after the data is complete):
a bound identity, a link to a batch that is open now, its 须知 acknowledged, every required field of
its form and file of its document slots (where it defines them), its 承诺 made where it
is made at submission, and a photo of that batch that passed its checks and that no reviewer
rejected (nor the same picture in an earlier attempt). One attempt may be in flight per student;
after a final 不通过 (or 报名无效) in a batch none can follow. Where the attempt goes next is the
batch's flow (app/services/flows.py): an order to pay first, or straight on to the identity check
or review.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.services import (
    applications,
    enrollments,
    exam_registrations,
    flows,
    identities,
    outbox,
    photos,
    pledges,
    wording,
)
from app.services.errors import ServiceError
from app.services.job_kinds import JobKind
from app.services.localtime import stored_utc
from app.services.pledges import Pledge
from media.storage import Storage
from models import Batch, LockOn, Photo, utcnow
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


class ApplicationIncompleteError(SubmissionError):
    """The batch's form or documents still lack required items; `missing` lists them in Chinese."""

    message = "报名信息或材料还不完整。"

    def __init__(self, missing: list[str]) -> None:
        items = "；".join(m.rstrip("。") for m in missing)
        super().__init__(f"报名信息或材料还不完整，请先补齐：{items}。")
        self.missing = missing


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


class NoticeNotAcknowledgedError(SubmissionError):
    message = "请先阅读本批次的「须知」并点击「我已阅读」。"


class FeeMisconfiguredError(SubmissionError):
    """A charging batch without a positive fee: a data error the school must fix, not the student."""

    message = "该批次的收费设置有误，暂时不能提交，请联系学校。"


class PayWindowError(SubmissionError):
    message = "现在不在缴费时间内。"


class ConfirmationError(SubmissionError):
    message = "这次提交现在不需要确认。"


def new_out_trade_no(now: datetime) -> str:
    """WeChat Pay: 6–32 characters of [A-Za-z0-9_-|*], unique per merchant."""
    return f"P{now:%Y%m%d}{secrets.token_hex(8).upper()}"


def in_flight(session: Session, user_id: int) -> Submission | None:
    return session.scalar(
        select(Submission).where(Submission.user_id == user_id, Submission.status.in_(IN_FLIGHT))
    )


def create(
    session: Session,
    user_id: int,
    photo_id: int,
    now: datetime,
    channel: str = "jsapi",
    *,
    pledge: Pledge | None = None,
    storage: Storage | None = None,
) -> Submission:
    """Create the attempt, and its first payment order where the flow takes the fee now (no call to
    WeChat Pay here); commits.

    The caller then asks WeChat Pay for the prepay id or code_url (`payments.prepare`), after this
    commit, so a slow or failed call never leaves a half-written attempt. `storage` keeps the
    signature where the batch asks for one.
    """
    identity = identities.active(session, user_id)
    enrollment = enrollments.active(session, user_id)
    if identity is None or enrollment is None:
        raise SubmissionIncompleteError()
    batch = enrollment.batch
    if not batch.is_open(now):
        raise BatchNotOpenError(enrollments.closed_message(batch, now))
    if batch.notice and enrollment.notice_acked_at is None:
        raise NoticeNotAcknowledgedError()
    missing = applications.missing_items(session, enrollment)
    if missing:
        raise ApplicationIncompleteError(missing)
    photo = session.get(Photo, photo_id)
    if photo is None or photo.user_id != user_id or photo.batch_id != batch.id or not photo.passed:
        raise PhotoNotUsableError()
    current = in_flight(session, user_id)
    if current is not None:
        raise SubmissionInFlightError(
            f"你已有一次提交正在进行中（{STATUS_LABELS[current.status]}），请等待结果。"
        )
    final = session.scalar(
        select(Submission.status).where(
            Submission.user_id == user_id,
            Submission.batch_id == batch.id,
            Submission.status.in_((SubmissionStatus.REFUSED, SubmissionStatus.VOID)),
        )
    )
    if final == SubmissionStatus.REFUSED:
        raise SubmissionFinalError()
    if final == SubmissionStatus.VOID:
        raise SubmissionFinalError("你在本批次逾期未缴费，报名已无效，不能再次提交。")
    rejection = photos.review_rejection(session, photo)
    if rejection is not None:
        raise PhotoRejectedError(wording.photo_rejected_by_review(rejection.status_label, rejection.reason))
    covered = flows.fee_covered_by(session, user_id, batch)
    due = flows.fee_due_at_submission(batch, covered is not None)
    if batch.takes_fee and batch.fee_fen <= 0:
        raise FeeMisconfiguredError()
    submission = Submission(
        user_id=user_id,
        batch_id=batch.id,
        photo_id=photo.id,
        identity_id=identity.id,
        status=SubmissionStatus.AWAITING_PAYMENT if due else flows.checked(batch),
        fee_paid_by_id=covered,
    )
    if not flows.pledge_at_confirmation(batch):
        pledges.record(batch, pledge, submission, storage, now)
    session.add(submission)
    if due:
        session.add(_order(submission, amount_due(session, submission, batch, now), channel, now))
    try:
        session.flush()
    except IntegrityError:
        # A double tap on 开始核验: the other request created the attempt first.
        session.rollback()
        raise SubmissionInFlightError() from None
    if not due:
        _go_on(session, submission)
    session.commit()
    return submission


def _go_on(session: Session, submission: Submission) -> None:
    """An attempt with nothing to pay now goes straight on: the identity check where the batch
    asks for one (the worker runs it), the review queue otherwise (no commit)."""
    if submission.status == SubmissionStatus.VERIFYING:
        outbox.enqueue(
            session,
            JobKind.VERIFY_SUBMISSION,
            {"submission_id": submission.id},
            key=f"verify:{submission.id}",
        )


def confirm(
    session: Session,
    user_id: int,
    submission_id: int,
    now: datetime,
    *,
    pledge: Pledge | None,
    storage: Storage,
) -> Submission:
    """The student's final confirmation after 通过 where the batch ends with one (湖南师范大学:
    点击确认后，无法再修改信息): the pledge and signature, and the data frozen for good; commits.
    Confirming twice is harmless."""
    submission = session.get(Submission, submission_id)
    if submission is None or submission.user_id != user_id:
        raise ConfirmationError("找不到这次提交。")
    if submission.confirmed_at is not None:
        return submission
    if not flows.needs_confirmation(submission):
        raise ConfirmationError()
    pledges.record(submission.batch, pledge, submission, storage, now)
    submission.confirmed_at = now
    lock_data(session, submission.batch, user_id, LockOn.CONFIRM)
    session.commit()
    return submission


def lock_data(session: Session, batch: Batch, user_id: int, event: LockOn) -> None:
    """Freeze the identity and the school link if the batch says `event` does (no commit)."""
    if flows.locks_at(batch, event):
        identities.lock(session, user_id)
        enrollments.lock(session, user_id)


def renew_order(session: Session, submission: Submission, now: datetime, channel: str) -> PaymentOrder:
    """A fresh order for an unpaid attempt whose order expired (or for another channel); commits.

    The old order stays open at WeChat Pay until the expiry job closes it; if it is paid meanwhile,
    the payment is applied all the same (payments.apply_payment accepts a closed order).
    """
    if not flows.payable(submission.status):
        raise SubmissionError("这次提交已不在待缴费状态。")
    batch = submission.batch
    closed = flows.pay_window_message(batch, now)
    if closed is not None:
        raise PayWindowError(closed)
    last_moment = batch.pay_closes_at if submission.status == SubmissionStatus.APPROVED_UNPAID else None
    order = _order(submission, amount_due(session, submission, batch, now), channel, now, last_moment)
    session.add(order)
    session.commit()
    return order


def amount_due(session: Session, submission: Submission, batch: Batch, now: datetime) -> int:
    """What an order of this attempt charges, the one place every order's amount comes from: the sum
    of the chosen courses in a batch with course selection (报考; the registration locks in the order's
    commit, exam_registrations.order_amount), the batch's fee otherwise."""
    if batch.exam_selection:
        return exam_registrations.order_amount(session, submission, now)
    return batch.fee_fen


def current_order(submission: Submission, now: datetime) -> PaymentOrder | None:
    """The open order still valid now, if any."""
    for order in reversed(submission.orders):
        if order.status == OrderStatus.OPEN and order.expires_at > now:
            return order
    return None


def _order(
    submission: Submission, amount_fen: int, channel: str, now: datetime, last_moment: datetime | None = None
) -> PaymentOrder:
    """An order valid ORDER_TTL, or until `last_moment` (a pay window's close) if that is sooner: a
    payment made on time can then never arrive after the window."""
    if channel not in ("jsapi", "native"):
        raise ValueError(f"unknown payment channel {channel!r}")
    expires_at = now + ORDER_TTL
    if last_moment is not None:
        expires_at = min(expires_at, stored_utc(last_moment))
    return PaymentOrder(
        submission=submission,
        out_trade_no=new_out_trade_no(now),
        channel=channel,
        amount_fen=amount_fen,
        expires_at=expires_at,
        created_at=utcnow(),
    )
