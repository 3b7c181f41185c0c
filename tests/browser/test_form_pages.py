"""/h5/form and /h5/documents as a student uses them today (headless Chromium, phone-sized): `when`
shows and hides a field, group rows are added (and emptied away), a wrong phone number and a wrong
pattern are refused at the field in Chinese, a draft is saved and reloaded; a file is uploaded, an
oversized image is scaled down rather than refused, a PDF is uploaded, an executable named .pdf is
refused, a file is deleted; the checklist's 填写报名信息 and 上传材料 turn done."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import Flask
from PIL import Image
from playwright.sync_api import Page, expect
from pypdf import PdfWriter
from sqlalchemy import select

from app.extensions import db
from app.services import applications, batch_forms
from models import Batch, Document, Flow
from tests.factories import NOW, make_flow_batch, make_linked_student

SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"  # git-ignored; a CI artifact

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
                    "max_rows": 3,
                    "fields": [
                        {
                            "key": "relation",
                            "label": "与本人关系",
                            "kind": "select",
                            "options": ["父亲", "母亲", "配偶"],
                            "required": True,
                        },
                        {"key": "name", "label": "姓名", "required": True},
                        {"key": "phone", "label": "联系电话", "kind": "phone"},
                    ],
                },
            ],
        }
    ],
    "documents": [
        {
            "key": "id_card_front",
            "label": "身份证正面",
            "kind": "id_card_front",
            "formats": ["jpg", "png"],
            "max_width": 600,
            "max_height": 600,
            "max_files": 2,
        },
        {
            "key": "thesis",
            "label": "毕业论文",
            "formats": ["pdf"],
            "when": {"field": "category", "equals": "成考"},
        },
    ],
}


def _student(app: Flask, openid: str) -> tuple[int, int]:
    """A student linked to a free batch carrying DEFINITION; (user id, batch id)."""
    with app.app_context():
        batch_id = make_flow_batch(Flow.FREE)
        batch = db.session.get(Batch, batch_id)
        assert batch is not None
        definition = batch_forms.from_data({**DEFINITION, "batch": batch.name})
        applications.attach(db.session, batch, definition, NOW)
        db.session.commit()
        user_id, _ = make_linked_student(batch_id, openid)
        db.session.remove()
    return user_id, batch_id


def _jpeg(size: tuple[int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (90, 120, 200)).save(out, "JPEG", quality=90)
    return out.getvalue()


def _pdf() -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(595, 842)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _field(page: Page, key: str) -> Any:
    return page.locator(f'[data-key="{key}"]:not([data-sub])')


def _row(page: Page, group: str, n: int) -> Any:
    return page.locator(f'[data-group="{group}"] .group-row').nth(n - 1)


def test_the_form_page_when_rows_errors_and_draft(
    app: Flask, new_page: Callable[..., Page], live_server: Any, browser_errors: Any
) -> None:
    _student(app, "oFormPage")
    browser_errors.expect_status(422, "/api/v1/me/form")  # the refused save, shown at the fields
    page = new_page()
    page.goto(f"{live_server.url}/_sandbox/login-as/oFormPage?next=/h5/form")
    form = page.locator("#form-page")
    expect(form).to_have_attribute("data-state", "draft")

    # `when`: 考籍号 only for 自考.
    exam_box = page.locator('[data-field="exam_no"]')
    expect(exam_box).to_be_hidden()
    _field(page, "category").select_option("自考")
    expect(exam_box).to_be_visible()
    _field(page, "category").select_option("成考")
    expect(exam_box).to_be_hidden()
    _field(page, "category").select_option("自考")

    # A second 家庭关系 row, at most three.
    rows = page.locator('[data-group="family"] .group-row')
    expect(rows).to_have_count(1)
    page.locator('[data-add-row="family"]').click()
    expect(rows).to_have_count(2)
    for _ in range(3):
        page.locator('[data-add-row="family"]').click()
    expect(rows).to_have_count(3)

    # Wrong answers: refused at each field, in Chinese, nothing saved.
    _field(page, "exam_no").fill("123")
    _field(page, "mobile").fill("1380013800")
    _row(page, "family", 1).locator('[data-sub="relation"]').select_option("父亲")
    _row(page, "family", 1).locator('[data-sub="name"]').fill("张大")
    _row(page, "family", 2).locator('[data-sub="relation"]').select_option("母亲")
    _row(page, "family", 2).locator('[data-sub="name"]').fill("王二")
    _row(page, "family", 2).locator('[data-sub="phone"]').fill("12345")
    page.locator("#form-save").click()
    expect(page.locator('[data-error="exam_no"]')).to_have_text("「考籍号」格式不对：考籍号为 12 位数字")
    expect(page.locator('[data-error="mobile"]')).to_have_text("「手机号码」应为 11 位手机号码。")
    expect(page.locator('[data-error="family.2.phone"]')).to_have_text(
        "第 2 行：「联系电话」应为 11 位手机号码。"
    )
    expect(page.locator("#form-saved")).to_be_hidden()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "form-errors.png"), full_page=True)

    # Corrected (the third row left empty is no row): saved as a draft, errors gone.
    _field(page, "exam_no").fill("123456789012")
    _field(page, "mobile").fill("13800138000")
    _row(page, "family", 2).locator('[data-sub="phone"]').fill("13900139000")
    page.locator("#form-save").click()
    expect(page.locator("#form-saved")).to_be_visible()
    expect(page.locator('[data-error="mobile"]')).to_be_hidden()
    expect(form).to_have_attribute("data-state", "complete")
    expect(page.locator("#form-missing li")).to_have_count(0)

    # Reloaded: the answers are there, two rows.
    page.reload()
    expect(_field(page, "category")).to_have_value("自考")
    expect(_field(page, "exam_no")).to_have_value("123456789012")
    expect(_field(page, "mobile")).to_have_value("13800138000")
    expect(rows).to_have_count(2)
    expect(_row(page, "family", 2).locator('[data-sub="name"]')).to_have_value("王二")

    # A row is taken away by emptying it (the page has no remove button): one row after saving.
    for sub in ("relation", "name", "phone"):
        row_field = _row(page, "family", 2).locator(f'[data-sub="{sub}"]')
        if sub == "relation":
            row_field.select_option("")
        else:
            row_field.fill("")
    page.locator("#form-save").click()
    expect(page.locator("#form-saved")).to_be_visible()
    page.reload()
    expect(rows).to_have_count(1)
    expect(_row(page, "family", 1).locator('[data-sub="name"]')).to_have_value("张大")

    # Switching to 成考 hides 考籍号 and asks for nothing more; the hidden answer is dropped.
    _field(page, "category").select_option("成考")
    page.locator("#form-save").click()
    expect(page.locator("#form-saved")).to_be_visible()
    page.reload()
    expect(exam_box).to_be_hidden()
    expect(form).to_have_attribute("data-state", "complete")


def test_the_documents_page_uploads_refuses_and_deletes(
    app: Flask, new_page: Callable[..., Page], live_server: Any, browser_errors: Any
) -> None:
    user_id, batch_id = _student(app, "oDocsPage")
    browser_errors.expect_status(422, "/api/v1/me/documents/thesis")  # the executable, refused
    # On a 201 the page reloads without reading the answer's body, so Chromium reports the POST as
    # aborted although the file was stored (every upload below checks that it was).
    browser_errors.expect(r"ERR_ABORTED POST .*/api/v1/me/documents/")
    page = new_page()
    page.goto(f"{live_server.url}/_sandbox/login-as/oDocsPage?next=/h5/form")
    _field(page, "category").select_option("成考")
    _field(page, "mobile").fill("13800138000")
    _row(page, "family", 1).locator('[data-sub="relation"]').select_option("父亲")
    _row(page, "family", 1).locator('[data-sub="name"]').fill("张大")
    page.locator("#form-save").click()
    expect(page.locator("#form-page")).to_have_attribute("data-state", "complete")

    page.goto(f"{live_server.url}/h5/documents")
    expect(page.locator("#documents-page")).to_have_attribute("data-state", "slots")
    front = page.locator('[data-slot="id_card_front"]')
    thesis = page.locator('[data-slot="thesis"]')  # shown: the answers say 成考
    expect(front).to_contain_text("最多 2 个")

    # An image twice the slot's size: scaled down to fit, not refused.
    front.locator("[data-upload]").set_input_files(
        {"name": "身份证正面.jpg", "mimeType": "image/jpeg", "buffer": _jpeg((1200, 800))}
    )
    expect(front.locator("[data-document]")).to_have_count(1)
    expect(front.locator("[data-document]")).to_contain_text("文件 1（jpg）")
    expect(front.locator("[data-upload]")).to_have_count(1)  # room for a second
    with app.app_context():
        stored = db.session.scalars(select(Document).where(Document.user_id == user_id)).one()
        assert (stored.width, stored.height) == (600, 400)
        db.session.remove()

    # A second one (PNG): the slot is full, its upload button gone.
    png = io.BytesIO()
    Image.new("RGB", (300, 200), (200, 90, 90)).save(png, "PNG")
    front.locator("[data-upload]").set_input_files(
        {"name": "背面.png", "mimeType": "image/png", "buffer": png.getvalue()}
    )
    expect(front.locator("[data-document]")).to_have_count(2)
    expect(front.locator("[data-upload]")).to_have_count(0)

    # An executable named .pdf: refused at the slot, in Chinese; then a real PDF.
    thesis.locator("[data-upload]").set_input_files(
        {"name": "论文.pdf", "mimeType": "application/pdf", "buffer": b"MZ" + b"\x90" * 400}
    )
    expect(thesis.locator("[data-slot-error]")).to_have_text(
        "文件类型与内容不符：这是一个可执行程序，不是 PDF"
    )
    expect(thesis.locator("[data-document]")).to_have_count(0)
    thesis.locator("[data-upload]").set_input_files(
        {"name": "论文.pdf", "mimeType": "application/pdf", "buffer": _pdf()}
    )
    expect(thesis.locator("[data-document]")).to_contain_text("文件 1（pdf）")
    expect(thesis.locator("[data-slot-error]")).to_be_hidden()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "documents-uploaded.png"), full_page=True)

    # The link opens the stored file.
    href = front.locator("[data-document] a").first.get_attribute("href")
    assert href and href.startswith("/media/documents/")
    assert page.request.get(live_server.url + href).headers["content-type"] == "image/jpeg"

    # Both steps are done on the checklist.
    page.goto(f"{live_server.url}/h5/")
    checklist = page.get_by_test_id("checklist")
    expect(checklist.locator('li[data-step="form"]')).to_have_attribute("data-status", "done")
    expect(checklist.locator('li[data-step="documents"]')).to_have_attribute("data-status", "done")

    # Deleting a file: the slot has room again; deleting the thesis undoes the step.
    page.goto(f"{live_server.url}/h5/documents")
    front.locator("[data-delete]").first.click()
    expect(front.locator("[data-document]")).to_have_count(1)
    expect(front.locator("[data-upload]")).to_have_count(1)
    thesis.locator("[data-delete]").click()
    expect(thesis.locator("[data-document]")).to_have_count(0)
    page.goto(f"{live_server.url}/h5/")
    expect(page.get_by_test_id("checklist").locator('li[data-step="documents"]')).not_to_have_attribute(
        "data-status", "done"
    )
    with app.app_context():
        assert (
            db.session.scalar(select(Document.slot).where(Document.batch_id == batch_id)) == "id_card_front"
        )
        db.session.remove()
