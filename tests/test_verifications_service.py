"""After payment: the identity check against the sandbox roster, through the real provider code."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from pay_students import paid_notice, student
from sqlalchemy import select

from app.extensions import db
from app.integrations import identity_verifier, pii_keyring
from app.integrations.identity import VerificationUnavailableError
from app.services import payments, submissions, verifications
from models import Identity, OutboxItem, Refund, Submission, SubmissionStatus, utcnow


def _paid_attempt() -> int:
    user_id, photo_id = student()
    attempt = submissions.create(db.session, user_id, photo_id, utcnow())
    payments.apply_payment(db.session, paid_notice(attempt.orders[0]))
    return attempt.id


def _roster(client: FlaskClient, result: str, name: str = "张三") -> None:
    response = client.post(
        "/_sandbox/roster", json={"id_number": "210101200101010011", "name": name, "result": result}
    )
    assert response.status_code in (200, 201), response.get_json()


def _run(app: Flask, submission_id: int, max_attempts: int = 3) -> str:
    return verifications.run(
        db.session,
        pii_keyring(),
        identity_verifier(),
        submission_id,
        max_attempts=max_attempts,
        base_url="https://x",
    )


def _notices() -> list[str]:
    return [j.payload["text"] for j in db.session.scalars(select(OutboxItem)) if j.kind == "wechat.send_text"]


@pytest.fixture
def ctx(app: Flask) -> Any:
    with app.app_context():
        yield
        db.session.remove()


def test_a_match_sends_the_photo_to_review_and_tells_the_student(app: Flask, ctx: Any) -> None:
    submission_id = _paid_attempt()
    assert _run(app, submission_id) == "match"
    attempt = db.session.get(Submission, submission_id)
    assert attempt is not None and attempt.status == SubmissionStatus.PENDING_REVIEW
    assert attempt.verification is not None and attempt.verification["result"] == "match"
    assert any("已进入人工审核" in text and "7–10" in text for text in _notices())
    # Run twice (a worker killed after the work): nothing more happens.
    assert _run(app, submission_id) == "nothing to do"


@pytest.mark.parametrize("result", ["mismatch", "not_found"])
def test_a_mismatch_fails_the_attempt_and_unlocks_the_identity(
    app: Flask, ctx: Any, client: FlaskClient, result: str
) -> None:
    _roster(client, result)
    submission_id = _paid_attempt()
    assert _run(app, submission_id) == result
    attempt = db.session.get(Submission, submission_id)
    assert attempt is not None and attempt.status == SubmissionStatus.VERIFY_FAILED
    assert attempt.status_reason and "修改后重新提交核验" in attempt.status_reason
    assert db.session.scalar(select(Identity.locked_at).where(Identity.active)) is None
    assert any(text.startswith("身份核验未通过") for text in _notices())


def test_an_outage_is_retried_never_a_mismatch_then_refunded(
    app: Flask, ctx: Any, client: FlaskClient
) -> None:
    _roster(client, "error")
    submission_id = _paid_attempt()
    for attempt_no in (1, 2):
        with pytest.raises(VerificationUnavailableError):
            _run(app, submission_id, max_attempts=3)
        attempt = db.session.get(Submission, submission_id)
        assert attempt is not None
        assert (attempt.status, attempt.verify_attempts) == (SubmissionStatus.VERIFYING, attempt_no)
    assert _run(app, submission_id, max_attempts=3) == "refunded"
    db.session.expire_all()
    attempt = db.session.get(Submission, submission_id)
    assert attempt is not None and attempt.status == SubmissionStatus.REFUNDED
    refund = db.session.scalars(select(Refund)).one()
    assert (refund.amount_fen, refund.requested_by) == (200, "system")
    kinds = sorted(j.kind for j in db.session.scalars(select(OutboxItem)))
    assert kinds == ["payments.refund", "submissions.verify", "wechat.send_text"]
    assert any("已原路退回" in text for text in _notices())
