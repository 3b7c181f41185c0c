"""GET /review/export?batch=<id> (admin): the batch's approved normalised photos as a ZIP, named
`<证件号码>.jpg` — the form schools upload to CHSI (学信网) in bulk — with `manifest.csv`.

Streamed with constant memory: zipfile writes into a sink that the response generator drains after
every entry (a non-seekable sink makes zipfile use data descriptors, so nothing is rewritten), and
rows are read from the database in chunks. The ZIP is never held whole, whatever the batch size.
The decrypted numbers make this admin-only, and every export is audited (batch and count).
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from flask import Response, request, stream_with_context
from flask.typing import ResponseReturnValue
from sqlalchemy import func, select

from app.errors import error_response
from app.extensions import db
from app.integrations import photo_storage, pii_keyring
from app.review import bp
from app.review.auth import current_staff, staff_required
from app.services import audit
from app.services.localtime import BEIJING
from models import Batch, Identity, Photo, School, StaffRole, Submission, SubmissionStatus

CHUNK_ROWS = 200
MANIFEST_HEADER = ("id_number", "name", "school", "batch", "decided_at", "photo_sha256")


class _Sink(io.RawIOBase):
    """A write-only, non-seekable file whose bytes the generator takes away after each entry."""

    def __init__(self) -> None:
        super().__init__()
        self._parts: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self._parts.append(chunk)
        return len(chunk)

    def drain(self) -> bytes:
        out = b"".join(self._parts)
        self._parts.clear()
        return out


def _rows(batch_id: int) -> Iterator[Any]:
    """Approved attempts of the batch with a normalised photo, by id, in keyset chunks."""
    last = 0
    while True:
        chunk = db.session.execute(
            select(
                Submission.id,
                Submission.decided_at,
                Identity.number_enc,
                Identity.name_enc,
                Photo.normalized_key,
            )
            .join(Identity, Identity.id == Submission.identity_id)
            .join(Photo, Photo.id == Submission.photo_id)
            .where(
                Submission.batch_id == batch_id,
                Submission.status == SubmissionStatus.APPROVED,
                Photo.normalized_key.is_not(None),
                Submission.id > last,
            )
            .order_by(Submission.id)
            .limit(CHUNK_ROWS)
        ).all()
        yield from chunk
        if len(chunk) < CHUNK_ROWS:
            return
        last = chunk[-1].id


def _zip_stream(batch_id: int, school_name: str, batch_name: str) -> Iterator[bytes]:
    keyring = pii_keyring()
    store = photo_storage()
    sink = _Sink()
    with zipfile.ZipFile(sink, mode="w", compression=zipfile.ZIP_STORED) as archive:
        # The manifest first, row by row (sha256 = the content-addressed key's digest).
        with archive.open("manifest.csv", mode="w", force_zip64=True) as manifest:
            text = io.TextIOWrapper(manifest, encoding="utf-8-sig", newline="")
            writer = csv.writer(text)
            writer.writerow(MANIFEST_HEADER)
            for row in _rows(batch_id):
                decided = row.decided_at.astimezone(BEIJING).isoformat() if row.decided_at else ""
                writer.writerow(
                    (
                        keyring.decrypt(row.number_enc),
                        keyring.decrypt(row.name_enc),
                        school_name,
                        batch_name,
                        decided,
                        str(row.normalized_key).rsplit("/", 1)[-1],
                    )
                )
                text.flush()
                yield sink.drain()
            text.flush()
            text.detach()
        yield sink.drain()
        seen: set[str] = set()
        for row in _rows(batch_id):
            number = keyring.decrypt(row.number_enc)
            name = f"{number}.jpg" if number not in seen else f"{number}-{row.id}.jpg"
            seen.add(number)
            info = zipfile.ZipInfo(name, date_time=_zip_time(row.decided_at))
            info.compress_type = zipfile.ZIP_STORED  # JPEG does not compress further
            archive.writestr(info, store.get(row.normalized_key))
            yield sink.drain()
    yield sink.drain()


def _zip_time(moment: datetime | None) -> tuple[int, int, int, int, int, int]:
    local = (moment or datetime.now(UTC)).astimezone(BEIJING)
    return (max(local.year, 1980), local.month, local.day, local.hour, local.minute, local.second)


@bp.get("/export")
@staff_required(StaffRole.ADMIN)
def export() -> ResponseReturnValue:
    staff = current_staff()
    assert staff is not None
    batch_id = request.args.get("batch", type=int)
    if batch_id is None:
        return error_response(400, "请指定批次（?batch=批次编号）")
    found = db.session.execute(
        select(Batch.name, School.name).join(School, School.id == Batch.school_id).where(Batch.id == batch_id)
    ).first()
    if found is None:
        return error_response(404, "没有找到该批次")
    batch_name, school_name = found
    count = db.session.scalar(
        select(func.count())
        .select_from(Submission)
        .join(Photo, Photo.id == Submission.photo_id)
        .where(
            Submission.batch_id == batch_id,
            Submission.status == SubmissionStatus.APPROVED,
            Photo.normalized_key.is_not(None),
        )
    )
    audit.record(db.session, staff.id, "export", "batch", batch_id, batch=batch_id, count=count or 0)
    db.session.commit()
    filename = f"{school_name}-{batch_name}-通过照片.zip"
    response = Response(
        stream_with_context(_zip_stream(batch_id, school_name, batch_name)), mimetype="application/zip"
    )
    response.headers["Content-Disposition"] = (
        f"attachment; filename=\"batch-{batch_id}.zip\"; filename*=UTF-8''{quote(filename)}"
    )
    return response
