"""A batch's approved normalised photos (attempts whose flow is complete) as a ZIP, named
`<证件号码>.jpg` — the form schools upload to CHSI (学信网) in bulk — with `manifest.csv` (served by
GET /review/export?batch=<id>).

Streamed with constant memory (app/services/streamed_files.py), rows read from the database in
chunks. The ZIP is never held whole, whatever the batch size.
The decrypted numbers make the page admin-only, and every export is audited (batch and count).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Row, Select, func, or_, select
from sqlalchemy.orm import Session

from app.services import audit
from app.services.errors import ServiceError
from app.services.localtime import BEIJING
from app.services.pii import Keyring
from app.services.streamed_files import ZipEntry, csv_stream, zip_stream
from media.storage import Storage
from models import Batch, Identity, LockOn, Photo, School, Submission, SubmissionStatus

CHUNK_ROWS = 200
_Query = TypeVar("_Query", bound="Select[*tuple[Any, ...]]")
MANIFEST_HEADER = ("id_number", "name", "school", "batch", "decided_at", "photo_sha256")


class ExportBatchNotFoundError(ServiceError):
    message = "没有找到该批次"


@dataclass(frozen=True)
class BatchExport:
    """An audited export: what to call the file, and its bytes as they are made."""

    filename: str
    chunks: Iterator[bytes]


def exportable(query: _Query) -> _Query:
    """The attempts whose flow is complete, with their processed photo: the one definition the
    exports (photos, answers, files), their audited counts and the counts beside the links share.

    通过 only: in review_first it is reached by paying, so 审核通过，待缴费 (fee still due) and 逾期未缴费
    stay out; where the batch freezes the data at the student's confirmation, the attempt must be
    confirmed too (until then the student may still correct it)."""
    return (
        query.join(Photo, Photo.id == Submission.photo_id)
        .join(Batch, Batch.id == Submission.batch_id)
        .where(
            Submission.status == SubmissionStatus.APPROVED,
            Photo.normalized_key.is_not(None),
            or_(Batch.lock_on != LockOn.CONFIRM, Submission.confirmed_at.is_not(None)),
        )
    )


def counts(session: Session, batch_ids: Iterable[int] | None = None) -> dict[int, int]:
    """How many photos each batch's ZIP would hold now (batches with none are left out)."""
    query = exportable(select(Submission.batch_id, func.count())).group_by(Submission.batch_id)
    if batch_ids is not None:
        query = query.where(Submission.batch_id.in_(list(batch_ids)))
    return {batch_id: n for batch_id, n in session.execute(query)}


@dataclass(frozen=True)
class ExportChoice:
    batch_id: int
    school: str
    name: str
    count: int
    has_form: bool = False  # the answers' CSV and the form's preview
    has_documents: bool = False  # the files' ZIP


def choices(session: Session) -> list[ExportChoice]:
    """Every batch with its count, by school and batch: the page to pick an export from."""
    found = counts(session)
    rows = session.execute(
        select(Batch.id, School.name, Batch.name, Batch.has_form, Batch.has_documents)
        .join(School, School.id == Batch.school_id)
        .order_by(School.code, Batch.id)
    )
    return [
        ExportChoice(batch_id, school, name, found.get(batch_id, 0), has_form, has_documents)
        for batch_id, school, name, has_form, has_documents in rows
    ]


def export_batch(
    session: Session, keyring: Keyring, storage: Storage, staff_id: int, batch_id: int
) -> BatchExport:
    """Record the export in the audit log (commits) and return the ZIP, built lazily chunk by chunk."""
    found = session.execute(
        select(Batch.name, School.name).join(School, School.id == Batch.school_id).where(Batch.id == batch_id)
    ).first()
    if found is None:
        raise ExportBatchNotFoundError()
    batch_name, school_name = found
    count = counts(session, [batch_id]).get(batch_id, 0)
    audit.record(session, staff_id, "export", "batch", batch_id, batch=batch_id, count=count)
    session.commit()
    return BatchExport(
        filename=f"{school_name}-{batch_name}-通过照片.zip",
        chunks=_zip_stream(session, keyring, storage, batch_id, school_name, batch_name),
    )


def _rows(session: Session, batch_id: int) -> Iterator[Row[int, datetime | None, str, str, str | None]]:
    """The batch's exportable attempts, by id, in keyset chunks."""
    last = 0
    while True:
        chunk = session.execute(
            exportable(
                select(
                    Submission.id,
                    Submission.decided_at,
                    Identity.number_enc,
                    Identity.name_enc,
                    Photo.normalized_key,
                ).join(Identity, Identity.id == Submission.identity_id)
            )
            .where(Submission.batch_id == batch_id, Submission.id > last)
            .order_by(Submission.id)
            .limit(CHUNK_ROWS)
        ).all()
        yield from chunk
        if len(chunk) < CHUNK_ROWS:
            return
        last = chunk[-1].id


def _zip_stream(
    session: Session, keyring: Keyring, storage: Storage, batch_id: int, school_name: str, batch_name: str
) -> Iterator[bytes]:
    def manifest() -> Iterator[tuple[str, ...]]:
        yield MANIFEST_HEADER
        for row in _rows(session, batch_id):
            decided = row.decided_at.astimezone(BEIJING).isoformat() if row.decided_at else ""
            yield (
                keyring.decrypt(row.number_enc),
                keyring.decrypt(row.name_enc),
                school_name,
                batch_name,
                decided,
                str(row.normalized_key).rsplit("/", 1)[-1],  # sha256 = the content-addressed key's digest
            )

    def photos() -> Iterator[ZipEntry]:
        seen: set[str] = set()
        for row in _rows(session, batch_id):
            number = keyring.decrypt(row.number_enc)
            name = f"{number}.jpg" if number not in seen else f"{number}-{row.id}.jpg"
            seen.add(number)
            yield ZipEntry(name, storage.get(row.normalized_key), row.decided_at)

    # The manifest first, row by row, then the photos.
    yield from zip_stream(itertools.chain([ZipEntry("manifest.csv", csv_stream(manifest()))], photos()))
