"""The 审核通过 receipt (打印回执单 in 湖南师范大学's manual) and the signed token its QR code carries.

The token is the submission id signed with SECRET_KEY under its own salt (itsdangerous), nothing
else: whoever scans it learns only what /verify/<token> shows (masked), and a forged or altered
token fails the signature check. It does not expire: the receipt is kept as a 学位证 voucher. A
token stays "genuine" only while its attempt is still 通过 (checked against the database each time).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.services.pii import Keyring, mask_id_number, mask_name
from models import Batch, School
from models.submission import STATUS_LABELS, Submission, SubmissionStatus

SALT = "receipt-v1"


@dataclass(frozen=True)
class Receipt:
    submission_id: int
    name_masked: str
    number_masked: str
    school_name: str
    batch_name: str
    decided_at: datetime
    token: str


@dataclass(frozen=True)
class Attempt:
    """One row of a student's history on the status page."""

    id: int
    batch_id: int
    batch_name: str
    status: SubmissionStatus
    status_label: str
    reason: str | None
    created_at: datetime
    decided_at: datetime | None


def _serializer(secret_key: str) -> URLSafeSerializer:
    return URLSafeSerializer(secret_key, salt=SALT)


def make_token(secret_key: str, submission_id: int) -> str:
    return _serializer(secret_key).dumps(submission_id)


def _submission_id(secret_key: str, token: str) -> int | None:
    try:
        value = _serializer(secret_key).loads(token)
    except BadSignature:
        return None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _receipt(session: Session, keyring: Keyring, secret_key: str, submission: Submission) -> Receipt | None:
    if submission.status != SubmissionStatus.APPROVED or submission.decided_at is None:
        return None
    row = session.execute(
        select(Batch.name, School.name)
        .join(School, School.id == Batch.school_id)
        .where(Batch.id == submission.batch_id)
    ).one()
    identity = submission.identity
    return Receipt(
        submission_id=submission.id,
        name_masked=mask_name(keyring.decrypt(identity.name_enc)),
        number_masked=mask_id_number(keyring.decrypt(identity.number_enc)),
        school_name=row[1],
        batch_name=row[0],
        decided_at=submission.decided_at,
        token=make_token(secret_key, submission.id),
    )


def for_student(session: Session, keyring: Keyring, secret_key: str, user_id: int) -> Receipt | None:
    """The student's latest approved attempt as a receipt; None when nothing is approved."""
    found = session.scalar(
        select(Submission)
        .where(Submission.user_id == user_id, Submission.status == SubmissionStatus.APPROVED)
        .order_by(Submission.decided_at.desc(), Submission.id.desc())
        .limit(1)
    )
    return None if found is None else _receipt(session, keyring, secret_key, found)


def verify(session: Session, keyring: Keyring, secret_key: str, token: str) -> Receipt | None:
    """The receipt a token stands for, or None: bad signature, unknown or no longer approved."""
    submission_id = _submission_id(secret_key, token)
    if submission_id is None:
        return None
    found = session.get(Submission, submission_id)
    return None if found is None else _receipt(session, keyring, secret_key, found)


def history(session: Session, user_id: int, limit: int = 20) -> list[Attempt]:
    """The student's attempts, newest first."""
    rows = session.execute(
        select(Submission, Batch.name)
        .join(Batch, Batch.id == Submission.batch_id)
        .where(Submission.user_id == user_id)
        .order_by(Submission.created_at.desc(), Submission.id.desc())
        .limit(limit)
    ).all()
    return [
        Attempt(
            id=sub.id,
            batch_id=sub.batch_id,
            batch_name=batch_name,
            status=SubmissionStatus(sub.status),
            status_label=STATUS_LABELS[SubmissionStatus(sub.status)],
            reason=sub.status_reason,
            created_at=sub.created_at,
            decided_at=sub.decided_at,
        )
        for sub, batch_name in rows
    ]


def batch_open(session: Session, batch_id: int, now: datetime) -> bool:
    batch = session.get(Batch, batch_id)
    return batch is not None and batch.opens_at <= now < batch.closes_at


__all__ = ["Attempt", "Receipt", "batch_open", "for_student", "history", "make_token", "verify"]
