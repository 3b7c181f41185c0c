"""What the review pages show about attempts, as the asking staff member may see them.

Staff match a face to a person: they see the name in full and the ID number masked but for its last
4 characters. The full number is decrypted here for admins only, so the rule cannot be lost in a
template or a second page. The batch form's personal answers (phone, address, family) follow the same
rule: in full for admins, masked but for their last 4 characters for reviewers.

The 报名信息 and 材料 blocks show the batch definition with the student's answers and files; files are
served to staff through routes that check the staff member's school scope (`document_file`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.services import applications, batch_forms, flows, identities, photos, returns, reviews
from app.services.batch_forms import Definition, FieldDef
from app.services.identities import IdentityView
from app.services.localtime import BEIJING
from app.services.pii import Keyring, mask_id_tail
from media.documents.pdf import first_page
from media.documents.rules import label as kind_label
from media.storage import Storage
from models import (
    Document,
    Enrollment,
    Identity,
    LockOn,
    Photo,
    Staff,
    StaffRole,
    Submission,
    SubmissionStatus,
)
from models.submission import OrderStatus, PaymentOrder

PREVIOUS_LIMIT = 20
NEXT_LOOKAHEAD = 20


@dataclass(frozen=True)
class ReviewDetail:
    submission: Submission
    photo: Photo
    identity: IdentityView
    name: str  # in full: staff match the face to the person
    number_tail: str  # the ID number masked but for its last 4 characters
    full_number: str | None  # admins only
    shown_status: SubmissionStatus  # an expired claim shows as waiting again
    claimer: Staff | None  # who holds a live claim
    mine: bool  # the asking staff member holds the live claim
    can_decide: bool
    can_claim: bool
    previous: list[Submission]  # the student's other attempts, newest first
    next_id: int | None  # the next attempt to open after this one
    decider: Staff | None  # who made the decision shown
    reopen_until: datetime | None  # an admin may withdraw the decision until then
    can_reopen: bool
    # The student's rejected attempts whose photo this one is or looks like, with the hash distance
    # (0: the very photo): the reviewer checks the reason was really fixed.
    similar_rejected: list[tuple[photos.Rejection, int]] = field(default_factory=list)
    flow: FlowFacts | None = None
    application: Application | None = None  # the batch's form and documents, when it defines them
    returned: list[returns.Item] = field(default_factory=list)  # the items this 驳回 sent back


@dataclass(frozen=True)
class ShownField:
    """One answer as the reviewer sees it: a value, or a group as a small table."""

    key: str
    label: str
    value: str | None = None  # None: not answered
    masked: bool = False  # personal, shown masked but for its last 4 characters
    columns: list[str] = field(default_factory=list)  # a group: its row fields' labels
    rows: list[list[str]] = field(default_factory=list)


@dataclass(frozen=True)
class ShownSection:
    title: str
    fields: list[ShownField]


@dataclass(frozen=True)
class ShownFile:
    id: int
    kind: str  # jpg png pdf doc docx ppt pptx
    kind_label: str  # PDF 文档, Word 文档 …
    size: str  # 1.2 MB
    pages: int | None
    is_image: bool
    is_pdf: bool


@dataclass(frozen=True)
class ShownSlot:
    key: str
    label: str
    required: bool
    files: list[ShownFile]


@dataclass(frozen=True)
class Application:
    """The 报名信息 (visible fields only, in the definition's order) and the 材料 (visible slots)."""

    sections: list[ShownSection]
    slots: list[ShownSlot]


@dataclass(frozen=True)
class FlowFacts:
    """Where the attempt stands in its batch's workflow, beyond review."""

    label: str  # 先缴费 / 先审后缴 / 免费
    pledge: str | None  # the batch's 承诺, when it has one
    pledged_at: datetime | None
    signature_asked: bool
    signed: bool  # a signature is stored (staff open it at /review/submissions/<id>/signature)
    confirm_asked: bool  # lock_on=confirm: the student confirms after 通过
    confirmed_at: datetime | None
    # 审核通过，待缴费: the batch's pay window (None while not announced) and whether an order is
    # open now (the student started paying).
    pay_window: tuple[datetime, datetime] | None = None
    order_open: bool = False


def flow_facts(session: Session, found: Submission, now: datetime) -> FlowFacts:
    batch = found.batch
    window: tuple[datetime, datetime] | None = None
    order_open = False
    if found.status == SubmissionStatus.APPROVED_UNPAID:
        if batch.pay_opens_at is not None and batch.pay_closes_at is not None:
            window = (batch.pay_opens_at, batch.pay_closes_at)
        order_open = (
            session.scalar(
                select(PaymentOrder.id)
                .where(
                    PaymentOrder.submission_id == found.id,
                    PaymentOrder.status == OrderStatus.OPEN,
                    PaymentOrder.expires_at > now,
                )
                .limit(1)
            )
            is not None
        )
    return FlowFacts(
        label=flows.flow_label(batch.flow),
        pledge=batch.pledge or None,
        pledged_at=found.pledged_at,
        signature_asked=bool(batch.pledge) and batch.signature,
        signed=found.signature_key is not None,
        confirm_asked=batch.lock_on == LockOn.CONFIRM,
        confirmed_at=found.confirmed_at,
        pay_window=window,
        order_open=order_open,
    )


def signature(session: Session, storage: Storage, staff: Staff, submission_id: int) -> bytes:
    """The signature PNG of an attempt the staff member covers. Raises ReviewNotFoundError when the
    attempt is out of scope or unsigned, MediaNotFoundError when its file is gone."""
    found = reviews.get(session, staff, submission_id)
    if found.signature_key is None:
        raise reviews.ReviewNotFoundError("该提交没有签名")
    return storage.get(found.signature_key)


def load(
    session: Session,
    keyring: Keyring,
    staff: Staff,
    submission_id: int,
    now: datetime,
    *,
    reopen_hours: int = 72,
) -> ReviewDetail:
    """Raises ReviewNotFoundError when the attempt does not exist or is outside the staff's schools."""
    found = reviews.get(session, staff, submission_id)
    identity = identities.view(keyring, found.identity, now.astimezone(BEIJING).date())
    number = keyring.decrypt(found.identity.number_enc)
    full_number = number if staff.role == StaffRole.ADMIN else None
    claim_live = (
        found.status == SubmissionStatus.IN_REVIEW
        and found.claim_expires_at is not None
        and _aware(found.claim_expires_at) > now
    )
    claimer = session.get(Staff, found.claimed_by_id) if claim_live and found.claimed_by_id else None
    previous = list(
        session.scalars(
            select(Submission)
            .where(Submission.user_id == found.user_id, Submission.id != found.id)
            .order_by(Submission.created_at.desc())
            .limit(PREVIOUS_LIMIT)
        )
    )
    mine = claim_live and found.claimed_by_id == staff.id
    waiting = found.status in reviews.QUEUE_STATUSES
    status = SubmissionStatus(found.status)
    return ReviewDetail(
        submission=found,
        photo=found.photo,
        identity=identity,
        name=keyring.decrypt(found.identity.name_enc),
        number_tail=mask_id_tail(number),
        full_number=full_number,
        shown_status=status
        if claim_live or status != SubmissionStatus.IN_REVIEW
        else SubmissionStatus.PENDING_REVIEW,
        claimer=claimer,
        mine=mine,
        can_decide=waiting and (mine or staff.role == StaffRole.ADMIN),
        can_claim=waiting and not mine and claimer is None,
        previous=previous,
        next_id=next_waiting(session, staff, found.id, now),
        similar_rejected=photos.similar_rejections(session, found),
        decider=session.get(Staff, found.decided_by_id) if found.decided_by_id else None,
        reopen_until=reviews.reopen_deadline(found.decided_at, reopen_hours)
        if status in reviews.DECIDED
        else None,
        can_reopen=reviews.can_reopen(staff, found, now, reopen_hours),
        flow=flow_facts(session, found, now),
        application=application(session, keyring, found, reveal=staff.role == StaffRole.ADMIN),
        returned=returns.items_of(found),
    )


def application(session: Session, keyring: Keyring, found: Submission, *, reveal: bool) -> Application | None:
    """The attempt's form answers and documents (None when its batch defines neither). `reveal`:
    personal answers in full (admins, as for the ID number); masked otherwise."""
    definition = applications.definition_of(found.batch)
    if definition is None:
        return None
    enrollment = session.scalar(
        select(Enrollment)
        .where(Enrollment.user_id == found.user_id, Enrollment.batch_id == found.batch_id)
        .order_by(Enrollment.active.desc(), Enrollment.id.desc())
        .limit(1)
    )
    stored = (enrollment.form_answers if enrollment is not None else None) or {}
    personal = batch_forms.personal_paths(definition)
    shown = _shown_values(definition, stored, keyring, personal, reveal)
    sections = [
        ShownSection(section.title, [shown[f.key] for f in section.fields if f.key in shown])
        for section in definition.sections
    ]
    files = session.scalars(
        select(Document)
        .where(Document.user_id == found.user_id, Document.batch_id == found.batch_id)
        .order_by(Document.id)
    ).all()
    slots = [
        ShownSlot(
            slot.key,
            slot.label,
            slot.required,
            [_shown_file(d) for d in files if d.slot == slot.key],
        )
        for slot in definition.documents
        if batch_forms.visible(slot.when, stored)
    ]
    return Application([s for s in sections if s.fields], slots)


def _shown_values(
    definition: Definition,
    stored: dict[str, Any],
    keyring: Keyring,
    personal: set[tuple[str, str | None]],
    reveal: bool,
) -> dict[str, ShownField]:
    """Every field its `when` shows, with the answer as the reviewer may read it."""

    def read(key: str, sub: str | None, value: Any) -> str:
        if value in (None, ""):
            return ""
        if (key, sub) not in personal:
            return str(value)
        plain = keyring.decrypt(str(value))
        return plain if reveal else mask_id_tail(plain)

    out: dict[str, ShownField] = {}
    for f in definition.fields():
        if not batch_forms.visible(f.when, stored):
            continue
        value = stored.get(f.key)
        if f.kind == "group":
            subs: list[FieldDef] = f.fields or []
            rows = [
                [read(f.key, sub.key, row.get(sub.key)) for sub in subs]
                for row in (value if isinstance(value, list) else [])
            ]
            masked = not reveal and any((f.key, sub.key) in personal for sub in subs)
            out[f.key] = ShownField(f.key, f.label, masked=masked, columns=[s.label for s in subs], rows=rows)
            continue
        text = read(f.key, None, value)
        masked = not reveal and (f.key, None) in personal and bool(text)
        out[f.key] = ShownField(f.key, f.label, text or None, masked)
    return out


def _shown_file(document: Document) -> ShownFile:
    size = document.bytes
    return ShownFile(
        id=document.id,
        kind=document.kind,
        kind_label=kind_label(document.kind),
        size=f"{size / 1048576:.1f} MB" if size >= 1048576 else f"{max(1, round(size / 1024))} KB",
        pages=document.pages,
        is_image=document.mime_type.startswith("image/"),
        is_pdf=document.kind == "pdf",
    )


def document_file(
    session: Session, storage: Storage, staff: Staff, submission_id: int, document_id: int
) -> tuple[bytes, str]:
    """The bytes and MIME type of a document of the attempt's student in its batch, for staff who
    cover the school. Raises ReviewNotFoundError (out of scope, or not this attempt's document),
    MediaNotFoundError when the file is gone."""
    found = reviews.get(session, staff, submission_id)
    document = session.get(Document, document_id)
    if document is None or document.user_id != found.user_id or document.batch_id != found.batch_id:
        raise reviews.ReviewNotFoundError("没有找到该文件")
    return storage.get(document.storage_key), document.mime_type


def document_preview(
    session: Session, storage: Storage, staff: Staff, submission_id: int, document_id: int
) -> bytes:
    """A PDF's first page as a small JPEG (as `document_file` checks the staff member's scope).
    Raises ReviewNotFoundError when it is no PDF or cannot be drawn."""
    data, mimetype = document_file(session, storage, staff, submission_id, document_id)
    thumb = first_page(data) if mimetype == "application/pdf" else None
    if thumb is None:
        raise reviews.ReviewNotFoundError("无法预览该文件")
    return thumb


@dataclass(frozen=True)
class Person:
    """One queue row's student, as staff see them."""

    name: str
    number_tail: str


def people(session: Session, keyring: Keyring, identity_ids: set[int]) -> dict[int, Person]:
    """Names and ID tails of the identities on one page of the queue (decrypting those rows only)."""
    if not identity_ids:
        return {}
    rows = session.execute(
        select(Identity.id, Identity.name_enc, Identity.number_enc).where(Identity.id.in_(identity_ids))
    )
    return {
        ident: Person(keyring.decrypt(name_enc), mask_id_tail(keyring.decrypt(number_enc)))
        for ident, name_enc, number_enc in rows
    }


def next_waiting(session: Session, staff: Staff, after_id: int, now: datetime) -> int | None:
    """The oldest waiting attempt in scope that nobody else holds (not the one just decided)."""
    page = reviews.queue(session, school_ids=reviews.school_scope(staff), limit=NEXT_LOOKAHEAD, now=now)
    for item in page.items:
        if item.id != after_id and item.claimed_by_id in (None, staff.id):
            return item.id
    return None


def _aware(value: datetime) -> datetime:
    # SQLite hands back naive UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
