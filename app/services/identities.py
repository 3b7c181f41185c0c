"""Real-name binding (实名绑定): the rules of the 「实名信息」 screen in 湖南师范大学's manual.

- one active identity per WeChat account, and one active WeChat account per identity
  (换绑 to another account needs 取消微信绑定 on the first);
- 修改 replaces the binding (the old row is kept, ended as "modified") until the batch's lock point
  (payment, approval or the student's confirmation: app/services/flows.py) locks it, and never while
  an attempt made with it is being checked or reviewed; 取消微信绑定 ends it (kept as "unbound")
  and also ends the school link;
- numbers and names are encrypted at rest; logs carry only masked values. Each has a keyed lookup
  hash too (number_hash, name_hash), so equality searches never decrypt a row.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.services.errors import ServiceError
from app.services.id_documents import (
    DOCUMENT_LABELS,
    Document,
    DocumentType,
    FieldError,
    comparable_name,
    normalise_name,
    parse_document,
)
from app.services.pii import Keyring, mask_id_number, mask_name
from models import Batch, Enrollment, Identity, LockOn, Submission, SubmissionStatus, utcnow
from models.submission import HOLDS_DATA

log = logging.getLogger(__name__)


class IdentityError(ServiceError):
    message = "实名绑定失败"


class IdentityTakenError(IdentityError):
    message = "该证件已绑定其他微信账号。如需换绑，请先在原微信账号的「我的」页面点击「取消微信绑定」。"


class IdentityLockedError(IdentityError):
    message = "你的实名信息已用于提交并锁定，不能再修改或解绑。如确有错误，请联系客服。"


class IdentityInUseError(IdentityLockedError):
    """An attempt in flight was made with this identity: what is being checked cannot change."""

    message = "你有一次提交正在核验或审核中，期间实名信息不能修改或解绑。请等待结果。"


class IdentityAwaitsConfirmationError(IdentityInUseError):
    """lock_on=confirm: approved, not yet confirmed. The student confirms what the reviewer approved."""

    message = (
        "你的提交已审核通过，请确认信息并签名；审核通过后实名信息不能再修改或解绑。如确有错误，请联系学校。"
    )


class IdentityNotBoundError(IdentityError):
    message = "你还没有实名绑定。"


@dataclass(frozen=True)
class IdentityInput:
    doc_type: str
    id_number: str
    name: str


@dataclass(frozen=True)
class IdentityView:
    """What pages and the API may show: masked, plus what the number says about its holder."""

    doc_type: DocumentType
    doc_label: str
    number_masked: str
    name_masked: str
    birth_date: date | None
    sex: str | None
    locked: bool
    bound_at: datetime


def validate(data: IdentityInput, today: date) -> tuple[Document, str]:
    """Check every field; raises FieldError for the first wrong one."""
    try:
        doc_type = DocumentType(data.doc_type)
    except ValueError:
        raise FieldError("id_type", "请选择证件类型") from None
    document = parse_document(doc_type, data.id_number, today)
    return document, normalise_name(data.name, doc_type)


def _lookup_hash(keyring: Keyring, document: Document) -> str:
    return keyring.lookup_hash(f"{document.type.value}:{document.number}")


def name_lookup_hash(keyring: Keyring, name: str) -> str:
    """The keyed hash of a whole name, as stored or as typed into a search. The "name:" prefix keeps
    it apart from every number hash (those start with a document type)."""
    return keyring.lookup_hash(f"name:{comparable_name(name)}")


def active(session: Session, user_id: int) -> Identity | None:
    return session.scalar(select(Identity).where(Identity.user_id == user_id, Identity.active))


def view(keyring: Keyring, identity: Identity, today: date) -> IdentityView:
    doc_type = DocumentType(identity.doc_type)
    number = keyring.decrypt(identity.number_enc)
    document = parse_document(doc_type, number, today)
    return IdentityView(
        doc_type=doc_type,
        doc_label=DOCUMENT_LABELS[doc_type],
        number_masked=mask_id_number(number),
        name_masked=mask_name(keyring.decrypt(identity.name_enc)),
        birth_date=document.birth_date,
        sex=document.sex,
        locked=identity.locked_at is not None,
        bound_at=identity.created_at,
    )


def bind(session: Session, keyring: Keyring, user_id: int, data: IdentityInput, today: date) -> Identity:
    """Bind (or, when already bound, modify) the user's identity; commits.

    Raises FieldError (a field is wrong), IdentityTakenError, IdentityLockedError.
    """
    document, name = validate(data, today)
    number_hash = _lookup_hash(keyring, document)
    current = active(session, user_id)
    if current is not None:
        if current.locked_at is not None:
            raise IdentityLockedError()
        _refuse_if_held(session, user_id)
        same_document = current.doc_type == document.type and current.number_hash == number_hash
        if same_document and keyring.decrypt(current.name_enc) == name:
            return current  # a repeated submit changes nothing
    holder = session.scalar(
        select(Identity.user_id).where(
            Identity.doc_type == document.type.value, Identity.number_hash == number_hash, Identity.active
        )
    )
    if holder is not None and holder != user_id:
        raise IdentityTakenError()
    if current is not None:
        _end(current, "modified")
        session.flush()  # the partial unique index must see the old row ended first
    identity = Identity(
        user_id=user_id,
        doc_type=document.type.value,
        number_hash=number_hash,
        number_enc=keyring.encrypt(document.number),
        name_enc=keyring.encrypt(name),
        name_hash=name_lookup_hash(keyring, name),
    )
    session.add(identity)
    try:
        session.commit()
    except IntegrityError:
        # Another account bound the same document between our check and our commit.
        session.rollback()
        raise IdentityTakenError() from None
    log.info(
        "identity bound",
        extra={
            "user_id": user_id,
            "id_number": mask_id_number(document.number),
            "holder_name": mask_name(name),
        },
    )
    return identity


def unbind(session: Session, user_id: int) -> None:
    """取消微信绑定: end the identity and the school link, keeping both for audit; commits."""
    current = active(session, user_id)
    if current is None:
        raise IdentityNotBoundError()
    enrollment = session.scalar(select(Enrollment).where(Enrollment.user_id == user_id, Enrollment.active))
    if current.locked_at is not None or (enrollment is not None and enrollment.locked_at is not None):
        raise IdentityLockedError()
    _refuse_if_held(session, user_id)
    _end(current, "unbound")
    if enrollment is not None:
        enrollment.active = False
        enrollment.ended_at = utcnow()
        enrollment.end_reason = "unbound"
    session.commit()
    log.info("identity unbound", extra={"user_id": user_id})


def data_held(session: Session, user_id: int) -> bool:
    """Whether an attempt being checked, reviewed, awaiting its fee or awaiting the student's final
    confirmation holds the student's data."""
    holding = select(Submission.id).where(Submission.user_id == user_id, Submission.status.in_(HOLDS_DATA))
    return session.scalar(holding.limit(1)) is not None or awaits_confirmation(session, user_id)


def awaits_confirmation(session: Session, user_id: int) -> bool:
    """An approval in a lock_on=confirm batch not yet confirmed: the data is frozen only at the
    confirmation, but what is confirmed must be what the reviewer approved, so it cannot change first."""
    waiting = (
        select(Submission.id)
        .join(Batch, Batch.id == Submission.batch_id)
        .where(
            Submission.user_id == user_id,
            Submission.status == SubmissionStatus.APPROVED,
            Batch.lock_on == LockOn.CONFIRM,
            Submission.confirmed_at.is_(None),
        )
    )
    return session.scalar(waiting.limit(1)) is not None


def _refuse_if_held(session: Session, user_id: int) -> None:
    if awaits_confirmation(session, user_id):
        raise IdentityAwaitsConfirmationError()
    if data_held(session, user_id):
        raise IdentityInUseError()


def lock(session: Session, user_id: int) -> None:
    """Freeze the identity for good at the batch's lock point (no commit: part of that unit)."""
    current = active(session, user_id)
    if current is None:
        raise IdentityNotBoundError()
    if current.locked_at is None:
        current.locked_at = utcnow()


def _end(identity: Identity, reason: str) -> None:
    identity.active = False
    identity.ended_at = utcnow()
    identity.end_reason = reason


def rotate_keys(session: Session, keyring: Keyring, batch_size: int = 500) -> int:
    """Re-encrypt every stored number and name under the keyring's first key; commits per batch.

    Rotation: put the new key first in PII_ENCRYPTION_KEYS (keeping the old one after it), run this,
    then drop the old key. Safe to rerun or interrupt: each row is readable under both keys.
    The lookup hashes (number_hash, name_hash) are keyed by PII_HMAC_KEY alone, which this does not
    rotate: they stay valid across an encryption-key rotation and are left as they are.
    """
    done = 0
    last_id = 0
    while True:
        rows = session.scalars(
            select(Identity).where(Identity.id > last_id).order_by(Identity.id).limit(batch_size)
        ).all()
        if not rows:
            return done
        for row in rows:
            row.number_enc = keyring.rotate(row.number_enc)
            row.name_enc = keyring.rotate(row.name_enc)
        session.commit()
        done += len(rows)
        last_id = rows[-1].id


def backfill_name_hashes(session: Session, keyring: Keyring, batch_size: int = 500) -> int:
    """Fill name_hash on rows stored before names were searchable; commits per batch, returns the count.

    Needs the keyring (the name must be decrypted once to hash it), so a migration cannot do it.
    Safe to rerun or interrupt: rows already hashed are not touched again.
    """
    done = 0
    last_id = 0
    while True:
        rows = session.scalars(
            select(Identity)
            .where(Identity.name_hash.is_(None), Identity.id > last_id)
            .order_by(Identity.id)
            .limit(batch_size)
        ).all()
        if not rows:
            return done
        for row in rows:
            row.name_hash = name_lookup_hash(keyring, keyring.decrypt(row.name_enc))
        session.commit()
        done += len(rows)
        last_id = rows[-1].id
