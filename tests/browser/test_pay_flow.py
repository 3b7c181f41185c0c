"""The pay walk on a phone-sized headless Chromium:

- inside the sandbox phone's "WeChat browser": login-as → a passing photo → 开始核验 → 确认支付 on
  the sandbox's pay sheet (WeixinJSBridge) → 核验中… → 待审核;
- a second student whose roster entry mismatches ends in 身份核验失败, corrects the name on
  修改实名信息 and pays a new attempt → 待审核;
- a third, in an ordinary browser (outside WeChat), gets the Native QR code with its countdown,
  sees it replaced when it expires, and pays it by scanning from the sandbox phone → 待审核.

Notifications are delivered and the worker is run by the test (no background threads).
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import requests
from flask import Flask
from photo_students import FIXTURES, NUMBERS, prepare
from playwright.sync_api import Page, expect
from sqlalchemy import select

from app.extensions import db
from models import PaymentOrder, SubmissionStatus, utcnow
from tests.browser.walks import (
    drive,
    open_in_wechat,
    pay_on_the_sheet,
    phone_with,
    status_of_attempt,
    upload_and_start,
)

PHONE_PHOTO = FIXTURES / "phone_4000x3000.jpg"
SHOTS = "/tmp"


def test_pay_in_wechat_then_review(app: Flask, live_server: Any, phone: Page) -> None:
    app.config["WECHAT_PAY_SANDBOX_NOTIFY_THREAD"] = False
    base = live_server.url
    prepare(app, "oPayFlowStudent00000000001", number=NUMBERS[0])
    phone_with(phone, base, "oPayFlowStudent00000000001")
    frame = open_in_wechat(phone, "/h5/photo")
    upload_and_start(frame)
    submission_id = pay_on_the_sheet(app, phone, frame, "a")
    drive(app, lambda: status_of_attempt(app, submission_id) == SubmissionStatus.PENDING_REVIEW)
    result = frame.locator("#result")
    expect(result).to_have_attribute("data-status", "pending_review", timeout=10_000)
    expect(frame.locator("#result-label")).to_have_text("身份核验通过 · 等待人工审核")
    expect(frame.locator("#result-message")).to_contain_text("7–10 天")
    phone.screenshot(path=f"{SHOTS}/pay_a_pending_review.png")


def test_mismatch_then_fix_and_pay_again(app: Flask, live_server: Any, phone: Page) -> None:
    app.config["WECHAT_PAY_SANDBOX_NOTIFY_THREAD"] = False
    base = live_server.url
    number = NUMBERS[1]
    prepare(app, "oPayFlowStudent00000000002", number=number)
    roster = {"id_number": number, "name": "张三", "result": "mismatch"}
    assert requests.post(f"{base}/_sandbox/roster", json=roster, timeout=10).status_code in (200, 201)
    phone_with(phone, base, "oPayFlowStudent00000000002")
    frame = open_in_wechat(phone, "/h5/photo")
    upload_and_start(frame)
    first = pay_on_the_sheet(app, phone, frame, "b")
    drive(app, lambda: status_of_attempt(app, first) == SubmissionStatus.VERIFY_FAILED)
    expect(frame.locator("#result")).to_have_attribute("data-status", "verify_failed", timeout=10_000)
    expect(frame.locator("#result-label")).to_have_text("身份核验失败")
    expect(frame.locator("#result-reason")).to_be_visible()
    expect(frame.locator("#result-message")).to_contain_text("重新缴纳")
    phone.screenshot(path=f"{SHOTS}/pay_b_verify_failed.png")

    # 修改实名信息: the identity is unlocked again; the student corrects the name.
    frame.get_by_role("link", name="修改实名信息").click()
    frame.wait_for_url(re.compile(r"/h5/bind$"))
    frame.get_by_test_id("modify").click()
    frame.locator("#name").fill("张三丰")
    number_field = frame.locator("#id_number")
    if number_field.input_value() != number:
        number_field.fill(number)
    frame.get_by_test_id("bind-submit").click()
    frame.wait_for_url(re.compile(r"/h5/bind\?done="))

    # A new attempt, a new fee.
    frame = open_in_wechat(phone, "/h5/photo")
    expect(frame.locator("#result")).to_have_attribute("data-passed", "true", timeout=10_000)
    frame.get_by_role("button", name="开始核验").click()
    second = pay_on_the_sheet(app, phone, frame, "b2")
    assert second != first
    drive(app, lambda: status_of_attempt(app, second) == SubmissionStatus.PENDING_REVIEW)
    expect(frame.locator("#result")).to_have_attribute("data-status", "pending_review", timeout=10_000)
    with app.app_context():
        paid = db.session.scalars(select(PaymentOrder).where(PaymentOrder.status == "paid")).all()
        assert sorted(o.submission_id for o in paid) == [first, second]
        db.session.remove()


def test_pay_outside_wechat_by_scanning_the_qr_code(app: Flask, live_server: Any, phone: Page) -> None:
    app.config["WECHAT_PAY_SANDBOX_NOTIFY_THREAD"] = False
    base = live_server.url
    openid = "oPayFlowStudent00000000003"
    prepare(app, openid, number=NUMBERS[2])
    page = phone
    # An ordinary mobile browser: login-as also makes this user the sandbox phone's holder.
    page.goto(f"{base}/_sandbox/login-as/{openid}?next=/h5/photo")
    upload_and_start(page.main_frame)
    page.wait_for_url(re.compile(r"/h5/pay/\d+$"))
    submission_id = int(page.url.rsplit("/", 1)[1])
    pay_page = page.locator("#pay-page")
    expect(pay_page).to_have_attribute("data-mode", "native")
    expect(pay_page).to_have_attribute("data-state", "qr")
    qr = page.locator("#qr-image")
    expect(qr).to_have_js_property("complete", True)
    assert page.evaluate("document.getElementById('qr-image').naturalWidth") >= 200
    seconds = int(page.locator("#qr-countdown").get_attribute("data-seconds") or 0)
    assert 150 <= seconds <= 180
    expect(page.locator("#qr-seconds")).to_have_text(re.compile(r"^1[2-8]\d$"))
    page.screenshot(path=f"{SHOTS}/pay_c_qr.png")
    first_order = qr.get_attribute("data-out-trade-no")

    # The code runs out (a few seconds from now): the page replaces it with a fresh order.
    with app.app_context():
        order = db.session.scalars(select(PaymentOrder)).one()
        order.expires_at = utcnow() + timedelta(seconds=4)
        db.session.commit()
        db.session.remove()
    expect(page.locator("#qr-notice")).to_have_text("二维码已过期，已为你刷新", timeout=20_000)
    expect(qr).not_to_have_attribute("data-out-trade-no", first_order or "", timeout=10_000)
    page.screenshot(path=f"{SHOTS}/pay_c_qr_renewed.png")

    page.get_by_role("button", name="用沙箱手机扫码支付").click()
    expect(page.locator("#pay-message")).to_contain_text("正在确认缴费结果")
    drive(app, lambda: status_of_attempt(app, submission_id) == SubmissionStatus.PENDING_REVIEW)
    expect(page.locator("#result")).to_have_attribute("data-status", "pending_review", timeout=10_000)
    page.screenshot(path=f"{SHOTS}/pay_c_pending_review.png")
    with app.app_context():
        paid = db.session.scalars(select(PaymentOrder).where(PaymentOrder.status == "paid")).one()
        assert paid.out_trade_no != first_order and paid.channel == "native"
        db.session.remove()
