"""One walk per demo school, end to end, in headless Chromium on the sandbox phone (390×844), with the
demo data exactly as `make run` loads it. A student follows the account, binds, links the school's open
batch, reads its 须知, uploads a photo and goes through the batch's own flow; a reviewer decides on the
real staff pages (1366×900); the walk checks the pushes in the chat and ends in the state the school's
manual describes:

- 湖南师范大学 (pay_first, 2 元, identity check, lock_on=confirm): pay on the sheet → checked → 通过 → the
  push asks to confirm and sign → /h5/confirm: pledge + drawn signature → the receipt shows it. The
  identity cannot change once approved, before the confirmation and after it.
- 武汉轻工大学 (review_first): 提交审核 unpaid → 通过 with the pay window and 去缴费 → paid → 报名已完成;
  and an approval left unpaid past the window → 逾期未缴费，报名无效, pushed once.
- 新疆自考 (review_first, lock_on=approve): the pledge is required at submission; after 通过 the identity
  is locked; paid → approved.
- 西北工业大学 (free): 提交审核 → 通过; never a pay sheet, never an order.
- 重庆科技学院 (free, after_approval): 驳回 → a new photo → resubmitted for free → 通过, and the push and the
  status page say to post the paper photo.

Notifications are delivered and the worker is run by the test (no background threads). Each walk
leaves a screenshot of its end under var/screenshots/.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from flask import Flask
from photo_students import NUMBERS
from playwright.sync_api import Frame, Page, expect
from sqlalchemy import func, select

from app.extensions import db
from app.jobs.payments import void_overdue_approvals
from app.jobs.worker import run_due
from app.services import demo_data
from models import Batch, PaymentOrder, School, Submission, SubmissionStatus, User, utcnow
from tests.browser.conftest import DESK, PHONE
from tests.browser.walks import (
    SCREENSHOTS,
    bind_and_link,
    card_value,
    chat_card,
    chat_texts,
    draw_signature,
    drive,
    fill_identity,
    follow,
    images_loaded,
    in_browser,
    load_demo,
    open_in_wechat,
    pay_approved_on_the_sheet,
    pay_on_the_sheet,
    photo_on,
    read_notice,
    staff_decides,
    staff_sign_in,
    status_of_attempt,
    upload_and_start,
    upload_passing,
)

S = SubmissionStatus
DEMO = {school.code: school for school in demo_data.SCHOOLS}
CHANGE_REFUSED = re.compile(r"(不能|无法)(再)?修改")


def _shot(phone: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    phone.screenshot(path=str(SCREENSHOTS / f"school_walk_{name}.png"))


def _latest_attempt(app: Flask, openid: str) -> int:
    with app.app_context():
        found = db.session.scalar(
            select(Submission.id).join(User).where(User.openid == openid).order_by(Submission.id.desc())
        )
        db.session.remove()
    assert found is not None
    return int(found)


def _changing_identity_refused(phone: Page, number: str, *, form_shown: bool) -> Frame:
    """/h5/bind in the phone's browser: a new name for the same number is refused, on the form where
    the page still offers 修改 (held, not frozen), and by the service whatever the page shows."""
    frame = open_in_wechat(phone, "/h5/bind")
    expect(frame.get_by_test_id("modify")).to_have_count(1 if form_shown else 0)
    if form_shown:
        frame.get_by_test_id("modify").click()
        fill_identity(frame, "李四", number)  # the form does not show the stored number
        frame.get_by_test_id("bind-submit").click()
        expect(frame.locator('[data-field-error="_"]')).to_contain_text(CHANGE_REFUSED)
    refused = frame.evaluate(
        """number => fetch('/api/v1/me/identity', {method: 'PUT', headers: {
             'Content-Type': 'application/json', Accept: 'application/json',
             'X-CSRFToken': document.querySelector('meta[name=csrf-token]').content},
             body: JSON.stringify({id_type: 'resident_id', id_number: number, name: '李四'})})
           .then(r => r.json().then(body => ({status: r.status, body})))""",
        number,
    )
    assert refused["status"] == 422, refused
    [error] = refused["body"]["errors"]
    assert CHANGE_REFUSED.search(error["message"]), error
    return frame


def _submit_for_review(app: Flask, frame: Frame, openid: str) -> int:
    """提交审核 on the photo page (review_first, free): no payment; the id of the new attempt."""
    expect(frame.locator("#submit-terms")).to_contain_text("提交审核")
    images_loaded(frame)
    frame.get_by_role("button", name="提交审核").click()
    frame.wait_for_url(re.compile(r"/h5/status$"))
    images_loaded(frame)
    return _latest_attempt(app, openid)


def _walk_to_photo(app: Flask, phone: Page, base: str, code: str, number: str) -> tuple[str, Frame]:
    """Follow → bind → link `code`'s open batch → its 须知 → a passing photo: the openid and the photo
    page in the phone's browser."""
    demo = DEMO[code]
    openid = follow(app, phone, base, f"学生{code}")
    bind_and_link(phone, "张三", number, demo.province, code)
    frame = read_notice(phone, demo.notice.splitlines()[0])
    upload_passing(frame, photo_on(demo.spec.background))
    return openid, frame


def _orders(app: Flask, submission_id: int) -> int:
    with app.app_context():
        count = db.session.scalar(
            select(func.count()).select_from(PaymentOrder).where(PaymentOrder.submission_id == submission_id)
        )
        db.session.remove()
    return int(count or 0)


# --- 湖南师范大学: pay first, confirm and sign ---------------------------------------------------------


def test_hunan_pays_is_checked_approved_then_confirms_and_signs(
    app: Flask, live_server: Any, new_page: Callable[..., Page], browser_errors: Any
) -> None:
    browser_errors.expect_status(422, "/api/v1/me/identity")
    app.config["WECHAT_PAY_SANDBOX_NOTIFY_THREAD"] = False
    base = live_server.url
    load_demo(app)
    phone = new_page(PHONE)
    openid = follow(app, phone, base, "湘湘")
    bind_and_link(phone, "张三", NUMBERS[0], "湖南省", "10542")
    frame = read_notice(phone, "上传成功后，人工审核时间在 7-10 天左右")
    upload_and_start(frame)
    sid = pay_on_the_sheet(app, phone, frame, "school_walk_hunan")
    drive(app, lambda: status_of_attempt(app, sid) == S.PENDING_REVIEW)
    expect(frame.locator("#result")).to_have_attribute("data-status", "pending_review")
    images_loaded(frame)

    desk = new_page(DESK)
    staff_sign_in(desk, base)
    staff_decides(desk, base, sid)
    assert status_of_attempt(app, sid) == S.APPROVED
    run_due(app)

    card = chat_card(phone, 1)
    expect(card_value(card, "审核结果")).to_have_text("审核通过")
    expect(card_value(card, "说明")).to_contain_text("确认信息并签名")
    details = card.get_by_role("link", name="详情")
    expect(details).to_have_attribute("href", f"{base}/h5/confirm/{sid}")
    assert [t for t in chat_texts(app, openid) if t.startswith("审核结果通知")] == [
        t for t in chat_texts(app, openid) if "确认信息并签名" in t
    ]  # the one result push, and it asks for the confirmation

    # Approved, not yet confirmed: what the reviewer approved is what the student confirms.
    _changing_identity_refused(phone, NUMBERS[0], form_shown=True)

    chat_card(phone, 1)
    details.click()
    confirm = in_browser(phone, f"/h5/confirm/{sid}")
    expect(confirm.locator("#confirm-page")).to_have_attribute("data-state", "pending")
    expect(confirm.get_by_test_id("confirm-name")).to_have_text("张三")
    expect(confirm.locator("#pledge-text")).to_have_text(DEMO["10542"].pledge or "")
    confirm.locator("#pledge").check()
    draw_signature(phone, confirm)
    confirm.get_by_role("button", name="确认提交").click()
    expect(confirm.locator("#confirm-page")).to_have_attribute("data-state", "confirmed")
    images_loaded(confirm)
    confirm.locator("#receipt-link").click()
    confirm.wait_for_url(re.compile(r"/h5/receipt$"))
    expect(confirm.get_by_test_id("receipt-pledge")).to_contain_text("真实有效性负责")
    signature = confirm.get_by_test_id("receipt-signature")
    expect(signature).to_be_visible()
    confirm.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=signature.element_handle())
    images_loaded(confirm)
    _shot(phone, "hunan_receipt")

    locked = _changing_identity_refused(phone, NUMBERS[0], form_shown=False)
    expect(locked.get_by_test_id("locked-notice")).to_be_visible()
    expect(locked.get_by_test_id("modify")).to_have_count(0)


# --- 武汉轻工大学: review first, pay within the window ------------------------------------------------


def test_wuhan_reviews_first_then_pays_in_the_window(
    app: Flask, live_server: Any, new_page: Callable[..., Page]
) -> None:
    app.config["WECHAT_PAY_SANDBOX_NOTIFY_THREAD"] = False
    base = live_server.url
    load_demo(app)
    phone = new_page(PHONE)
    openid, frame = _walk_to_photo(app, phone, base, "10496", NUMBERS[1])
    sid = _submit_for_review(app, frame, openid)
    assert _orders(app, sid) == 0
    drive(app, lambda: status_of_attempt(app, sid) == S.PENDING_REVIEW)

    desk = new_page(DESK)
    staff_sign_in(desk, base)
    staff_decides(desk, base, sid)
    assert status_of_attempt(app, sid) == S.APPROVED_UNPAID
    run_due(app)

    with app.app_context():
        batch = db.session.get(Batch, db.session.get(Submission, sid).batch_id)  # type: ignore[union-attr]
        assert batch is not None and batch.pay_closes_at is not None
        closes = f"{batch.pay_closes_at.astimezone(demo_data.BEIJING):%-m月%-d日%H:%M}"
        db.session.remove()
    card = chat_card(phone, 1)
    expect(card_value(card, "审核结果")).to_have_text("审核通过")
    expect(card_value(card, "说明")).to_have_text(f"请于{closes}前缴费")
    # A template card's link is WeChat's own 详情; here it opens the pay page.
    pay_link = card.get_by_role("link", name="详情")
    expect(pay_link).to_have_attribute("href", f"{base}/h5/pay/{sid}")
    pay_link.click()
    frame = in_browser(phone, f"/h5/pay/{sid}")
    expect(frame.locator("#pay-window")).to_contain_text(closes)
    pay_approved_on_the_sheet(app, phone, frame, 50)
    drive(app, lambda: status_of_attempt(app, sid) == S.APPROVED)
    expect(frame.locator("#result")).to_have_attribute("data-status", "approved")
    images_loaded(frame)
    expect(phone.locator(".msg.out").last).to_contain_text("报名已完成")
    assert any("报名已完成" in text for text in chat_texts(app, openid))
    _shot(phone, "wuhan_paid")


def test_wuhan_unpaid_past_the_window_is_void(
    app: Flask, live_server: Any, new_page: Callable[..., Page]
) -> None:
    base = live_server.url
    load_demo(app)
    phone = new_page(PHONE)
    openid, frame = _walk_to_photo(app, phone, base, "10496", NUMBERS[2])
    sid = _submit_for_review(app, frame, openid)
    drive(app, lambda: status_of_attempt(app, sid) == S.PENDING_REVIEW)
    desk = new_page(DESK)
    staff_sign_in(desk, base)
    staff_decides(desk, base, sid)
    run_due(app)

    # The pay window closes with the approval unpaid; the periodic task voids it, and says so once.
    with app.app_context():
        attempt = db.session.get(Submission, sid)
        assert attempt is not None
        attempt.batch.pay_closes_at = utcnow() - timedelta(minutes=1)
        db.session.commit()
        void_overdue_approvals()
        void_overdue_approvals()
        db.session.remove()
    assert status_of_attempt(app, sid) == S.VOID
    run_due(app)
    assert sum("报名无效" in text for text in chat_texts(app, openid)) == 1

    void_card = chat_card(phone, 2)
    expect(card_value(void_card, "审核结果")).to_have_text("报名无效")
    void_card.get_by_role("link", name="详情").click()
    status = in_browser(phone, "/h5/status")
    expect(status.get_by_test_id("status-label")).to_have_text("逾期未缴费，报名无效")
    expect(status.get_by_test_id("void-notice")).to_contain_text("逾期未缴费，报名无效")
    expect(status.get_by_test_id("pay-link")).to_have_count(0)
    _shot(phone, "wuhan_void")


# --- 新疆自考: review first, pledge at submission, locked at approval --------------------------------


def test_xinjiang_pledges_is_approved_locked_chooses_a_course_then_pays(
    app: Flask, live_server: Any, new_page: Callable[..., Page], browser_errors: Any
) -> None:
    browser_errors.expect_status(422, "/api/v1/me/identity")
    app.config["WECHAT_PAY_SANDBOX_NOTIFY_THREAD"] = False
    base = live_server.url
    load_demo(app)
    phone = new_page(PHONE)
    openid, frame = _walk_to_photo(app, phone, base, "xj-zikao", NUMBERS[3])
    expect(frame.locator("#pledge-text")).to_have_text("我担保以上信息真实准确")
    submit = frame.get_by_role("button", name="提交审核")
    submit.click()  # unticked: refused beside the pledge, nothing submitted
    expect(frame.locator("#pledge-error")).to_have_text("请阅读并勾选承诺。")
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Submission)) == 0
        db.session.remove()
    frame.locator("#pledge").check()
    sid = _submit_for_review(app, frame, openid)
    drive(app, lambda: status_of_attempt(app, sid) == S.PENDING_REVIEW)

    desk = new_page(DESK)
    staff_sign_in(desk, base)
    staff_decides(desk, base, sid)
    assert status_of_attempt(app, sid) == S.APPROVED_UNPAID
    run_due(app)

    locked = _changing_identity_refused(phone, NUMBERS[3], form_shown=False)
    expect(locked.get_by_test_id("locked-notice")).to_be_visible()

    card = chat_card(phone, 1)
    expect(card_value(card, "审核结果")).to_have_text("审核通过")
    card.get_by_role("link", name="详情").click()
    # 报考 comes before paying: the pay page sends a candidate without courses to choose them first.
    frame = in_browser(phone, "/h5/registration")
    expect(frame.locator("#registration-page")).to_have_attribute("data-state", "editing")
    frame.locator("#district").select_option("乌鲁木齐市")
    frame.locator("#county").select_option("天山区")
    frame.locator("#major").select_option("530601")
    frame.locator('input[data-course="00024"]').check()
    expect(frame.locator("#total")).to_have_text("35 元")
    frame.get_by_label("本人担保以上信息真实准确").check()
    frame.get_by_role("button", name="提交").click()
    frame.get_by_role("link", name="去缴费").click()
    frame = in_browser(phone, f"/h5/pay/{sid}")
    pay_approved_on_the_sheet(app, phone, frame, 35)
    drive(app, lambda: status_of_attempt(app, sid) == S.APPROVED)
    expect(frame.locator("#result")).to_have_attribute("data-status", "approved")
    images_loaded(frame)
    expect(phone.locator(".msg.out").last).to_contain_text("报名已完成")
    _shot(phone, "xinjiang_paid")


# --- 西北工业大学: free ----------------------------------------------------------------------------


def test_nwpu_free_submit_and_approve_without_any_order(
    app: Flask, live_server: Any, new_page: Callable[..., Page]
) -> None:
    base = live_server.url
    load_demo(app)
    phone = new_page(PHONE)
    openid, frame = _walk_to_photo(app, phone, base, "10699", NUMBERS[0])
    expect(frame.locator("#submit-terms")).to_contain_text("免费")
    sid = _submit_for_review(app, frame, openid)
    assert status_of_attempt(app, sid) == S.PENDING_REVIEW  # no identity check: straight to review

    desk = new_page(DESK)
    staff_sign_in(desk, base)
    staff_decides(desk, base, sid)
    assert status_of_attempt(app, sid) == S.APPROVED
    run_due(app)

    card = chat_card(phone, 1)
    expect(card_value(card, "审核结果")).to_have_text("审核通过")
    card.get_by_role("link", name="详情").click()
    status = in_browser(phone, "/h5/status")
    expect(status.get_by_test_id("status-label")).to_have_text("通过")
    expect(status.get_by_test_id("receipt-link")).to_be_visible()
    expect(phone.locator("#paysheet")).to_be_hidden()
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(PaymentOrder)) == 0
        db.session.remove()
    _shot(phone, "nwpu_approved")


# --- 重庆科技学院: free, returned, fixed, approved, then the paper photo -----------------------------


def test_cqust_returned_fixed_resubmitted_free_then_paper_photo(
    app: Flask, live_server: Any, new_page: Callable[..., Page]
) -> None:
    base = live_server.url
    load_demo(app)
    phone = new_page(PHONE)
    openid, frame = _walk_to_photo(app, phone, base, "11551", NUMBERS[1])
    first = _submit_for_review(app, frame, openid)

    desk = new_page(DESK)
    staff_sign_in(desk, base)
    staff_decides(desk, base, first, "人像不清晰", "请在光线均匀处重新拍摄")
    assert status_of_attempt(app, first) == S.RETURNED
    run_due(app)

    card = chat_card(phone, 1)
    expect(card_value(card, "审核结果")).to_have_text("审核驳回")
    card.get_by_role("link", name="详情").click()
    status = in_browser(phone, "/h5/status")
    expect(status.get_by_test_id("status-reason")).to_contain_text("请在光线均匀处重新拍摄")
    status.get_by_test_id("resubmit-link").click()
    frame = in_browser(phone, "/h5/photo")
    # Free: the new photo is submitted again without any fee.
    expect(frame.locator("#rejection-next")).to_contain_text("通过检查后再提交审核。")
    expect(frame.locator("#rejection-next")).not_to_contain_text("缴费")
    upload_passing(frame, photo_on("blue", mirrored=True))
    second = _submit_for_review(app, frame, openid)
    assert second != first and status_of_attempt(app, second) == S.PENDING_REVIEW

    staff_decides(desk, base, second)
    assert status_of_attempt(app, second) == S.APPROVED
    run_due(app)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(PaymentOrder)) == 0
        school = db.session.scalar(select(School).where(School.code == "11551"))
        assert school is not None
        db.session.remove()

    after = DEMO["11551"].after_approval or ""
    approved = chat_card(phone, 2)
    expect(card_value(approved, "审核结果")).to_have_text("审核通过")
    expect(card_value(approved, "说明")).to_contain_text("蓝底两寸")
    approved.get_by_role("link", name="详情").click()
    status = in_browser(phone, "/h5/status")
    expect(status.get_by_test_id("status-label")).to_have_text("通过")
    expect(status.get_by_test_id("after-approval")).to_contain_text(after.splitlines()[0])
    expect(status.get_by_test_id("after-approval")).to_contain_text("王老师 023-65022130")
    _shot(phone, "cqust_approved")
