"""ID card readings put to use, through HTTP on synthetic cards (tests/idcards.py): the bind page's
POST /api/v1/me/idcard/read (fields, refusals in Chinese, the per-student limit), an id_card_front upload
filling the empty form answers its slot's `fills` names (never a typed one) and keeping its reading
encrypted with its warnings, an expired back, and what reviewers see on the decision page.

OCR takes ~0.6 s a side: each synthetic photo is read once for the whole module (idcards.readings_cached).
"""

from __future__ import annotations

import io
import os
import random
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flask import Flask
from flask.testing import FlaskClient
from idcards import (
    FONT_MISSING,
    FakeIdentity,
    card_photos,
    draw_back,
    fake_identity,
    font_available,
    photograph,
    readings_cached,
)
from PIL import Image
from sqlalchemy import select

from app.extensions import db
from app.integrations import pii_keyring, redis_client
from app.services import applications, batch_forms, idcard_fill, idcard_reading
from app.services import staff as staff_service
from media.idcard import Field, FrontReading
from models import Batch, Document, Enrollment, Flow, Identity, StaffRole, SubmissionStatus
from tests.factories import (
    NOW,
    STAFF_PASSWORD,
    add_submission,
    make_flow_batch,
    make_linked_student,
    sign_in_student,
)
from tests.staff_pages import sign_in

pytestmark = pytest.mark.skipif(not font_available(), reason=FONT_MISSING)

READ = "/api/v1/me/idcard/read"
SEED = 11
OTHER_SEED = 12

DEFINITION: dict[str, Any] = {
    "school": "10488",
    "batch": "placeholder",
    "sections": [
        {
            "title": "基本信息",
            "fields": [
                {"key": "xm", "label": "姓名", "required": True, "personal": True},
                {
                    "key": "gender",
                    "label": "性别",
                    "kind": "radio",
                    "options": ["男", "女"],
                    "personal": True,
                },
                {"key": "nation", "label": "民族", "personal": True},
                {"key": "birth", "label": "出生日期", "kind": "date", "personal": True},
                {"key": "hukou", "label": "户籍地址", "personal": True},
                {"key": "valid_until", "label": "有效期至", "personal": True},
            ],
        }
    ],
    "documents": [
        {
            "key": "front",
            "label": "身份证正面",
            "kind": "id_card_front",
            "formats": ["jpg", "png"],
            "fills": {
                "name": "xm",
                "sex": "gender",
                "ethnicity": "nation",
                "birth_date": "birth",
                "address": "hukou",
            },
        },
        {
            "key": "back",
            "label": "身份证反面",
            "kind": "id_card_back",
            "formats": ["jpg", "png"],
            "fills": {"valid_until": "valid_until"},
        },
    ],
}


@pytest.fixture(scope="module", autouse=True)
def _cached() -> Iterator[None]:
    with readings_cached():
        yield


@pytest.fixture(scope="module")
def card() -> tuple[FakeIdentity, bytes, bytes]:
    return card_photos(SEED)


def _student(
    app: Flask, client: FlaskClient, ident: FakeIdentity | None = None, form: bool = True
) -> dict[str, Any]:
    """A signed-in student linked to a free batch (with DEFINITION), bound as `ident` or as the factories'
    default identity."""
    with app.app_context():
        batch_id = make_flow_batch(Flow.FREE)
        if form:
            batch = db.session.get(Batch, batch_id)
            assert batch is not None
            definition = batch_forms.from_data({**DEFINITION, "batch": batch.name})
            applications.attach(db.session, batch, definition, NOW)
            db.session.commit()
        kwargs = {"id_number": ident.number, "name": ident.name} if ident else {}
        user_id, photo_id = make_linked_student(batch_id, "o-idcard", **kwargs)
        db.session.remove()
    token = sign_in_student(app, client, user_id)
    return {"user_id": user_id, "batch_id": batch_id, "photo_id": photo_id, "headers": {"X-CSRFToken": token}}


def _post(client: FlaskClient, who: dict[str, Any], path: str, data: bytes, name: str = "card.jpg") -> Any:
    return client.post(
        path,
        data={"file": (io.BytesIO(data), name)},
        headers=who["headers"],
        content_type="multipart/form-data",
    )


# --- the bind page's reading ---------------------------------------------------------------------------


def test_the_read_endpoint_returns_the_cards_fields(
    app: Flask, client: FlaskClient, card: tuple[FakeIdentity, bytes, bytes]
) -> None:
    ident, front, _ = card
    who = _student(app, client, form=False)
    response = _post(client, who, READ, front)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["name"] == ident.name
    assert body["id_number"] == ident.number
    assert body["sex"] == ident.sex
    assert body["ethnicity"] == ident.ethnicity
    assert body["birth_date"] == ident.birth.isoformat()
    assert body["address"] == ident.address
    assert body["warnings"] == []
    with app.app_context():  # nothing kept
        assert db.session.scalar(select(Document.id)) is None


def test_a_bad_file_and_a_photo_that_is_no_card_are_refused_in_chinese(
    app: Flask, client: FlaskClient
) -> None:
    who = _student(app, client, form=False)
    response = _post(client, who, READ, b"%PDF-1.4 not an image at all", "card.jpg")
    assert response.status_code == 422
    [error] = response.get_json()["errors"]
    assert error["field"] == "file" and "JPG" in error["message"], error
    missing = client.post(READ, data={}, headers=who["headers"], content_type="multipart/form-data")
    assert missing.status_code == 422 and "请选择" in missing.get_json()["errors"][0]["message"]

    noise = np.random.default_rng(3).integers(0, 255, (480, 640, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(noise).save(buf, "JPEG", quality=80)
    response = _post(client, who, READ, buf.getvalue())
    assert response.status_code == 422
    assert "没有识别出身份证信息" in response.get_json()["errors"][0]["message"]


def test_the_read_needs_a_sign_in_and_the_csrf_token(app: Flask, client: FlaskClient) -> None:
    assert client.post(READ, data={}, content_type="multipart/form-data").status_code in (400, 401)
    who = _student(app, client, form=False)
    response = client.post(
        READ, data={"file": (io.BytesIO(b"x"), "a.jpg")}, content_type="multipart/form-data"
    )
    assert response.status_code == 400
    assert who  # signed in, but no token


def test_readings_are_limited_per_student_with_a_chinese_429(app: Flask, client: FlaskClient) -> None:
    who = _student(app, client, form=False)
    with app.app_context():
        # The window's readings used up already (each costs OCR time: not spent here).
        redis_client().set(idcard_fill._limit_key(who["user_id"]), idcard_fill.READ_LIMIT, ex=300)
    response = _post(client, who, READ, b"\xff\xd8\xff not read: refused before any decoding")
    assert response.status_code == 429
    assert "识别太频繁" in response.get_json()["error"]["message"]
    assert 0 < int(response.headers["Retry-After"]) <= 300


def test_a_number_that_fails_its_check_digit_is_not_given() -> None:
    reading = FrontReading(
        name=Field("王小明", 0.99), sex=Field("男", 0.99), number=Field("110105199001011234", 0.99)
    )
    result = idcard_reading.judge_front(reading, today=date(2026, 12, 7))
    values, warnings = idcard_fill._front_values(result)
    assert "id_number" not in values and values["name"] == "王小明"
    codes = [w.code for w in warnings]
    assert "check_digit" in codes and "number_unread" in codes
    assert idcard_fill.NUMBER_UNREAD in [w.message for w in warnings]


# --- document slots ------------------------------------------------------------------------------------


def _answers(app: Flask, user_id: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """(stored, decrypted) answers of the student's enrollment."""
    with app.app_context():
        enrollment = db.session.scalar(select(Enrollment).where(Enrollment.user_id == user_id))
        assert enrollment is not None
        stored = dict(enrollment.form_answers or {})
        definition = applications.definition_of(enrollment.batch)
        assert definition is not None
        return stored, batch_forms.transform(definition, stored, pii_keyring().decrypt)


def test_a_front_upload_fills_the_empty_answers_and_keeps_the_typed_ones(
    app: Flask, client: FlaskClient, card: tuple[FakeIdentity, bytes, bytes]
) -> None:
    ident, front, _ = card
    who = _student(app, client)  # bound as the factories' 张三丰, not the card's person
    saved = client.put("/api/v1/me/form", json={"answers": {"xm": "自己填的名字"}}, headers=who["headers"])
    assert saved.status_code == 200

    response = _post(client, who, "/api/v1/me/documents/front", front)
    assert response.status_code == 201, response.get_json()
    reading = response.get_json()["reading"]
    assert [f["field"] for f in reading["filled"]] == ["gender", "nation", "birth", "hukou"]
    assert [f["label"] for f in reading["filled"]] == ["性别", "民族", "出生日期", "户籍地址"]
    codes = {(w["code"], w["field"]) for w in reading["warnings"]}
    assert {("bound_mismatch", "id_number"), ("bound_mismatch", "name")} <= codes

    stored, answers = _answers(app, who["user_id"])
    assert answers["xm"] == "自己填的名字"  # typed: not overwritten
    assert answers["gender"] == ident.sex
    assert answers["nation"] == ident.ethnicity
    assert answers["birth"] == ident.birth.isoformat()
    assert answers["hukou"] == ident.address
    assert ident.address not in str(stored)  # encrypted at rest, like typed personal answers

    with app.app_context():
        document = db.session.scalar(select(Document))
        assert document is not None and document.reading is not None
        assert ident.number not in str(document.reading) and ident.name not in str(document.reading)
        assert pii_keyring().decrypt(document.reading["values"]["id_number"]) == ident.number
        assert document.reading["filled"] == ["gender", "nation", "birth", "hukou"]

    page = client.get("/h5/documents").get_data(as_text=True)
    assert "已根据身份证自动填写" in page and "「户籍地址」" in page
    assert "与实名信息不一致" in page
    form_page = client.get("/h5/form").get_data(as_text=True)
    assert 'data-autofilled="hukou"' in form_page and 'data-autofilled="xm"' not in form_page


def test_an_expired_back_is_recorded_and_its_validity_filled(app: Flask, client: FlaskClient) -> None:
    rng = random.Random(7)
    ident = replace(fake_identity(rng), valid_from=date(2005, 3, 12), valid_to=date(2015, 3, 12))
    back = photograph(draw_back(ident, rng), rng)
    who = _student(app, client, ident)
    response = _post(client, who, "/api/v1/me/documents/back", back)
    assert response.status_code == 201, response.get_json()
    reading = response.get_json()["reading"]
    assert [w["code"] for w in reading["warnings"]] == ["expired"]
    assert "证件已过期" in reading["warnings"][0]["message"]
    assert [f["field"] for f in reading["filled"]] == ["valid_until"]
    assert _answers(app, who["user_id"])[1]["valid_until"] == "2015-03-12"
    listed = client.get("/api/v1/me/documents").get_json()
    back_slot = next(s for s in listed["slots"] if s["key"] == "back")
    assert back_slot["files"][0]["reading"]["warnings"][0]["code"] == "expired"


def test_a_slot_upload_over_the_limit_is_kept_unread(app: Flask, client: FlaskClient) -> None:
    who = _student(app, client)
    with app.app_context():
        redis_client().set(idcard_fill._limit_key(who["user_id"]), idcard_fill.READ_LIMIT, ex=300)
    response = _post(client, who, "/api/v1/me/documents/front", _plain_jpeg())
    assert response.status_code == 201
    [warning] = response.get_json()["reading"]["warnings"]
    assert warning["code"] == "rate_limited" and "文件已保存" in warning["message"]


def _plain_jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (800, 500), (90, 120, 200)).save(buf, "JPEG")
    return buf.getvalue()


def test_a_misread_number_is_kept_for_the_reviewer_but_fills_nothing(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from media import idcard

    misread = FrontReading(name=Field("王小明", 0.99), number=Field("110105199001011234", 0.99))
    monkeypatch.setattr(idcard, "read_front", lambda data: misread)
    data = {**DEFINITION}
    data["documents"] = [{**DEFINITION["documents"][0], "fills": {"name": "xm", "id_number": "hukou"}}]
    who = _student(app, client)
    with app.app_context():
        batch = db.session.get(Batch, who["batch_id"])
        assert batch is not None
        applications.attach(db.session, batch, batch_forms.from_data({**data, "batch": batch.name}), NOW)
        db.session.commit()
    response = _post(client, who, "/api/v1/me/documents/front", _plain_jpeg())
    assert response.status_code == 201
    reading = response.get_json()["reading"]
    assert [f["field"] for f in reading["filled"]] == ["xm"]
    assert {"check_digit", "number_unread"} <= {w["code"] for w in reading["warnings"]}
    with app.app_context():
        stored = db.session.scalars(select(Document.reading)).one()
        assert stored is not None
        assert pii_keyring().decrypt(stored["values"]["id_number"]) == "110105199001011234"


def test_a_failing_ocr_never_loses_the_upload(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from media import idcard

    def broken(data: bytes) -> FrontReading:
        raise RuntimeError("onnxruntime went away")

    monkeypatch.setattr(idcard, "read_front", broken)
    who = _student(app, client)
    response = _post(client, who, "/api/v1/me/documents/front", _plain_jpeg())
    assert response.status_code == 201
    [warning] = response.get_json()["reading"]["warnings"]
    assert warning["code"] == "not_read" and "文件已保存" in warning["message"]


# --- reviewers -----------------------------------------------------------------------------------------


def test_reviewers_see_the_reading_beside_the_identity_with_mismatches_in_red(
    app: Flask, client: FlaskClient, card: tuple[FakeIdentity, bytes, bytes]
) -> None:
    ident, front, _ = card
    other, _, _ = card_photos(OTHER_SEED)
    # Bound with the card's number but another person's name: the name is the mismatch.
    who = _student(app, client, replace(ident, name=other.name))
    assert _post(client, who, "/api/v1/me/documents/front", front).status_code == 201
    with app.app_context():
        identity = db.session.scalar(select(Identity).where(Identity.user_id == who["user_id"]))
        assert identity is not None
        sub = add_submission(
            who["user_id"], who["batch_id"], who["photo_id"], identity.id, SubmissionStatus.PENDING_REVIEW
        )
        staff_service.create(db.session, "rev", STAFF_PASSWORD, StaffRole.REVIEWER, ["10488"])
        admin = staff_service.create(db.session, "admin", STAFF_PASSWORD, StaffRole.ADMIN, [])
        db.session.commit()
        sub_id = sub.id
        [shown] = idcard_fill.for_review(db.session, pii_keyring(), admin, sub)
        by_key = {v.key: v for v in shown.values}
        assert by_key["name"].differs and by_key["name"].typed == other.name
        assert not by_key["id_number"].differs and by_key["id_number"].value == ident.number  # admin: whole
        assert shown.flagged and [w.code for w in shown.warnings] == ["bound_mismatch"]

    staff_client = app.test_client()
    sign_in(staff_client, "rev")
    page = staff_client.get(f"/review/submissions/{sub_id}").get_data(as_text=True)
    assert 'id="idcard-reading"' in page and "识别结果" in page
    assert 'data-key="name" data-differs="1" class="rv-bad"' in page
    assert ident.number not in page  # a reviewer sees the last 4 characters only
    assert "*" * 14 + ident.number[-4:] in page


def test_pii_rotate_re_encrypts_the_stored_readings(app: Flask, client: FlaskClient) -> None:
    who = _student(app, client)
    with app.app_context():
        keyring = pii_keyring()
        token = keyring.encrypt("王小明")
        db.session.add(
            Document(
                user_id=who["user_id"],
                batch_id=who["batch_id"],
                slot="front",
                storage_key="k",
                kind="jpg",
                mime_type="image/jpeg",
                bytes=1,
                reading={"side": "id_card_front", "values": {"name": token}, "warnings": [], "filled": []},
            )
        )
        db.session.commit()
    result = app.test_cli_runner().invoke(args=["pii", "rotate"])
    assert result.exit_code == 0 and "re-encrypted 1 ID card readings" in result.output
    with app.app_context():
        reading = db.session.scalars(select(Document.reading)).one()
        assert reading is not None and reading["values"]["name"] != token
        assert pii_keyring().decrypt(reading["values"]["name"]) == "王小明"


def test_the_app_starts_without_loading_the_ocr() -> None:
    # Every process serves /wechat: the OCR (OpenCV, onnxruntime, ~170 MB once built) loads on the first
    # reading only.
    code = (
        "import sys; from app import create_app; create_app(APP_ENV='testing', DATABASE_URL='sqlite://', "
        "SECRET_KEY='x' * 40); print(sorted(m for m in ('media.idcard', 'onnxruntime', "
        "'rapidocr_onnxruntime', 'app.services.idcard_reading') if m in sys.modules))"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True, cwd=root
    )
    assert out.stdout.strip() == "[]", out.stderr
