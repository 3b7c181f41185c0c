"""The student's home, status and pay pages on a phone (headless Chromium, 390×844): where the
student stands and the photo each page is about."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask
from playwright.sync_api import Page, expect

from models import SubmissionStatus
from tests.factories import make_batch, make_student

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "var" / "screenshots"  # git-ignored; CI keeps it as an artifact
FACE = ROOT / "tests" / "fixtures" / "photos" / "id_ok.jpg"


def _loaded(page: Page, testid: str) -> None:
    image = page.get_by_test_id(testid)
    expect(image).to_be_visible()
    page.wait_for_function("el => el.complete && el.naturalWidth > 0", arg=image.element_handle())


def test_home_and_status_after_payment(app: Flask, phone: Page, live_server: Any) -> None:
    with app.app_context():
        make_student(
            make_batch(),
            SubmissionStatus.PENDING_REVIEW,
            openid="oHomeStudent",
            photo_bytes=FACE.read_bytes(),
        )
    phone.goto(f"{live_server.url}/_sandbox/login-as/oHomeStudent?next=/h5/")
    expect(phone.get_by_test_id("now")).to_contain_text("当前进度：未审核")
    expect(phone.locator("ol.checklist li.done")).to_have_count(5)
    expect(phone.locator('ol.checklist li[aria-current="step"]')).to_contain_text("审核")
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    phone.screenshot(path=str(SCREENSHOTS / "home-phone.png"), full_page=True)

    phone.get_by_test_id("step-go").click()
    expect(phone).to_have_url(f"{live_server.url}/h5/status")
    _loaded(phone, "status-photo")
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390


def test_the_pay_page_shows_the_photo_it_is_for(app: Flask, phone: Page, live_server: Any) -> None:
    with app.app_context():
        waiting = make_student(
            make_batch(),
            SubmissionStatus.AWAITING_PAYMENT,
            openid="oPayStudent",
            photo_bytes=FACE.read_bytes(),
        )
    phone.goto(f"{live_server.url}/_sandbox/login-as/oPayStudent?next=/h5/")
    expect(phone.get_by_test_id("now")).to_contain_text("当前进度：缴费核验")
    phone.get_by_test_id("step-go").click()
    expect(phone).to_have_url(f"{live_server.url}/h5/pay/{waiting.submission_id}")
    _loaded(phone, "pay-photo")
    expect(phone.locator("#pay-page")).not_to_have_attribute("data-state", "loading")
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
