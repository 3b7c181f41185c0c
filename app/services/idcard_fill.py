"""ID card readings put to use: the bind page's 拍身份证自动填写, the reading of a file uploaded into an
id_card_front/id_card_back slot (kept on the Document, filling the slot's `fills` targets), and what
reviewers see of those readings beside the identity the student typed.

As 新疆自考's manual says: "系统会自动提取身份证上的姓名、身份证号码、性别、民族、出生年月信息并自动填充。
若识别有误，考生可手动进行修改". A reading only suggests: nothing is refused for what a card says, and
nothing the student typed is overwritten.

A reading takes ~0.6 s of one core (docs/idcard-ocr.md): each student gets READ_LIMIT readings per
READ_WINDOW seconds, bind page and slot uploads together. The OCR modules are imported by the functions
that read, so a process that never reads (the /wechat path) never loads them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from redis import Redis
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.services import batch_forms, enrollments, identities, rate_limits
from app.services.batch_forms import Definition, SlotDef
from app.services.errors import ServiceError
from app.services.id_documents import (
    DocumentType,
    FieldError,
    comparable_name,
    normalise_number,
    parse_document,
)
from app.services.localtime import BEIJING
from app.services.pii import Keyring, mask_id_tail
from models import Batch, Document, Staff, StaffRole, Submission

if TYPE_CHECKING:
    from app.services.idcard_reading import BackResult, BoundIdentity, FrontResult

log = logging.getLogger(__name__)

READ_LIMIT = 10
READ_WINDOW = 600
ID_CARD_SLOTS = ("id_card_front", "id_card_back")

LABELS = {
    "name": "姓名",
    "id_number": "身份证号",
    "sex": "性别",
    "ethnicity": "民族",
    "birth_date": "出生日期",
    "address": "住址",
    "issuing_authority": "签发机关",
    "valid_from": "有效期起",
    "valid_until": "有效期至",
}
NUMBER_UNREAD = "未能识别身份证号码，请手动填写"
# Warnings that say the number read is wrong: such a number is never filled in.
NUMBER_DOUBTS = ("check_digit", "number_invalid")


class IdcardReadError(ServiceError):
    message = "没有识别出身份证信息，请手动填写"


class IdcardReadLimitError(IdcardReadError):
    def __init__(self, retry_after: int) -> None:
        minutes = max(1, -(-retry_after // 60))
        super().__init__(
            f"识别太频繁：每 {READ_WINDOW // 60} 分钟最多自动识别 {READ_LIMIT} 次，请 {minutes} 分钟后再试，"
            "或直接手动填写。"
        )
        self.retry_after = retry_after


@dataclass(frozen=True)
class CardWarning:
    code: str
    field: str | None
    message: str


@dataclass(frozen=True)
class BindPrefill:
    """What the bind page fills in: the card's values (str) and what the student should look at."""

    values: dict[str, str]  # name, id_number, sex, ethnicity, birth_date, address — those read
    uncertain: tuple[str, ...]
    warnings: tuple[CardWarning, ...]


def _limit_key(user_id: int) -> str:
    return f"idcard:reads:{user_id}"


def _take_reading(cache: Redis, user_id: int) -> None:
    retry_after = rate_limits.over_limit(cache, _limit_key(user_id), READ_LIMIT, READ_WINDOW)
    if retry_after is not None:
        raise IdcardReadLimitError(retry_after)


def _front_values(result: FrontResult) -> tuple[dict[str, str], list[CardWarning]]:
    """The prefill without a number that fails its checks, and the warnings (one more when no number)."""
    values = dict(result.prefill)
    warnings = [CardWarning(w.code, w.field, w.message) for w in result.warnings]
    if any(w.code in NUMBER_DOUBTS for w in result.warnings):
        values.pop("id_number", None)
    if "id_number" not in values and not result.reading.empty:
        warnings.append(CardWarning("number_unread", "id_number", NUMBER_UNREAD))
    return values, warnings


def read_for_bind(cache: Redis, user_id: int, data: bytes, today: date) -> BindPrefill:
    """Read the front of a card for the bind form; stores nothing. Raises IdcardReadLimitError, and
    IdcardReadError (unreadable file, or nothing read: the student types the fields)."""
    _take_reading(cache, user_id)
    # Imported here: OpenCV, onnxruntime and the OCR models load on the first reading.
    from app.services import idcard_reading
    from media.types import UnreadableImageError

    try:
        result = idcard_reading.read_front(data, today=today)
    except UnreadableImageError as exc:
        raise IdcardReadError(exc.message) from None
    if result.reading.empty:
        raise IdcardReadError(next(w.message for w in result.warnings if w.code == "not_read"))
    values, warnings = _front_values(result)
    return BindPrefill(values, result.uncertain, tuple(warnings))


# --- document slots ------------------------------------------------------------------------------------


def _bound(session: Session, keyring: Keyring, user_id: int) -> BoundIdentity | None:
    """The bound identity to compare a card with: resident ID cards only (a passport's Latin name would
    always "differ")."""
    from app.services.idcard_reading import BoundIdentity

    identity = identities.active(session, user_id)
    if identity is None or identity.doc_type != DocumentType.RESIDENT_ID:
        return None
    return BoundIdentity(keyring.decrypt(identity.name_enc), keyring.decrypt(identity.number_enc))


def _read_slot(
    session: Session, keyring: Keyring, user_id: int, side: str, data: bytes, today: date
) -> tuple[dict[str, str], dict[str, str], tuple[str, ...], list[CardWarning]]:
    """(every value read, the values fit to fill answers, the uncertain keys, the warnings). A number
    failing its checks is kept for the reviewer, with its warning, but fills nothing."""
    from app.services import idcard_reading
    from media.types import UnreadableImageError

    result: FrontResult | BackResult
    try:
        if side == "id_card_front":
            result = idcard_reading.read_front(data, today=today, bound=_bound(session, keyring, user_id))
            values, warnings = _front_values(result)
            return dict(result.prefill), values, result.uncertain, warnings
        result = idcard_reading.read_back(data, today=today)
    except UnreadableImageError as exc:  # checked by the upload already: should not happen
        return {}, {}, (), [CardWarning("not_read", None, exc.message)]
    warnings = [CardWarning(w.code, w.field, w.message) for w in result.warnings]
    return dict(result.prefill), dict(result.prefill), result.uncertain, warnings


def read_document(
    session: Session,
    keyring: Keyring,
    cache: Redis,
    definition: Definition,
    slot: SlotDef,
    answers: dict[str, Any],
    data: bytes,
    now: datetime,
    user_id: int,
    may_fill: Callable[[str], bool] = lambda key: True,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Read a stored ID card file (no commit): (the Document's `reading`, the stored answers with the
    slot's `fills` targets that were empty filled, encrypted).

    Synchronous, in the upload's request: its answer tells the student at once what was filled, while the
    card is still in their hand, and ~0.6 s of one core fits well within an upload's request. Through the
    outbox the page would have to poll for a result the student is waiting for anyway.
    Over the student's reading limit the file is kept unread, with a warning saying so. `may_fill`
    says which fields may change now (after an itemised 驳回, only those sent back)."""
    try:
        _take_reading(cache, user_id)
    except IdcardReadLimitError as exc:
        warning = CardWarning("rate_limited", None, f"{exc.message}（文件已保存，本次未自动识别）")
        return _stored(keyring, slot.kind, {}, (), [warning], [], now), answers
    try:
        values, fit, uncertain, warnings = _read_slot(
            session, keyring, user_id, slot.kind, data, now.astimezone(BEIJING).date()
        )
    except Exception:
        # The reading is a suggestion: a broken OCR engine must not lose the student's upload.
        log.exception("ID card reading failed", extra={"user_id": user_id, "slot": slot.key})
        warning = CardWarning("not_read", None, "暂时无法自动识别，文件已保存；请手动填写")
        return _stored(keyring, slot.kind, {}, (), [warning], [], now), answers
    filled = {k: v for k, v in batch_forms.fillable(definition, slot, answers, fit).items() if may_fill(k)}
    new_answers = {**answers, **batch_forms.transform(definition, filled, keyring.encrypt)}
    return _stored(keyring, slot.kind, values, uncertain, warnings, list(filled), now), new_answers


def _stored(
    keyring: Keyring,
    side: str,
    values: dict[str, str],
    uncertain: tuple[str, ...],
    warnings: list[CardWarning],
    filled: list[str],
    now: datetime,
) -> dict[str, Any]:
    return {
        "side": side,
        "values": {key: keyring.encrypt(value) for key, value in values.items()},
        "uncertain": list(uncertain),
        "warnings": [{"code": w.code, "field": w.field, "message": w.message} for w in warnings],
        "filled": filled,
        "read_at": now.isoformat(),
    }


def filled_fields(definition: Definition, reading: dict[str, Any] | None) -> list[tuple[str, str]]:
    """(field key, label) of the answers a stored reading filled, for the student to check."""
    out = []
    for key in (reading or {}).get("filled", []):
        field = definition.field(key)
        if field is not None:
            out.append((key, field.label))
    return out


def autofilled(session: Session, user_id: int) -> set[str]:
    """The form fields the student's ID card files in their linked batch filled (the form page marks
    them for checking)."""
    enrollment = enrollments.active(session, user_id)
    if enrollment is None:
        return set()
    rows = session.scalars(
        select(Document.reading).where(
            Document.user_id == user_id,
            Document.batch_id == enrollment.batch_id,
            Document.reading.is_not(None),
        )
    )
    return {key for reading in rows if reading for key in reading.get("filled", [])}


def rotate_keys(session: Session, keyring: Keyring, batch_size: int = 500) -> int:
    """Re-encrypt the values of every stored reading under the keyring's first key (`flask pii rotate`);
    commits per batch, returns the count. Safe to rerun or interrupt, as identities.rotate_keys."""
    done = 0
    last_id = 0
    while True:
        rows = session.scalars(
            select(Document)
            .where(Document.reading.is_not(None), Document.id > last_id)
            .order_by(Document.id)
            .limit(batch_size)
        ).all()
        if not rows:
            return done
        for row in rows:
            reading = dict(row.reading or {})
            reading["values"] = {k: keyring.rotate(v) for k, v in reading.get("values", {}).items()}
            row.reading = reading
        session.commit()
        done += len(rows)
        last_id = rows[-1].id


# --- reviewers -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReadValue:
    key: str
    label: str
    value: str  # the ID number masked but for its last 4 characters, except for admins
    typed: str | None  # what the bound identity says, where it says anything about this
    differs: bool
    uncertain: bool


@dataclass(frozen=True)
class CardReading:
    document_id: int
    slot_label: str
    side: str  # id_card_front / id_card_back
    values: list[ReadValue]
    warnings: list[CardWarning]
    flagged: bool  # a mismatch with the identity or an expired card: shown in red


# Warnings about the identity are judged again at review time, against the attempt's identity.
_REJUDGED = ("bound_mismatch",)
# Shown in red to the reviewer.
RED = ("bound_mismatch", "expired", "check_digit", "number_invalid")


def for_review(session: Session, keyring: Keyring, staff: Staff, submission: Submission) -> list[CardReading]:
    """The stored readings of the student's ID card files in the attempt's batch, beside the identity the
    attempt was made with (the caller has checked the staff member may see the attempt)."""
    batch: Batch = submission.batch
    definition = batch_forms.Definition.model_validate(batch.form) if batch.form else None
    if definition is None:
        return []
    documents = session.scalars(
        select(Document)
        .where(
            Document.user_id == submission.user_id,
            Document.batch_id == submission.batch_id,
            Document.reading.is_not(None),
        )
        .order_by(Document.id)
    ).all()
    if not documents:
        return []
    identity = submission.identity
    typed_name = keyring.decrypt(identity.name_enc)
    typed_number = keyring.decrypt(identity.number_enc)
    is_resident = identity.doc_type == DocumentType.RESIDENT_ID
    try:
        parsed = parse_document(DocumentType(identity.doc_type), typed_number, submission.created_at.date())
    except FieldError:  # valid when bound; only a rule changed since could refuse it
        parsed = None
    admin = staff.role == StaffRole.ADMIN
    out = []
    for document in documents:
        reading = document.reading or {}
        slot = batch_forms.slot(definition, document.slot)
        values = {k: keyring.decrypt(v) for k, v in reading.get("values", {}).items()}
        warnings = [CardWarning(**w) for w in reading.get("warnings", []) if w["code"] not in _REJUDGED]
        shown: list[ReadValue] = []
        for key, value in values.items():
            typed: str | None = None
            differs = False
            if key == "name":
                typed = typed_name
                differs = is_resident and comparable_name(value) != comparable_name(typed_name)
            elif key == "id_number":
                typed = typed_number if admin else mask_id_tail(typed_number)
                differs = is_resident and normalise_number(value) != typed_number
                value = value if admin else mask_id_tail(value)
            elif key == "sex" and parsed is not None and parsed.sex:
                typed, differs = parsed.sex, is_resident and value != parsed.sex
            elif key == "birth_date" and parsed is not None and parsed.birth_date:
                typed = parsed.birth_date.isoformat()
                differs = is_resident and value != typed
            if differs and key in ("name", "id_number"):
                warnings.append(
                    CardWarning(
                        "bound_mismatch", key, f"与实名信息不一致：证件上的{LABELS[key]}与学生绑定的不同"
                    )
                )
            shown.append(
                ReadValue(
                    key, LABELS.get(key, key), value, typed, differs, key in reading.get("uncertain", [])
                )
            )
        out.append(
            CardReading(
                document_id=document.id,
                slot_label=slot.label if slot is not None else document.slot,
                side=str(reading.get("side", "")),
                values=shown,
                warnings=warnings,
                flagged=any(w.code in RED for w in warnings) or any(v.differs for v in shown),
            )
        )
    return out
