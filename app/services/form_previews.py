"""What staff see of a batch's definition before students do: the form and the document slots as the
student pages draw them, for the staff of the batch's school (admins: every school). Nothing here
reads or writes answers: the preview starts empty and cannot be saved."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from app.services import batch_forms, reviews
from app.services.applications import FormState, definition_of
from app.services.batch_forms import Definition, SlotDef
from app.services.errors import ServiceError
from models import Batch, Staff


class PreviewError(ServiceError):
    message = "不能预览该批次的报名表单"


class PreviewNotFoundError(PreviewError):
    message = "没有找到该批次，或该批次没有报名表单和材料"


class PreviewScopeError(PreviewError):
    message = "只能预览本校批次的报名表单"


def definition(session: Session, staff: Staff, batch_id: int) -> tuple[Batch, Definition]:
    """The batch and its definition, when `staff` covers its school."""
    batch = session.get(Batch, batch_id)
    found = definition_of(batch) if batch is not None else None
    if batch is None or found is None:
        raise PreviewNotFoundError()
    scope = reviews.school_scope(staff)
    if scope is not None and batch.school_id not in scope:
        raise PreviewScopeError()
    return batch, found


def empty_form(found: Definition) -> FormState:
    """The form as a student first opens it: nothing answered, every required field missing."""
    return FormState(found, {}, batch_forms.missing(found, {}))


def condition(found: Definition, slot: SlotDef) -> str | None:
    """A conditional slot's rule in words (the preview has no answers to decide it)."""
    if slot.when is None:
        return None
    field = found.field(slot.when.field)
    label = field.label if field is not None else slot.when.field
    return f"仅当「{label}」为 {'、'.join(slot.when.equals)} 时需要上传"


def with_definition(session: Session, batch_ids: Iterable[int]) -> set[int]:
    """Which of these batches have a form or document slots (the ones worth previewing)."""
    ids = list(batch_ids)
    if not ids:
        return set()
    return set(
        session.scalars(select(Batch.id).where(Batch.id.in_(ids), or_(Batch.has_form, Batch.has_documents)))
    )
