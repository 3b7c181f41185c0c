"""A rejected photo in headless Chromium on a 390×844 phone, from the first upload to a new photo:

1. Inside the sandbox phone's WeChat browser, /h5/photo shows a drawing of a good photo for the
   batch's spec; a picture with no face fails: the failing item first with what to do, the passing
   ones folded, no measured values (screenshot); the phone photo passes (screenshot); 开始核验 → pay
   on the sheet → identity check → 未审核.
2. A reviewer (desk) claims the attempt and returns it (驳回) with a reason.
3. The push's 详情 opens /h5/status; 重新上传照片 leads to /h5/photo, which shows the reviewer's reason,
   does not offer the rejected photo with 开始核验, and the API refuses it (422, photo_id).
4. The same picture uploaded again is refused, naming the photo, the reviewer's 驳回 and the reason.
5. A new photo passes and can be submitted again; the reviewer's page for it is free of warnings
   unless it looks like the rejected one.

Screenshots of the photo result (failing and passing) go to var/screenshots/ (git-ignored).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import Flask
from photo_students import FIXTURES, NUMBERS, prepare
from playwright.sync_api import Frame, Page, expect

from app.extensions import db
from app.jobs.worker import run_due
from app.services import staff as staff_service
from models import StaffRole, Submission, SubmissionStatus
from tests.browser.walks import (
    drive,
    follower,
    open_details,
    open_in_wechat,
    pay_on_the_sheet,
    phone_with,
    result_card,
    status_of_attempt,
)
from tests.factories import STAFF_PASSWORD

PHONE_390 = {"width": 390, "height": 844}
DESK = {"width": 1366, "height": 900}
SHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
PHONE_PHOTO = FIXTURES / "phone_4000x3000.jpg"
NEW_PHOTO = FIXTURES / "id_ok.jpg"
OFF_CENTRE = FIXTURES / "off_centre.jpg"
REASON = "人像不清晰：请在光线均匀处重新拍摄"
RAW_VALUES = ("检测值", "，要求", "std L*", "ΔE", "质量", " px", "已保存为")


def _upload(frame: Frame, path: Path, passed: bool) -> None:
    frame.locator("#file-album").set_input_files(str(path))
    expect(frame.locator("#photo-page")).to_have_attribute("data-state", "done", timeout=30_000)
    expect(frame.locator("#result")).to_have_attribute("data-passed", "true" if passed else "false")


def _no_raw_values(frame: Frame) -> None:
    shown = frame.locator("#result").text_content() or ""
    for raw in RAW_VALUES:
        assert raw not in shown, f"{raw!r} in the student's result: {shown}"


def _return_with_reason(desk: Page, base: str, submission_id: int) -> None:
    desk.goto(base + "/review/")
    desk.fill("#username", "rev-photo")
    desk.fill("#password", STAFF_PASSWORD)
    desk.click("button[type=submit]")
    desk.wait_for_url(base + "/review/")
    desk.goto(f"{base}/review/submissions/{submission_id}")
    expect(desk.locator("#similar-rejected")).to_have_count(0)  # a first attempt: nothing to compare
    desk.click("#claim-btn")
    desk.wait_for_selector("#return-btn")
    desk.select_option("#reason-preset", label="人像不清晰")
    desk.fill("#reason-text", "请在光线均匀处重新拍摄")
    desk.click("#return-btn")
    desk.wait_for_load_state()


def test_a_rejected_photo_is_explained_refused_and_replaced(
    app: Flask, live_server: Any, new_page: Callable[..., Page], browser_errors: Any
) -> None:
    # Provoked on purpose: the API refusing the rejected photo, and a photo whose loading the page's
    # next upload interrupts.
    browser_errors.expect_status(422, "/api/v1/me/submissions")
    browser_errors.expect(r"ERR_ABORTED GET .*/media/photos/")
    app.config["WECHAT_PAY_SANDBOX_NOTIFY_THREAD"] = False
    base = live_server.url
    SHOTS.mkdir(parents=True, exist_ok=True)
    openid = follower(app, "小林")
    prepare(app, openid, number=NUMBERS[3])
    with app.app_context():
        staff_service.create(db.session, "rev-photo", STAFF_PASSWORD, StaffRole.REVIEWER, ["10542"])
        db.session.remove()
    phone = new_page(PHONE_390)
    phone_with(phone, base, openid)
    # The same student in a plain phone browser, for full-page screenshots of the result.
    page = new_page(PHONE_390)
    page.goto(f"{base}/_sandbox/login-as/{openid}?next=/h5/photo")
    frame = page.main_frame

    # The drawing of a good photo, from the batch's spec: light blue background, 3:4.
    sample = frame.locator("#sample svg")
    expect(sample).to_be_visible()
    assert sample.get_attribute("viewBox") == "0 0 480 640"
    assert frame.locator('#sample [data-part="background"]').get_attribute("fill") == "#64c5ff"
    expect(frame.locator("#sample")).to_contain_text("浅蓝色纯色背景")
    expect(frame.locator("#rejection")).to_have_count(0)

    # 1. A failing photo: what failed first, with what to do; the rest folded; no raw values.
    _upload(frame, OFF_CENTRE, passed=False)
    first_failing = frame.locator("#checks-failing li").first
    expect(first_failing).to_have_attribute("data-check", "centering")
    expect(first_failing.locator(".advice")).to_contain_text("请让头部位于照片左右居中的位置")
    folded = frame.locator("#checks-passed")
    expect(folded).not_to_have_attribute("open", "")
    passing = frame.locator("#checks-passed-list li").count()
    expect(frame.locator("#checks-passed-summary")).to_have_text(f"其他 {passing} 项符合要求")
    expect(frame.locator("#checks-passed-list li").first).to_be_hidden()
    expect(frame.locator("#next-step")).to_be_hidden()
    _no_raw_values(frame)
    page.screenshot(path=str(SHOTS / "photo_result_failing.png"), full_page=True)

    # The phone photo passes: all items folded, 开始核验 offered.
    _upload(frame, PHONE_PHOTO, passed=True)
    expect(frame.locator("#checks-failing li")).to_have_count(0)
    total = frame.locator("#checks-passed-list li").count()
    assert total >= 8
    expect(frame.locator("#checks-passed-summary")).to_have_text(f"全部 {total} 项符合要求")
    _no_raw_values(frame)
    page.screenshot(path=str(SHOTS / "photo_result_passing.png"), full_page=True)

    # Paid inside WeChat (the sandbox phone's browser), where the page shows the same photo.
    frame = open_in_wechat(phone, "/h5/photo")
    expect(frame.locator("#result")).to_have_attribute("data-passed", "true")
    frame.get_by_role("button", name="开始核验").click()
    first = pay_on_the_sheet(app, phone, frame, "rejected_walk")
    drive(app, lambda: status_of_attempt(app, first) == SubmissionStatus.PENDING_REVIEW)

    # 2. The reviewer returns it with a reason.
    desk = new_page(DESK)
    _return_with_reason(desk, base, first)
    assert status_of_attempt(app, first) == SubmissionStatus.RETURNED
    assert run_due(app) >= 1  # the push

    # 3. 详情 → /h5/status → 重新上传照片 → /h5/photo: the reason, and the old photo not offered.
    phone.goto(f"{base}/_sandbox/")
    card = result_card(phone, base, openid)
    status = open_details(phone, card)
    status.get_by_test_id("resubmit-link").click()
    phone.wait_for_function(
        "() => document.getElementById('browser-frame').contentWindow.location.pathname === '/h5/photo'"
    )
    frame = phone.frame(name="wechat-browser")  # type: ignore[assignment]
    assert frame is not None
    rejection = frame.locator("#rejection")
    expect(rejection).to_be_visible()
    expect(rejection).to_contain_text("上次提交的照片被驳回")
    expect(frame.locator("#rejection-reason")).to_have_text(REASON)
    expect(rejection).to_contain_text("上传一张新照片")
    result = frame.locator("#result")
    expect(result).to_have_attribute("data-rejected", "true")
    expect(frame.locator("#result-verdict")).to_have_text("这张照片已被审核老师驳回，不能再次提交")
    expect(frame.locator("#result-rejected")).to_contain_text(REASON)
    expect(frame.locator("#next-step")).to_be_hidden()
    expect(frame.get_by_role("button", name="开始核验")).to_be_hidden()
    page.reload()
    expect(page.locator("#rejection-reason")).to_have_text(REASON)
    expect(page.locator("#result")).to_have_attribute("data-rejected", "true")
    page.screenshot(path=str(SHOTS / "photo_after_return.png"), full_page=True)

    # The service refuses it too, whatever the page shows.
    photo_id = int(
        frame.evaluate(
            "() => fetch('/api/v1/me/photos/latest', {headers: {Accept: 'application/json'}})"
            ".then(r => r.json()).then(p => p.id)"
        )
    )
    refused = frame.evaluate(
        """photoId => fetch('/api/v1/me/submissions', {method: 'POST', headers: {
             'Content-Type': 'application/json', Accept: 'application/json',
             'X-CSRFToken': document.querySelector('meta[name=csrf-token]').content},
             body: JSON.stringify({photo_id: photoId, channel: 'jsapi'})})
           .then(r => r.json().then(body => ({status: r.status, body})))""",
        photo_id,
    )
    assert refused["status"] == 422
    [error] = refused["body"]["errors"]
    assert error["field"] == "photo_id"
    assert "已被审核老师驳回" in error["message"] and REASON in error["message"]

    # 4. The same picture again: refused, saying which photo, that a reviewer returned it, and why.
    _upload(frame, PHONE_PHOTO, passed=False)
    duplicate = frame.locator("#checks-failing li").first
    expect(duplicate).to_have_attribute("data-check", "duplicate_of_rejected")
    expect(duplicate).to_contain_text("上传的照片几乎相同")
    expect(duplicate).to_contain_text("审核老师驳回")
    expect(duplicate).to_contain_text(REASON)
    expect(duplicate).to_contain_text("重新拍摄一张新照片")
    expect(frame.locator("#next-step")).to_be_hidden()

    # 5. A new photo: passes, 开始核验 is offered again and creates a new attempt.
    _upload(frame, NEW_PHOTO, passed=True)
    expect(result).not_to_have_attribute("data-rejected", "true")
    frame.get_by_role("button", name="开始核验").click()
    frame.wait_for_url("**/h5/pay/*")
    second = int(frame.url.rsplit("/", 1)[1])
    assert second != first
    assert status_of_attempt(app, second) == SubmissionStatus.AWAITING_PAYMENT

    # A new photo that looks like the rejected one (8 of 64 hash bits apart: not the same picture, close
    # enough to compare) warns the reviewer. The fixtures' hashes follow the auto-fix's exact crop, so
    # the walk pins the distance: it tests the page; tests/test_rejected_photos.py tests the rule.
    with app.app_context():
        rejected, resubmitted = (db.session.get(Submission, s) for s in (first, second))
        assert rejected is not None and resubmitted is not None and rejected.photo.phash
        resubmitted.photo.phash = f"{int(rejected.photo.phash, 16) ^ 0xFF:016x}"
        db.session.commit()
        db.session.remove()
    desk.goto(f"{base}/review/submissions/{second}")
    warning = desk.locator("#similar-rejected")
    expect(warning).to_be_visible()
    expect(warning).to_contain_text("相似")
    expect(warning.locator(f'li[data-submission="{first}"]')).to_contain_text(REASON)
