"""GET /review/export?batch=<id>: admin only, audited, a streamed ZIP named the CHSI way."""

from __future__ import annotations

import csv
import hashlib
import io
import re
import zipfile

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app.extensions import db
from app.services import schools
from app.services import staff as staff_service
from models import AuditEntry, StaffRole, SubmissionStatus
from tests.factories import make_batch, make_student

PASSWORD = "correct horse battery"
CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')


def login(app: Flask, client: FlaskClient, username: str, role: StaffRole) -> None:
    with app.app_context():
        schools.upsert_school(db.session, "10542", "湖南师范大学", "湖南省", "长沙市")
        db.session.commit()
        codes = ["10542"] if role == StaffRole.REVIEWER else []
        staff_service.create(db.session, username, PASSWORD, role, codes)
    token = CSRF_INPUT.search(client.get("/review/login").get_data(as_text=True))
    assert token
    response = client.post(
        "/review/login", data={"username": username, "password": PASSWORD, "csrf_token": token.group(1)}
    )
    assert response.status_code == 303


def world(app: Flask) -> tuple[int, dict[str, bytes]]:
    """Batch A: two approved, one returned, one pending; batch B: one approved."""
    with app.app_context():
        batch_a = make_batch()
        batch_b = make_batch("10699", "西北工业大学")
        photos = {"11010519491231002X": b"\xff\xd8 photo one", "110105194912310037": b"\xff\xd8 photo two"}
        make_student(batch_a, SubmissionStatus.APPROVED, openid="o1", id_number="11010519491231002X",
                     name="张三丰", photo_bytes=photos["11010519491231002X"])  # fmt: skip
        make_student(batch_a, SubmissionStatus.APPROVED, openid="o2", id_number="110105194912310037",
                     name="李四", photo_bytes=photos["110105194912310037"])  # fmt: skip
        make_student(
            batch_a, SubmissionStatus.RETURNED, openid="o3", id_number="110105194912310045", reason="x"
        )
        make_student(batch_a, SubmissionStatus.PENDING_REVIEW, openid="o4", id_number="110105194912310053")
        make_student(batch_b, SubmissionStatus.APPROVED, openid="o5", id_number="110105194912310061")
    return batch_a, photos


def test_export_streams_approved_photos_named_by_id_number_with_manifest(
    app: Flask, client: FlaskClient
) -> None:
    batch_a, photos = world(app)
    login(app, client, "boss", StaffRole.ADMIN)
    response = client.get(f"/review/export?batch={batch_a}")
    assert response.status_code == 200
    assert response.is_streamed  # a generator, never the whole ZIP in memory
    assert response.mimetype == "application/zip"
    assert "attachment" in response.headers["Content-Disposition"]
    archive = zipfile.ZipFile(io.BytesIO(response.get_data()))
    assert archive.testzip() is None
    assert sorted(archive.namelist()) == sorted(["manifest.csv", *(f"{n}.jpg" for n in photos)])
    for number, data in photos.items():
        assert archive.read(f"{number}.jpg") == data
    rows = list(csv.reader(io.StringIO(archive.read("manifest.csv").decode("utf-8-sig"))))
    assert rows[0] == ["id_number", "name", "school", "batch", "decided_at", "photo_sha256"]
    by_number = {row[0]: row for row in rows[1:]}
    assert set(by_number) == set(photos)
    assert by_number["11010519491231002X"][1:4] == ["张三丰", "湖南师范大学", "成人教育 10542 批次"]
    assert by_number["11010519491231002X"][4].endswith("+08:00")
    for number, data in photos.items():
        assert by_number[number][5] == hashlib.sha256(data).hexdigest()
    with app.app_context():
        entries = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "export")).all()
        assert [(e.target_type, e.target_id, e.detail["count"]) for e in entries] == [("batch", batch_a, 2)]


def test_export_of_an_empty_batch_has_only_the_header(app: Flask, client: FlaskClient) -> None:
    with app.app_context():
        batch = make_batch()
    login(app, client, "boss", StaffRole.ADMIN)
    archive = zipfile.ZipFile(io.BytesIO(client.get(f"/review/export?batch={batch}").get_data()))
    assert archive.namelist() == ["manifest.csv"]
    assert archive.read("manifest.csv").decode("utf-8-sig").strip().count("\n") == 0


def test_reviewer_gets_403_and_nothing_is_audited(app: Flask, client: FlaskClient) -> None:
    batch_a, _ = world(app)
    login(app, client, "rev", StaffRole.REVIEWER)
    response = client.get(f"/review/export?batch={batch_a}")
    assert response.status_code == 403
    with app.app_context():
        assert db.session.scalar(select(AuditEntry.id).where(AuditEntry.action == "export")) is None


def test_signed_out_goes_to_login_and_bad_batches_are_refused(app: Flask, client: FlaskClient) -> None:
    response = client.get("/review/export?batch=1")
    assert response.status_code == 302 and "/review/login" in response.location
    login(app, client, "boss", StaffRole.ADMIN)
    # Without a batch: the page to choose one, not a bare error.
    chooser = client.get("/review/export")
    assert chooser.status_code == 200 and 'id="export-table"' in chooser.get_data(as_text=True)
    assert client.get("/review/export?batch=999").status_code == 404


def test_export_memory_does_not_grow_with_the_batch(app: Flask, client: FlaskClient, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Each chunk the generator yields stays about one photo in size, however many photos there are."""
    import app.services.exports as export

    monkeypatch.setattr(export, "CHUNK_ROWS", 3)  # several database chunks
    with app.app_context():
        batch = make_batch()
        for i in range(12):
            number = f"1101051949123{i:04d}X"
            make_student(batch, SubmissionStatus.APPROVED, openid=f"m{i}", id_number=number,
                         photo_bytes=bytes([i]) * 50_000)  # fmt: skip
    login(app, client, "boss", StaffRole.ADMIN)
    response = client.get(f"/review/export?batch={batch}")
    assert response.is_streamed
    chunks = [chunk for chunk in response.response if chunk]  # type: ignore[union-attr]
    total = sum(len(c) for c in chunks)
    assert total > 12 * 50_000
    assert max(len(c) for c in chunks) < 51_000  # one photo plus its headers, never the archive
    archive = zipfile.ZipFile(io.BytesIO(b"".join(chunks)))
    assert len(archive.namelist()) == 13
