"""POST /api/v1/me/photos, GET /api/v1/me/photos/latest and the signed links /media/photos/<token>,
through real HTTP: students sign in through the sandbox's OAuth2 flow and upload as the page does."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from photo_students import (
    Student,
    enrolled_student,
    fixture,
    no_face_480x640,
    no_face_phone,
    prepare,
)
from sqlalchemy import func, select, update

from app.extensions import db
from app.services import photos, progress
from media import storage as media_storage
from models import Batch, Enrollment, OutboxItem, Photo

PHONE = "phone_4000x3000.jpg"
ALL_CHECKS = {
    "format",
    "pixel_size",
    "file_size",
    "color_mode",
    "face_count",
    "background_color",
    "exposure",
    "sharpness",
}


@pytest.fixture
def base(live_server: Any, app: Flask) -> str:
    url: str = live_server.url
    return url


def _photo_rows(app: Flask) -> list[Photo]:
    with app.app_context():
        rows = list(db.session.scalars(select(Photo).order_by(Photo.id)))
        db.session.expunge_all()
        return rows


def _media_files(app: Flask) -> list[str]:
    root = app.config["MEDIA_ROOT"]
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.exists() else []


def _errors(response: Any, status: int = 422) -> list[dict[str, str]]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"errors"}
    errors: list[dict[str, str]] = body["errors"]
    return errors


# --- uploads ---------------------------------------------------------------------------------


def test_phone_photo_is_cropped_to_the_spec_and_passes(app: Flask, base: str) -> None:
    student = enrolled_student(app, base, "o-photo-pass")
    original = fixture(PHONE)
    response = student.upload(original)
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) >= {"id", "passed", "checks", "fixes", "normalized"}
    failed = [c for c in body["checks"] if not c["ok"]]
    assert body["passed"] is True, failed
    assert {c["name"] for c in body["checks"]} >= ALL_CHECKS
    for check in body["checks"]:
        assert set(check) >= {"name", "ok", "value", "limit", "message"}
        assert check["message"]
    normalized = body["normalized"]
    assert (normalized["width"], normalized["height"]) == (480, 640)
    assert 100 * 1024 <= normalized["bytes"] <= 200 * 1024  # 湖南师范大学: 100–200 KB
    assert body["fixes"], "a 4000×3000 photo is cropped and resized: the fixes say so"

    # The auto-fixed file through its signed link: exactly what was reported.
    url = normalized["url"]
    assert url.startswith("/media/photos/") and str(body["id"]) not in url.split("/")[-1][:4]
    got = student.get(url)
    assert got.status_code == 200 and got.headers["Content-Type"] == "image/jpeg"
    assert len(got.content) == normalized["bytes"]
    assert got.headers["Cache-Control"].startswith("private")
    assert got.headers["X-Content-Type-Options"] == "nosniff"

    # Both files are kept, by content address; the row says which batch's spec applied.
    [row] = _photo_rows(app)
    assert row.passed and row.source == "h5" and row.user_id == student.user_id
    assert row.original_bytes == len(original) and row.original_sha256 == media_storage.sha256_hex(original)
    storage = media_storage.LocalStorage(app.config["MEDIA_ROOT"])
    assert storage.get(row.original_key) == original
    assert storage.get(row.normalized_key or "") == got.content
    assert row.original_key == media_storage.key_for(original)
    assert row.face is not None and row.phash
    original_link = student.get(body["original_url"])
    assert original_link.status_code == 200 and original_link.content == original

    # 我的 and the 进度 keyword now say the photo passed.
    with app.app_context():
        now = progress.of(db.session, student.user_id or 0, datetime.now(UTC))
    # The checklist's current step is paying, which starts from the photo page (开始核验).
    assert now.step == "pay" and now.path == "/h5/photo" and "照片已通过检查" in now.message


def test_a_failing_photo_is_stored_and_reported(app: Flask, base: str) -> None:
    student = enrolled_student(app, base, "o-photo-fail")
    response = student.upload(no_face_480x640())
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["passed"] is False
    face = next(c for c in body["checks"] if c["name"] == "face_count")
    assert face["ok"] is False and "人脸" in face["message"]
    assert body["normalized"]["width"] == 480
    [row] = _photo_rows(app)
    assert not row.passed
    assert row.checks == [
        {k: v for k, v in c.items() if k not in ("label", "advice")} for c in body["checks"]
    ]
    assert face["label"] == "人脸"
    # What the student reads: one sentence of what to do, no measured values; none for a passed check.
    assert face["advice"].startswith("没有检测到人脸") and face["advice"].endswith("。")
    assert all(c["advice"] is None for c in body["checks"] if c["ok"])
    assert body["rejected"] is None
    assert len(_media_files(app)) >= 1
    with app.app_context():
        now = progress.of(db.session, student.user_id or 0, datetime.now(UTC))
    assert "照片已通过检查" not in now.message


def test_a_large_photo_without_a_face_has_no_normalised_file(app: Flask, base: str) -> None:
    student = enrolled_student(app, base, "o-photo-noface-big")
    response = student.upload(no_face_phone())
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["passed"] is False and body["normalized"] is None
    assert any(c["name"] == "face_count" and not c["ok"] for c in body["checks"])
    [row] = _photo_rows(app)
    assert row.normalized_key is None
    assert student.get(body["original_url"]).status_code == 200


@pytest.mark.parametrize(
    ("filename", "content_type", "data"),
    [
        ("photo.jpg", "image/jpeg", b"%PDF-1.7\n1 0 obj <<>> endobj\n"),  # a PDF named .jpg
        ("photo.jpg", "image/jpeg", b"\xff\xd8\xff\xe0" + b"\x00" * 64),  # a broken JPEG
        ("notes.txt", "text/plain", "这不是照片".encode()),
        ("empty.jpg", "image/jpeg", b""),
    ],
    ids=["pdf-named-jpg", "truncated-jpeg", "text", "empty"],
)
def test_not_an_image_is_refused_and_nothing_is_stored(
    app: Flask, base: str, filename: str, content_type: str, data: bytes
) -> None:
    student = enrolled_student(app, base, "o-photo-notimage")
    [error] = _errors(student.upload(data, filename=filename, content_type=content_type))
    assert error["field"] == "file" and error["message"]
    assert _photo_rows(app) == []
    assert _media_files(app) == []


def test_the_pipelines_pdf_fixture_is_refused(app: Flask, base: str) -> None:
    student = enrolled_student(app, base, "o-photo-pdf")
    [error] = _errors(student.upload(fixture("document.pdf"), filename="证件照.jpg"))
    assert error["field"] == "file" and "PDF" in error["message"]


def test_missing_file_field(app: Flask, base: str) -> None:
    student = enrolled_student(app, base, "o-photo-nofile")
    response = student.http.post(
        f"{base}/api/v1/me/photos",
        files={"other": ("a.jpg", b"x", "image/jpeg")},
        headers={"X-CSRFToken": student.token},
        timeout=10,
    )
    [error] = _errors(response)
    assert error["field"] == "file"


def test_too_large_is_refused_before_it_is_read(app_factory: Any, live_server: Any) -> None:
    app = app_factory(MEDIA_MAX_UPLOAD_BYTES=64 * 1024)
    student = enrolled_student(app, live_server.url, "o-photo-big")
    [error] = _errors(student.upload(b"\xff\xd8\xff" + b"\x00" * (80 * 1024)), status=413)
    assert error["field"] == "file" and "太大" in error["message"]
    assert _photo_rows(app) == [] and _media_files(app) == []
    # The test client shows the refusal comes from the declared length, with no body read at all.
    client = app.test_client()
    with client.session_transaction() as session:
        session["user_id"] = student.user_id
    refused = client.post(
        "/api/v1/me/photos",
        environ_overrides={
            "wsgi.input": _Exploding(),
            "CONTENT_LENGTH": str(50 * 1024 * 1024),
            "CONTENT_TYPE": "multipart/form-data; boundary=x",
        },
    )
    assert refused.status_code == 413
    assert refused.json["errors"][0]["field"] == "file"


class _Exploding:
    """A request body that fails the test if anyone reads it."""

    def read(self, *args: Any) -> bytes:
        raise AssertionError("the body was read")

    readline = read


def test_no_identity(app: Flask, base: str) -> None:
    prepare(app, "o-photo-unbound", bind=False, link=False)
    student = Student(base, "o-photo-unbound")
    [error] = _errors(student.upload(no_face_480x640()))
    assert error == {"field": "_", "message": photos.PhotoIdentityRequiredError.message}
    assert _photo_rows(app) == [] and _media_files(app) == []


def test_no_enrollment(app: Flask, base: str) -> None:
    prepare(app, "o-photo-unlinked", link=False)
    student = Student(base, "o-photo-unlinked")
    [error] = _errors(student.upload(no_face_480x640()))
    assert error == {"field": "_", "message": photos.PhotoEnrollmentRequiredError.message}
    assert _photo_rows(app) == []


def test_closed_batch(app: Flask, base: str) -> None:
    student = enrolled_student(app, base, "o-photo-closed")
    with app.app_context():
        batch_id = db.session.scalar(select(Enrollment.batch_id).where(Enrollment.user_id == student.user_id))
        db.session.execute(
            update(Batch).where(Batch.id == batch_id).values(closes_at=datetime.now(UTC) - timedelta(days=1))
        )
        db.session.commit()
    [error] = _errors(student.upload(no_face_480x640()))
    assert error["field"] == "_" and "已截止" in error["message"]
    assert _photo_rows(app) == []
    page = student.get("/h5/photo")
    assert page.status_code == 200 and 'data-state="closed"' in page.text and "已截止" in page.text


def test_csrf_and_sign_in_are_required(app: Flask, base: str) -> None:
    student = enrolled_student(app, base, "o-photo-csrf")
    assert student.upload(no_face_480x640(), csrf=None).status_code == 400
    assert student.upload(no_face_480x640(), csrf="forged-token").status_code == 400
    assert _photo_rows(app) == []
    import requests

    anonymous = requests.post(
        f"{base}/api/v1/me/photos", files={"file": ("a.jpg", b"x", "image/jpeg")}, timeout=10
    )
    assert anonymous.status_code == 401  # no session (and so no CSRF token): sign in first
    assert requests.get(f"{base}/api/v1/me/photos/latest", timeout=10).status_code == 401


def test_latest_photo(app: Flask, base: str) -> None:
    student = enrolled_student(app, base, "o-photo-latest")
    assert student.get("/api/v1/me/photos/latest").status_code == 404
    first = student.upload(no_face_480x640()).json()
    second = student.upload(fixture("no_face_cat.jpg")).json()
    latest = student.get("/api/v1/me/photos/latest")
    assert latest.status_code == 200
    assert latest.json()["id"] == second["id"] != first["id"]
    assert latest.json()["checks"] == second["checks"]


# --- the same picture again --------------------------------------------------------------------


def test_the_same_rejected_picture_again_is_flagged(app: Flask, base: str) -> None:
    student = enrolled_student(app, base, "o-photo-dup")
    picture = no_face_480x640()
    first = student.upload(picture).json()
    assert not any(c["name"] == "duplicate_of_rejected" for c in first["checks"])
    # Re-saved at another quality: other bytes, the same picture.
    from io import BytesIO

    from PIL import Image

    again = BytesIO()
    Image.open(BytesIO(picture)).save(again, "JPEG", quality=80)
    assert again.getvalue() != picture
    second = student.upload(again.getvalue()).json()
    duplicate = next(c for c in second["checks"] if c["name"] == "duplicate_of_rejected")
    assert duplicate["ok"] is False and "没有通过自动检查（人脸）" in duplicate["message"]
    assert second["passed"] is False

    # Another student's rejected picture does not count against this one.
    other = enrolled_student(app, base, "o-photo-dup-other")
    third = other.upload(picture).json()
    assert not any(c["name"] == "duplicate_of_rejected" for c in third["checks"])


# --- signed links ------------------------------------------------------------------------------


def test_signed_links_belong_to_their_owner_and_expire(app: Flask, base: str) -> None:
    owner = enrolled_student(app, base, "o-photo-owner")
    body = owner.upload(no_face_480x640()).json()
    url = body["normalized"]["url"]
    assert owner.get(url).status_code == 200

    # Another signed-in student holding the same link: refused.
    intruder = enrolled_student(app, base, "o-photo-intruder")
    assert intruder.get(url).status_code == 403
    # Nobody signed in: refused.
    import requests

    assert requests.get(f"{base}{url}", timeout=10).status_code == 403

    secret = app.config["SECRET_KEY"]
    photo_id, user_id = body["id"], owner.user_id or 0
    # Made 11 minutes ago: expired (the links live MEDIA_URL_TTL_SECONDS = 10 minutes).
    old = photos.file_token(secret, photo_id, "normalized", user_id, time.time() - 660)
    assert owner.get(f"/media/photos/{old}").status_code == 403
    fresh = photos.file_token(secret, photo_id, "normalized", user_id, time.time() - 60)
    assert owner.get(f"/media/photos/{fresh}").status_code == 200
    # Forged: signed with another key, tampered with, or garbage.
    forged = photos.file_token(
        "another-secret-key-0123456789abcdef", photo_id, "normalized", user_id, time.time()
    )
    assert owner.get(f"/media/photos/{forged}").status_code == 404
    assert owner.get(f"/media/photos/{fresh[:-2]}xx").status_code == 404
    assert owner.get("/media/photos/not-a-token").status_code == 404
    # A link made out for the intruder to the owner's photo (as if the key leaked) still finds nothing.
    crossed = photos.file_token(secret, photo_id, "normalized", intruder.user_id or 0, time.time())
    assert intruder.get(f"/media/photos/{crossed}").status_code == 404
    # The token carries neither the storage key nor anything personal.
    [row] = [r for r in _photo_rows(app) if r.id == photo_id]
    assert row.normalized_key not in url and row.original_sha256 not in body["original_url"]


def test_file_tokens_round_trip() -> None:
    secret = "k" * 40
    token = photos.file_token(secret, 7, "original", 3, 1_000_000)
    link = photos.read_file_token(secret, token, 1_000_100, 600)
    assert link == photos.FileLink(photo_id=7, kind="original", user_id=3)
    with pytest.raises(photos.PhotoLinkExpiredError):
        photos.read_file_token(secret, token, 1_000_601, 600)
    with pytest.raises(photos.PhotoNotFoundError):
        photos.read_file_token("x" * 40, token, 1_000_100, 600)


# --- the page ----------------------------------------------------------------------------------


def test_photo_page_states(app: Flask, base: str) -> None:
    prepare(app, "o-page-unbound", bind=False, link=False)
    unbound = Student(base, "o-page-unbound").get("/h5/photo")
    assert 'data-state="need-identity"' in unbound.text and 'href="/h5/bind"' in unbound.text
    prepare(app, "o-page-unlinked", link=False)
    unlinked = Student(base, "o-page-unlinked").get("/h5/photo")
    assert 'data-state="need-school"' in unlinked.text and 'href="/h5/school"' in unlinked.text
    ready = enrolled_student(app, base, "o-page-ready").get("/h5/photo")
    assert 'data-state="ready"' in ready.text
    assert "480×640 像素，JPG 格式，100–200 KB，浅蓝色背景" in ready.text
    assert 'accept="image/*"' in ready.text and "capture=" in ready.text
    assert "不得上传扫描件、翻拍的纸质照片或自拍照" in ready.text


def test_upload_commits_one_row_per_call(app: Flask, base: str) -> None:
    student = enrolled_student(app, base, "o-photo-count")
    for _ in range(2):
        assert student.upload(no_face_480x640()).status_code == 201
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Photo)) == 2
        # Uploading through the page queues nothing for the worker.
        assert db.session.scalar(select(func.count()).select_from(OutboxItem)) == 0


def test_openapi_documents_the_upload(client: Any) -> None:
    document = client.get("/api/v1/openapi.json").json
    upload = document["paths"]["/api/v1/me/photos"]["post"]
    assert "multipart/form-data" in upload["requestBody"]["content"]
    assert {"201", "413", "422"} <= set(upload["responses"])
    assert "/api/v1/me/photos/latest" in document["paths"]
