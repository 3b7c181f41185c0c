"""An itemised 驳回: the items a reviewer sends back (form fields, document slots, the photo), each
with its reason, and what the student may change in the meantime.

A 驳回 that names items reopens only those: the student fixes them and resubmits, and the reviewer
knows the rest is what they already saw. A 驳回 without items reopens everything, as it always did.
While an attempt holds the data (HOLDS_DATA: being checked or reviewed), nothing can change: the
reviewer decides on what they see.

The items live on the submission (`rejected_items`); the overall `status_reason` is derived from them
(需修改：身份证正面（照片模糊）；…) so every reader of the reason — the push, the status page, the
photo page, the checklist — names them without knowing about items.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.services import batch_forms
from app.services.batch_forms import Definition
from app.services.errors import ServiceError
from models.submission import HOLDS_DATA, Submission, SubmissionStatus

ItemKind = Literal["field", "document", "photo"]
KINDS: tuple[ItemKind, ...] = ("field", "document", "photo")
PHOTO_KEY = "photo"
PHOTO_LABEL = "照片"
MAX_ITEM_REASON = 40
MAX_REASON = 200  # as reviews.MAX_REASON_CHARS: the column's readers expect no more
# What a reviewer most often writes next to an item (the page offers them; any text is accepted).
SUGGESTIONS: tuple[str, ...] = ("内容有误", "与证件不一致", "照片模糊", "缺页或不完整", "不是要求的材料")

FROZEN_MESSAGE = "报名信息正在审核中，暂时不能修改。"
NOT_RETURNED_MESSAGE = "这一项未被退回，不能修改。"
ITEMS_NOTE = "审核老师退回了部分项目：只有标红的项目可以修改，改好后请重新提交。"
# Attempts that say nothing new about the data: one not paid or refunded leaves the 驳回 before it
# in force (a student who starts paying again cannot reopen what the reviewer kept).
_PASSING = (SubmissionStatus.AWAITING_PAYMENT, SubmissionStatus.CANCELLED, SubmissionStatus.REFUNDED)


class ReturnedItemsError(ServiceError):
    message = "退回的项目有误"


@dataclass(frozen=True)
class Item:
    kind: ItemKind
    key: str
    label: str
    reason: str

    def to_data(self) -> dict[str, str]:
        return {"kind": self.kind, "key": self.key, "label": self.label, "reason": self.reason}


def clean_items(
    definition: Definition | None, answers: Mapping[str, Any], raw: Iterable[Mapping[str, Any]]
) -> list[Item]:
    """The items of a 驳回 as stored: each names a visible field (a group is one item), a visible
    document slot or the photo, and carries a reason. Raises ReturnedItemsError in Chinese."""
    items: dict[tuple[str, str], Item] = {}
    for entry in raw:
        kind, key = str(entry.get("kind") or ""), str(entry.get("key") or "")
        label = _label(definition, answers, kind, key)
        reason = " ".join(str(entry.get("reason") or "").split())
        if not reason:
            raise ReturnedItemsError(f"请填写「{label}」的退回原因。")
        if len(reason) > MAX_ITEM_REASON:
            raise ReturnedItemsError(f"「{label}」的退回原因最多 {MAX_ITEM_REASON} 个字。")
        items[(kind, key)] = Item(kind, key, label, reason)  # type: ignore[arg-type]
    return list(items.values())


def _label(definition: Definition | None, answers: Mapping[str, Any], kind: str, key: str) -> str:
    if kind == "photo" and key == PHOTO_KEY:
        return PHOTO_LABEL
    if kind == "field" and definition is not None:
        found = definition.field(key)
        if found is not None and batch_forms.visible(found.when, dict(answers)):
            return found.label
    if kind == "document" and definition is not None:
        slot = batch_forms.slot(definition, key)
        if slot is not None and batch_forms.visible(slot.when, dict(answers)):
            return slot.label
    raise ReturnedItemsError("退回的项目不在本批次的报名信息或材料中，请刷新页面后重试。")


def status_reason(items: list[Item], overall: str | None) -> str:
    """The reason every reader shows: the items first (a push clips it at 20 characters), then the
    reviewer's overall words, within MAX_REASON characters."""
    summary = "需修改：" + "；".join(f"{i.label}（{i.reason}）" for i in items)
    text = f"{summary}。{overall}" if overall else summary
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 1] + "…"


def items_of(submission: Submission) -> list[Item]:
    return [
        Item(d["kind"], d["key"], d.get("label", d["key"]), d.get("reason", ""))  # type: ignore[arg-type]
        for d in submission.rejected_items or []
        if d.get("kind") in KINDS and d.get("key")
    ]


def photo_goes_back(status: SubmissionStatus | str, rejected_items: list[dict[str, str]] | None) -> bool:
    """Whether a rejected attempt rejected its photo: 不通过 always, 驳回 unless it named items
    other than the photo only."""
    if status != SubmissionStatus.RETURNED or not rejected_items:
        return True
    return any(d.get("kind") == "photo" for d in rejected_items)


def kept_photo(session: Session, user_id: int) -> Submission | None:
    """The student's latest attempt when it is a 驳回 that named items but not the photo: the photo
    page then says the same photo goes in again once those are fixed."""
    latest = session.scalar(
        select(Submission)
        .where(Submission.user_id == user_id)
        .order_by(Submission.created_at.desc(), Submission.id.desc())
        .limit(1)
    )
    if latest is None or latest.status != SubmissionStatus.RETURNED or not latest.rejected_items:
        return None
    return None if photo_goes_back(latest.status, latest.rejected_items) else latest


# --- what the student may change ---------------------------------------------------------------


@dataclass(frozen=True)
class Reopened:
    """What the student may change in the form and the documents now."""

    state: Literal["open", "frozen", "items"]
    message: str | None = None  # why not everything can change (None: everything can)
    fields: dict[str, str] = field(default_factory=dict)  # returned field key → reason
    slots: dict[str, str] = field(default_factory=dict)  # returned slot key → reason
    photo: str | None = None  # the photo's reason, when it was returned
    editable_fields: frozenset[str] = frozenset()
    editable_slots: frozenset[str] = frozenset()

    def field_editable(self, key: str) -> bool:
        return self.state == "open" or (self.state == "items" and key in self.editable_fields)

    def slot_editable(self, key: str) -> bool:
        return self.state == "open" or (self.state == "items" and key in self.editable_slots)


OPEN = Reopened("open")


def reopened(session: Session, user_id: int, batch_id: int, definition: Definition) -> Reopened:
    """Frozen while an attempt holds the data; after an itemised 驳回, the returned items (and the
    fields and slots shown only because of a returned choice: changing 考生类别 brings 学号 with it);
    otherwise everything."""
    held = session.scalar(
        select(Submission.id).where(Submission.user_id == user_id, Submission.status.in_(HOLDS_DATA)).limit(1)
    )
    if held is not None:
        return Reopened("frozen", FROZEN_MESSAGE)
    last = session.scalar(
        select(Submission)
        .where(
            Submission.user_id == user_id,
            Submission.batch_id == batch_id,
            Submission.status.not_in(_PASSING),
        )
        .order_by(Submission.created_at.desc(), Submission.id.desc())
        .limit(1)
    )
    if last is None or last.status != SubmissionStatus.RETURNED or not last.rejected_items:
        return OPEN
    items = items_of(last)
    fields = {i.key: i.reason for i in items if i.kind == "field"}
    slots = {i.key: i.reason for i in items if i.kind == "document"}
    photo = next((i.reason for i in items if i.kind == "photo"), None)
    editable = set(fields)
    for f in definition.fields():  # in order: a `when` names an earlier field
        if f.when is not None and f.when.field in editable:
            editable.add(f.key)
    editable_slots = set(slots) | {
        s.key for s in definition.documents if s.when is not None and s.when.field in editable
    }
    return Reopened(
        "items",
        ITEMS_NOTE,
        fields=fields,
        slots=slots,
        photo=photo,
        editable_fields=frozenset(editable),
        editable_slots=frozenset(editable_slots),
    )
