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
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import requests
from flask import Flask
from photo_students import FIXTURES, NUMBERS, prepare
from playwright.sync_api import Frame, Page, expect
from sqlalchemy import select

from app.extensions import db
from app.integrations import redis_client
from app.jobs.worker import run_due
from app.sandbox.pay import notifications as sandbox_notify
from models import PaymentOrder, Submission, SubmissionStatus, utcnow

PHONE_PHOTO = FIXTURES / "phone_4000x3000.jpg"
SHOTS = "/tmp"


def _drive(app: Flask, done: Callable[[], bool], deadline_s: float = 30) -> None:
    """Deliver WeChat Pay's notifications and run the worker until `done()`, or fail at the deadline."""
    deadline = time.monotonic() + deadline_s
    while not done():
        assert time.monotonic() < deadline, "the flow did not finish in time"
        with app.app_context():
            sandbox_notify.deliver_due_notifications(redis_client())
        run_due(app)


def _status(app: Flask, submission_id: int) -> SubmissionStatus:
    with app.app_context():
        attempt = db.session.get(Submission, submission_id)
        assert attempt is not None
        status = SubmissionStatus(attempt.status)
        db.session.remove()
        return status


def _open_in_wechat(phone: Page, path: str) -> Frame:
    """Open an H5 page in the phone's "WeChat browser" frame, as a menu link does."""
    phone.evaluate(
        "path => { document.getElementById('browser').hidden = false;"
        " document.getElementById('browser-frame').src = path; }",
        path,
    )
    phone.wait_for_function(
        "path => document.getElementById('browser-frame').contentWindow.location.pathname === path", arg=path
    )
    frame = phone.frame(name="wechat-browser")
    assert frame is not None
    return frame


def _upload_and_start(frame: Frame) -> None:
    frame.locator("#file-album").set_input_files(str(PHONE_PHOTO))
    expect(frame.locator("#result")).to_have_attribute("data-passed", "true", timeout=30_000)
    start = frame.get_by_role("button", name="开始核验")
    expect(start).to_be_visible()
    start.click()


def _pay_on_the_sheet(app: Flask, phone: Page, frame: Frame, shot: str) -> int:
    """On /h5/pay/<id> in the frame: 确认支付 → the sandbox sheet → 确认支付; returns the id."""
    frame.wait_for_url(re.compile(r"/h5/pay/\d+$"))
    submission_id = int(frame.url.rsplit("/", 1)[1])
    page = frame.locator("#pay-page")
    expect(page).to_have_attribute("data-mode", "jsapi")
    expect(page).to_have_attribute("data-state", "ready")
    expect(frame.locator("#fee-card")).to_contain_text("2 元")
    phone.screenshot(path=f"{SHOTS}/pay_{shot}_ready.png")
    frame.get_by_role("button", name="确认支付 2 元").click()
    sheet = phone.locator("#paysheet")
    expect(sheet).to_be_visible()
    expect(phone.locator("#paysheet-amount")).to_have_text("¥2.00")
    phone.screenshot(path=f"{SHOTS}/pay_{shot}_sheet.png")
    sheet.get_by_role("button", name="确认支付").click()
    expect(sheet).to_be_hidden()
    with app.app_context():
        delivered = sandbox_notify.deliver_due_notifications(redis_client())
    assert [d.get("status") for d in delivered] == [204], delivered
    # Paid, not verified yet (the worker has not run): 核验中… with the seed's refresh button.
    verifying = frame.locator("#verifying")
    expect(verifying).to_be_visible()
    expect(verifying).to_contain_text("核验中…")
    expect(verifying).to_contain_text("5–6 秒左右，如未显示结果，点击「刷新结果数据」")
    expect(frame.get_by_role("button", name="刷新结果数据")).to_be_visible()
    phone.screenshot(path=f"{SHOTS}/pay_{shot}_verifying.png")
    return submission_id


def _phone_with(phone: Page, base: str, openid: str) -> None:
    phone.goto(f"{base}/_sandbox/login-as/{openid}?next=/h5/photo")
    expect(phone).to_have_url(re.compile(re.escape(f"{base}/h5/photo") + r"(#.*)?$"))
    phone.goto(f"{base}/_sandbox/")


def test_pay_in_wechat_then_review(app: Flask, live_server: Any, phone: Page) -> None:
    app.config["WECHAT_PAY_SANDBOX_NOTIFY_THREAD"] = False
    base = live_server.url
    prepare(app, "oPayFlowStudent00000000001", number=NUMBERS[0])
    _phone_with(phone, base, "oPayFlowStudent00000000001")
    frame = _open_in_wechat(phone, "/h5/photo")
    _upload_and_start(frame)
    submission_id = _pay_on_the_sheet(app, phone, frame, "a")
    _drive(app, lambda: _status(app, submission_id) == SubmissionStatus.PENDING_REVIEW)
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
    _phone_with(phone, base, "oPayFlowStudent00000000002")
    frame = _open_in_wechat(phone, "/h5/photo")
    _upload_and_start(frame)
    first = _pay_on_the_sheet(app, phone, frame, "b")
    _drive(app, lambda: _status(app, first) == SubmissionStatus.VERIFY_FAILED)
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
    frame = _open_in_wechat(phone, "/h5/photo")
    expect(frame.locator("#result")).to_have_attribute("data-passed", "true", timeout=10_000)
    frame.get_by_role("button", name="开始核验").click()
    second = _pay_on_the_sheet(app, phone, frame, "b2")
    assert second != first
    _drive(app, lambda: _status(app, second) == SubmissionStatus.PENDING_REVIEW)
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
    _upload_and_start(page.main_frame)
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
    expect(page.locator("#qr-seconds")).to_have_text(re.compile(r"^[23]:\d\d$"))
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
    _drive(app, lambda: _status(app, submission_id) == SubmissionStatus.PENDING_REVIEW)
    expect(page.locator("#result")).to_have_attribute("data-status", "pending_review", timeout=10_000)
    page.screenshot(path=f"{SHOTS}/pay_c_pending_review.png")
    with app.app_context():
        paid = db.session.scalars(select(PaymentOrder).where(PaymentOrder.status == "paid")).one()
        assert paid.out_trade_no != first_order and paid.channel == "native"
        db.session.remove()
