"""A batch's sign-up form answers as CSV and its students' documents as a ZIP, for the students whose
flow is complete (the same rule as the photo export, exports.exportable): served by
GET /review/export/answers?batch=<id> and /review/export/files?batch=<id>.

The CSV opens in Excel as it is (UTF-8 with a BOM, CRLF): one row per student — 姓名, 证件号码, then
every field of the definition in its order, headed by its label; a repeating group spreads over
`家庭关系1-与本人关系, 家庭关系1-姓名 …` up to the most rows any student has. Personal answers are
decrypted: admins only, and every export is audited as the photo export is.

The ZIP holds `<slot label>/<证件号码>.<ext>` (`-2`, `-3` … for a slot's later files), the name a
school files it under. Both are streamed (app/services/streamed_files.py) with students read in
chunks: memory stays flat whatever the batch size.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, func, select
from sqlalchemy.orm import Session, aliased

from app.services import audit, batch_forms, exports
from app.services.applications import definition_of
from app.services.batch_forms import Definition
from app.services.errors import ServiceError
from app.services.exports import BatchExport, ExportBatchNotFoundError
from app.services.pii import Keyring
from app.services.streamed_files import ZipEntry, csv_stream, zip_stream
from media.storage import Storage
from models import Batch, Document, Enrollment, Identity, School, Submission

CHUNK_ROWS = 200


class NoDefinitionError(ServiceError):
    message = "该批次没有报名表单或材料，无需导出"


@dataclass(frozen=True)
class _Batch:
    id: int
    school: str
    name: str
    definition: Definition


def _batch(session: Session, batch_id: int) -> _Batch:
    found = session.execute(
        select(Batch, School.name).join(School, School.id == Batch.school_id).where(Batch.id == batch_id)
    ).first()
    if found is None:
        raise ExportBatchNotFoundError()
    batch, school_name = found
    definition = definition_of(batch)
    if definition is None:
        raise NoDefinitionError()
    return _Batch(batch.id, school_name, batch.name, definition)


def _count(session: Session, batch_id: int) -> int:
    return (
        session.scalar(
            exports.exportable(select(func.count(func.distinct(Submission.user_id)))).where(
                Submission.batch_id == batch_id
            )
        )
        or 0
    )


def _students(session: Session, batch_id: int) -> Iterator[Row[int, int, str, str, dict[str, Any] | None]]:
    """One row per student with a complete attempt in the batch (their latest such attempt's
    identity), with the answers of their latest enrollment in it, in keyset chunks."""
    latest = (
        exports.exportable(select(func.max(Submission.id).label("id")))
        .where(Submission.batch_id == batch_id)
        .group_by(Submission.user_id)
        .subquery()
    )
    # The answers stay on the enrollment even when it has ended since (changed batch, unbound).
    other = aliased(Enrollment)
    enrollment = (
        select(func.max(other.id))
        .where(other.user_id == Submission.user_id, other.batch_id == batch_id)
        .correlate(Submission)
        .scalar_subquery()
    )
    last = 0
    while True:
        chunk = session.execute(
            select(
                Submission.id,
                Submission.user_id,
                Identity.number_enc,
                Identity.name_enc,
                Enrollment.form_answers,
            )
            .join(latest, latest.c.id == Submission.id)
            .join(Identity, Identity.id == Submission.identity_id)
            .outerjoin(Enrollment, Enrollment.id == enrollment)
            .where(Submission.id > last)
            .order_by(Submission.id)
            .limit(CHUNK_ROWS)
        ).all()
        yield from chunk
        if len(chunk) < CHUNK_ROWS:
            return
        last = chunk[-1].id


def _audited(session: Session, staff_id: int, action: str, batch_id: int) -> None:
    audit.record(
        session, staff_id, action, "batch", batch_id, batch=batch_id, count=_count(session, batch_id)
    )
    session.commit()


# --- the answers ---------------------------------------------------------------------------------


def export_answers(session: Session, keyring: Keyring, staff_id: int, batch_id: int) -> BatchExport:
    """Record the export (commits) and return the CSV, built lazily row by row."""
    found = _batch(session, batch_id)
    _audited(session, staff_id, "export_answers", batch_id)
    return BatchExport(
        filename=f"{found.school}-{found.name}-报名信息.csv",
        chunks=csv_stream(_answer_rows(session, keyring, found), digits_as_text=True),
    )


def _group_rows(session: Session, found: _Batch) -> dict[str, int]:
    """The most rows any student has in each group (a first pass: row counts are stored in clear)."""
    groups = [f.key for f in found.definition.fields() if f.kind == "group"]
    most = dict.fromkeys(groups, 0)
    if groups:
        for row in _students(session, found.id):
            answers = row.form_answers or {}
            for key in groups:
                value = answers.get(key)
                most[key] = max(most[key], len(value) if isinstance(value, list) else 0)
    return most


def header(definition: Definition, group_rows: dict[str, int]) -> list[str]:
    out = ["姓名", "证件号码"]
    for field in definition.fields():
        if field.kind == "group":
            for n in range(1, group_rows.get(field.key, 0) + 1):
                out += [f"{field.label}{n}-{sub.label}" for sub in field.fields or []]
        else:
            out.append(field.label)
    return out


def cells(definition: Definition, group_rows: dict[str, int], answers: dict[str, Any]) -> list[str]:
    """One student's answers (decrypted) in the header's order; hidden fields and missing rows empty."""
    out: list[str] = []
    for field in definition.fields():
        shown = batch_forms.visible(field.when, answers)
        if field.kind == "group":
            rows = answers.get(field.key) if shown else None
            rows = rows if isinstance(rows, list) else []
            for n in range(group_rows.get(field.key, 0)):
                row = rows[n] if n < len(rows) else {}
                out += [_text(row.get(sub.key)) for sub in field.fields or []]
        else:
            out.append(_text(answers.get(field.key)) if shown else "")
    return out


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _answer_rows(session: Session, keyring: Keyring, found: _Batch) -> Iterator[list[str]]:
    definition = found.definition
    group_rows = _group_rows(session, found)
    yield header(definition, group_rows)
    for row in _students(session, found.id):
        answers = batch_forms.transform(definition, row.form_answers or {}, keyring.decrypt)
        yield [
            keyring.decrypt(row.name_enc),
            keyring.decrypt(row.number_enc),
            *cells(definition, group_rows, answers),
        ]


# --- the files -----------------------------------------------------------------------------------


def export_files(
    session: Session, keyring: Keyring, storage: Storage, staff_id: int, batch_id: int
) -> BatchExport:
    """Record the export (commits) and return the ZIP, built lazily file by file."""
    found = _batch(session, batch_id)
    _audited(session, staff_id, "export_files", batch_id)
    return BatchExport(
        filename=f"{found.school}-{found.name}-材料.zip",
        chunks=zip_stream(_file_entries(session, keyring, storage, found)),
    )


def folder(label: str) -> str:
    """A slot's label as a folder name: a slash would make it two folders."""
    return label.replace("/", "／").replace("\\", "＼").strip() or "材料"


def _file_entries(session: Session, keyring: Keyring, storage: Storage, found: _Batch) -> Iterator[ZipEntry]:
    slots = {slot.key: slot for slot in found.definition.documents}
    seen: set[str] = set()
    students = _students(session, found.id)
    while True:
        chunk = [row for _, row in zip(range(CHUNK_ROWS), students, strict=False)]
        if not chunk:
            return
        documents = session.execute(
            select(
                Document.id,
                Document.user_id,
                Document.slot,
                Document.kind,
                Document.storage_key,
                Document.created_at,
            )
            .where(Document.batch_id == found.id, Document.user_id.in_([row.user_id for row in chunk]))
            .order_by(Document.id)
        ).all()
        by_user: dict[int, list[Row[int, int, str, str, str, datetime]]] = {}
        for document in documents:
            by_user.setdefault(document.user_id, []).append(document)
        for student in chunk:
            number = keyring.decrypt(student.number_enc)
            answers = student.form_answers or {}
            per_slot: dict[str, int] = {}
            for document in by_user.get(student.user_id, []):
                slot = slots.get(document.slot)
                # A slot the definition no longer has, or that the answers hide now, is not part of
                # the application the school approved.
                if slot is None or not batch_forms.visible(slot.when, answers):
                    continue
                n = per_slot[slot.key] = per_slot.get(slot.key, 0) + 1
                stem = f"{folder(slot.label)}/{number}" + (f"-{n}" if n > 1 else "")
                name = f"{stem}.{document.kind}"
                if name in seen:  # two students with one number (never expected): keep both
                    name = f"{stem}-{document.id}.{document.kind}"
                seen.add(name)
                yield ZipEntry(name, storage.get(document.storage_key), document.created_at)
