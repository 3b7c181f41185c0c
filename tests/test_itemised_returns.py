"""Reviewers see the batch form and the files, a 驳回 names the items to fix, and only those reopen:
the decision page's 报名信息 and 材料 (masking, scoped file routes, the PDF preview), the itemised
驳回 through the decision form, the student's form and documents API afterwards (flags, 409s), the
data frozen under review, and the photo a 驳回 did not name going in again."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app.extensions import db
from app.integrations import pii_keyring
from app.services import applications, batch_forms, reviews, steps, submissions
from app.services.pushes import ResultPush
from app.services.submissions import PhotoRejectedError
from models import Document, OutboxItem, Staff, Submission, SubmissionStatus
from tests.factories import T0, make_desk, make_waiting, sign_in_student
from tests.form_students import ANSWERS, Scene, attach, jpeg, now, pdf, waiting_student
from tests.staff_pages import csrf_of, sign_in

FORMS = Path(__file__).resolve().parents[1] / "app" / "data" / "batch_forms"
FORM = "/api/v1/me/form"
DOCS = "/api/v1/me/documents"
PUSH = ResultPush(base_url="http://h5.test", template_id="")


@pytest.fixture
def scene(app: Flask) -> Scene:
    desk = make_desk(app)
    with app.app_context():
        attach(desk.batch_a)
        found = waiting_student(desk.batch_a)
        db.session.remove()
    return found


def claim(client: FlaskClient, submission_id: int) -> str:
    token = csrf_of(client, f"/review/submissions/{submission_id}")
    response = client.post(f"/review/submissions/{submission_id}/claim", data={"csrf_token": token})
    assert response.status_code == 303
    return csrf_of(client, f"/review/submissions/{submission_id}")


def return_with_items(client: FlaskClient, submission_id: int, **extra: Any) -> Any:
    token = claim(client, submission_id)
    data: dict[str, Any] = {
        "csrf_token": token,
        "decision": "return",
        "item": ["field:mobile", "document:id_card_front"],
        "item_reason:field:mobile": "号码不对",
        "item_reason:document:id_card_front": "照片模糊",
        **extra,
    }
    return client.post(f"/review/submissions/{submission_id}/decide", data=data)


# --- the decision page ---------------------------------------------------------------------------


def test_the_decision_page_shows_answers_and_files_masked_for_reviewers(
    app: Flask, client: FlaskClient, scene: Scene
) -> None:
    sign_in(client, "rev-a")
    html = client.get(f"/review/submissions/{scene.submission_id}").get_data(as_text=True)
    assert 'id="application"' in html and "报名信息" in html
    assert re.search(r'data-answer="category"[^>]*>\s*成考', html)
    # Personal answers are masked for a reviewer exactly as the ID number is.
    assert "13800138000" not in html and "*******8000" in html
    assert 'data-answer="mobile" data-masked="true"' in html
    assert "张大山" not in html and 'data-group="family"' in html
    # The hidden 考籍号 (成考) is not shown.
    assert 'data-answer="exam_no"' not in html
    # Files through the staff routes: the image inline, the PDF as a preview with its page count.
    image_url = f"/review/submissions/{scene.submission_id}/documents/{scene.image_id}"
    pdf_url = f"/review/submissions/{scene.submission_id}/documents/{scene.pdf_id}"
    assert f'<img src="{image_url}"' in html
    assert f'src="{pdf_url}/preview"' in html and "共 2 页" in html
    image = client.get(image_url)
    assert image.status_code == 200 and image.mimetype == "image/jpeg"
    assert image.headers["Content-Disposition"] == "inline" and "no-store" in image.headers["Cache-Control"]
    download = client.get(pdf_url)
    assert download.mimetype == "application/pdf" and download.headers["Content-Disposition"] == "attachment"
    preview = client.get(f"{pdf_url}/preview")
    assert preview.status_code == 200 and preview.mimetype == "image/jpeg"
    assert preview.data[:2] == b"\xff\xd8"
    # An image has no PDF preview.
    assert client.get(f"{image_url}/preview").status_code == 404
    # A Word file: a download link with its type and size.
    docx_url = f"/review/submissions/{scene.submission_id}/documents/{scene.docx_id}"
    assert re.search(
        rf'href="{docx_url}" class="rv-doc-download">下载 Word 文档（.docx）</a> <span[^>]*>\d+ KB', html
    )
    word = client.get(docx_url)
    assert word.headers["Content-Disposition"] == "attachment" and word.data[:2] == b"PK"

    admin = app.test_client()
    sign_in(admin, "admin")
    full = admin.get(f"/review/submissions/{scene.submission_id}").get_data(as_text=True)
    assert "13800138000" in full and "张大山" in full and 'data-masked="true"' not in full


def test_files_are_served_to_staff_of_the_school_only(app: Flask, client: FlaskClient, scene: Scene) -> None:
    url = f"/review/submissions/{scene.submission_id}/documents/{scene.image_id}"
    assert client.get(url).status_code in (302, 303)  # not signed in: the login page
    other = app.test_client()
    sign_in(other, "rev-b")
    assert other.get(url).status_code == 404
    with app.app_context():
        stranger = waiting_student(scene.batch_id, "o-stranger", "110105194912310021")
    sign_in(client, "rev-a")
    # Another student's document under this attempt's id is not found.
    assert (
        client.get(f"/review/submissions/{scene.submission_id}/documents/{stranger.image_id}").status_code
        == 404
    )
    assert client.get(url).status_code == 200


# --- the itemised 驳回 ---------------------------------------------------------------------------


def test_an_itemised_return_stores_the_items_derives_the_reason_and_names_them_in_the_push(
    app: Flask, client: FlaskClient, scene: Scene
) -> None:
    sign_in(client, "rev-a")
    response = return_with_items(client, scene.submission_id, reason_text="请尽快修改")
    assert response.status_code == 303
    with app.app_context():
        sub = db.session.get(Submission, scene.submission_id)
        assert sub is not None and sub.status == SubmissionStatus.RETURNED
        assert sub.status_reason == "需修改：手机号码（号码不对）；身份证正面（照片模糊）。请尽快修改"
        assert sub.rejected_items == [
            {"kind": "field", "key": "mobile", "label": "手机号码", "reason": "号码不对"},
            {"kind": "document", "key": "id_card_front", "label": "身份证正面", "reason": "照片模糊"},
        ]
        text = db.session.scalars(select(OutboxItem.payload)).all()
        assert any("需修改：手机号码（号码不对）" in str(p) for p in text)
    page = client.get(f"/review/submissions/{scene.submission_id}").get_data(as_text=True)
    assert 'data-returned="field:mobile"' in page and "身份证正面：照片模糊" in page


@pytest.mark.parametrize(
    ("items", "message"),
    [
        ({"item": ["field:mobile"]}, "请填写「手机号码」的退回原因"),
        ({"item": ["field:nope"], "item_reason:field:nope": "x"}, "不在本批次的报名信息或材料中"),
        # 考籍号 is hidden for a 成考 student: it cannot be sent back.
        ({"item": ["field:exam_no"], "item_reason:field:exam_no": "x"}, "不在本批次的报名信息或材料中"),
        ({"item": ["field:mobile"], "item_reason:field:mobile": "很" * 41}, "最多 40 个字"),
    ],
)
def test_a_wrong_item_refuses_the_return(
    app: Flask, client: FlaskClient, scene: Scene, items: dict[str, Any], message: str
) -> None:
    sign_in(client, "rev-a")
    token = claim(client, scene.submission_id)
    response = client.post(
        f"/review/submissions/{scene.submission_id}/decide",
        data={"csrf_token": token, "decision": "return", **items},
    )
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    with app.app_context():
        sub = db.session.get(Submission, scene.submission_id)
        assert sub is not None and sub.status == SubmissionStatus.IN_REVIEW


def test_items_go_with_a_return_only(app: Flask, scene: Scene) -> None:
    with app.app_context():
        admin = db.session.scalar(select(Staff).where(Staff.username == "admin"))
        assert admin is not None
        with pytest.raises(reviews.ReviewItemsError, match="只有驳回"):
            reviews.decide(
                db.session,
                admin,
                scene.submission_id,
                "refuse",
                "不符合",
                now(),
                push=PUSH,
                items=[{"kind": "photo", "key": "photo", "reason": "模糊"}],
            )


# --- the student afterwards ----------------------------------------------------------------------


def test_while_under_review_the_form_and_documents_are_frozen(
    app: Flask, client: FlaskClient, scene: Scene
) -> None:
    headers = {"X-CSRFToken": sign_in_student(app, client, scene.user_id)}
    form = client.get(FORM).get_json()
    assert form["notice"] == "报名信息正在审核中，暂时不能修改。"
    assert not any(item["editable"] for item in form["fields"].values())
    saved = client.put(FORM, json={"answers": {**ANSWERS, "mobile": "13900139000"}}, headers=headers)
    assert (
        saved.status_code == 409
        and saved.get_json()["error"]["message"] == "报名信息正在审核中，暂时不能修改。"
    )
    upload = client.post(f"{DOCS}/thesis", data={"file": (io.BytesIO(pdf()), "t.pdf")}, headers=headers)
    assert upload.status_code == 409
    assert client.delete(f"{DOCS}/{scene.pdf_id}", headers=headers).status_code == 409
    page = client.get("/h5/form").get_data(as_text=True)
    assert 'id="form-notice"' in page and 'id="form-save"' not in page and "disabled" in page


def test_after_an_itemised_return_only_the_items_change_and_the_photo_goes_in_again(
    app: Flask, client: FlaskClient, scene: Scene
) -> None:
    staff = app.test_client()
    sign_in(staff, "rev-a")
    assert return_with_items(staff, scene.submission_id).status_code == 303
    headers = {"X-CSRFToken": sign_in_student(app, client, scene.user_id)}

    form = client.get(FORM).get_json()
    assert form["fields"]["mobile"] == {"editable": True, "rejected": {"reason": "号码不对"}}
    assert form["fields"]["category"] == {"editable": False, "rejected": None}
    assert form["notice"].startswith("审核老师退回了部分项目")
    # A full-form save changing only the returned item passes; one changing another item is refused.
    changed = client.put(FORM, json={"answers": {**ANSWERS, "mobile": "13900139000"}}, headers=headers)
    assert changed.status_code == 200, changed.get_json()
    refused = client.put(
        FORM, json={"answers": {**ANSWERS, "mobile": "13900139000", "category": "自考"}}, headers=headers
    )
    assert refused.status_code == 409
    assert refused.get_json()["error"]["message"] == "「考生类别」这一项未被退回，不能修改。"
    dropped = client.put(
        FORM, json={"answers": {"category": "成考", "mobile": "13900139000"}}, headers=headers
    )
    assert dropped.status_code == 409 and "家庭关系" in dropped.get_json()["error"]["message"]

    docs = {s["key"]: s for s in client.get(DOCS).get_json()["slots"]}
    assert docs["id_card_front"]["editable"] and docs["id_card_front"]["rejected"] == {"reason": "照片模糊"}
    assert not docs["thesis"]["editable"] and docs["thesis"]["rejected"] is None
    assert client.delete(f"{DOCS}/{scene.pdf_id}", headers=headers).status_code == 409
    other = client.post(f"{DOCS}/thesis", data={"file": (io.BytesIO(pdf()), "t.pdf")}, headers=headers)
    assert other.status_code == 409 and "「毕业论文」这一项未被退回" in other.get_json()["error"]["message"]
    assert client.delete(f"{DOCS}/{scene.image_id}", headers=headers).status_code == 204
    again = client.post(
        f"{DOCS}/id_card_front", data={"file": (io.BytesIO(jpeg()), "b.jpg")}, headers=headers
    )
    assert again.status_code == 201

    pages = client.get("/h5/form").get_data(as_text=True)
    assert 'data-rejected-reason="mobile">需修改：号码不对' in pages
    assert re.search(r'data-field="category" data-editable="false"', pages)
    documents = client.get("/h5/documents").get_data(as_text=True)
    assert 'data-rejected-reason="id_card_front"' in documents
    assert 'data-slot="thesis" data-editable="false"' in documents
    assert 'id="kept-photo"' in client.get("/h5/photo").get_data(as_text=True)
    status = client.get("/h5/status").get_data(as_text=True)
    assert 'data-testid="returned-items"' in status and "手机号码：号码不对" in status

    with app.app_context():
        checklist = steps.of(db.session, scene.user_id, now())
        current = steps.current(checklist)
        assert current is not None and "需修改：手机号码（号码不对）" in current.hint
        assert next(s for s in checklist if s.key == "photo").status == "done"
        # The same photo goes in again: the 驳回 did not name it.
        again_sub = submissions.create(db.session, scene.user_id, scene.photo_id, now())
        assert again_sub.photo_id == scene.photo_id


@pytest.mark.parametrize("named_photo", [True, False])
def test_a_return_naming_the_photo_or_nothing_keeps_the_photo_out(
    app: Flask, client: FlaskClient, scene: Scene, named_photo: bool
) -> None:
    sign_in(client, "rev-a")
    token = claim(client, scene.submission_id)
    data: dict[str, Any] = {"csrf_token": token, "decision": "return"}
    if named_photo:
        data |= {"item": ["photo:photo"], "item_reason:photo:photo": "背景不对"}
    else:
        data |= {"reason_text": "背景不对"}
    assert client.post(f"/review/submissions/{scene.submission_id}/decide", data=data).status_code == 303
    with app.app_context():
        with pytest.raises(PhotoRejectedError):
            submissions.create(db.session, scene.user_id, scene.photo_id, now())
        allowed = applications.form(db.session, pii_keyring(), scene.user_id).reopened
        # Naming only the photo reopens nothing else; a plain 驳回 reopens everything.
        assert allowed.field_editable("mobile") is (not named_photo)
        docs = db.session.scalars(select(Document).where(Document.user_id == scene.user_id)).all()
        assert len(docs) == 3


def test_a_returned_choice_reopens_the_fields_it_shows(app: Flask, client: FlaskClient, scene: Scene) -> None:
    staff = app.test_client()
    sign_in(staff, "rev-a")
    token = claim(staff, scene.submission_id)
    data = {
        "csrf_token": token,
        "decision": "return",
        "item": ["field:category"],
        "item_reason:field:category": "应为自考",
    }
    assert staff.post(f"/review/submissions/{scene.submission_id}/decide", data=data).status_code == 303
    headers = {"X-CSRFToken": sign_in_student(app, client, scene.user_id)}
    # 考籍号 appears with 自考: it changes with the choice that shows it.
    fixed = {**ANSWERS, "category": "自考", "exam_no": "123456789012"}
    saved = client.put(FORM, json={"answers": fixed}, headers=headers)
    assert saved.status_code == 200, saved.get_json()
    assert saved.get_json()["fields"]["exam_no"]["editable"] is True
    assert saved.get_json()["fields"]["mobile"]["editable"] is False


def test_withdrawing_an_itemised_return_clears_its_items(
    app: Flask, client: FlaskClient, scene: Scene
) -> None:
    sign_in(client, "rev-a")
    assert return_with_items(client, scene.submission_id).status_code == 303
    with app.app_context():
        admin = db.session.scalar(select(Staff).where(Staff.username == "admin"))
        assert admin is not None
        reviews.reopen(db.session, admin, scene.submission_id, "看错了", now(), hours=72, push=PUSH)
        sub = db.session.get(Submission, scene.submission_id)
        assert sub is not None and sub.status == SubmissionStatus.PENDING_REVIEW
        assert sub.rejected_items is None and sub.status_reason is None


@pytest.mark.parametrize("code", ["10496", "10542", "10699", "11551", "xj-zikao"])
def test_every_demo_definition_renders_on_the_decision_page(
    app: Flask, client: FlaskClient, code: str
) -> None:
    desk = make_desk(app)
    submission_id = make_waiting(app, desk.batch_a, "o-demo", T0)
    with app.app_context():
        raw = yaml.safe_load((FORMS / f"{code}.yaml").read_text(encoding="utf-8"))
        attach(desk.batch_a, raw)
        definition = batch_forms.from_data(raw)
    sign_in(client, "admin")
    page = client.get(f"/review/submissions/{submission_id}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    # Nothing answered yet: every visible field says so, every visible slot lacks its file.
    assert all(section.title in html for section in definition.sections)
    assert "未填写" in html and "未上传" in html
