"""The 审核通过 receipt (打印回执单 in 湖南师范大学's manual), its number, and the signed token its QR
code carries.

The token is the submission id signed with SECRET_KEY under its own salt (itsdangerous), nothing
else: whoever scans it learns only what /verify/<token> shows (masked, except to staff who cover the
school), and a forged or altered token fails the signature check. It does not expire: the receipt is
kept as a voucher. A token stays "genuine" only while its attempt is still 通过 (checked against the
database each time). Holding the token is holding the printed receipt, which already shows the
photo and the signature: so the token also opens both (the approved photo, for counter staff to
match the face; the signature drawn under the batch's 承诺), and no storage key reaches a URL.

A receipt exists once the attempt's flow is complete: 通过 (in review_first reached by paying, so
审核通过，待缴费 has none) and, where the batch freezes the data at the student's final confirmation,
confirmed: until then the student may still correct it, and the page asks them to confirm first.

The 回执编号 is not the database id: it is issued the first time the receipt is shown — the Beijing
date of the decision and 8 random Crockford base-32 characters (40 bits), e.g. 20261207-K7Q2M9XT —
stored (unique) so staff can look it up, and unguessable from any other receipt.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.services import flows, photos
from app.services.localtime import BEIJING
from app.services.pii import Keyring, mask_id_number, mask_name
from media.storage import MediaNotFoundError, Storage
from models import Batch, Photo, School, Staff, StaffRole
from models.submission import STATUS_LABELS, Submission, SubmissionStatus

SALT = "receipt-v1"
# Crockford's base 32: no I, L, O or U, so a number read aloud or typed from paper is not misread.
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
RANDOM_CHARS = 8
NUMBER_PATTERN = re.compile(r"^(\d{8})([0-9A-HJKMNP-TV-Z]{8})$")


@dataclass(frozen=True)
class Receipt:
    submission_id: int
    receipt_no: str
    title: str
    note: str
    name_masked: str
    # The full name, only for staff who cover the school (None for everyone else).
    name_full: str | None
    number_masked: str
    school_name: str
    batch_name: str
    decided_at: datetime
    token: str
    # The batch's 承诺 as the student accepted it, when (at the confirmation where the batch has one,
    # at submission otherwise), and whether a signature drawn under it is printed.
    pledge: str | None = None
    pledged_at: datetime | None = None
    signed: bool = False
    # lock_on=confirm: the student's final confirmation, printed with the receipt.
    confirmed_at: datetime | None = None
    # What to do next (重庆科技学院: 邮寄纸质照片…), printed with the receipt's instructions.
    after_approval: str | None = None

    @property
    def name_shown(self) -> str:
        return self.name_full or self.name_masked


@dataclass(frozen=True)
class Attempt:
    """One row of a student's history on the status page."""

    id: int
    batch_id: int
    batch_name: str
    photo_id: int
    status: SubmissionStatus
    status_label: str
    reason: str | None
    created_at: datetime
    decided_at: datetime | None
    # An itemised 驳回's items ({kind, key, label, reason}: app/services/returns.py); empty otherwise.
    rejected_items: list[dict[str, str]] = field(default_factory=list)


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


# --- receipt numbers ---------------------------------------------------------------------------


def new_number(decided_at: datetime) -> str:
    day = decided_at.astimezone(BEIJING).strftime("%Y%m%d")
    return f"{day}-" + "".join(secrets.choice(ALPHABET) for _ in range(RANDOM_CHARS))


def normalize_number(text: str) -> str | None:
    """A number as staff type it (spaces, no dash, lower case, O for 0, I or L for 1) → its printed
    form, or None when it cannot be one."""
    compact = re.sub(r"[\s\-－—]", "", text).upper().translate(str.maketrans("OIL", "011"))
    found = NUMBER_PATTERN.match(compact)
    return f"{found.group(1)}-{found.group(2)}" if found else None


def _issue_number(session: Session, submission: Submission) -> str:
    """The attempt's receipt number, issued now if it has none (commits). Two first views at once
    agree: the second UPDATE matches nothing and both read the one stored."""
    if submission.receipt_no is not None:
        return submission.receipt_no
    assert submission.decided_at is not None
    for _ in range(5):
        try:
            session.execute(
                update(Submission)
                .where(Submission.id == submission.id, Submission.receipt_no.is_(None))
                .values(receipt_no=new_number(submission.decided_at), updated_at=Submission.updated_at)
            )
            session.commit()
        except IntegrityError:  # the same random number twice (about one in a trillion a day)
            session.rollback()
            continue
        session.refresh(submission)
        if submission.receipt_no is not None:
            return submission.receipt_no
    raise RuntimeError("could not issue a unique receipt number")


def number_of(session: Session, submission: Submission) -> str:
    """The 回执编号 of a complete attempt (issued now if it has none; commits): the 报名号 printed
    on its exam ticket too."""
    return _issue_number(session, submission)


# --- receipts ----------------------------------------------------------------------------------


def covers(staff: Staff | None, school_id: int) -> bool:
    """Whether a signed-in staff member may see the student behind a receipt unmasked."""
    if staff is None or not staff.is_active:
        return False
    return staff.role == StaffRole.ADMIN or school_id in {school.id for school in staff.schools}


def complete(submission: Submission) -> bool:
    """Whether the attempt's flow is done, so its receipt may be shown and its token holds."""
    return (
        submission.status == SubmissionStatus.APPROVED
        and submission.decided_at is not None
        and not flows.needs_confirmation(submission)
    )


def _receipt(
    session: Session,
    keyring: Keyring,
    secret_key: str,
    submission: Submission,
    staff: Staff | None = None,
) -> Receipt | None:
    if not complete(submission):
        return None
    assert submission.decided_at is not None  # complete() checked
    batch = session.get(Batch, submission.batch_id)
    assert batch is not None  # a foreign key
    school = session.get(School, batch.school_id)
    assert school is not None
    receipt_no = _issue_number(session, submission)
    identity = submission.identity
    name = keyring.decrypt(identity.name_enc)
    return Receipt(
        submission_id=submission.id,
        receipt_no=receipt_no,
        title=batch.receipt_title,
        note=batch.receipt_note,
        name_masked=mask_name(name),
        name_full=name if covers(staff, school.id) else None,
        number_masked=mask_id_number(keyring.decrypt(identity.number_enc)),
        school_name=school.name,
        batch_name=batch.name,
        decided_at=submission.decided_at,
        token=make_token(secret_key, submission.id),
        pledge=batch.pledge if submission.pledged_at is not None else None,
        pledged_at=submission.pledged_at,
        confirmed_at=submission.confirmed_at,
        signed=submission.signature_key is not None,
        after_approval=batch.after_approval or None,
    )


def _latest_approved(session: Session, user_id: int) -> Submission | None:
    return session.scalar(
        select(Submission)
        .where(Submission.user_id == user_id, Submission.status == SubmissionStatus.APPROVED)
        .order_by(Submission.decided_at.desc(), Submission.id.desc())
        .limit(1)
    )


def for_student(session: Session, keyring: Keyring, secret_key: str, user_id: int) -> Receipt | None:
    """The student's latest approved attempt as a receipt (its number issued on first view; commits);
    None when nothing is approved, or the approval still awaits the student's confirmation."""
    found = _latest_approved(session, user_id)
    return None if found is None else _receipt(session, keyring, secret_key, found)


@dataclass(frozen=True)
class StudentReceipt:
    """The receipt page's answer: the receipt, or the attempt to confirm before there is one."""

    receipt: Receipt | None
    confirm_id: int | None = None

    @property
    def confirm_url(self) -> str | None:
        return None if self.confirm_id is None else f"/h5/confirm/{self.confirm_id}"


def page_for_student(session: Session, keyring: Keyring, secret_key: str, user_id: int) -> StudentReceipt:
    """What the student's receipt page shows: their receipt, or (lock_on=confirm, approved but not
    yet confirmed) the attempt they must confirm and sign first."""
    found = _latest_approved(session, user_id)
    if found is not None and flows.needs_confirmation(found):
        return StudentReceipt(None, found.id)
    return StudentReceipt(None if found is None else _receipt(session, keyring, secret_key, found))


def _approved(session: Session, secret_key: str, token: str) -> Submission | None:
    """The attempt behind a genuine token whose receipt still holds."""
    submission_id = _submission_id(secret_key, token)
    found = None if submission_id is None else session.get(Submission, submission_id)
    return found if found is not None and complete(found) else None


def verify(
    session: Session, keyring: Keyring, secret_key: str, token: str, staff: Staff | None = None
) -> Receipt | None:
    """The receipt a token stands for, or None: bad signature, unknown or no longer approved. The
    full name is filled in only for `staff` who cover the school."""
    found = _approved(session, secret_key, token)
    return None if found is None else _receipt(session, keyring, secret_key, found, staff)


def photo(session: Session, storage: Storage, secret_key: str, token: str) -> tuple[bytes, str] | None:
    """The approved photo (as reviewed: the processed file) behind a genuine receipt token."""
    found = _approved(session, secret_key, token)
    if found is None:
        return None
    picture = session.get(Photo, found.photo_id)
    if picture is None:
        return None
    kind: photos.FileKind = "normalized" if picture.normalized_key else "original"
    try:
        return photos.open_file(session, storage, photos.FileLink(picture.id, kind, picture.user_id))
    except (MediaNotFoundError, photos.PhotoNotFoundError):
        return None


def signature(session: Session, storage: Storage, secret_key: str, token: str) -> bytes | None:
    """The signature PNG printed on a genuine receipt (None: no such receipt, or none signed)."""
    found = _approved(session, secret_key, token)
    if found is None or found.signature_key is None:
        return None
    try:
        return storage.get(found.signature_key)
    except MediaNotFoundError:
        return None


def find_by_number(session: Session, staff: Staff, text: str) -> int | None:
    """The attempt a printed receipt number belongs to, when it is one the staff member covers."""
    number = normalize_number(text)
    if number is None:
        return None
    row = session.execute(
        select(Submission.id, Batch.school_id)
        .join(Batch, Batch.id == Submission.batch_id)
        .where(Submission.receipt_no == number)
    ).first()
    return row.id if row is not None and covers(staff, row.school_id) else None


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
            photo_id=sub.photo_id,
            status=SubmissionStatus(sub.status),
            status_label=STATUS_LABELS[SubmissionStatus(sub.status)],
            reason=sub.status_reason,
            created_at=sub.created_at,
            decided_at=sub.decided_at,
            rejected_items=list(sub.rejected_items or []),
        )
        for sub, batch_name in rows
    ]


def batch_open(session: Session, batch_id: int, now: datetime) -> bool:
    batch = session.get(Batch, batch_id)
    return batch is not None and batch.opens_at <= now < batch.closes_at


__all__ = [
    "Attempt",
    "Receipt",
    "StudentReceipt",
    "batch_open",
    "covers",
    "find_by_number",
    "for_student",
    "history",
    "make_token",
    "normalize_number",
    "number_of",
    "page_for_student",
    "photo",
    "signature",
    "verify",
]
