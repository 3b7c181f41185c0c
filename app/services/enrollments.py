"""Linking a student to a school's batch (关联学校 → 确定关联)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.services import identities, single_statement
from app.services.errors import ServiceError
from app.services.localtime import BEIJING
from models import Batch, Enrollment, Flow, User, utcnow

log = logging.getLogger(__name__)


class EnrollmentError(ServiceError):
    message = "关联学校失败"


class IdentityRequiredError(EnrollmentError):
    message = "请先完成实名绑定，再关联学校。"


class BatchNotFoundError(EnrollmentError):
    message = "找不到这个批次，请重新选择。"


class BatchClosedError(EnrollmentError):
    message = "该批次不在开放时间内，不能关联。"


class EnrollmentLockedError(EnrollmentError):
    message = "你在当前批次的信息已锁定，不能再更换学校或批次。"


def _local(moment: datetime) -> str:
    # Students read Beijing time.
    return moment.astimezone(BEIJING).strftime("%Y年%m月%d日 %H:%M")


class BatchWindow(Protocol):
    """What the closed-batch message needs: a Batch, or a row of just these columns."""

    name: str
    opens_at: datetime
    closes_at: datetime


def closed_message(batch: BatchWindow, now: datetime) -> str:
    if now < batch.opens_at:
        return f"「{batch.name}」将于 {_local(batch.opens_at)} 开放，届时再来关联。"
    return f"「{batch.name}」已于 {_local(batch.closes_at)} 截止，不能再关联。请选择开放中的批次或咨询学校。"


# Built once: building it per 帮助 cost more CPU than running it.
_SENDER_FEE = (
    select(
        Batch.fee_fen, Batch.name, Batch.flow, Batch.pay_opens_at, Batch.pay_closes_at, Batch.exam_selection
    )
    .join(Enrollment, (Enrollment.batch_id == Batch.id) & Enrollment.active)
    .join(User, User.id == Enrollment.user_id)
    .where(User.openid == bindparam("openid"))
    .limit(1)
)


@dataclass(frozen=True)
class BatchFee:
    """What the help says about money: the batch's fee and when its flow takes it."""

    fee_fen: int
    batch_name: str
    flow: Flow
    pay_opens_at: datetime | None
    pay_closes_at: datetime | None
    # 报考: the fee is the sum of the courses the candidate chooses (docs/exams.md).
    exam_selection: bool = False


def fee_of_sender(session: Session, openid: str) -> BatchFee | None:
    """The fee of the batch the sender is linked to; None when not linked. One SELECT: the help
    reply runs in a read-only handler."""
    row = single_statement.first_row(session, _SENDER_FEE, {"openid": openid})
    if row is None:
        return None
    return BatchFee(
        int(row.fee_fen),
        str(row.name),
        Flow(row.flow),
        row.pay_opens_at,
        row.pay_closes_at,
        bool(row.exam_selection),
    )


def active(session: Session, user_id: int) -> Enrollment | None:
    return session.scalar(select(Enrollment).where(Enrollment.user_id == user_id, Enrollment.active))


def link(session: Session, user_id: int, batch_id: int, now: datetime) -> Enrollment:
    """Link the user to a batch that is open now (replacing an unlocked link); commits."""
    if identities.active(session, user_id) is None:
        raise IdentityRequiredError()
    batch = session.get(Batch, batch_id)
    if batch is None:
        raise BatchNotFoundError()
    current = active(session, user_id)
    if current is not None and current.batch_id == batch_id:
        return current
    if current is not None and current.locked_at is not None:
        raise EnrollmentLockedError()
    if current is not None and identities.awaits_confirmation(session, user_id):
        raise EnrollmentLockedError("你的提交已审核通过，请确认信息并签名；审核通过后不能再更换学校或批次。")
    if current is not None and identities.data_held(session, user_id):
        raise EnrollmentLockedError("你有一次提交正在核验或审核中，期间不能更换学校或批次。请等待结果。")
    if not batch.is_open(now):
        raise BatchClosedError(closed_message(batch, now))
    if current is not None:
        current.active = False
        current.ended_at = utcnow()
        current.end_reason = "changed"
        session.flush()
    enrollment = Enrollment(user_id=user_id, batch_id=batch_id)
    session.add(enrollment)
    try:
        session.commit()
    except IntegrityError:
        # Two taps of 确定关联 raced; the other one won and the result is the same link.
        session.rollback()
        winner = active(session, user_id)
        if winner is None:
            raise
        return winner
    log.info("enrollment linked", extra={"user_id": user_id, "batch_id": batch_id})
    return enrollment


def lock(session: Session, user_id: int) -> None:
    """Freeze the link for good at the batch's lock point (no commit)."""
    current = active(session, user_id)
    if current is not None and current.locked_at is None:
        current.locked_at = utcnow()


class NoticeError(EnrollmentError):
    message = "请先关联学校和批次。"


def acknowledge_notice(session: Session, user_id: int, now: datetime) -> Enrollment:
    """我已阅读: the batch's 须知 acknowledged for this link, once (a repeat keeps the first time);
    commits."""
    current = active(session, user_id)
    if current is None:
        raise NoticeError()
    if current.notice_acked_at is None:
        current.notice_acked_at = now
        session.commit()
    return current
