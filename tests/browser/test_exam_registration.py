"""新疆自考's 报考 walk on a phone-sized headless Chromium, in an ordinary browser (Native QR), on the
demo's catalogue: an approved candidate chooses 地州 → 县市 → 考点, a major (查看所选专业毕业标准) and
courses; a clash is refused at the courses; four courses make a 140 元 order; the QR code counts down
(支付倒计时…秒) and is paid from the sandbox phone; the registration is then read-only and a change is
refused."""

from __future__ import annotations

import re
from typing import Any

from flask import Flask
from playwright.sync_api import Page, expect
from sqlalchemy import select

from app.extensions import db
from app.services import demo_data
from models import Batch, PaymentOrder, School, SubmissionStatus
from models.exam import ExamRegistration
from tests.browser.conftest import BrowserErrors
from tests.browser.walks import SHOTS, drive, status_of_attempt
from tests.factories import jpeg, make_student

OPENID = "oExamSelectStudent00000001"


def _approved_candidate(app: Flask) -> tuple[int, int]:
    """The demo's open 新疆自考 batch (its catalogue loaded) and an approved candidate in it."""
    with app.app_context():
        demo_data.load_schools(db.session)
        batch = db.session.scalars(
            select(Batch)
            .join(School)
            .where(School.code == "xj-zikao", Batch.exam_selection)
            .order_by(Batch.id)
        ).first()
        assert batch is not None
        attempt = make_student(
            batch.id, SubmissionStatus.APPROVED_UNPAID, openid=OPENID, photo_bytes=jpeg((180, 200, 230))
        )
        db.session.remove()
        return attempt.user_id, attempt.submission_id


def test_choose_courses_pay_per_course_then_locked(
    app: Flask, live_server: Any, phone: Page, browser_errors: BrowserErrors
) -> None:
    app.config["WECHAT_PAY_SANDBOX_NOTIFY_THREAD"] = False
    browser_errors.expect_status(422, "/api/v1/me/registration")  # the clash, on purpose
    browser_errors.expect_status(409, "/api/v1/me/registration")  # the change after paying
    base = live_server.url
    _, submission_id = _approved_candidate(app)
    page = phone
    page.goto(f"{base}/_sandbox/login-as/{OPENID}?next=/h5/registration")
    form = page.locator("#registration-page")
    expect(form).to_have_attribute("data-state", "editing")

    page.locator("#district").select_option("乌鲁木齐市")
    page.locator("#county").select_option("天山区")
    expect(page.locator("#site")).to_have_value("650102")  # the county's one site
    expect(page.locator("#site-address")).to_contain_text("解放南路")
    page.locator("#major").select_option("530601")
    page.get_by_role("link", name="查看所选专业毕业标准").click()
    expect(page.locator("#standard")).to_contain_text("总学分不少于 70 学分")
    for code in ("00024", "00018", "00031", "00144", "00145"):
        page.locator(f'input[data-course="{code}"]').check()
    expect(page.locator("#total")).to_have_text("175 元")
    submit = page.get_by_role("button", name="提交")
    expect(submit).to_be_disabled()  # until 本人担保以上信息真实准确 is ticked
    page.get_by_label("本人担保以上信息真实准确").check()
    submit.click()
    clash = page.locator('[data-error="course_codes"]')
    expect(clash).to_contain_text("「心理学」（")
    expect(clash).to_contain_text("「生产与作业管理」（")
    expect(clash).to_contain_text("考试时间冲突")
    page.screenshot(path=f"{SHOTS}/exam_a_clash.png")

    page.locator('input[data-course="00145"]').uncheck()
    expect(page.locator("#total")).to_have_text("140 元")
    submit.click()
    expect(page.locator("#saved")).to_be_visible()
    expect(clash).to_be_hidden()
    page.get_by_role("link", name="去缴费").click()
    page.wait_for_url(re.compile(rf"/h5/pay/{submission_id}$"))

    items = page.locator("#exam-items")
    expect(items.locator("tbody tr")).to_have_count(4)
    # The demo moves the manual's exam days after sign-up closes; the clock times stay.
    expect(items.locator('tr[data-course="00024"]')).to_contain_text(re.compile(r"\d{4}年\d\d月\d\d日 上午"))
    expect(items.locator('tr[data-course="00144"]')).to_contain_text(re.compile(r"\d{4}年\d\d月\d\d日 下午"))
    expect(page.locator("#exam-total")).to_have_text("140 元")
    pay_page = page.locator("#pay-page")
    expect(pay_page).to_have_attribute("data-mode", "native")
    expect(pay_page).to_have_attribute("data-state", "qr")
    expect(page.locator("#qr-countdown")).to_have_text(re.compile(r"^支付倒计时1[5-8]\d秒$"))
    expect(page.locator("#qr-image")).to_have_js_property("complete", True)
    with app.app_context():
        order = db.session.scalars(select(PaymentOrder)).one()
        assert (order.amount_fen, order.channel) == (14000, "native")
        registration = db.session.scalars(select(ExamRegistration)).one()
        assert registration.locked_at is not None
        db.session.remove()
    page.screenshot(path=f"{SHOTS}/exam_b_qr.png")

    page.get_by_role("button", name="用沙箱手机扫码支付").click()
    expect(page.locator("#pay-message")).to_contain_text("正在确认缴费结果")
    drive(app, lambda: status_of_attempt(app, submission_id) == SubmissionStatus.APPROVED)
    expect(page.locator("#result")).to_have_attribute("data-status", "approved", timeout=10_000)

    page.goto(f"{base}/h5/registration")
    expect(form).to_have_attribute("data-state", "locked")
    expect(page.locator("#locked-message")).to_have_text("缴费订单生成后不能增、减或修改已填报课程")
    expect(page.locator("#district")).to_be_disabled()
    expect(page.locator('input[data-course="00024"]')).to_be_checked()
    expect(page.locator('input[data-course="00024"]')).to_be_disabled()
    expect(page.get_by_role("button", name="提交")).to_be_hidden()
    page.screenshot(path=f"{SHOTS}/exam_c_locked.png")
    # Whatever the page shows, the service refuses a change.
    refused = page.evaluate(
        """() => fetch('/api/v1/me/registration', {method: 'PUT', credentials: 'same-origin',
             headers: {'Content-Type': 'application/json',
                       'X-CSRFToken': document.querySelector('meta[name="csrf-token"]').content},
             body: JSON.stringify({site_code: '650102', major_code: '530601', course_codes: ['00024']})})
           .then(r => r.json().then(b => [r.status, b.errors[0].message]))"""
    )
    assert refused == [409, "缴费订单生成后不能增、减或修改已填报课程"]
