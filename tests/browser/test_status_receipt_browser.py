"""A student with an approved attempt opens /h5/status, sees 通过, opens the receipt, and the URL its
QR code carries verifies as genuine in the browser (headless Chromium, 390×844)."""

from __future__ import annotations

import re
from typing import Any

from flask import Flask
from playwright.sync_api import Page, expect

from models import SubmissionStatus
from tests.factories import make_batch, make_student

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
