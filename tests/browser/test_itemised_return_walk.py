"""An itemised 驳回 in headless Chromium, from the reviewer's desk to the student's phone and back.

0. While the attempt waits for review, the student's form and documents are read-only.
1. The reviewer (desktop) opens the decision page: 报名信息 shows the answers (the phone number masked
   for a reviewer), 材料 shows the ID card image inline and the thesis PDF as its first page with the
   page count.
2. The reviewer ticks 手机号码 and 身份证正面, each with its reason, and returns the attempt.
3. The student (phone, 390×844) sees the two reasons in red at the items, changes the phone number and
   replaces the ID card image; every other item is read-only.
4. The student resubmits with the same photo (no new upload); the reviewer approves.
"""

from __future__ import annotations

import io
import re
from typing import Any

from flask import Flask
from PIL import Image
from playwright.sync_api import Page, expect

from app.extensions import db
from app.integrations import pii_keyring
from app.services import applications
from models import Batch, Flow, Submission, SubmissionStatus
from tests.browser.conftest import DESK, PHONE
from tests.browser.walks import SHOTS, follower, images_loaded, staff_decides, staff_sign_in
from tests.factories import make_desk
from tests.form_students import Scene, attach, waiting_student


def a_free_batch_with_a_waiting_student(app: Flask) -> Scene:
    desk = make_desk(app)
    openid = follower(app, "小芳")
    with app.app_context():
        batch = db.session.get(Batch, desk.batch_a)
        assert batch is not None
        # Free, no identity check: the resubmission goes straight back to the queue.
        batch.flow, batch.fee_fen, batch.verify_identity = Flow.FREE, 0, False
        db.session.commit()
        attach(desk.batch_a)
        scene = waiting_student(desk.batch_a, openid)
        db.session.remove()
    return scene


def student_sees_the_answers_frozen_under_review(phone: Page, base: str, openid: str) -> None:
    phone.goto(f"{base}/_sandbox/login-as/{openid}?next=/h5/form")
    expect(phone).to_have_url(re.compile(re.escape(f"{base}/h5/form")))
    expect(phone.locator("#form-notice")).to_have_text("报名信息正在审核中，暂时不能修改。")
    expect(phone.locator("#form-save")).to_have_count(0)
    expect(phone.locator('[data-key="mobile"]')).to_be_disabled()
    # The form still follows its `when`: 考籍号 stays hidden for a 成考 student.
    expect(phone.locator('[data-field="exam_no"]')).to_be_hidden()
    phone.goto(f"{base}/h5/documents")
    expect(phone.locator("#documents-notice")).to_be_visible()
    expect(phone.locator("[data-upload], [data-delete]")).to_have_count(0)


def reviewer_sees_everything_and_returns_two_items(desk: Page, base: str, scene: Scene) -> None:
    staff_sign_in(desk, base, "rev-a")
    desk.goto(f"{base}/review/submissions/{scene.submission_id}")
    desk.click("#claim-btn")
    expect(desk.locator("#approve-btn")).to_be_visible()
    images_loaded(desk)

    answers = desk.locator("#application")
    expect(answers.locator('[data-answer="category"]')).to_contain_text("成考")
    mobile = answers.locator('[data-answer="mobile"]')
    expect(mobile).to_have_attribute("data-masked", "true")
    expect(mobile).to_contain_text("*******8000")
    expect(answers).not_to_contain_text("13800138000")
    expect(answers.locator('[data-group="family"] td').first).to_contain_text("*")

    image = desk.locator(f'[data-doc="{scene.image_id}"] img')
    assert image.evaluate("img => img.naturalWidth") == 800
    preview = desk.locator(f'[data-doc="{scene.pdf_id}"] [data-pdf-preview]')
    assert preview.evaluate("img => img.naturalWidth") > 0
    expect(desk.locator(f'[data-doc="{scene.pdf_id}"]')).to_contain_text("共 2 页")
    # The image opens full size in a new tab.
    expect(desk.locator(f'[data-doc="{scene.image_id}"] a')).to_have_attribute("target", "_blank")

    desk.screenshot(path=f"{SHOTS}/itemised_decision.png", full_page=True)
    # On a phone the page, its answers, files and ticks fit the screen.
    desk.set_viewport_size(PHONE)
    assert desk.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    desk.set_viewport_size(DESK)

    desk.check('[data-return-tick="field:mobile"]')
    desk.fill('[data-return-reason="field:mobile"]', "号码不对")
    # Typing a reason ticks its item; Enter there does not send the form (its first button is 通过).
    desk.fill('[data-return-reason="document:id_card_front"]', "照片模糊")
    expect(desk.locator('[data-return-tick="document:id_card_front"]')).to_be_checked()
    desk.press('[data-return-reason="document:id_card_front"]', "Enter")
    desk.wait_for_timeout(300)  # a submission would have left the page by now
    assert desk.url == f"{base}/review/submissions/{scene.submission_id}"
    expect(desk.locator("#sub-state")).to_have_text("审核中")
    desk.click("#return-btn")
    expect(desk.locator(".rv-flash").first).to_contain_text(f"提交 #{scene.submission_id} 已驳回")
    images_loaded(desk)


def student_fixes_only_the_two_items(phone: Page, base: str, openid: str) -> None:
    phone.goto(f"{base}/_sandbox/login-as/{openid}?next=/h5/form")
    expect(phone).to_have_url(re.compile(re.escape(f"{base}/h5/form")))
    expect(phone.locator('[data-rejected-reason="mobile"]')).to_have_text("需修改：号码不对")
    assert phone.locator('[data-rejected-reason="mobile"]').evaluate("e => getComputedStyle(e).color") == (
        "rgb(192, 57, 43)"
    )
    expect(phone.locator("#form-notice")).to_contain_text("只有标红的项目可以修改")
    expect(phone.locator('[data-key="category"]')).to_be_disabled()
    expect(phone.locator('[data-key="family"][data-sub="name"]')).to_be_disabled()
    mobile = phone.locator('[data-key="mobile"]')
    expect(mobile).to_be_enabled()
    mobile.fill("13900139000")
    phone.click("#form-save")
    expect(phone.locator("#form-saved")).to_be_visible()
    phone.screenshot(path=f"{SHOTS}/itemised_form.png", full_page=True)

    phone.goto(f"{base}/h5/documents")
    front = phone.locator('[data-slot="id_card_front"]')
    expect(front.locator("[data-rejected-reason]")).to_have_text("需修改：照片模糊")
    thesis = phone.locator('[data-slot="thesis"]')
    expect(thesis).to_have_attribute("data-editable", "false")
    expect(thesis.locator("[data-upload], [data-delete]")).to_have_count(0)
    front.locator("[data-delete]").click()
    expect(front.locator("[data-document]")).to_have_count(0)
    out = io.BytesIO()
    Image.new("RGB", (900, 560), (200, 180, 120)).save(out, "JPEG", quality=90)
    phone.locator('[data-upload="id_card_front"]').set_input_files(
        {"name": "front.jpg", "mimeType": "image/jpeg", "buffer": out.getvalue()}
    )
    expect(phone.locator('[data-slot="id_card_front"] [data-document]')).to_have_count(1)


def student_resubmits_the_same_photo(phone: Page, base: str) -> None:
    phone.goto(f"{base}/h5/photo")
    expect(phone.locator("#kept-photo")).to_contain_text("照片不用重新上传")
    expect(phone.locator("#rejection")).to_have_count(0)
    expect(phone.locator("#result")).to_have_attribute("data-passed", "true")
    submit = phone.get_by_role("button", name="提交审核")
    expect(submit).to_be_visible()
    submit.click()
    phone.wait_for_url(re.compile(r"/h5/(status|$)"))
    images_loaded(phone)


def test_an_itemised_return_reopens_two_items_and_the_same_photo_goes_in_again(
    app: Flask, live_server: Any, desk: Page, phone: Page
) -> None:
    base = live_server.url
    scene = a_free_batch_with_a_waiting_student(app)
    with app.app_context():
        openid = db.session.get(Submission, scene.submission_id).user.openid  # type: ignore[union-attr]

    student_sees_the_answers_frozen_under_review(phone, base, openid)
    reviewer_sees_everything_and_returns_two_items(desk, base, scene)
    student_fixes_only_the_two_items(phone, base, openid)
    with app.app_context():
        form = applications.form(db.session, pii_keyring(), scene.user_id)
        assert form.answers["mobile"] == "13900139000" and form.answers["category"] == "成考"
    student_resubmits_the_same_photo(phone, base)

    with app.app_context():
        latest = db.session.query(Submission).order_by(Submission.id.desc()).first()
        assert latest is not None and latest.id != scene.submission_id
        assert latest.status == SubmissionStatus.PENDING_REVIEW and latest.photo_id == scene.photo_id
        resubmitted = latest.id
        db.session.remove()
    staff_decides(desk, base, resubmitted)
    with app.app_context():
        approved = db.session.get(Submission, resubmitted)
        assert approved is not None and approved.status == SubmissionStatus.APPROVED
