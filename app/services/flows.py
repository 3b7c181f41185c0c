"""The three workflows a batch can run (docs/workflows.md): which state an attempt enters at each
event, which window governs it, and when the student's data freezes. The services that move
attempts (submissions, reviews, payments, verifications) ask here instead of knowing the flows.

- pay_first (湖南师范大学): pay → identity check → review.
- review_first (武汉轻工大学, 新疆自考): identity check → review → pay within the pay window.
- free (西北工业大学, 重庆科技学院): identity check → review; never an order.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.services import wording
from models import Batch, Flow, LockOn
from models.submission import OrderStatus, PaymentOrder, Submission, SubmissionStatus

# Short labels for staff pages, where a reviewer needs to know whether an approval still awaits a fee.
FLOW_LABELS: dict[Flow, str] = {
    Flow.PAY_FIRST: "先缴费",
    Flow.REVIEW_FIRST: "先审后缴",
    Flow.FREE: "免费",
}


def flow_label(flow: Flow | str) -> str:
    return FLOW_LABELS[Flow(flow)]


def checked(batch: Batch) -> SubmissionStatus:
    """Where an attempt goes once nothing stands before review: the identity check first when the
    batch asks for it."""
    return SubmissionStatus.VERIFYING if batch.verify_identity else SubmissionStatus.PENDING_REVIEW


def fee_due_at_submission(batch: Batch, covered: bool) -> bool:
    """pay_first pays before anything else, unless an earlier paid attempt covers the batch."""
    return batch.flow == Flow.PAY_FIRST and not covered


def after_approval(batch: Batch, paid: bool) -> SubmissionStatus:
    """通过: review_first still owes its fee (unless a withdrawn and repeated approval finds it
    paid already); the others are done."""
    if batch.flow == Flow.REVIEW_FIRST and not paid:
        return SubmissionStatus.APPROVED_UNPAID
    return SubmissionStatus.APPROVED


def after_payment(batch: Batch, status: SubmissionStatus) -> SubmissionStatus | None:
    """The state a paid attempt moves to, or None when this payment moves nothing."""
    if status in (SubmissionStatus.AWAITING_PAYMENT, SubmissionStatus.CANCELLED):
        return checked(batch)
    if status in (SubmissionStatus.APPROVED_UNPAID, SubmissionStatus.VOID):
        # A void attempt paid all the same: its order expired at the window's close at the latest
        # (submissions._order), so the payment was made on time and only its news came late.
        return SubmissionStatus.APPROVED
    return None


def payable(status: SubmissionStatus) -> bool:
    """States in which an attempt has a fee to pay now."""
    return status in (SubmissionStatus.AWAITING_PAYMENT, SubmissionStatus.APPROVED_UNPAID)


def locks_at(batch: Batch, event: LockOn) -> bool:
    """Whether `event` (payment, approval, the student's confirmation) freezes the data for good."""
    if batch.flow == Flow.FREE and batch.lock_on == LockOn.PAY:
        # A free batch has no payment: its data freezes at approval.
        return event == LockOn.APPROVE
    return batch.lock_on == event


def pledge_at_confirmation(batch: Batch) -> bool:
    """The 承诺 (and signature) is made when the data becomes final: at the confirmation where the
    batch has one, at submission otherwise."""
    return batch.lock_on == LockOn.CONFIRM


def needs_confirmation(submission: Submission) -> bool:
    """An approved attempt whose batch ends with the student's confirmation, not yet given."""
    return (
        submission.status == SubmissionStatus.APPROVED
        and submission.batch.lock_on == LockOn.CONFIRM
        and submission.confirmed_at is None
    )


def fee_covered_by(session: Session, submission_user_id: int, batch: Batch) -> int | None:
    """fee_per_attempt=no: the student's earlier attempt in this batch whose fee is paid and kept
    (not refunded); a resubmission after 驳回 then pays nothing more."""
    if batch.fee_per_attempt or batch.flow != Flow.PAY_FIRST:
        return None
    return session.scalar(
        select(Submission.id)
        .join(PaymentOrder, PaymentOrder.submission_id == Submission.id)
        .where(
            Submission.user_id == submission_user_id,
            Submission.batch_id == batch.id,
            PaymentOrder.status == OrderStatus.PAID,
        )
        .order_by(Submission.id)
        .limit(1)
    )


def pay_window_message(batch: Batch, at: datetime) -> str | None:
    """Why the fee cannot be paid now (None when it can), naming the window."""
    if batch.pay_is_open(at):
        return None
    return wording.pay_window_refusal(batch, at)
