"""A student with an approved attempt opens /h5/status, sees 通过, opens the receipt, and the URL its
QR code carries verifies as genuine in the browser (headless Chromium, 390×844); the receipt and the
counter's check on a desk (1366×900), with the screenshots kept under var/screenshots/."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from flask import Flask
from playwright.sync_api import Page, expect

from app.extensions import db
from models import Batch, SubmissionStatus
from tests.browser.conftest import DESK
from tests.factories import STAFF_PASSWORD, STUDENT_NAME, make_batch, make_desk, make_student

OPENID = "oStatusReceiptStudent0001"


def test_approved_student_prints_a_receipt_whose_qr_verifies(
    app: Flask, phone: Page, live_server: Any, browser_errors: Any
) -> None:
    browser_errors.expect_status(404, "/verify/")
    base = live_server.url
    with app.app_context():
        make_student(make_batch(), SubmissionStatus.APPROVED, openid=OPENID)
    phone.goto(f"{base}/_sandbox/login-as/{OPENID}?next=/h5/status")
    expect(phone).to_have_url(re.compile(re.escape(f"{base}/h5/status") + r"(#.*)?$"))
    expect(phone.get_by_test_id("status-label")).to_have_text("通过")

    phone.get_by_test_id("receipt-link").click()
    expect(phone).to_have_url(re.compile(re.escape(f"{base}/h5/receipt")))
    receipt = phone.get_by_test_id("receipt")
    expect(phone.get_by_test_id("receipt-name")).to_have_text("张*丰")
    expect(phone.get_by_test_id("receipt-number")).to_have_text("1101**********002X")
    expect(phone.get_by_test_id("receipt-qr").locator("svg")).to_be_visible()
    phone.emulate_media(media="print")
    expect(phone.get_by_test_id("print")).to_be_hidden()  # the print stylesheet hides the controls
    phone.emulate_media(media="screen")

    target = receipt.get_attribute("data-verify-url")
    assert target and target.startswith(f"{base}/verify/")
    phone.goto(target)
    expect(phone.get_by_test_id("verdict")).to_have_text("回执有效：审核已通过")
    expect(phone.get_by_test_id("verify-name")).to_have_text("张*丰")

    phone.goto(target[:-2] + ("AA" if not target.endswith("AA") else "BB"))  # a tampered signature
    expect(phone.get_by_test_id("verdict")).to_have_text("无效的回执")


ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "var" / "screenshots"  # git-ignored; CI keeps it as an artifact
FACE = ROOT / "tests" / "fixtures" / "photos" / "id_ok.jpg"


def test_receipt_and_counter_check_on_a_desk(
    app: Flask, new_page: Any, live_server: Any, runner: Any
) -> None:
    """1366×900: the student's receipt (batch wording, photo, receipt number), then the counter's
    check — masked to anyone, the full name to signed-in staff of the school, the same photo."""
    base = live_server.url
    desk = make_desk(app)
    with app.app_context():
        batch = db.session.get(Batch, desk.batch_a)
        assert batch is not None
        batch.receipt_title, batch.receipt_note = (
            "新生入学照片审核回执单",
            "新生报到时出示本回执；工作人员扫码即可核验真伪。",
        )
        db.session.commit()
        student = make_student(
            desk.batch_a, SubmissionStatus.APPROVED, openid=OPENID, photo_bytes=FACE.read_bytes()
        )
    student_page = new_page(DESK)
    student_page.goto(f"{base}/_sandbox/login-as/{OPENID}?next=/h5/receipt")
    expect(student_page.get_by_test_id("receipt-title")).to_have_text("新生入学照片审核回执单")
    expect(student_page.get_by_test_id("receipt-note")).to_have_text(
        "新生报到时出示本回执；工作人员扫码即可核验真伪。"
    )
    number = student_page.get_by_test_id("receipt-no").inner_text()
    assert re.fullmatch(r"\d{8}-[0-9A-HJKMNP-TV-Z]{8}", number) and number != str(student.submission_id)
    photo = student_page.get_by_test_id("receipt-photo")
    expect(photo).to_be_visible()
    student_page.wait_for_function("el => el.complete && el.naturalWidth > 0", arg=photo.element_handle())
    assert student_page.evaluate("document.documentElement.scrollWidth") <= DESK["width"]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    student_page.screenshot(path=str(SCREENSHOTS / "receipt-desk.png"), full_page=True)
    target = student_page.get_by_test_id("receipt").get_attribute("data-verify-url")
    assert target

    counter = new_page(DESK)
    counter.goto(target)
    expect(counter.get_by_test_id("verdict")).to_have_text("回执有效：审核已通过")
    expect(counter.get_by_test_id("verify-name")).to_have_text("张*丰")
    expect(counter.get_by_test_id("verify-no")).to_have_text(number)
    verify_photo = counter.get_by_test_id("verify-photo")
    counter.wait_for_function("el => el.complete && el.naturalWidth > 0", arg=verify_photo.element_handle())

    # Counter staff sign in, scan again: the full name, and a way to the attempt in the back office.
    counter.goto(f"{base}/review/login")
    counter.get_by_label("用户名").fill("rev-a")
    counter.get_by_label("密码").fill(STAFF_PASSWORD)
    counter.get_by_role("button", name="登录").click()
    # Signed in once the queue has loaded (leaving earlier would abort its stylesheets).
    expect(counter.get_by_role("link", name="查回执")).to_be_visible()
    counter.wait_for_load_state("load")
    counter.goto(target)
    expect(counter.get_by_test_id("verify-name")).to_have_text(STUDENT_NAME)
    counter.screenshot(path=str(SCREENSHOTS / "verify-staff-desk.png"), full_page=True)
    # …and find it again by the number printed on the receipt, typed by hand.
    counter.goto(f"{base}/review/receipts")
    counter.get_by_label("回执编号").fill(number.lower().replace("-", " "))
    counter.get_by_role("button", name="查找").click()
    expect(counter).to_have_url(re.compile(rf"/review/submissions/{student.submission_id}$"))


def test_the_receipt_fits_a_phone(app: Flask, phone: Page, live_server: Any) -> None:
    with app.app_context():
        make_student(make_batch(), SubmissionStatus.APPROVED, openid=OPENID, photo_bytes=FACE.read_bytes())
    phone.goto(f"{live_server.url}/_sandbox/login-as/{OPENID}?next=/h5/receipt")
    expect(phone.get_by_test_id("receipt-title")).to_have_text("学位证书照片审核回执单")
    photo = phone.get_by_test_id("receipt-photo")
    phone.wait_for_function("el => el.complete && el.naturalWidth > 0", arg=photo.element_handle())
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    phone.screenshot(path=str(SCREENSHOTS / "receipt-phone.png"), full_page=True)
