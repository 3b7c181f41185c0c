"""The pay window's close in review_first batches (武汉轻工大学: 网上报名成功，且审核通过的学生才能缴费;
未在规定时间内缴费的，本次报名无效): approved attempts still unpaid become 逾期未缴费，报名无效, and the
student is told once."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.services import pushes, wording
from app.services.pushes import ResultPush
from models import Batch, School, User
from models.submission import OrderStatus, PaymentOrder, Submission, SubmissionStatus

log = logging.getLogger(__name__)

VOID_REASON = "逾期未缴费，报名无效"


def void_overdue(session: Session, now: datetime, push: ResultPush) -> list[int]:
    """审核通过，待缴费 attempts whose batch's pay window closed → void, each with its push, one
    commit per attempt; returns their ids. Safe on several workers at once and when rerun: the
    update is conditional on the state, and the push's key is the attempt's."""
    # An order still payable keeps the attempt until it expires (never after the window's close:
    # submissions._order caps it there), so a student paying at the last second is not voided.
    payable = (
        select(PaymentOrder.id)
        .where(
            PaymentOrder.submission_id == Submission.id,
            PaymentOrder.status == OrderStatus.OPEN,
            PaymentOrder.expires_at > now,
        )
        .exists()
    )
    overdue = session.execute(
        select(Submission.id, User.openid, Batch, School.name)
        .join(Batch, Batch.id == Submission.batch_id)
        .join(School, School.id == Batch.school_id)
        .join(User, User.id == Submission.user_id)
        .where(
            Submission.status == SubmissionStatus.APPROVED_UNPAID,
            Batch.pay_closes_at <= now,
            ~payable,
        )
    ).all()
    voided: list[int] = []
    for submission_id, openid, batch, school_name in overdue:
        won = session.execute(
            update(Submission)
            .where(
                Submission.id == submission_id,
                Submission.status == SubmissionStatus.APPROVED_UNPAID,
                ~payable,
            )
            .values(status=SubmissionStatus.VOID, status_reason=VOID_REASON, updated_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount  # type: ignore[attr-defined]
        if won != 1:
            session.rollback()
            continue
        _announce(session, push, submission_id, openid, batch, school_name, now)
        session.commit()
        voided.append(submission_id)
    if voided:
        log.info("unpaid approvals voided at the pay window's close", extra={"count": len(voided)})
    return voided


def _announce(
    session: Session,
    push: ResultPush,
    submission_id: int,
    openid: str,
    batch: Batch,
    school_name: str,
    now: datetime,
) -> None:
    following = wording.result_next_step(SubmissionStatus.VOID, batch)
    status_url = f"{push.base_url}/h5/status"
    pushes.announce(
        session,
        push,
        openid,
        f"void:{submission_id}",
        template_data=lambda: wording.result_template_data(
            SubmissionStatus.VOID, school_name, VOID_REASON, now, following
        ),
        text=lambda: wording.result_text(
            SubmissionStatus.VOID, school_name, batch.name, VOID_REASON, now, status_url, following
        ),
    )
