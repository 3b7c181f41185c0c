"""The workflow pages in headless Chromium, on a phone (390×844) and a desk (1366×900): 须知 and
我已阅读; 提交审核 with the pledge and a signature drawn with the mouse; the pay page after 通过 in a
review_first batch (in its window: pay by the Native QR code; before it: told when); the final
confirmation with its signature. Students sign in through the sandbox (login-as) in an ordinary
browser; decisions are made with the reviews service."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import Page, expect

from app.extensions import db
from app.integrations import photo_storage
from app.services import reviews, submissions, wording
from app.services.pushes import ResultPush
from models import Batch, Flow, LockOn, StaffRole, Submission, SubmissionStatus, utcnow
from tests.browser.conftest import DESK, PHONE
from tests.browser.walks import draw_signature, drive, status_of_attempt
from tests.factories import NOTICE, NOW, PLEDGE, add_staff, make_flow_batch, make_linked_student

SHOTS = "/tmp"


def _student(app: Flask, openid: str, flow: Flow, **fields: Any) -> tuple[int, int, int]:
    """(batch id, user id, photo id) of a student linked to a new batch running `flow`."""
    with app.app_context():
        batch_id = make_flow_batch(flow, **fields)
        user_id, photo_id = make_linked_student(batch_id, openid)
        db.session.remove()
    return batch_id, user_id, photo_id


def _submitted_and_approved(app: Flask, user_id: int, photo_id: int) -> int:
    with app.app_context():
        attempt = submissions.create(db.session, user_id, photo_id, utcnow(), storage=photo_storage())
        admin = add_staff("admin-flow", StaffRole.ADMIN, [])
        db.session.commit()
        reviews.decide(
            db.session, admin, attempt.id, "approve", None, NOW, push=ResultPush.from_config(app.config)
        )
        submission_id = attempt.id
        db.session.remove()
    return submission_id


def _sign_in(page: Page, base: str, openid: str, path: str) -> None:
    page.goto(f"{base}/_sandbox/login-as/{openid}?next={path}")
    expect(page).to_have_url(re.compile(re.escape(f"{base}{path}") + r"(#.*)?$"))


@pytest.mark.parametrize("viewport", [PHONE, DESK], ids=["phone", "desk"])
def test_notice_then_on_to_the_photo_page(
    app: Flask, new_page: Any, live_server: Any, viewport: dict[str, int]
) -> None:
    openid = f"oFlowNotice{viewport['width']}"
    _student(app, openid, Flow.FREE, notice=NOTICE)
    page = new_page(viewport)
    # The photo page sends the student to the 须知 first.
    _sign_in(page, live_server.url, openid, "/h5/photo")
    expect(page.locator("#photo-page")).to_have_attribute("data-state", "need-notice")
    page.get_by_role("link", name="去阅读须知").click()
    expect(page).to_have_url(re.compile(r"/h5/notice$"))
    expect(page.locator("#notice-page")).to_have_attribute("data-state", "pending")
    expect(page.locator("#notice-text")).to_contain_text("提交后请留意公众号通知")
    page.screenshot(path=f"{SHOTS}/flow_notice_{viewport['width']}.png")
    page.get_by_role("button", name="我已阅读").click()
    expect(page).to_have_url(re.compile(r"/h5/photo$"))
    expect(page.locator("#photo-page")).to_have_attribute("data-state", "ready")
    # The photo's last verdict, shown in full before leaving (a half-loaded image is a failed request).
    expect(page.locator("#result")).to_have_attribute("data-passed", "true")
    page.wait_for_function("() => document.getElementById('result-image').naturalWidth > 0")
    page.goto(f"{live_server.url}/h5/notice")
    expect(page.locator("#notice-page")).to_have_attribute("data-state", "read")
    expect(page.get_by_role("link", name="去上传照片")).to_be_visible()


def test_submit_for_review_with_pledge_and_drawn_signature(app: Flask, phone: Page, live_server: Any) -> None:
    openid = "oFlowPledgeSigner"
    batch_id, user_id, _ = _student(app, openid, Flow.REVIEW_FIRST, pledge=PLEDGE, signature=True)
    with app.app_context():
        batch = db.session.get(Batch, batch_id)
        assert batch is not None and batch.pay_opens_at and batch.pay_closes_at
        window = wording.window_text(batch.pay_opens_at, batch.pay_closes_at)
        db.session.remove()
    _sign_in(phone, live_server.url, openid, "/h5/photo")
    next_step = phone.locator("#next-step")
    expect(next_step).to_be_visible()
    expect(next_step).to_have_attribute("data-flow", "review_first")
    expect(phone.locator("#submit-terms")).to_contain_text("不需缴费")
    expect(phone.locator("#pay-window")).to_have_text(window)
    expect(phone.locator("#pledge-text")).to_have_text(PLEDGE)
    submit = phone.get_by_role("button", name="提交审核")
    expect(phone.get_by_role("button", name="开始核验")).to_have_count(0)

    # Nothing ticked, nothing drawn: each field says what is missing, in Chinese.
    submit.click()
    expect(phone.locator("#pledge-error")).to_have_text("请阅读并勾选承诺。")
    expect(phone.locator("#signature-error")).to_have_text("请在签名框内手写签名后再提交。")
    phone.locator("#pledge").check()
    expect(phone.locator("#pledge-error")).to_be_hidden()
    # 清除 wipes a drawing.
    draw_signature(phone, phone)
    phone.get_by_role("button", name="清除").click()
    expect(phone.locator("#signature-pad")).to_have_attribute("data-strokes", "0")
    draw_signature(phone, phone)
    expect(phone.locator("#signature-error")).to_be_hidden()
    phone.screenshot(path=f"{SHOTS}/flow_pledge_signed.png", full_page=True)
    submit.click()
    expect(phone).to_have_url(re.compile(r"/h5/status$"))
    with app.app_context():
        attempt = db.session.scalars(db.select(Submission).where(Submission.user_id == user_id)).one()
        assert attempt.status == SubmissionStatus.PENDING_REVIEW and attempt.orders == []
        assert attempt.pledged_at is not None and attempt.signature_key
        db.session.remove()


def test_pay_page_after_approval_pays_in_the_window(app: Flask, phone: Page, live_server: Any) -> None:
    app.config["WECHAT_PAY_SANDBOX_NOTIFY_THREAD"] = False
    openid = "oFlowApprovedUnpaid"
    _, user_id, photo_id = _student(app, openid, Flow.REVIEW_FIRST)
    sid = _submitted_and_approved(app, user_id, photo_id)
    assert status_of_attempt(app, sid) == SubmissionStatus.APPROVED_UNPAID
    _sign_in(phone, live_server.url, openid, f"/h5/pay/{sid}")
    page = phone.locator("#pay-page")
    expect(page).to_have_attribute("data-status", "approved_unpaid")
    expect(phone.locator("#approved-unpaid")).to_contain_text("审核通过，请在缴费时间内缴费")
    expect(phone.locator("#approved-unpaid")).to_contain_text("2 元")
    expect(page).to_have_attribute("data-state", "qr")  # an ordinary browser: the Native QR code
    qr = phone.locator("#qr-image")
    expect(qr).to_have_attribute("data-out-trade-no", re.compile(r"^P\d{8}"))
    expect(qr).to_have_js_property("complete", True)
    assert phone.evaluate("document.getElementById('qr-image').naturalWidth") >= 200
    phone.screenshot(path=f"{SHOTS}/flow_pay_approved_unpaid.png", full_page=True)
    phone.get_by_role("button", name="用沙箱手机扫码支付").click()
    drive(app, lambda: status_of_attempt(app, sid) == SubmissionStatus.APPROVED)
    expect(phone.locator("#result")).to_have_attribute("data-status", "approved", timeout=10_000)
    expect(phone.locator("#approved-unpaid")).to_be_hidden()


def test_pay_page_before_the_window_opens_says_when(app: Flask, phone: Page, live_server: Any) -> None:
    openid = "oFlowNotYetPayable"
    batch_id, user_id, photo_id = _student(app, openid, Flow.REVIEW_FIRST, pay_open=False)
    sid = _submitted_and_approved(app, user_id, photo_id)
    with app.app_context():
        batch = db.session.get(Batch, batch_id)
        assert batch is not None and batch.pay_opens_at and batch.pay_closes_at
        window = wording.window_text(batch.pay_opens_at, batch.pay_closes_at)
        db.session.remove()
    _sign_in(phone, live_server.url, openid, f"/h5/pay/{sid}")
    expect(phone.locator("#pay-page")).to_have_attribute("data-state", "closed")
    expect(phone.locator("#window-message")).to_contain_text(f"缴费时间为{window}")
    expect(phone.locator("#pay-box")).to_be_hidden()

    # Voided at the window's close: the page says the sign-up is void.
    with app.app_context():
        attempt = db.session.get(Submission, sid)
        assert attempt is not None
        attempt.status = SubmissionStatus.VOID
        db.session.commit()
        db.session.remove()
    phone.reload()
    expect(phone.locator("#result")).to_have_attribute("data-status", "void")
    expect(phone.locator("#result-label")).to_have_text("逾期未缴费，报名无效")


@pytest.mark.parametrize("viewport", [PHONE, DESK], ids=["phone", "desk"])
def test_final_confirmation_with_signature(
    app: Flask, new_page: Any, live_server: Any, viewport: dict[str, int]
) -> None:
    openid = f"oFlowConfirm{viewport['width']}"
    _, user_id, photo_id = _student(
        app, openid, Flow.FREE, lock_on=LockOn.CONFIRM, pledge=PLEDGE, signature=True
    )
    sid = _submitted_and_approved(app, user_id, photo_id)
    page = new_page(viewport)
    _sign_in(page, live_server.url, openid, "/h5/status")
    page.get_by_test_id("confirm-link").click()
    expect(page).to_have_url(re.compile(rf"/h5/confirm/{sid}$"))
    confirm_page = page.locator("#confirm-page")
    expect(confirm_page).to_have_attribute("data-state", "pending")
    expect(page.get_by_test_id("confirm-name")).to_have_text("张三丰")
    expect(page.get_by_test_id("confirm-number")).to_have_text("1101**********002X")
    expect(page.get_by_test_id("confirm-photo")).to_have_js_property("complete", True)
    assert page.evaluate("document.querySelector('[data-testid=confirm-photo]').naturalWidth") > 0

    page.get_by_role("button", name="确认提交").click()
    expect(page.locator("#pledge-error")).to_be_visible()
    page.locator("#pledge").check()
    draw_signature(page, page)
    page.screenshot(path=f"{SHOTS}/flow_confirm_{viewport['width']}.png", full_page=True)
    page.get_by_role("button", name="确认提交").click()
    expect(confirm_page).to_have_attribute("data-state", "confirmed")
    expect(page.locator("#receipt-link")).to_be_visible()
    with app.app_context():
        attempt = db.session.get(Submission, sid)
        assert attempt is not None and attempt.confirmed_at is not None and attempt.signature_key
        db.session.remove()
    page.reload()
    expect(confirm_page).to_have_attribute("data-state", "confirmed")
    expect(page.get_by_role("button", name="确认提交")).to_have_count(0)
