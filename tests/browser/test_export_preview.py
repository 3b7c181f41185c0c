"""The staff side of batch forms in headless Chromium (desktop): the export page's links download the
answers' CSV and the files' ZIP; the preview draws the student's form with `when` working and nothing
saved, and its document slots; a reviewer reaches the preview from the dashboard, another school's
reviewer is refused."""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path
from typing import Any

import yaml
from flask import Flask
from playwright.sync_api import Page, Request, expect
from sqlalchemy import select

from app.extensions import db
from app.integrations import photo_storage, pii_keyring
from app.services import applications, batch_forms
from models import Batch, Document, Enrollment, SubmissionStatus
from tests.browser.walks import SCREENSHOTS, staff_sign_in
from tests.factories import NOW, Desk, make_desk, make_student

EXAMPLE = Path(__file__).resolve().parents[2] / "app" / "data" / "batch_forms" / "10496.yaml"
NUMBER = "11010519491231002X"


def _desk_with_form(app: Flask) -> Desk:
    """The review desk; school A's batch carries 武汉轻工大学's example form (with a free-text 备注 of
    the test's own: the example has none, and a formula needs one), with one approved student who
    answered it (自考) and uploaded the ID card's front."""
    desk = make_desk(app)
    with app.app_context():
        batch = db.session.get(Batch, desk.batch_a)
        assert batch is not None
        raw = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
        raw["sections"][0]["fields"].append({"key": "remark", "label": "备注"})
        definition = batch_forms.from_data(raw)
        applications.attach(db.session, batch, definition, NOW)
        student = make_student(desk.batch_a, SubmissionStatus.APPROVED, openid="oExported", id_number=NUMBER)
        enrollment = db.session.scalar(select(Enrollment).where(Enrollment.user_id == student.user_id))
        assert enrollment is not None
        answers = {
            "category": "自考",
            "exam_registration_no": "123456789012",
            "level": "专升本",
            "language": "英语",
            "mobile": "13800138000",
            "remark": "=1+1",
        }
        enrollment.form_answers = batch_forms.transform(definition, answers, pii_keyring().encrypt)
        db.session.add(
            Document(
                user_id=student.user_id,
                batch_id=desk.batch_a,
                slot="id_card_front",
                storage_key=photo_storage().put(b"\xff\xd8 front", "image/jpeg"),
                kind="jpg",
                mime_type="image/jpeg",
                bytes=8,
                created_at=NOW,
            )
        )
        db.session.commit()
        db.session.remove()
    return desk


def _download(desk: Page, link: Any) -> bytes:
    with desk.expect_download() as download:
        link.click()
    path = download.value.path()
    return Path(path).read_bytes()


def test_the_export_page_downloads_answers_and_files_and_opens_the_preview(
    app: Flask, live_server: Any, desk: Page
) -> None:
    world = _desk_with_form(app)
    writes: list[str] = []

    def note(request: Request) -> None:
        if request.method != "GET":
            writes.append(f"{request.method} {request.url}")

    staff_sign_in(desk, live_server.url)
    desk.goto(live_server.url + "/review/export")
    row = desk.locator(f'#export-table tr[data-batch="{world.batch_a}"]')
    other = desk.locator(f'#export-table tr[data-batch="{world.batch_b}"]')
    expect(other.locator("[data-forms]")).to_have_text("无表单")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    desk.screenshot(path=str(SCREENSHOTS / "export-page.png"), full_page=True)

    data = _download(desk, row.locator('[data-export="answers"]'))
    assert data.startswith(b"\xef\xbb\xbf") and b"\r\n" in data
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    header = ["姓名", "证件号码", "考生类别", "考籍号", "学号", "报考层次", "应试语种", "手机号码", "备注"]
    assert rows[0] == header
    assert rows[1][1:] == [NUMBER, "自考", "\t123456789012", "", "专升本", "英语", "13800138000", "'=1+1"]

    archive = zipfile.ZipFile(io.BytesIO(_download(desk, row.locator('[data-export="files"]'))))
    assert archive.namelist() == [f"身份证正面/{NUMBER}.jpg"]

    desk.on("request", note)
    row.locator("[data-preview]").click()
    desk.wait_for_url(f"**/review/batches/{world.batch_a}/preview")
    expect(desk.locator("#preview-banner")).to_contain_text("不能保存")
    exam = desk.locator('[data-field="exam_registration_no"]')
    student_no = desk.locator('[data-field="student_no"]')
    expect(exam).to_be_hidden()
    expect(student_no).to_be_hidden()
    category = desk.locator('[data-key="category"]')
    category.select_option("自考")
    expect(exam).to_be_visible()
    expect(student_no).to_be_hidden()
    category.select_option("成考")
    expect(exam).to_be_hidden()
    expect(student_no).to_be_visible()
    desk.locator('[data-key="mobile"]').fill("13800138000")
    expect(desk.locator("#form-save")).to_be_disabled()
    desk.screenshot(path=str(SCREENSHOTS / "form-preview.png"), full_page=True)

    desk.locator('[data-preview-tab="documents"]').click()
    desk.wait_for_url(f"**/review/batches/{world.batch_a}/preview/documents")
    for slot in ("id_card_front", "id_card_back", "english_result"):
        expect(desk.locator(f'[data-slot="{slot}"] [data-upload]')).to_be_disabled()
    desk.screenshot(path=str(SCREENSHOTS / "documents-preview.png"), full_page=True)
    assert writes == []  # the preview never wrote anything


def test_a_reviewer_opens_the_preview_from_the_dashboard_and_another_school_is_refused(
    app: Flask, live_server: Any, new_page: Any, browser_errors: Any
) -> None:
    world = _desk_with_form(app)
    reviewer = new_page({"width": 1366, "height": 900})
    staff_sign_in(reviewer, live_server.url, "rev-a")
    reviewer.goto(live_server.url + "/review/dashboard")
    reviewer.locator(f'#batch-table tr[data-batch="{world.batch_a}"] [data-preview]').click()
    reviewer.wait_for_url(f"**/review/batches/{world.batch_a}/preview")
    reviewer.locator('[data-key="category"]').select_option("自考")
    expect(reviewer.locator('[data-field="exam_registration_no"]')).to_be_visible()

    browser_errors.expect_status(403, f"/review/batches/{world.batch_a}/preview")
    outsider = new_page({"width": 1366, "height": 900})
    staff_sign_in(outsider, live_server.url, "rev-b")
    outsider.goto(f"{live_server.url}/review/batches/{world.batch_a}/preview")
    expect(outsider.locator("body")).to_contain_text("只能预览本校批次的报名表单")
