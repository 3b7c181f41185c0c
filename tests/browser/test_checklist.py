"""The checklist on the H5 home and 我的 pages (headless Chromium) on a phone (390×844) and a desktop
(1366×900): done ✓, the current step highlighted with its hint and a button, to do grey, locked
with a lock and why; nothing wider than the screen."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import Page, expect

from app.extensions import db
from models import Batch, Flow, LockOn, SubmissionStatus
from tests.factories import NOW, make_batch, make_student

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "var" / "screenshots"  # git-ignored; CI keeps it as an artifact
VIEWPORTS = {"phone": {"width": 390, "height": 844}, "desk": {"width": 1366, "height": 900}}


def _review_first_student(openid: str) -> int:
    """Approved in a review-first batch whose pay window opens tomorrow: 缴费 locked, saying when."""
    attempt = make_student(make_batch(), SubmissionStatus.APPROVED_UNPAID, openid=openid)
    batch = db.session.get(Batch, attempt.batch_id)
    assert batch is not None
    batch.flow = Flow.REVIEW_FIRST
    batch.pay_opens_at = NOW + timedelta(days=1)
    batch.pay_closes_at = NOW + timedelta(days=6)
    batch.after_approval = "请将纸质照片邮寄至继续教育学院。"
    db.session.commit()
    return attempt.submission_id


@pytest.mark.parametrize("size", ["phone", "desk"])
def test_home_and_me_show_the_checklist(
    app: Flask, new_page: Callable[..., Page], live_server: Any, size: str
) -> None:
    with app.app_context():
        attempt = make_student(make_batch(), SubmissionStatus.APPROVED, openid="oChecklist")
        batch = db.session.get(Batch, attempt.batch_id)
        assert batch is not None
        batch.lock_on = LockOn.CONFIRM
        batch.signature = True
        batch.notice = "请认真阅读报名须知。"
        db.session.commit()
    viewport = VIEWPORTS[size]
    page = new_page(viewport)
    page.goto(f"{live_server.url}/_sandbox/login-as/oChecklist?next=/h5/")
    checklist = page.get_by_test_id("checklist")
    expect(checklist.locator("li")).to_have_count(8)
    expect(checklist.locator("li.done")).to_have_count(7)
    current = checklist.locator('li[aria-current="step"]')
    expect(current).to_have_attribute("data-step", "confirm")
    expect(current).to_contain_text("确认并签名")
    expect(current.get_by_test_id("step-hint")).to_contain_text("确认后无法再修改信息")
    expect(current.get_by_test_id("step-go")).to_have_attribute(
        "href", f"/h5/confirm/{attempt.submission_id}"
    )
    expect(checklist.locator("li.done .mark").first).to_have_text("✓")
    assert "随时回来修改" not in page.content()
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"checklist-home-{size}.png"), full_page=True)

    page.goto(f"{live_server.url}/h5/me")
    checklist = page.get_by_test_id("checklist")
    expect(checklist.locator('li[aria-current="step"]')).to_have_attribute("data-step", "confirm")
    expect(page.get_by_test_id("next-step")).to_have_text("去确认并签名")
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
    page.screenshot(path=str(SCREENSHOTS / f"checklist-me-{size}.png"), full_page=True)


@pytest.mark.parametrize("size", ["phone", "desk"])
def test_a_locked_step_shows_a_lock_and_why(
    app: Flask, new_page: Callable[..., Page], live_server: Any, size: str
) -> None:
    with app.app_context():
        _review_first_student("oLocked")
    viewport = VIEWPORTS[size]
    page = new_page(viewport)
    page.goto(f"{live_server.url}/_sandbox/login-as/oLocked?next=/h5/")
    checklist = page.get_by_test_id("checklist")
    locked = checklist.locator('li[data-step="pay"]')
    expect(locked).to_have_attribute("data-status", "locked")
    expect(locked.locator(".mark svg.lock")).to_be_visible()
    expect(locked.get_by_test_id("step-hint")).to_contain_text("缴费时间为")
    expect(locked).to_contain_text("暂不能办理")
    expect(checklist.locator('li[data-step="after"]')).to_have_attribute("data-status", "todo")
    expect(checklist.locator('li[aria-current="step"]')).to_have_count(0)
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
    page.screenshot(path=str(SCREENSHOTS / f"checklist-locked-{size}.png"), full_page=True)
