"""What the student's pages show about the linked batch's workflow (app/services/flows.py): the
须知, what 提交 costs and promises, whether the fee can be paid now, and the data a final
confirmation freezes. Reads only; the rules themselves live in flows, submissions and pledges.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from app.services import enrollments, flows, wording
from app.services.localtime import stored_utc
from app.services.pii import Keyring, mask_id_number
from models import Batch, Flow, LockOn, School
from models.submission import STATUS_LABELS, Submission, SubmissionStatus


@dataclass(frozen=True)
class NoticeView:
    batch_name: str
    text: str | None
    acknowledged_at: datetime | None

    @property
    def pending(self) -> bool:
        """A 须知 still to be read before uploading and submitting."""
        return bool(self.text) and self.acknowledged_at is None


def notice_of(session: Session, user_id: int) -> NoticeView | None:
    """The linked batch's 须知 and whether it was acknowledged; None when no batch is linked."""
    enrollment = enrollments.active(session, user_id)
    if enrollment is None:
        return None
    return NoticeView(enrollment.batch.name, enrollment.batch.notice or None, enrollment.notice_acked_at)


@dataclass(frozen=True)
class SubmitTerms:
    """What the photo page's last step says and asks for in this batch."""

    flow: str  # pay_first | review_first | free
    button: str  # 开始核验 (pay now) or 提交审核
    fee_label: str
    pay_window: str | None  # review_first: when the fee is paid after approval
    pledge: str | None  # the 承诺 ticked at submission (None: none, or at the confirmation)
    signature: bool  # a signature drawn with the pledge
    pays_again: str  # 「（需重新缴费核验）」 where a new attempt pays again, else ""


def submit_terms(batch: Batch) -> SubmitTerms:
    pledge = None if flows.pledge_at_confirmation(batch) else (batch.pledge or None)
    return SubmitTerms(
        flow=Flow(batch.flow).value,
        button="开始核验" if batch.flow == Flow.PAY_FIRST else "提交审核",
        fee_label=fee_label(batch),
        pay_window=_pay_window(batch),
        pledge=pledge,
        signature=bool(pledge) and batch.signature,
        pays_again=wording.pays_again(batch.flow, batch.fee_per_attempt),
    )


def fee_label(batch: Batch) -> str:
    """The fee as the pages name it: with course selection it is the chosen courses' sum (报考)."""
    return wording.EXAM_FEE_LABEL if batch.exam_selection else wording.yuan(batch.fee_fen)


def _pay_window(batch: Batch) -> str | None:
    if batch.flow != Flow.REVIEW_FIRST or batch.pay_opens_at is None or batch.pay_closes_at is None:
        return None
    return wording.window_text(batch.pay_opens_at, batch.pay_closes_at)


@dataclass(frozen=True)
class PayTerms:
    """Whether an attempt's fee can be paid now, and if not why (naming the window)."""

    after_approval: bool  # review_first: 审核通过，请在缴费时间内缴费
    pay_window: str | None
    window_state: str  # open | not_yet | closed
    closed_message: str | None


def pay_terms(submission: Submission, now: datetime) -> PayTerms:
    batch = submission.batch
    message = flows.pay_window_message(batch, now)
    if message is None:
        state = "open"
    elif batch.flow == Flow.REVIEW_FIRST and batch.pay_opens_at and now < stored_utc(batch.pay_opens_at):
        state = "not_yet"
    else:
        state = "closed"
    return PayTerms(
        after_approval=submission.status == SubmissionStatus.APPROVED_UNPAID,
        pay_window=_pay_window(batch),
        window_state=state,
        closed_message=message,
    )


@dataclass(frozen=True)
class AfterDecision:
    """What the status page adds to an attempt's state in the new workflows."""

    after_approval: str | None  # what to do after 通过 (重庆科技学院: 邮寄纸质照片…)
    needs_confirmation: bool
    confirmed_at: datetime | None
    pay_window: str | None
    fee_label: str
    next_step: str  # the flow's words for what follows the decision


def after_decision(session: Session, submission_id: int) -> AfterDecision | None:
    submission = session.get(Submission, submission_id)
    if submission is None:
        return None
    batch = submission.batch
    status = SubmissionStatus(submission.status)
    return AfterDecision(
        after_approval=batch.after_approval or None,
        needs_confirmation=flows.needs_confirmation(submission),
        confirmed_at=submission.confirmed_at,
        pay_window=_pay_window(batch),
        fee_label=fee_label(batch),
        next_step=wording.result_next_step(status, batch),
    )


@dataclass(frozen=True)
class Confirmation:
    """The data a final confirmation freezes, as the student sees it before 确认提交."""

    submission_id: int
    photo_id: int
    name: str  # the student's own name, in full: it is what they confirm
    number_masked: str
    school_name: str
    batch_name: str
    pledge: str | None
    signature: bool
    needed: bool  # approved, the batch ends with a confirmation, not given yet
    confirmed_at: datetime | None
    status_label: str


def confirmation(session: Session, keyring: Keyring, user_id: int, submission_id: int) -> Confirmation | None:
    """The student's own attempt in a batch that ends with a confirmation (lock_on=confirm); None
    for another student's attempt, a missing one, or a batch without a confirmation."""
    submission = session.get(Submission, submission_id)
    if submission is None or submission.user_id != user_id:
        return None
    batch = submission.batch
    if batch.lock_on != LockOn.CONFIRM:
        return None
    school = session.get(School, batch.school_id)
    identity = submission.identity
    return Confirmation(
        submission_id=submission.id,
        photo_id=submission.photo_id,
        name=keyring.decrypt(identity.name_enc),
        number_masked=mask_id_number(keyring.decrypt(identity.number_enc)),
        school_name=school.name if school is not None else "",
        batch_name=batch.name,
        pledge=batch.pledge or None,
        signature=bool(batch.pledge) and batch.signature,
        needed=flows.needs_confirmation(submission),
        confirmed_at=submission.confirmed_at,
        status_label=STATUS_LABELS[SubmissionStatus(submission.status)],
    )
