"""The identity check with the register (人口库核验), then on to review or back: after payment in
pay_first batches, at submission in the others (app/services/flows.py).

match → 未审核 (the photo joins the review queue); mismatch or not found → 身份核验失败, the identity
and school link unlocked so the student can correct them and pay a new attempt; no answer (provider
down) → the job raises and the worker retries with backoff; after `max_attempts` the attempt is
refunded (our fault, not the student's). Each outcome tells the student in WeChat, in the same
commit as the state change (outbox).
"""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.integrations.identity import IdentityVerifier, VerificationUnavailableError
from app.services import outbox, payments, wording
from app.services.job_kinds import JobKind
from app.services.pii import Keyring
from models import (
    Batch,
    Enrollment,
    Flow,
    Identity,
    OrderStatus,
    Submission,
    SubmissionStatus,
    User,
    utcnow,
)

log = logging.getLogger(__name__)


def run(
    session: Session,
    keyring: Keyring,
    verifier: IdentityVerifier,
    submission_id: int,
    *,
    max_attempts: int,
    base_url: str,
) -> str:
    """Verify one paid attempt; returns the outcome. Raises VerificationUnavailableError to be
    retried. Safe to run twice: an attempt no longer 核验中 is left alone."""
    submission = session.get(Submission, submission_id)
    if submission is None or submission.status != SubmissionStatus.VERIFYING:
        return "nothing to do"
    identity = session.get(Identity, submission.identity_id)
    user = session.get(User, submission.user_id)
    assert identity is not None and user is not None  # foreign keys
    try:
        result = verifier.verify(
            identity.doc_type,
            keyring.decrypt(identity.number_enc),
            keyring.decrypt(identity.name_enc),
            request_id=f"submission-{submission.id}",
        )
    except VerificationUnavailableError:
        submission.verify_attempts += 1
        if submission.verify_attempts < max_attempts:
            session.commit()
            raise
        _refund(session, submission, user.openid)
        return "refunded"
    now = utcnow()
    submission.verified_at = now
    submission.verification = {
        "result": result.outcome.value,
        "reason": result.reason,
        "provider": result.provider,
        "reference": result.reference,
        "at": now.isoformat(),
    }
    if result.matched:
        submission.status = SubmissionStatus.PENDING_REVIEW
        days = f"{submission.batch.review_days_min}–{submission.batch.review_days_max}"
        _tell(session, user.openid, submission.id, wording.VERIFY_PASSED.format(days=days))
    else:
        submission.status = SubmissionStatus.VERIFY_FAILED
        submission.status_reason = result.reason
        _unlock(session, submission)
        _tell(
            session,
            user.openid,
            submission.id,
            wording.VERIFY_FAILED.format(
                reason=result.reason,
                url=wording.bind_url(base_url),
                again=wording.VERIFY_FAILED_PAY_AGAIN if _pays_again(submission.batch) else "",
            ),
        )
    session.commit()
    log.info("identity verified", extra={"submission_id": submission.id, "outcome": result.outcome.value})
    return result.outcome.value


def _pays_again(batch: Batch) -> bool:
    return batch.flow == Flow.PAY_FIRST and batch.fee_per_attempt


def _refund(session: Session, submission: Submission, openid: str) -> None:
    """Give up on the provider: refund the paid order in full (the worker calls WeChat Pay); an
    attempt that paid nothing (the check runs before payment in review_first and free batches) is
    cancelled instead, so the student can submit again later."""
    order = next((o for o in submission.orders if o.status == OrderStatus.PAID), None)
    if order is None:
        submission.status = SubmissionStatus.CANCELLED
        submission.status_reason = "身份核验服务暂时不可用，请稍后重新提交"
        _unlock(session, submission)
        _tell(session, openid, submission.id, wording.VERIFY_UNAVAILABLE)
        session.commit()
        log.warning("verification gave up, unpaid attempt cancelled", extra={"submission_id": submission.id})
        return
    submission.status = SubmissionStatus.REFUNDED
    submission.status_reason = "身份核验服务暂时不可用，已退款"
    _unlock(session, submission)
    if order is not None:
        payments.new_refund(session, order, "身份核验服务不可用", "system")
        _tell(
            session,
            openid,
            submission.id,
            wording.VERIFY_REFUNDED.format(amount=wording.yuan(order.amount_fen)),
        )
    session.commit()
    log.warning("verification gave up, attempt refunded", extra={"submission_id": submission.id})


def _unlock(session: Session, submission: Submission) -> None:
    """The attempt no longer holds the identity and school link: the student may correct them."""
    identity = session.scalar(select(Identity).where(Identity.user_id == submission.user_id, Identity.active))
    enrollment = session.scalar(
        select(Enrollment).where(Enrollment.user_id == submission.user_id, Enrollment.active)
    )
    for row in (identity, enrollment):
        if row is not None:
            row.locked_at = None


def _tell(session: Session, openid: str, submission_id: int, text: str) -> None:
    # The student paid seconds ago, well inside the 48 h custom-message window.
    outbox.enqueue(
        session,
        JobKind.SEND_TEXT,
        {"openid": openid, "text": text},
        key=f"notice:{submission_id}:{text[:20]}",
    )
