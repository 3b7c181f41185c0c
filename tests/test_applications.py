"""A batch's form and documents end to end: GET/PUT /api/v1/me/form, the documents endpoints and
their signed links, personal answers encrypted in the database, submission refused until complete,
the checklist's form/documents steps, and `flask batches import`."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from PIL import Image
from pypdf import PdfWriter
from pypdf.generic import DictionaryObject, NameObject, TextStringObject
from sqlalchemy import func, select

from app.extensions import db
from app.integrations import pii_keyring
from app.services import applications, batch_forms, steps, submissions
from models import Batch, Document, Enrollment, Flow, SubmissionStatus
from tests.factories import NOW, make_flow_batch, make_linked_student, sign_in_student

FORM = "/api/v1/me/form"
DOCS = "/api/v1/me/documents"

DEFINITION: dict[str, Any] = {
    "school": "10488",
    "batch": "placeholder",
    "sections": [
        {
            "title": "报名信息",
            "fields": [
                {
                    "key": "category",
                    "label": "考生类别",
                    "kind": "radio",
                    "options": ["自考", "成考"],
                    "required": True,
                },
                {
                    "key": "exam_no",
                    "label": "考籍号",
                    "kind": "pattern",
                    "pattern": "[0-9]{12}",
                    "hint": "考籍号为 12 位数字",
                    "required": True,
                    "when": {"field": "category", "equals": "自考"},
                },
                {"key": "mobile", "label": "手机号码", "kind": "phone", "required": True, "personal": True},
                {
                    "key": "family",
                    "label": "家庭关系",
                    "kind": "group",
                    "personal": True,
                    "min_rows": 1,
                    "fields": [
                        {"key": "name", "label": "姓名", "required": True},
                        {"key": "phone", "label": "联系电话", "kind": "phone"},
                    ],
                },
            ],
        }
    ],
    "documents": [
        {"key": "id_card_front", "label": "身份证正面", "kind": "id_card_front", "formats": ["jpg", "png"]},
        {
            "key": "thesis",
            "label": "毕业论文",
            "formats": ["pdf"],
            "when": {"field": "category", "equals": "成考"},
        },
    ],
}
GOOD = {"category": "成考", "mobile": "13800138000", "family": [{"name": "李四", "phone": "13900139000"}]}


def _jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (800, 500), (90, 120, 200)).save(out, "JPEG", quality=90)
    return out.getvalue()


def _pdf(script: bool = False) -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(595, 842)
    if script:
        action = DictionaryObject(
            {NameObject("/S"): NameObject("/JavaScript"), NameObject("/JS"): TextStringObject("app.alert(1)")}
        )
        writer._root_object[NameObject("/OpenAction")] = writer._add_object(action)
    buf = io.BytesIO()
    writer.write(buf)
    return buf.getvalue()


def _attach(batch_id: int) -> None:
    batch = db.session.get(Batch, batch_id)
    assert batch is not None
    definition = batch_forms.from_data({**DEFINITION, "batch": batch.name})
    applications.attach(db.session, batch, definition, NOW)
    db.session.commit()


@pytest.fixture
def world(app: Flask, client: FlaskClient) -> dict[str, Any]:
    with app.app_context():
        batch_id = make_flow_batch(Flow.FREE)
        _attach(batch_id)
        user_id, photo_id = make_linked_student(batch_id, "o-forms")
        db.session.remove()
    token = sign_in_student(app, client, user_id)
    return {"batch_id": batch_id, "user_id": user_id, "photo_id": photo_id, "headers": {"X-CSRFToken": token}}


def _put(client: FlaskClient, world: dict[str, Any], answers: dict[str, Any]) -> Any:
    return client.put(FORM, json={"answers": answers}, headers=world["headers"])


def _upload(client: FlaskClient, world: dict[str, Any], slot: str, data: bytes, name: str) -> Any:
    return client.post(
        f"{DOCS}/{slot}",
        data={"file": (io.BytesIO(data), name)},
        headers=world["headers"],
        content_type="multipart/form-data",
    )


def _enrollment(app: Flask, user_id: int) -> Enrollment:
    with app.app_context():
        enrollment = db.session.scalar(select(Enrollment).where(Enrollment.user_id == user_id))
        assert enrollment is not None
        db.session.expunge(enrollment)
        return enrollment


def test_the_form_and_its_errors_with_dotted_paths(
    app: Flask, client: FlaskClient, world: dict[str, Any]
) -> None:
    body = client.get(FORM).get_json()
    assert body["definition"]["sections"][0]["fields"][0]["key"] == "category"
    assert body["answers"] == {} and body["complete"] is False
    assert {m["field"] for m in body["missing"]} == {"category", "mobile", "family"}

    bad = _put(
        client,
        world,
        {"category": "自考", "exam_no": "123", "mobile": "110", "family": [{"name": "李四", "phone": "x"}]},
    )
    assert bad.status_code == 422
    errors = {e["field"]: e["message"] for e in bad.get_json()["errors"]}
    assert errors == {
        "exam_no": "「考籍号」格式不对：考籍号为 12 位数字",
        "mobile": "「手机号码」应为 11 位手机号码。",
        "family.1.phone": "第 1 行：「联系电话」应为 11 位手机号码。",
    }
    assert _enrollment(app, world["user_id"]).form_answers is None  # nothing saved

    draft = _put(client, world, {"category": "自考", "mobile": "13800138000"})
    assert draft.status_code == 200
    assert {m["field"] for m in draft.get_json()["missing"]} == {"exam_no", "family"}
    assert _enrollment(app, world["user_id"]).form_completed_at is None

    done = _put(client, world, {**GOOD, "exam_no": "hidden when 成考"})
    assert done.status_code == 200 and done.get_json()["complete"] is True
    assert done.get_json()["answers"] == GOOD
    assert client.get(FORM).get_json()["answers"] == GOOD
    assert _enrollment(app, world["user_id"]).form_completed_at is not None


def test_personal_answers_are_encrypted_in_the_database(
    app: Flask, client: FlaskClient, world: dict[str, Any]
) -> None:
    assert _put(client, world, GOOD).status_code == 200
    with app.app_context():
        raw = db.session.execute(
            select(Enrollment.__table__.c.form_answers).where(Enrollment.user_id == world["user_id"])
        ).scalar_one()
        text = str(raw)
        assert "13800138000" not in text and "李四" not in text and "13900139000" not in text
        assert raw["category"] == "成考"  # not personal: readable for `when`
        assert pii_keyring().decrypt(raw["mobile"]) == "13800138000"
        assert pii_keyring().decrypt(raw["family"][0]["name"]) == "李四"


def test_documents_upload_list_link_and_delete(
    app: Flask, client: FlaskClient, world: dict[str, Any]
) -> None:
    assert _put(client, world, GOOD).status_code == 200
    photo = _upload(client, world, "id_card_front", _jpeg(), "张三身份证.jpg")
    assert photo.status_code == 201, photo.get_json()
    assert photo.get_json()["kind"] == "jpg"
    url = photo.get_json()["url"]
    assert url.startswith("/media/documents/") and "张三" not in url
    served = client.get(url)
    assert served.status_code == 200 and served.mimetype == "image/jpeg"

    pdf = _upload(client, world, "thesis", _pdf(), "论文.pdf")
    assert pdf.status_code == 201, pdf.get_json()
    listing = client.get(DOCS).get_json()
    assert listing["complete"] is True
    assert [len(s["files"]) for s in listing["slots"]] == [1, 1]
    assert _enrollment(app, world["user_id"]).documents_completed_at is not None

    deleted = client.delete(f"{DOCS}/{pdf.get_json()['id']}", headers=world["headers"])
    assert deleted.status_code == 204
    assert client.get(DOCS).get_json()["missing"] == [{"field": "thesis", "message": "请上传「毕业论文」。"}]
    assert _enrollment(app, world["user_id"]).documents_completed_at is None
    assert client.delete(f"{DOCS}/{pdf.get_json()['id']}", headers=world["headers"]).status_code == 404


def test_a_hostile_file_is_refused_and_nothing_is_stored(
    app: Flask, client: FlaskClient, world: dict[str, Any]
) -> None:
    assert _put(client, world, GOOD).status_code == 200
    root: Path = app.config["MEDIA_ROOT"]
    before = sorted(root.rglob("*")) if root.exists() else []
    refused = _upload(client, world, "thesis", _pdf(script=True), "论文.pdf")
    assert refused.status_code == 422
    [error] = refused.get_json()["errors"]
    assert error["field"] == "file" and error["message"]
    exe = _upload(client, world, "id_card_front", b"MZ\x90\x00" + b"\x00" * 200, "id.jpg")
    assert exe.status_code == 422
    assert _upload(client, world, "nope", _jpeg(), "a.jpg").status_code == 422
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Document)) == 0
    assert (sorted(root.rglob("*")) if root.exists() else []) == before


def test_the_endpoints_need_csrf_and_a_sign_in(
    app: Flask, client: FlaskClient, world: dict[str, Any]
) -> None:
    assert client.put(FORM, json={"answers": GOOD}).status_code == 400
    assert (
        client.post(f"{DOCS}/id_card_front", data={"file": (io.BytesIO(_jpeg()), "a.jpg")}).status_code == 400
    )
    other = app.test_client()
    assert other.get(FORM).status_code == 401


def test_submission_is_refused_listing_what_is_missing_then_accepted(
    app: Flask, client: FlaskClient, world: dict[str, Any]
) -> None:
    with app.app_context():
        with pytest.raises(submissions.ApplicationIncompleteError) as caught:
            submissions.create(db.session, world["user_id"], world["photo_id"], NOW)
        message = caught.value.message
        assert "请填写「考生类别」" in message and "「家庭关系」至少填写 1 行" in message
        assert "请上传「身份证正面」" in message
        db.session.remove()
    assert _put(client, world, GOOD).status_code == 200
    assert _upload(client, world, "id_card_front", _jpeg(), "a.jpg").status_code == 201
    with app.app_context():
        with pytest.raises(submissions.ApplicationIncompleteError) as caught:
            submissions.create(db.session, world["user_id"], world["photo_id"], NOW)
        assert caught.value.missing == ["请上传「毕业论文」。"]
        db.session.remove()
    # 自考 hides the thesis and asks for the 考籍号 instead.
    assert _put(client, world, {**GOOD, "category": "自考", "exam_no": "012345678901"}).status_code == 200
    with app.app_context():
        submission = submissions.create(db.session, world["user_id"], world["photo_id"], NOW)
        assert submission.status == SubmissionStatus.PENDING_REVIEW
        keys = [s.key for s in steps.of(db.session, world["user_id"], NOW)]
        assert keys.index("form") < keys.index("documents") < keys.index("photo")
        assert {s.key: s.status for s in steps.of(db.session, world["user_id"], NOW)}["documents"] == "done"


def test_steps_show_form_and_documents_only_where_defined(app: Flask, world: dict[str, Any]) -> None:
    with app.app_context():
        checklist = {s.key: s for s in steps.of(db.session, world["user_id"], NOW)}
        assert checklist["form"].status == "current" and checklist["form"].url == "/h5/form"
        assert checklist["documents"].status == "todo" and checklist["documents"].url == "/h5/documents"
        plain = make_flow_batch(Flow.FREE, code="10699", school_name="西北工业大学")
        user_id, _ = make_linked_student(plain, "o-plain", id_number="110105194912310029")
        keys = [s.key for s in steps.of(db.session, user_id, NOW)]
        assert "form" not in keys and "documents" not in keys


def test_a_batch_without_a_definition_submits_as_before(app: Flask) -> None:
    with app.app_context():
        batch_id = make_flow_batch(Flow.FREE)
        user_id, photo_id = make_linked_student(batch_id, "o-plain-submit")
        assert (
            submissions.create(db.session, user_id, photo_id, NOW).status == SubmissionStatus.PENDING_REVIEW
        )


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_the_import_command_checks_then_imports_all_or_nothing(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path
) -> None:
    with app.app_context():
        batch_id = make_flow_batch(Flow.FREE)
        name = db.session.get(Batch, batch_id).name  # type: ignore[union-attr]
        db.session.remove()
    example = (Path(__file__).resolve().parents[1] / "app/data/batch_forms/10496.yaml").read_text(
        encoding="utf-8"
    )
    good = _write(
        tmp_path,
        "good.yaml",
        example.replace('school: "10496"', 'school: "10488"').replace(
            'batch: "成人本科 2026 年下学士学位外语考试"', f'batch: "{name}"'
        ),
    )
    bad = _write(tmp_path, "bad.yaml", example.replace('pattern: "[0-9]{12}"', 'pattern: "[0-9{12"'))

    checked = runner.invoke(args=["batches", "import", "--check", str(good)])
    assert checked.exit_code == 0, checked.output
    with app.app_context():
        assert db.session.get(Batch, batch_id).form is None  # type: ignore[union-attr]
        db.session.remove()

    refused = runner.invoke(args=["batches", "import", str(good), str(bad)])
    assert refused.exit_code != 0
    assert "sections[0].fields[1]" in refused.output and "正则" in refused.output
    with app.app_context():
        assert db.session.get(Batch, batch_id).form is None  # type: ignore[union-attr]
        db.session.remove()

    imported = runner.invoke(args=["batches", "import", str(good)])
    assert imported.exit_code == 0, imported.output
    with app.app_context():
        batch = db.session.get(Batch, batch_id)
        assert batch is not None and batch.has_form and batch.has_documents
        assert batch.form is not None and batch.form["documents"][0]["kind"] == "id_card_front"


def test_another_student_can_neither_delete_nor_open_a_document(
    app: Flask, client: FlaskClient, world: dict[str, Any]
) -> None:
    uploaded = _upload(client, world, "id_card_front", _jpeg(), "a.jpg")
    assert uploaded.status_code == 201
    with app.app_context():
        other_id, _ = make_linked_student(world["batch_id"], "o-forms-other", id_number="110105194912310029")
        db.session.remove()
    other = app.test_client()
    headers = {"X-CSRFToken": sign_in_student(app, other, other_id)}
    assert other.delete(f"{DOCS}/{uploaded.get_json()['id']}", headers=headers).status_code == 404
    assert other.get(uploaded.get_json()["url"]).status_code == 403
    assert other.get(DOCS).get_json()["slots"][0]["files"] == []
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Document)) == 1


def test_the_demo_load_gives_each_demo_school_its_example_form_unless_told_not_to(
    app: Flask, runner: FlaskCliRunner
) -> None:
    assert runner.invoke(args=["demo", "load"]).exit_code == 0
    with app.app_context():
        batches = list(db.session.scalars(select(Batch)))
        assert len(batches) == 10
        assert all(b.has_form and b.has_documents and b.form is not None for b in batches)
        assert all(b.form["batch"] == b.name for b in batches if b.form is not None)
        db.session.remove()
    # The photo-only journey, also after a load with forms: no batch asks for more than the photo.
    assert runner.invoke(args=["demo", "load", "--without-forms"]).exit_code == 0
    with app.app_context():
        batches = list(db.session.scalars(select(Batch)))
        assert len(batches) == 10
        assert not any(b.has_form or b.has_documents or b.form is not None for b in batches)


def test_the_form_page_renders_the_definition_and_the_saved_answers(
    app: Flask, client: FlaskClient, world: dict[str, Any]
) -> None:
    assert _put(client, world, GOOD).status_code == 200
    page = client.get("/h5/form")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'data-state="complete"' in html
    assert 'data-when-field="category"' in html and "考籍号为 12 位数字" in html
    assert 'value="13900139000"' in html and 'data-error="family.1.phone"' in html
    with app.app_context():
        plain = make_flow_batch(Flow.FREE, code="10699", school_name="西北工业大学")
        user_id, _ = make_linked_student(plain, "o-plain-page", id_number="110105194912310029")
        db.session.remove()
    other = app.test_client()
    sign_in_student(app, other, user_id)
    assert 'data-state="none"' in other.get("/h5/form").get_data(as_text=True)


def test_the_documents_page_lists_the_visible_slots_and_their_files(
    app: Flask, client: FlaskClient, world: dict[str, Any]
) -> None:
    assert _put(client, world, {**GOOD, "category": "自考", "exam_no": "012345678901"}).status_code == 200
    assert _upload(client, world, "id_card_front", _jpeg(), "a.jpg").status_code == 201
    html = client.get("/h5/documents").get_data(as_text=True)
    assert 'data-slot="id_card_front"' in html and 'data-slot="thesis"' not in html  # 自考: no thesis
    assert "/media/documents/" in html and "data-delete=" in html


@pytest.mark.parametrize("document_id", ["-1", "0", "abc", "99999999999"])
def test_a_document_id_that_is_no_row_is_a_404(
    client: FlaskClient, world: dict[str, Any], document_id: str
) -> None:
    assert client.delete(f"{DOCS}/{document_id}", headers=world["headers"]).status_code == 404
