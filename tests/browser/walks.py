"""Steps of the student and reviewer walks that several browser tests take: a student on the sandbox
phone (following, opening pages in WeChat, paying on the sheet), the result card and its details."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from flask import Flask
from photo_students import FIXTURES
from playwright.sync_api import Frame, FrameLocator, Locator, Page, expect

from app.extensions import db
from app.integrations import redis_client
from app.jobs.worker import run_due
from app.sandbox import phone as phone_view
from app.sandbox import state
from app.sandbox.pay import notifications as sandbox_notify
from models import Submission, SubmissionStatus

PHONE_PHOTO = FIXTURES / "phone_4000x3000.jpg"
SHOTS = "/tmp"


def drive(app: Flask, done: Callable[[], bool], deadline_s: float = 30) -> None:
    """Deliver WeChat Pay's notifications and run the worker until `done()`, or fail at the deadline."""
    deadline = time.monotonic() + deadline_s
    while not done():
        assert time.monotonic() < deadline, "the flow did not finish in time"
        with app.app_context():
            sandbox_notify.deliver_due_notifications(redis_client())
        run_due(app)


def status_of_attempt(app: Flask, submission_id: int) -> SubmissionStatus:
    with app.app_context():
        attempt = db.session.get(Submission, submission_id)
        assert attempt is not None
        status = SubmissionStatus(attempt.status)
        db.session.remove()
        return status


def open_in_wechat(phone: Page, path: str) -> Frame:
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


def upload_and_start(frame: Frame) -> None:
    frame.locator("#file-album").set_input_files(str(PHONE_PHOTO))
    expect(frame.locator("#result")).to_have_attribute("data-passed", "true", timeout=30_000)
    start = frame.get_by_role("button", name="开始核验")
    expect(start).to_be_visible()
    start.click()


def pay_on_the_sheet(app: Flask, phone: Page, frame: Frame, shot: str) -> int:
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


def phone_with(phone: Page, base: str, openid: str) -> None:
    phone.goto(f"{base}/_sandbox/login-as/{openid}?next=/h5/photo")
    expect(phone).to_have_url(re.compile(re.escape(f"{base}/h5/photo") + r"(#.*)?$"))
    phone.goto(f"{base}/_sandbox/")


def follower(app: Flask, nickname: str) -> str:
    with app.app_context():
        r = redis_client()
        user = state.create_user(r, nickname)
        user["subscribed"] = True
        state.save_user(r, user)
        return str(user["openid"])


def phone_as(phone: Page, base: str, openid: str) -> None:
    """Open the sandbox phone as `openid` (the cookie the 扮演 picker sets)."""
    host = urlsplit(base).hostname
    phone.context.add_cookies(
        [{"name": phone_view.COOKIE, "value": openid, "domain": host, "path": "/_sandbox"}]
    )
    phone.goto(f"{base}/_sandbox/")
    expect(phone.get_by_label("当前用户")).to_have_value(openid)


def result_card(phone: Page, base: str, openid: str) -> Locator:
    """The phone's chat as `openid`, and the one 审核结果通知 card in it."""
    phone_as(phone, base, openid)
    card = phone.locator(".msg.out[data-type=template] .card.template")
    expect(card).to_have_count(1)
    expect(card.locator(".card-title")).to_have_text("审核结果通知")
    return card


def card_value(card: Locator, key: str) -> Locator:
    return card.locator(".card-row", has=card.page.locator(".card-key", has_text=key)).locator(".card-value")


def open_details(phone: Page, card: Locator) -> FrameLocator:
    """Tap the card's 详情: the phone's WeChat browser opens /h5/status, signed in as this student."""
    card.get_by_role("link", name="详情").click()
    expect(phone.get_by_role("region", name="微信内置浏览器")).to_be_visible()
    browser = phone.frame_locator("#browser-frame")
    expect(browser.locator("#status-page")).to_be_visible()
    phone.wait_for_function(
        "() => document.getElementById('browser-frame').contentWindow.location.pathname === '/h5/status'"
    )
    return browser
