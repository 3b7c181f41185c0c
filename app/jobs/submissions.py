"""Job kinds of the submission flow."""

from __future__ import annotations

from typing import Any

from flask import current_app

from app.extensions import db
from app.integrations import identity_verifier, pii_keyring
from app.jobs import PermanentJobError, job
from app.services import verifications
from app.services.job_kinds import JobKind


@job(JobKind.VERIFY_SUBMISSION)
def verify(payload: dict[str, Any]) -> None:
    """人口库核验 for a paid attempt; an unanswered check raises and is retried with backoff."""
    try:
        submission_id = int(payload["submission_id"])
    except (KeyError, TypeError, ValueError):
        raise PermanentJobError("payload lacks submission_id") from None
    verifications.run(
        db.session,
        pii_keyring(),
        identity_verifier(),
        submission_id,
        max_attempts=current_app.config["VERIFY_MAX_ATTEMPTS"],
        base_url=current_app.config["PUBLIC_BASE_URL"],
    )


@job(JobKind.REFUND)
def refund(payload: dict[str, Any]) -> None:
    """Send a refund to WeChat Pay (idempotent there by out_refund_no); its notification, or this
    call's answer, completes it."""
    from app.integrations import pay_client
    from app.integrations.wechat_pay import PayError
    from app.services import payments
    from models import Refund

    item = db.session.get(Refund, int(payload.get("refund_id") or 0))
    if item is None:
        raise PermanentJobError("no such refund")
    order = item.order
    try:
        state = pay_client().refund(
            order.out_trade_no, item.out_refund_no, item.amount_fen, order.amount_fen, item.reason
        )
    except PayError as exc:
        if exc.retryable:
            raise
        raise PermanentJobError(f"WeChat Pay refused the refund: {exc.code} {exc.message}") from exc
    payments.apply_refund(db.session, state.out_refund_no, state.refund_id, state.status, state.success_time)
