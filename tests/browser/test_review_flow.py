"""The review walk in headless Chromium, from the reviewer's desk to the students' phones.

1. A reviewer (desktop) signs in, filters the queue, claims an attempt, returns it with a reason and
   approves the next one by keyboard.
2. The worker delivers the outbox: both students get a 审核结果通知 template message.
3. The returned student (phone, 390×844) sees the card in the sandbox chat with 审核驳回 and the
   reason, taps 详情, and /h5/status (in the phone's WeChat browser) shows 驳回, the reason and the
   way to resubmit while the batch is open.
4. The approved student sees the 审核通过 card, taps 详情, /h5/status shows 通过, the receipt link
   opens /h5/receipt; the QR code drawn on the page is decoded from a screenshot, and the URL it
   carries, opened on another phone with no session (the staff's), says 回执有效：审核已通过.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import cv2
import numpy as np
from flask import Flask
from playwright.sync_api import Locator, Page, expect

from app.integrations import redis_client
from app.jobs.worker import run_due
from app.sandbox import state
from models import SubmissionStatus
from tests.browser.walks import card_value, follower, open_details, result_card
from tests.factories import STAFF_PASSWORD, T0, make_desk, make_waiting, status_and_reason

REASON = "背景颜色不符：请换成白色背景"


# --- the steps -------------------------------------------------------------------------------------


def review_return_then_approve_by_keyboard(desk: Page, base: str, first: int, second: int) -> None:
    """rev-a signs in, filters to school A's pending attempts, returns `first`, approves `second`."""
    desk.goto(base + "/review/")
    desk.fill("#username", "rev-a")
    desk.fill("#password", STAFF_PASSWORD)
    desk.click("button[type=submit]")
    desk.wait_for_url(base + "/review/")

    desk.select_option("#f-school", label="湖南师范大学（10542）")
    desk.select_option("#f-state", value="pending")
    desk.get_by_role("button", name="筛选").click()
    desk.wait_for_url("**/review/?*school=*")
    rows = desk.locator("#queue tbody tr")
    assert rows.count() == 2
    assert [rows.nth(i).get_attribute("data-id") for i in range(2)] == [str(first), str(second)]

    rows.nth(0).get_by_role("button", name="领取").click()
    desk.wait_for_url(f"{base}/review/submissions/{first}")
    assert desk.locator("#sub-state").inner_text() == "审核中"
    assert desk.locator("#claimer").inner_text() == "rev-a"
    assert desk.locator("#face-box").is_visible()
    # The face box sits over the displayed photo, scaled with it.
    photo = desk.locator("#photo-normalized").bounding_box()
    box = desk.locator("#face-box").bounding_box()
    assert photo and box and abs(box["x"] - (photo["x"] + photo["width"] * 0.25)) < 3
    assert abs(box["width"] - photo["width"] * 0.5) < 3
    assert desk.locator("#photo-normalized").evaluate("img => img.naturalWidth") > 0
    assert desk.get_by_text("快捷键").is_visible()

    desk.keyboard.press("r")  # 驳回: the reason gets the focus
    assert desk.evaluate("document.activeElement.id") == "reason-preset"
    desk.select_option("#reason-preset", label="背景颜色不符")
    desk.fill("#reason-text", "请换成白色背景")
    desk.click("#return-btn")
    desk.wait_for_url(f"{base}/review/submissions/{second}")
    assert f"提交 #{first} 已驳回" in desk.locator(".rv-flash").inner_text()

    desk.keyboard.press("c")  # claim the next one
    desk.wait_for_selector("#approve-btn")
    assert desk.locator("#claimer").inner_text() == "rev-a"
    desk.keyboard.press("a")  # 通过
    desk.wait_for_url(base + "/review/")
    assert f"提交 #{second} 已通过" in desk.locator(".rv-flash").first.inner_text()


def decode_qr(element: Locator) -> str:
    """The text of the QR code as drawn on the screen (screenshot → OpenCV), not the page's markup."""
    png = element.screenshot()
    image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_GRAYSCALE)
    assert image is not None, "the QR element's screenshot is not an image"
    detector = cv2.QRCodeDetector()
    # 160 CSS px for ~35 modules is ~4.5 px a module; if the detector misses the anti-aliased
    # original, enlarge it without blurring and try again.
    for scale in (1, 3):
        sample = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
        text, points, _ = detector.detectAndDecode(sample)
        if points is not None and text:
            return str(text)
    raise AssertionError("no QR code could be read from the receipt's screenshot")


def returned_student_reads_the_reason(phone: Page, base: str, openid: str) -> None:
    card = result_card(phone, base, openid)
    expect(card_value(card, "审核结果")).to_have_text("审核驳回")
    expect(card_value(card, "说明")).to_have_text(REASON)

    status = open_details(phone, card)
    expect(status.get_by_test_id("status-label")).to_have_text("驳回")
    expect(status.get_by_test_id("status-reason")).to_have_text(REASON)
    # The batch is still open: the next step is to fix the photo and submit again.
    expect(status.get_by_test_id("status")).to_contain_text("在批次截止前重新提交")
    expect(status.get_by_test_id("resubmit-link")).to_have_attribute("href", "/h5/photo")
    expect(status.get_by_test_id("closed-notice")).to_have_count(0)
    expect(status.get_by_test_id("receipt-link")).to_have_count(0)


def approved_student_prints_a_verifiable_receipt(phone: Page, staff: Page, base: str, openid: str) -> None:
    card = result_card(phone, base, openid)
    expect(card_value(card, "审核结果")).to_have_text("审核通过")

    status = open_details(phone, card)
    expect(status.get_by_test_id("status-label")).to_have_text("通过")
    expect(status.get_by_test_id("status-reason")).to_have_count(0)

    status.get_by_test_id("receipt-link").click()
    receipt = phone.frame_locator("#browser-frame").get_by_test_id("receipt")
    expect(receipt).to_be_visible()
    phone.wait_for_function(
        "() => document.getElementById('browser-frame').contentWindow.location.pathname === '/h5/receipt'"
    )
    qr = receipt.get_by_test_id("receipt-qr")
    expect(qr.locator("svg")).to_be_visible()
    name = receipt.get_by_test_id("receipt-name").inner_text()
    number = receipt.get_by_test_id("receipt-number").inner_text()

    scanned = decode_qr(qr)
    assert scanned == receipt.get_attribute("data-verify-url")
    assert scanned.startswith(f"{base}/verify/")

    staff.goto(scanned)  # the staff's phone: no session, no sandbox user
    expect(staff.get_by_test_id("verdict")).to_have_text("回执有效：审核已通过")
    expect(staff.get_by_test_id("verify-name")).to_have_text(name)
    expect(staff.get_by_test_id("verify-number")).to_have_text(number)
    expect(staff.get_by_test_id("verify-batch")).to_have_text("成人教育 10542 批次")


# --- the walk --------------------------------------------------------------------------------------


def test_review_walk_reaches_the_students_phones_status_page_and_receipt(
    app: Flask, live_server: Any, desk: Page, phone: Page, new_page: Callable[[], Page]
) -> None:
    base = live_server.url
    world = make_desk(app)
    first_openid, second_openid = follower(app, "小明"), follower(app, "小红")
    first = make_waiting(app, world.batch_a, first_openid, T0)
    second = make_waiting(app, world.batch_a, second_openid, T0 + timedelta(minutes=5))
    make_waiting(app, world.batch_b, follower(app, "小刚"), T0 - timedelta(minutes=5))

    review_return_then_approve_by_keyboard(desk, base, first, second)
    assert status_and_reason(app, first) == (SubmissionStatus.RETURNED, REASON)
    assert status_and_reason(app, second)[0] == SubmissionStatus.APPROVED

    # The worker delivers the two decisions as template messages (the sandbox's chat log).
    assert run_due(app) >= 2
    with app.app_context():
        r = redis_client()
        [returned] = [e for e in state.chat(r, first_openid) if e.get("type") == "template"]
        [approved] = [e for e in state.chat(r, second_openid) if e.get("type") == "template"]
    assert returned["data"]["phrase1"]["value"] == "审核驳回"
    assert returned["data"]["thing3"]["value"].startswith("背景颜色不符")
    assert approved["data"]["phrase1"]["value"] == "审核通过"
    assert returned["url"] == approved["url"] == f"{base}/h5/status"

    returned_student_reads_the_reason(phone, base, first_openid)

    # The other student's phone, and the staff's (no session, no sandbox user): contexts of their own.
    second_phone, staff_phone = new_page(), new_page()
    approved_student_prints_a_verifiable_receipt(second_phone, staff_phone, base, second_openid)
