"""The batch workflows on the staff pages and the receipt, in headless Chromium at a phone's width
(390×844) and a desk's (1366×900): the queue's state filter offers 审核通过，待缴费 and 逾期未缴费，
报名无效 and labels each row's flow; the decision page shows the student's signature; the receipt of
a confirm batch waits for the confirmation, then prints the 承诺 with the signature under it. None
wider than the screen; the page fixture fails on any console error or failed request."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import Page, expect

from app.extensions import db
from app.integrations import photo_storage
from models import Batch, Flow, LockOn, Submission, SubmissionStatus
from tests.browser.conftest import DESK, PHONE
from tests.factories import (
    NOW,
    STAFF_PASSWORD,
    jpeg,
    make_batch,
    make_desk,
    make_student,
    make_waiting,
    signature_png,
)

S = SubmissionStatus
PLEDGE = "本人承诺所填信息真实准确，照片为本人近期免冠照片。"
AFTER = "请于11月30日前将纸质照片邮寄至继续教育学院。"


def fits(page: Page) -> None:
    """Nothing wider than the screen: no horizontal scrolling."""
    width, inner = page.evaluate("[document.scrollingElement.scrollWidth, innerWidth]")
    assert width <= inner, f"{page.url} is {width}px wide on a {inner}px screen"


def loaded(page: Page, selector: str) -> None:
    image = page.locator(selector)
    expect(image).to_be_visible()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle())


def review_first_desk(app: Flask) -> dict[str, int]:
    """School B's batch reviews first: one attempt waiting (never paid), one approved awaiting its
    fee (signed under the batch's 承诺), one voided; school A's one waiting."""
    desk = make_desk(app)
    with app.app_context():
        batch = db.session.get(Batch, desk.batch_b)
        assert batch is not None
        batch.flow, batch.pledge, batch.signature = Flow.REVIEW_FIRST, PLEDGE, True
        batch.pay_opens_at, batch.pay_closes_at = NOW - timedelta(days=1), NOW + timedelta(days=5)
        db.session.commit()
    ids = {"a": make_waiting(app, desk.batch_a, "o-a1", NOW - timedelta(days=4), name="王小明")}
    for i, status in enumerate((S.PENDING_REVIEW, S.APPROVED_UNPAID, S.VOID)):
        sub_id = make_waiting(app, desk.batch_b, f"o-b{i}", NOW - timedelta(days=3, hours=i), name="李四")
        with app.app_context():
            sub = db.session.get(Submission, sub_id)
            assert sub is not None
            sub.status, sub.paid_at = status, None
            if status != S.PENDING_REVIEW:
                sub.decided_at = NOW - timedelta(hours=i)
                sub.pledged_at = NOW - timedelta(days=3)
                sub.signature_key = photo_storage().put(signature_png(), "image/png")
            db.session.commit()
        ids[status.value] = sub_id
    return ids


@pytest.mark.parametrize("viewport", [PHONE, DESK], ids=["phone", "desk"])
def test_queue_filters_the_new_states_and_shows_the_signature(
    app: Flask, live_server: Any, new_page: Any, viewport: dict[str, int]
) -> None:
    ids = review_first_desk(app)
    base = live_server.url
    page = new_page(viewport)
    page.goto(base + "/review/login")
    page.fill("#username", "admin")
    page.fill("#password", STAFF_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(base + "/review/")

    rows = page.locator("#queue tbody tr")
    # Waiting for review before any payment, labelled with its flow beside the other school's.
    expect(rows).to_have_count(2)
    expect(page.locator(f"#queue tr[data-id='{ids['pending_review']}'] .rv-flow")).to_have_text("先审后缴")
    expect(page.locator(f"#queue tr[data-id='{ids['a']}'] .rv-flow")).to_have_text("先缴费")
    fits(page)

    for label, key in (("审核通过，待缴费", "approved_unpaid"), ("逾期未缴费，报名无效", "void")):
        page.select_option("#f-state", label=label)
        with page.expect_navigation():
            page.get_by_role("button", name="筛选").click()
        expect(rows).to_have_count(1)
        row = page.locator(f"#queue tr[data-id='{ids[key]}']")
        expect(row.locator(".rv-state")).to_have_text(label)
        expect(row.locator(".rv-decided-at")).not_to_be_empty()
        expect(page.locator("#f-state")).to_have_value(key)
        fits(page)

    page.select_option("#f-state", label="全部已审结")
    with page.expect_navigation():
        page.get_by_role("button", name="筛选").click()
    expect(rows).to_have_count(2)

    page.locator(f"#queue tr[data-id='{ids['approved_unpaid']}'] a").click()
    page.wait_for_url(f"**/review/submissions/{ids['approved_unpaid']}")
    expect(page.locator("#flow-label")).to_have_text("先审后缴")
    expect(page.locator("#pledge")).to_contain_text("已承诺")
    expect(page.locator("#order-open")).to_have_text("暂无待支付订单")
    loaded(page, "#signature-img")
    fits(page)

    page.goto(base + "/review/dashboard")
    expect(page.locator("#batch-table th", has_text="审核通过，待缴费")).to_have_count(1)
    fits(page)


@pytest.mark.parametrize("viewport", [PHONE, DESK], ids=["phone", "desk"])
def test_receipt_waits_for_the_confirmation_then_prints_the_signature(
    app: Flask, live_server: Any, new_page: Any, viewport: dict[str, int]
) -> None:
    base = live_server.url
    with app.app_context():
        batch_id = make_batch(
            name="学位照片 确认批次",
            lock_on=LockOn.CONFIRM,
            pledge=PLEDGE,
            signature=True,
            after_approval=AFTER,
        )
        student = make_student(
            batch_id, S.APPROVED, openid="oFlowReceipt0001", signed=True, photo_bytes=jpeg()
        )
    page = new_page(viewport)
    page.goto(f"{base}/_sandbox/login-as/oFlowReceipt0001?next=/h5/receipt")
    expect(page.get_by_test_id("confirm-first")).to_contain_text("请先确认信息并签名")
    expect(page.get_by_test_id("confirm-link")).to_have_attribute(
        "href", f"/h5/confirm/{student.submission_id}"
    )
    expect(page.get_by_test_id("receipt")).to_have_count(0)
    fits(page)

    with app.app_context():
        sub = db.session.get(Submission, student.submission_id)
        assert sub is not None
        sub.confirmed_at = NOW - timedelta(minutes=5)
        db.session.commit()
    page.reload()
    expect(page.get_by_test_id("receipt")).to_be_visible()
    expect(page.get_by_test_id("receipt-pledge")).to_contain_text(PLEDGE)
    expect(page.get_by_test_id("receipt-pledged-at")).to_contain_text("承诺时间")
    expect(page.get_by_test_id("receipt-confirmed")).not_to_be_empty()
    expect(page.get_by_test_id("receipt-after")).to_contain_text(AFTER)
    loaded(page, "[data-testid=receipt-signature]")
    loaded(page, "[data-testid=receipt-photo]")
    # The signature is printed: the print stylesheet keeps it while hiding the controls.
    page.emulate_media(media="print")
    expect(page.get_by_test_id("receipt-signature")).to_be_visible()
    expect(page.get_by_test_id("print")).to_be_hidden()
    page.emulate_media(media="screen")
    fits(page)

    target = page.get_by_test_id("receipt").get_attribute("data-verify-url")
    assert target
    page.goto(target)
    expect(page.get_by_test_id("verdict")).to_have_text("回执有效：审核已通过")
    loaded(page, "[data-testid=verify-signature]")
    fits(page)
