"""One walk per demo school, end to end, in headless Chromium on the sandbox phone (390×844), with the
demo data exactly as `make run` loads it: each school's batch with its example form and documents
(app/data/batch_forms/). A student follows the account, binds, links the school's open batch, reads its
须知, fills the form (a `when` and a repeating group where the school has them), uploads each kind of
file it asks for (an image, a PDF, a Word file where allowed), is refused once (a wrong answer or a wrong
file, in Chinese at the field or slot), uploads the photo and goes through the batch's own flow. A
reviewer on the real staff pages (1366×900) sends back one field and one document with a reason each (a
per-item 驳回); the student sees the two reasons, fixes only those (the rest is read-only), resubmits
with the same photo and is approved; the walk checks the pushes in the chat and ends in the state the
school's manual describes:

- 湖南师范大学 (pay_first, 2 元 per attempt, identity check, lock_on=confirm): jpg scans only (a PDF
  refused); pay on the sheet → checked → 驳回 手机号码 and 本科毕业证 → pays again → 通过 → the push asks to
  confirm and sign → /h5/confirm: pledge + drawn signature → the receipt shows it. The identity cannot
  change once approved, before the confirmation and after it.
- 武汉轻工大学 (review_first): 考籍号 for 自考 (11 digits refused); 提交审核 unpaid → 驳回 考籍号 and the
  成绩证明 → 通过 with the pay window and 去缴费 → paid once → 报名已完成; and an approval left unpaid past
  the window → 逾期未缴费，报名无效, pushed once.
- 新疆自考 (review_first, lock_on=approve): the ID card's front fills 姓名、性别、族别、出生日期 (one
  corrected); a wrong 邮箱 refused; 护理学 asks for its materials; the pledge is required at submission;
  驳回 户籍 and the materials → 通过 → the identity is locked; paid → approved.
- 西北工业大学 (free): 专升本 and 免试 add their slots, two 家庭关系 rows, a Word 备案表 (a PDF refused);
  驳回 家庭关系 and the 毕业证 → 通过; never a pay sheet, never an order.
- 重庆科技学院 (free, after_approval): 自考生 and 大学英语四级 show their fields, four thesis documents (a
  program named .pdf refused); 驳回 平均成绩, the 查重报告 and the photo → a new photo → resubmitted for
  free → 通过, and the push and the status page say to post the paper photo.

Notifications are delivered and the worker is run by the test (no background threads). Each walk
leaves a screenshot of its end under var/screenshots/.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from idcards import FONT_MISSING, card_photos, font_available
from photo_students import NUMBERS
from playwright.sync_api import Frame, Page, expect
from sqlalchemy import func, select

from app.extensions import db
from app.integrations import photo_storage, pii_keyring
from app.jobs.payments import void_overdue_approvals
from app.jobs.worker import run_due
from app.services import applications, demo_data
from models import Batch, PaymentOrder, School, Submission, SubmissionStatus, User, utcnow
from tests.browser.conftest import DESK, PHONE
from tests.browser.walks import (
    EXECUTABLE,
    SCREENSHOTS,
    bind_and_link,
    card_value,
    chat_card,
    chat_texts,
    docx_file,
    draw_signature,
    drive,
    fill_form,
    fill_identity,
    fix_returned_document,
    fix_returned_field,
    follow,
    form_refuses,
    image_file,
    images_loaded,
    in_browser,
    load_demo,
    open_in_wechat,
    pay_approved_on_the_sheet,
    pay_on_the_sheet,
    pdf_file,
    photo_on,
    read_notice,
    return_items,
    save_form,
    staff_decides,
    staff_sign_in,
    status_of_attempt,
    upload_and_start,
    upload_document,
    upload_passing,
    upload_refused,
)
from tests.form_students import jpeg

S = SubmissionStatus
DEMO = {school.code: school for school in demo_data.SCHOOLS}
CHANGE_REFUSED = re.compile(r"(不能|无法)(再)?修改")
XINJIANG_CARD = 13  # the seed of the synthetic card the 新疆自考 student photographs (tests/idcards.py)


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


def _user_id(openid: str) -> int:
    """Inside an app context."""
    found = db.session.scalar(select(User.id).where(User.openid == openid))
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


def _linked(app: Flask, phone: Page, base: str, code: str, number: str, name: str = "张三") -> str:
    """Follow → bind → link `code`'s open batch → its 须知: the openid."""
    demo = DEMO[code]
    openid = follow(app, phone, base, f"学生{code}")
    bind_and_link(phone, name, number, demo.province, code)
    read_notice(phone, demo.notice.splitlines()[0])
    return openid


def _form(phone: Page) -> Frame:
    frame = open_in_wechat(phone, "/h5/form")
    expect(frame.locator("#form-page")).to_have_attribute("data-state", "draft")
    return frame


def _documents(phone: Page) -> Frame:
    frame = open_in_wechat(phone, "/h5/documents")
    expect(frame.locator("#documents-page")).to_have_attribute("data-state", "slots")
    return frame


def _photo(phone: Page, code: str) -> Frame:
    """A passing photo on /h5/photo, once the form and the files are complete: ready to submit."""
    frame = open_in_wechat(phone, "/h5/photo")
    upload_passing(frame, photo_on(DEMO[code].spec.background))
    return frame


def _resubmit(phone: Page, button: str) -> Frame:
    """/h5/photo after a 驳回 that kept the photo: it says so; `button` sends the same photo again."""
    frame = open_in_wechat(phone, "/h5/photo")
    expect(frame.locator("#kept-photo")).to_contain_text("照片不用重新上传")
    expect(frame.locator("#rejection")).to_have_count(0)
    expect(frame.locator("#result")).to_have_attribute("data-passed", "true")
    images_loaded(frame)
    frame.get_by_role("button", name=button).click()
    return frame


def _returned(phone: Page, count: int, *reasons: str) -> Frame:
    """The 驳回 push; its 详情 opens /h5/status, which lists the items sent back with their reasons."""
    card = chat_card(phone, count)
    expect(card_value(card, "审核结果")).to_have_text("审核驳回")
    card.get_by_role("link", name="详情").click()
    status = in_browser(phone, "/h5/status")
    expect(status.get_by_test_id("returned-items")).to_be_visible()
    for reason in reasons:
        expect(status.get_by_test_id("status")).to_contain_text(reason)
    return status


def _orders(app: Flask, submission_id: int) -> int:
    with app.app_context():
        count = db.session.scalar(
            select(func.count()).select_from(PaymentOrder).where(PaymentOrder.submission_id == submission_id)
        )
        db.session.remove()
    return int(count or 0)


# --- 湖南师范大学: pay first (per attempt), confirm and sign ------------------------------------------


def test_hunan_fills_uploads_pays_is_returned_pays_again_approved_then_confirms_and_signs(
    app: Flask, live_server: Any, new_page: Callable[..., Page], browser_errors: Any
) -> None:
    browser_errors.expect_status(422, "/api/v1/me/identity")
    browser_errors.expect_status(422, "/api/v1/me/documents/diploma")
    app.config["WECHAT_PAY_SANDBOX_NOTIFY_THREAD"] = False
    base = live_server.url
    load_demo(app)
    phone = new_page(PHONE)
    openid = _linked(app, phone, base, "10542", NUMBERS[0])

    form = _form(phone)
    fill_form(form, {"category": "自考生"})
    expect(form.locator('[data-field="exam_no"]')).to_be_visible()
    fill_form(form, {"category": "成教生"})  # 成教生 give their 学号 instead
    expect(form.locator('[data-field="exam_no"]')).to_be_hidden()
    fill_form(
        form, {"student_no": "2023050101", "mobile": "13800138000", "address": "长沙市岳麓区麓山路36号"}
    )
    save_form(form)

    docs = _documents(phone)
    upload_document(docs, "id_card_front", image_file("front.jpg"))
    upload_document(docs, "id_card_back", image_file("back.png"))  # an image either way: stored as jpg
    upload_refused(docs, "diploma", pdf_file("diploma.pdf"), "这一项只接受")  # 原件电子扫描图片，jpg 格式
    upload_document(docs, "diploma", image_file("diploma.jpg", (1200, 850)))
    upload_document(docs, "english_certificate", image_file("cet4.jpg"))
    upload_document(docs, "graduate_record", pdf_file("record.pdf"))

    frame = open_in_wechat(phone, "/h5/photo")
    upload_and_start(frame)
    first = pay_on_the_sheet(app, phone, frame, "school_walk_hunan")
    drive(app, lambda: status_of_attempt(app, first) == S.PENDING_REVIEW)
    expect(frame.locator("#result")).to_have_attribute("data-status", "pending_review")
    images_loaded(frame)

    desk = new_page(DESK)
    staff_sign_in(desk, base)
    return_items(desk, base, first, {"field:mobile": "号码不对", "document:diploma": "毕业证不清晰"})
    assert status_of_attempt(app, first) == S.RETURNED
    run_due(app)
    _returned(phone, 1, "号码不对", "毕业证不清晰")
    fix_returned_field(phone, "mobile", "号码不对", {"mobile": "13900139000"}, locked="category")
    fix_returned_document(
        phone,
        "diploma",
        "毕业证不清晰",
        image_file("diploma2.jpg", (1200, 850), (210, 200, 170)),
        locked="id_card_front",
    )

    # 技术服务费 2 元/次: the same photo, paid again.
    frame = _resubmit(phone, "开始核验")
    sid = pay_on_the_sheet(app, phone, frame, "school_walk_hunan_again")
    assert sid != first and _orders(app, first) == _orders(app, sid) == 1
    drive(app, lambda: status_of_attempt(app, sid) == S.PENDING_REVIEW)
    staff_decides(desk, base, sid)
    assert status_of_attempt(app, sid) == S.APPROVED
    run_due(app)

    card = chat_card(phone, 2)
    expect(card_value(card, "审核结果")).to_have_text("审核通过")
    expect(card_value(card, "说明")).to_contain_text("确认信息并签名")
    details = card.get_by_role("link", name="详情")
    expect(details).to_have_attribute("href", f"{base}/h5/confirm/{sid}")
    results = [t for t in chat_texts(app, openid) if t.startswith("审核结果通知")]
    assert len(results) == 2 and [t for t in results if "确认信息并签名" in t] == results[1:]

    # Approved, not yet confirmed: what the reviewer approved is what the student confirms.
    _changing_identity_refused(phone, NUMBERS[0], form_shown=True)

    chat_card(phone, 2)
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


def test_wuhan_fills_is_returned_fixes_is_approved_then_pays_in_the_window(
    app: Flask, live_server: Any, new_page: Callable[..., Page], browser_errors: Any
) -> None:
    browser_errors.expect_status(422, "/api/v1/me/form")
    app.config["WECHAT_PAY_SANDBOX_NOTIFY_THREAD"] = False
    base = live_server.url
    load_demo(app)
    phone = new_page(PHONE)
    openid = _linked(app, phone, base, "10496", NUMBERS[1])

    form = _form(phone)
    fill_form(form, {"category": "成考"})
    expect(form.locator('[data-field="student_no"]')).to_be_visible()
    fill_form(form, {"category": "自考"})  # 自考 students give their 考籍号
    expect(form.locator('[data-field="student_no"]')).to_be_hidden()
    fill_form(form, {"exam_registration_no": "42010312345", "level": "专升本", "language": "英语"})
    fill_form(form, {"mobile": "13800138000"})
    form_refuses(form, "exam_registration_no", "「考籍号」格式不对：考籍号为 12 位数字")
    fill_form(form, {"exam_registration_no": "420103123456"})
    save_form(form)

    docs = _documents(phone)
    upload_document(docs, "id_card_front", image_file("front.jpg"))
    upload_document(docs, "id_card_back", image_file("back.jpg"))
    upload_document(docs, "english_result", pdf_file("cet.pdf"))
    upload_document(docs, "english_result", image_file("score.png"))  # up to three files

    frame = _photo(phone, "10496")
    sid = _submit_for_review(app, frame, openid)
    assert _orders(app, sid) == 0
    drive(app, lambda: status_of_attempt(app, sid) == S.PENDING_REVIEW)

    desk = new_page(DESK)
    staff_sign_in(desk, base)
    items = {"field:exam_registration_no": "考籍号有误", "document:english_result": "成绩证明不全"}
    return_items(desk, base, sid, items)
    run_due(app)
    _returned(phone, 1, "考籍号有误", "成绩证明不全")
    fix_returned_field(
        phone, "exam_registration_no", "考籍号有误", {"exam_registration_no": "420103123457"}, locked="mobile"
    )
    fix_returned_document(
        phone, "english_result", "成绩证明不全", pdf_file("cet-all.pdf", 3), locked="id_card_back"
    )
    _resubmit(phone, "提交审核").wait_for_url(re.compile(r"/h5/status$"))
    again = _latest_attempt(app, openid)
    assert again != sid
    drive(app, lambda: status_of_attempt(app, again) == S.PENDING_REVIEW)
    sid = again

    staff_decides(desk, base, sid)
    assert status_of_attempt(app, sid) == S.APPROVED_UNPAID
    run_due(app)

    with app.app_context():
        batch = db.session.get(Batch, db.session.get(Submission, sid).batch_id)  # type: ignore[union-attr]
        assert batch is not None and batch.pay_closes_at is not None
        closes = f"{batch.pay_closes_at.astimezone(demo_data.BEIJING):%-m月%-d日%H:%M}"
        db.session.remove()
    card = chat_card(phone, 2)
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
    with app.app_context():  # the fee once, for the approved attempt only
        assert db.session.scalar(select(func.count()).select_from(PaymentOrder)) == 1
        db.session.remove()
    _shot(phone, "wuhan_paid")


def _answered_by_the_service(app: Flask, openid: str) -> None:
    """武汉轻工大学's form and files, saved through the service as the pages would (the walk above goes
    through the pages)."""
    with app.app_context():
        user_id = _user_id(openid)
        now = datetime.now(UTC)
        answers = {"category": "成考", "student_no": "2023A01", "level": "专升本", "language": "英语"}
        answers["mobile"] = "13800138000"
        applications.save_answers(db.session, pii_keyring(), user_id, answers, now)
        for slot in ("id_card_front", "id_card_back", "english_result"):
            applications.upload(db.session, photo_storage(), user_id, slot, jpeg(), "a.jpg", now)
        db.session.remove()


def test_wuhan_unpaid_past_the_window_is_void(
    app: Flask, live_server: Any, new_page: Callable[..., Page]
) -> None:
    base = live_server.url
    load_demo(app)
    phone = new_page(PHONE)
    openid = _linked(app, phone, base, "10496", NUMBERS[2])
    _answered_by_the_service(app, openid)
    frame = _photo(phone, "10496")
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


# --- 新疆自考: review first, ID card autofill, pledge at submission, locked at approval ---------------


@pytest.mark.skipif(not font_available(), reason=FONT_MISSING)
def test_xinjiang_card_fills_the_form_is_returned_approved_locked_chooses_a_course_then_pays(
    app: Flask, live_server: Any, new_page: Callable[..., Page], browser_errors: Any
) -> None:
    browser_errors.expect_status(422, "/api/v1/me/identity")
    browser_errors.expect_status(422, "/api/v1/me/form")
    app.config["WECHAT_PAY_SANDBOX_NOTIFY_THREAD"] = False
    base = live_server.url
    load_demo(app)
    ident, front, back = card_photos(XINJIANG_CARD)
    phone = new_page(PHONE)
    openid = _linked(app, phone, base, "xj-zikao", ident.number, ident.name)

    # 系统会自动提取身份证上的姓名、…、性别、民族、出生年月信息并自动填充: the front first.
    docs = _documents(phone)
    expect(docs.locator('[data-slot="special_100701"]')).to_have_count(0)  # no special major yet
    upload_document(docs, "id_card_front", {"name": "front.jpg", "mimeType": "image/jpeg", "buffer": front})
    filled = docs.locator('[data-slot="id_card_front"] [data-filled]')
    expect(filled).to_contain_text("已根据身份证自动填写：「姓名」「性别」「族别」「出生日期」")
    expect(docs.locator('[data-slot="id_card_front"] [data-reading-warning]')).to_have_count(0)
    upload_document(docs, "id_card_back", {"name": "back.jpg", "mimeType": "image/jpeg", "buffer": back})

    form = _form(phone)
    expect(form.locator("#f-name")).to_have_value(ident.name)
    expect(form.locator("#f-gender")).to_have_value(ident.sex)
    expect(form.locator("#f-birth_date")).to_have_value(ident.birth.isoformat())
    expect(form.locator("#f-ethnicity")).to_have_value(ident.ethnicity)
    expect(form.locator('[data-autofilled="ethnicity"]')).to_have_text("✎ 由身份证识别自动填写，请核对")
    # 若识别有误，考生可手动进行修改: the student writes the 族别 as the school's form has it.
    corrected = ident.ethnicity if ident.ethnicity.endswith("族") else f"{ident.ethnicity}族"
    fill_form(
        form, {"ethnicity": corrected, "hukou": "城镇", "mobile": "13800138000", "email": "kaosheng@qq"}
    )
    fill_form(form, {"prefecture": "乌鲁木齐市", "political_status": "群众", "education": "大专"})
    fill_form(form, {"occupation": "职员", "special_major": "护理学(100701)"})
    form_refuses(form, "email", "「邮箱」")
    fill_form(form, {"email": "kaosheng@qq.com"})
    save_form(form)

    docs = _documents(phone)  # 护理学 asks for its materials
    upload_document(docs, "special_100701", pdf_file("nurse.pdf"))
    upload_document(docs, "special_100701", image_file("licence.jpg"))

    frame = _photo(phone, "xj-zikao")
    expect(frame.locator("#pledge-text")).to_have_text("我担保以上信息真实准确")
    submit = frame.get_by_role("button", name="提交审核")
    submit.click()  # unticked: refused beside the pledge, nothing submitted
    expect(frame.locator("#pledge-error")).to_have_text("请阅读并勾选承诺。")
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Submission)) == 0
        db.session.remove()
    frame.locator("#pledge").check()
    first = _submit_for_review(app, frame, openid)
    drive(app, lambda: status_of_attempt(app, first) == S.PENDING_REVIEW)

    desk = new_page(DESK)
    staff_sign_in(desk, base)
    return_items(desk, base, first, {"field:hukou": "户籍类型不对", "document:special_100701": "材料不全"})
    run_due(app)
    _returned(phone, 1, "户籍类型不对", "材料不全")
    fix_returned_field(phone, "hukou", "户籍类型不对", {"hukou": "农村"}, locked="prefecture")
    fix_returned_document(
        phone, "special_100701", "材料不全", pdf_file("nurse-all.pdf", 3), locked="id_card_front"
    )
    frame = open_in_wechat(phone, "/h5/photo")
    expect(frame.locator("#kept-photo")).to_contain_text("照片不用重新上传")
    if not frame.locator("#pledge").is_checked():
        frame.locator("#pledge").check()
    sid = _submit_for_review(app, frame, openid)
    assert sid != first
    drive(app, lambda: status_of_attempt(app, sid) == S.PENDING_REVIEW)

    staff_decides(desk, base, sid)
    assert status_of_attempt(app, sid) == S.APPROVED_UNPAID
    run_due(app)
    with app.app_context():
        answers = applications.form(db.session, pii_keyring(), _user_id(openid)).answers
        assert answers["ethnicity"] == corrected and answers["hukou"] == "农村"
        db.session.remove()

    locked = _changing_identity_refused(phone, ident.number, form_shown=False)
    expect(locked.get_by_test_id("locked-notice")).to_be_visible()

    card = chat_card(phone, 2)
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
    assert _orders(app, first) == 0 and _orders(app, sid) == 1  # the returned attempt never paid
    _shot(phone, "xinjiang_paid")


# --- 西北工业大学: free ----------------------------------------------------------------------------

NWPU_FORM: dict[str, Any] = {
    "level": "专升本",
    "political_status": "群众",
    "native_place": "陕西西安",
    "mobile": "13800138000",
    "qq": "123456789",
    "occupation": "工程师",
    "email": "student@example.com",
    "prior_education": "大学专科",
    "admission": "免试",
    "postcode": "710072",
    "address": "西安市碑林区友谊西路127号",
    "family": [
        {"relation": "母亲", "name": "王芳", "employer": "西安市第一中学"},
        {"relation": "配偶", "name": "李明", "phone": "13700137000"},
    ],
    "employer": "西安某科技有限公司",
    "education_history": [
        {"period": "2018.09-2021.06", "school": "西安职业技术学院", "degree": "大学专科毕业"}
    ],
    "work_history": [
        {"period": "2021.07-至今", "employer": "西安某科技有限公司", "position": "技术员", "witness": "刘强"}
    ],
}


def test_nwpu_fills_uploads_is_returned_fixes_and_is_approved_free_without_any_order(
    app: Flask, live_server: Any, new_page: Callable[..., Page], browser_errors: Any
) -> None:
    browser_errors.expect_status(422, "/api/v1/me/documents/registration_record")
    base = live_server.url
    load_demo(app)
    phone = new_page(PHONE)
    openid = _linked(app, phone, base, "10699", NUMBERS[0])

    form = _form(phone)
    fill_form(form, NWPU_FORM)  # two 家庭关系 rows: the second added with 添加一行
    expect(form.locator('[data-group="family"] .group-row')).to_have_count(2)
    save_form(form)

    # 专升本 adds the 备案表, 免试 the 免试资料 (the manual's 图 6 and 图 7).
    docs = _documents(phone)
    upload_document(docs, "id_card_emblem", image_file("emblem.jpg"))
    upload_document(docs, "id_card_portrait", image_file("portrait.jpg"))
    upload_document(docs, "diploma", image_file("diploma.png", (1600, 1100)))
    upload_refused(docs, "registration_record", pdf_file("record.pdf"), "这一项只接受")
    upload_document(docs, "registration_record", docx_file("备案表.docx"))
    upload_document(docs, "exemption", image_file("exemption.jpg"))

    frame = _photo(phone, "10699")
    expect(frame.locator("#submit-terms")).to_contain_text("免费")
    first = _submit_for_review(app, frame, openid)
    assert status_of_attempt(app, first) == S.PENDING_REVIEW  # no identity check: straight to review

    desk = new_page(DESK)
    staff_sign_in(desk, base)
    answers = desk.locator("#application")
    desk.goto(f"{base}/review/submissions/{first}")
    expect(answers.locator('[data-group="family"]')).to_contain_text("母亲")
    expect(desk.locator("[data-doc]")).to_have_count(5)
    images_loaded(desk)
    return_items(desk, base, first, {"field:family": "缺少联系电话", "document:diploma": "请上传原件"})
    run_due(app)
    _returned(phone, 1, "缺少联系电话", "请上传原件")
    family = [{**NWPU_FORM["family"][0], "phone": "13600136000"}, NWPU_FORM["family"][1]]
    fix_returned_field(phone, "family", "缺少联系电话", {"family": family}, locked="qq")
    fix_returned_document(
        phone, "diploma", "请上传原件", image_file("diploma.jpg", (1600, 1100)), locked="exemption"
    )
    _resubmit(phone, "提交审核").wait_for_url(re.compile(r"/h5/status$"))
    sid = _latest_attempt(app, openid)
    assert sid != first and status_of_attempt(app, sid) == S.PENDING_REVIEW

    staff_decides(desk, base, sid)
    assert status_of_attempt(app, sid) == S.APPROVED
    run_due(app)

    card = chat_card(phone, 2)
    expect(card_value(card, "审核结果")).to_have_text("审核通过")
    card.get_by_role("link", name="详情").click()
    status = in_browser(phone, "/h5/status")
    expect(status.get_by_test_id("status-label")).to_have_text("通过")
    expect(status.get_by_test_id("receipt-link")).to_be_visible()
    expect(phone.locator("#paysheet")).to_be_hidden()
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(PaymentOrder)) == 0
        family_saved = applications.form(db.session, pii_keyring(), _user_id(openid)).answers["family"]
        assert [row.get("phone") for row in family_saved] == ["13600136000", "13700137000"]
        db.session.remove()
    _shot(phone, "nwpu_approved")


# --- 重庆科技学院: free, returned, fixed, approved, then the paper photo -----------------------------


def test_cqust_fills_uploads_is_returned_with_the_photo_resubmits_free_then_paper_photo(
    app: Flask, live_server: Any, new_page: Callable[..., Page], browser_errors: Any
) -> None:
    browser_errors.expect_status(422, "/api/v1/me/documents/thesis")
    base = live_server.url
    load_demo(app)
    phone = new_page(PHONE)
    openid = _linked(app, phone, base, "11551", NUMBERS[1])

    form = _form(phone)
    fill_form(form, {"mobile": "13800138000", "category": "自考生", "exam_no": "010119100123"})
    expect(form.locator('[data-field="student_no"]')).to_be_hidden()
    fill_form(form, {"enrolled_on": "2021-04-10", "graduated_on": "2025-06-30", "major": "工商管理"})
    fill_form(
        form, {"average_score": "78.50", "thesis_score": "良好", "thesis_title": "小微企业融资问题研究"}
    )
    fill_form(
        form, {"thesis_keywords": "财务管理；融资", "advisor": "陈老师", "advisor_contact": "023-65020000"}
    )
    fill_form(form, {"certificate": "大学英语四级"})  # each kind of certificate has its own number
    expect(form.locator('[data-field="pets_no"]')).to_be_hidden()
    fill_form(form, {"cet4_no": "500012345678901"})
    save_form(form)

    docs = _documents(phone)
    program = {"name": "论文.pdf", "mimeType": "application/pdf", "buffer": EXECUTABLE}
    upload_refused(docs, "thesis", program, "文件类型与内容不符")
    upload_document(docs, "thesis", docx_file("论文.docx"))
    upload_document(docs, "plagiarism_report", pdf_file("查重报告.pdf"))
    upload_document(docs, "proposal", pdf_file("开题报告.pdf", 1))
    upload_document(docs, "assignment", docx_file("任务书.docx"))
    upload_document(docs, "admission_ticket", image_file("准考证.jpg"))  # 自考学生上传准考证图片
    upload_document(docs, "transcript", image_file("成绩单.png", (1000, 1400)))
    upload_document(docs, "certificate_scan", pdf_file("四级成绩单.pdf", 1))

    frame = _photo(phone, "11551")
    first = _submit_for_review(app, frame, openid)

    desk = new_page(DESK)
    staff_sign_in(desk, base)
    items = {
        "field:average_score": "请除去论文成绩再算",
        "document:plagiarism_report": "查重报告不全",
        "photo:photo": "人像不清晰",
    }
    return_items(desk, base, first, items, "请在光线均匀处重新拍摄")
    assert status_of_attempt(app, first) == S.RETURNED
    run_due(app)

    status = _returned(phone, 1, "请除去论文成绩再算", "查重报告不全", "人像不清晰")
    expect(status.get_by_test_id("status-reason")).to_contain_text("请在光线均匀处重新拍摄")
    fix_returned_field(
        phone, "average_score", "请除去论文成绩再算", {"average_score": "77.25"}, locked="major"
    )
    fix_returned_document(
        phone, "plagiarism_report", "查重报告不全", pdf_file("查重.pdf", 3), locked="thesis"
    )
    frame = open_in_wechat(phone, "/h5/photo")
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
