"""A student's sign-up form answers and documents for their linked batch (填写报名信息, 上传材料), and
the import of batch definitions.

Answers live on the active enrollment, personal values encrypted with the PII keyring; documents
in the photo storage, one row each. Every change restamps enrollment.form_completed_at and
documents_completed_at, so the checklist's one query knows the steps' state without the answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from redis import Redis
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.services import batch_forms, enrollments, idcard_fill, returns
from app.services.batch_forms import Definition, Problem
from app.services.errors import ServiceError
from app.services.pii import Keyring
from media.documents import CheckedDocument, DocumentRefused, check_document, refuse_if_full
from media.storage import Storage
from models import Batch, Document, Enrollment, School

DOCUMENT_LINK_SALT = "document-file"


class ApplicationError(ServiceError):
    message = "暂时不能保存"


class NoFormError(ApplicationError):
    message = "请先关联学校和批次；本批次不需要填写报名信息或上传材料。"


class AnswersInvalidError(ApplicationError):
    message = "填写的内容有误，请按提示修改。"

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__()
        self.problems = problems


class DocumentError(ApplicationError):
    """A refused upload or an unknown slot/document; `field` names what the page should mark."""

    def __init__(self, message: str, field: str = "file") -> None:
        super().__init__(message)
        self.field = field


class ApplicationLockedError(ApplicationError):
    """The change touches what may not change now: the data under review, or an item an itemised
    驳回 did not send back (409 at the edge)."""

    message = returns.FROZEN_MESSAGE


class DocumentNotFoundError(ApplicationError):
    message = "找不到这个文件。"


class DocumentLinkError(ApplicationError):
    message = "链接已失效，请返回页面刷新后再试。"


@dataclass(frozen=True)
class FormState:
    definition: Definition
    answers: dict[str, Any]  # decrypted
    missing: list[Problem]
    reopened: returns.Reopened = returns.OPEN  # what may change now


def definition_of(batch: Batch) -> Definition | None:
    return batch_forms.Definition.model_validate(batch.form) if batch.form else None


def _linked(session: Session, user_id: int) -> tuple[Enrollment, Definition]:
    enrollment = enrollments.active(session, user_id)
    definition = definition_of(enrollment.batch) if enrollment is not None else None
    if enrollment is None or definition is None:
        raise NoFormError()
    return enrollment, definition


# --- answers ------------------------------------------------------------------------------------


def reopened(session: Session, enrollment: Enrollment, definition: Definition) -> returns.Reopened:
    return returns.reopened(session, enrollment.user_id, enrollment.batch_id, definition)


def form(session: Session, keyring: Keyring, user_id: int) -> FormState:
    enrollment, definition = _linked(session, user_id)
    stored = enrollment.form_answers or {}
    answers = batch_forms.transform(definition, stored, keyring.decrypt)
    return FormState(
        definition,
        answers,
        batch_forms.missing(definition, stored),
        reopened(session, enrollment, definition),
    )


def save_answers(
    session: Session, keyring: Keyring, user_id: int, raw: dict[str, Any], now: datetime
) -> FormState:
    """Keep a draft (whatever is valid so far may be incomplete); commits. Raises AnswersInvalidError
    with every format error, saving nothing."""
    enrollment, definition = _linked(session, user_id)
    if enrollment.locked_at is not None:
        raise ApplicationError("报名信息已锁定，不能再修改；如有疑问请联系学校。")
    kept, problems = batch_forms.clean(definition, raw)
    if problems:
        raise AnswersInvalidError(problems)
    allowed = reopened(session, enrollment, definition)
    if allowed.state != "open":
        current = batch_forms.transform(definition, enrollment.form_answers or {}, keyring.decrypt)
        _refuse_changes(definition, allowed, current, kept)
    enrollment.form_answers = batch_forms.transform(definition, kept, keyring.encrypt)
    restamp(session, enrollment, definition, now)
    session.commit()
    return FormState(definition, kept, batch_forms.missing(definition, kept), allowed)


def _refuse_changes(
    definition: Definition, allowed: returns.Reopened, current: dict[str, Any], kept: dict[str, Any]
) -> None:
    """A whole-form save passes when every field it may not change holds its stored value: the page
    sends everything, unchanged items included."""
    for field in definition.fields():
        if allowed.field_editable(field.key) or kept.get(field.key) == current.get(field.key):
            continue
        if allowed.state == "frozen":
            raise ApplicationLockedError(allowed.message)
        raise ApplicationLockedError(f"「{field.label}」{returns.NOT_RETURNED_MESSAGE}")


def _refuse_slot_change(allowed: returns.Reopened, slot: batch_forms.SlotDef) -> None:
    if allowed.slot_editable(slot.key):
        return
    if allowed.state == "frozen":
        raise ApplicationLockedError(allowed.message)
    raise ApplicationLockedError(f"「{slot.label}」{returns.NOT_RETURNED_MESSAGE}")


def restamp(session: Session, enrollment: Enrollment, definition: Definition | None, now: datetime) -> None:
    """Set or clear the completion stamps from the stored answers and documents (no commit)."""
    if definition is None:
        enrollment.form_completed_at = enrollment.documents_completed_at = None
        return
    stored = enrollment.form_answers or {}
    form_done = not batch_forms.missing(definition, stored)
    docs_done = not batch_forms.missing_documents(
        definition, stored, counts(session, enrollment.user_id, enrollment.batch_id)
    )
    # A stamp says since when it is complete: kept while it stays so.
    enrollment.form_completed_at = (enrollment.form_completed_at or now) if form_done else None
    enrollment.documents_completed_at = (enrollment.documents_completed_at or now) if docs_done else None


def missing_items(session: Session, enrollment: Enrollment) -> list[str]:
    """What submission still needs from the form and the documents, in Chinese (empty: complete or no
    form). Reads the stored answers only: `when` never names a personal field."""
    definition = definition_of(enrollment.batch)
    if definition is None:
        return []
    stored = enrollment.form_answers or {}
    problems = batch_forms.missing(definition, stored) + batch_forms.missing_documents(
        definition, stored, counts(session, enrollment.user_id, enrollment.batch_id)
    )
    return [p.message for p in problems]


# --- documents ----------------------------------------------------------------------------------


def counts(session: Session, user_id: int, batch_id: int) -> dict[str, int]:
    rows = session.execute(
        select(Document.slot, func.count())
        .where(Document.user_id == user_id, Document.batch_id == batch_id)
        .group_by(Document.slot)
    )
    return {slot: int(n) for slot, n in rows}


@dataclass(frozen=True)
class DocumentsState:
    definition: Definition
    files: list[Document]  # oldest first
    answers: dict[str, Any]  # stored (for the slots' `when`)
    reopened: returns.Reopened  # which slots may change now


def documents(session: Session, user_id: int) -> DocumentsState:
    """The batch definition, the student's documents in it and what may change."""
    enrollment, definition = _linked(session, user_id)
    rows = session.scalars(
        select(Document)
        .where(Document.user_id == user_id, Document.batch_id == enrollment.batch_id)
        .order_by(Document.id)
    )
    return DocumentsState(
        definition, list(rows), enrollment.form_answers or {}, reopened(session, enrollment, definition)
    )


def upload(
    session: Session,
    storage: Storage,
    user_id: int,
    slot_key: str,
    data: bytes,
    filename: str | None,
    now: datetime,
    *,
    keyring: Keyring | None = None,
    cache: Redis | None = None,
) -> Document:
    """Check the file against the slot and store it; commits. Raises DocumentError (nothing stored).

    An image in an id_card_front/id_card_back slot is read too (with the keyring and the Redis of the
    reading limit): the reading is kept on the document, and the slot's `fills` targets still empty
    are filled (idcard_fill.read_document)."""
    enrollment, definition = _linked(session, user_id)
    slot = batch_forms.slot(definition, slot_key)
    if slot is None:
        raise DocumentError("本批次没有这一项材料。", "slot")
    if not batch_forms.visible(slot.when, enrollment.form_answers or {}):
        raise DocumentError(f"根据你填写的报名信息，不需要上传「{slot.label}」。", "slot")
    if enrollment.locked_at is not None:
        raise DocumentError("报名信息已锁定，不能再修改材料；如有疑问请联系学校。")
    allowed = reopened(session, enrollment, definition)
    _refuse_slot_change(allowed, slot)
    rules = slot.rules()
    try:
        refuse_if_full(counts(session, user_id, enrollment.batch_id).get(slot.key, 0), rules)
        checked: CheckedDocument = check_document(data, rules, filename=filename)
    except DocumentRefused as exc:
        raise DocumentError(exc.message) from None
    document = Document(
        user_id=user_id,
        batch_id=enrollment.batch_id,
        slot=slot.key,
        storage_key=storage.put(checked.data, checked.mime_type),
        kind=checked.kind,
        mime_type=checked.mime_type,
        bytes=len(checked.data),
        width=checked.width,
        height=checked.height,
        pages=checked.pages,
        created_at=now,
    )
    session.add(document)
    session.flush()
    if slot.kind in idcard_fill.ID_CARD_SLOTS and checked.kind in ("jpg", "png") and keyring and cache:
        # The stored file is read (re-encoded, scaled to the slot's limits): the reading is of what
        # the reviewer sees.
        document.reading, enrollment.form_answers = idcard_fill.read_document(
            session,
            keyring,
            cache,
            definition,
            slot,
            enrollment.form_answers or {},
            checked.data,
            now,
            user_id,
            may_fill=allowed.field_editable,
        )
    restamp(session, enrollment, definition, now)
    session.commit()
    return document


def delete(session: Session, user_id: int, document_id: int, now: datetime) -> None:
    """Remove one of the student's documents in their linked batch; commits. The stored bytes stay
    (content-addressed keys may be shared)."""
    enrollment, definition = _linked(session, user_id)
    document = session.get(Document, document_id)
    if document is None or document.user_id != user_id or document.batch_id != enrollment.batch_id:
        raise DocumentNotFoundError()
    if enrollment.locked_at is not None:
        raise ApplicationError("报名信息已锁定，不能再修改材料；如有疑问请联系学校。")
    slot = batch_forms.slot(definition, document.slot)
    if slot is not None:
        _refuse_slot_change(reopened(session, enrollment, definition), slot)
    session.delete(document)
    session.flush()
    restamp(session, enrollment, definition, now)
    session.commit()


def _serializer(secret_key: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key, salt=DOCUMENT_LINK_SALT)


def file_token(secret_key: str, document_id: int, user_id: int) -> str:
    return str(_serializer(secret_key).dumps([document_id, user_id]))


def open_link(
    session: Session, storage: Storage, secret_key: str, token: str, max_age: int, viewer_id: int | None
) -> tuple[bytes, str]:
    """The bytes and MIME type behind a signed link, for the student it was made for only."""
    try:
        value = _serializer(secret_key).loads(token, max_age=max_age)
    except SignatureExpired:
        raise DocumentLinkError() from None
    except BadSignature:
        raise DocumentNotFoundError() from None
    if not isinstance(value, list) or len(value) != 2 or not all(isinstance(v, int) for v in value):
        raise DocumentNotFoundError()
    document_id, user_id = value
    if viewer_id != user_id:
        raise DocumentLinkError("这个链接只能由本人打开。")
    document = session.get(Document, document_id)
    if document is None or document.user_id != user_id:
        raise DocumentNotFoundError()
    return storage.get(document.storage_key), document.mime_type


# --- importing definitions ----------------------------------------------------------------------


def find_batch(session: Session, definition: Definition) -> Batch:
    batch = session.scalar(
        select(Batch).join(School).where(School.code == definition.school, Batch.name == definition.batch)
    )
    if batch is None:
        raise batch_forms.DefinitionError(
            [
                batch_forms.DefinitionProblem(
                    "batch", f"找不到学校 {definition.school} 的批次「{definition.batch}」（no such batch）"
                )
            ]
        )
    return batch


def attach(session: Session, batch: Batch, definition: Definition | None, now: datetime) -> None:
    """Give the batch this definition (None: none) and restamp its active enrollments (no commit)."""
    batch.form = batch_forms.to_data(definition) if definition is not None else None
    batch.has_form = definition is not None and bool(definition.sections)
    batch.has_documents = definition is not None and bool(definition.documents)
    session.flush()
    linked = session.scalars(select(Enrollment).where(Enrollment.batch_id == batch.id, Enrollment.active))
    for enrollment in linked:
        restamp(session, enrollment, definition, now)


def prepare(session: Session, content: bytes) -> tuple[Batch, Definition]:
    """One file parsed and its batch found; raises DefinitionError naming the wrong paths."""
    definition = batch_forms.parse(content)
    return find_batch(session, definition), definition


def apply(session: Session, pairs: list[tuple[Batch, Definition]], now: datetime) -> None:
    """Attach every prepared definition at once; commits."""
    for batch, definition in pairs:
        attach(session, batch, definition, now)
    session.commit()
