"""Steps of the student and reviewer walks that several browser tests take: a student on the sandbox
phone (following, opening pages in WeChat, paying on the sheet), the result card and its details."""

from __future__ import annotations

import io
import re
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
from flask import Flask
from photo_students import FIXTURES
from PIL import Image
from playwright.sync_api import FilePayload, Frame, FrameLocator, Locator, Page, Request, Response, expect

from app.extensions import db
from app.integrations import redis_client
from app.jobs.worker import run_due
from app.sandbox import phone as phone_view
from app.sandbox import state
from app.sandbox.pay import notifications as sandbox_notify
from app.services import demo_data
from media.spec import BACKGROUND_RGB
from models import Submission, SubmissionStatus
from tests import form_students
from tests.factories import STAFF_PASSWORD

PHONE_PHOTO = FIXTURES / "phone_4000x3000.jpg"
SHOTS = "/tmp"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"  # git-ignored; a CI artifact


def drive(app: Flask, done: Callable[[], bool], deadline_s: float = 30) -> None:
    """Deliver WeChat Pay's notifications and run the worker until `done()`, or fail at the deadline."""
    deadline = time.monotonic() + deadline_s
    while not done():
        assert time.monotonic() < deadline, "the flow did not finish in time"
        with app.app_context():
            sandbox_notify.deliver_due_notifications(redis_client())
        run_due(app)


def status_of_attempt(app: Flask, submission_id: int) -> SubmissionStatus:
    with app.app_context():
        attempt = db.session.get(Submission, submission_id)
        assert attempt is not None
        status = SubmissionStatus(attempt.status)
        db.session.remove()
        return status


def open_in_wechat(phone: Page, path: str) -> Frame:
    """Open an H5 page in the phone's "WeChat browser" frame, as a menu link does."""
    phone.evaluate(
        "path => { document.getElementById('browser').hidden = false;"
        " document.getElementById('browser-frame').src = path; }",
        path,
    )
    phone.wait_for_function(
        "path => document.getElementById('browser-frame').contentWindow.location.pathname === path", arg=path
    )
    frame = phone.frame(name="wechat-browser")
    assert frame is not None
    # The path changes when the page commits, before its deferred scripts run: typing before them
    # would go unnoticed.
    frame.wait_for_load_state()
    return frame


def upload_and_start(frame: Frame) -> None:
    frame.locator("#file-album").set_input_files(str(PHONE_PHOTO))
    expect(frame.locator("#result")).to_have_attribute("data-passed", "true", timeout=30_000)
    start = frame.get_by_role("button", name="开始核验")
    expect(start).to_be_visible()
    start.click()


def pay_on_the_sheet(app: Flask, phone: Page, frame: Frame, shot: str) -> int:
    """On /h5/pay/<id> in the frame: 确认支付 → the sandbox sheet → 确认支付; returns the id."""
    frame.wait_for_url(re.compile(r"/h5/pay/\d+$"))
    submission_id = int(frame.url.rsplit("/", 1)[1])
    page = frame.locator("#pay-page")
    expect(page).to_have_attribute("data-mode", "jsapi")
    expect(page).to_have_attribute("data-state", "ready")
    expect(frame.locator("#fee-card")).to_contain_text("2 元")
    phone.screenshot(path=f"{SHOTS}/pay_{shot}_ready.png")
    frame.get_by_role("button", name="确认支付 2 元").click()
    sheet = phone.locator("#paysheet")
    expect(sheet).to_be_visible()
    expect(phone.locator("#paysheet-amount")).to_have_text("¥2.00")
    phone.screenshot(path=f"{SHOTS}/pay_{shot}_sheet.png")
    sheet.get_by_role("button", name="确认支付").click()
    expect(sheet).to_be_hidden()
    with app.app_context():
        delivered = sandbox_notify.deliver_due_notifications(redis_client())
    assert [d.get("status") for d in delivered] == [204], delivered
    # Paid, not verified yet (the worker has not run): 核验中… with the seed's refresh button.
    verifying = frame.locator("#verifying")
    expect(verifying).to_be_visible()
    expect(verifying).to_contain_text("核验中…")
    expect(verifying).to_contain_text("5–6 秒左右，如未显示结果，点击「刷新结果数据」")
    expect(frame.get_by_role("button", name="刷新结果数据")).to_be_visible()
    phone.screenshot(path=f"{SHOTS}/pay_{shot}_verifying.png")
    return submission_id


def phone_with(phone: Page, base: str, openid: str) -> None:
    phone.goto(f"{base}/_sandbox/login-as/{openid}?next=/h5/photo")
    expect(phone).to_have_url(re.compile(re.escape(f"{base}/h5/photo") + r"(#.*)?$"))
    phone.goto(f"{base}/_sandbox/")


def follower(app: Flask, nickname: str) -> str:
    with app.app_context():
        r = redis_client()
        user = state.create_user(r, nickname)
        user["subscribed"] = True
        state.save_user(r, user)
        return str(user["openid"])


def phone_as(phone: Page, base: str, openid: str) -> None:
    """Open the sandbox phone as `openid` (the cookie the 扮演 picker sets)."""
    host = urlsplit(base).hostname
    phone.context.add_cookies(
        [{"name": phone_view.COOKIE, "value": openid, "domain": host, "path": "/_sandbox"}]
    )
    phone.goto(f"{base}/_sandbox/")
    expect(phone.get_by_label("当前用户")).to_have_value(openid)


def result_card(phone: Page, base: str, openid: str) -> Locator:
    """The phone's chat as `openid`, and the one 审核结果通知 card in it."""
    phone_as(phone, base, openid)
    card = phone.locator(".msg.out[data-type=template] .card.template")
    expect(card).to_have_count(1)
    expect(card.locator(".card-title")).to_have_text("审核结果通知")
    return card


def card_value(card: Locator, key: str) -> Locator:
    return card.locator(".card-row", has=card.page.locator(".card-key", has_text=key)).locator(".card-value")


def open_details(phone: Page, card: Locator) -> FrameLocator:
    """Tap the card's 详情: the phone's WeChat browser opens /h5/status, signed in as this student."""
    card.get_by_role("link", name="详情").click()
    expect(phone.get_by_role("region", name="微信内置浏览器")).to_be_visible()
    browser = phone.frame_locator("#browser-frame")
    expect(browser.locator("#status-page")).to_be_visible()
    phone.wait_for_function(
        "() => document.getElementById('browser-frame').contentWindow.location.pathname === '/h5/status'"
    )
    return browser


# --- the demo schools, end to end ------------------------------------------------------------------


def load_demo(app: Flask) -> None:
    """What `make run` loads (`flask demo load` in the sandbox): the five schools, the admin (password
    STAFF_PASSWORD) and the menu push, delivered by the worker."""
    with app.app_context():
        demo_data.load(db.session, STAFF_PASSWORD, push_menu=True)
        db.session.remove()
    run_due(app)


def follow(app: Flask, phone: Page, base: str, nickname: str) -> str:
    """A new sandbox user taps 关注公众号 on the phone; the welcome points to 实名绑定. Returns the openid."""
    with app.app_context():
        openid = str(state.create_user(redis_client(), nickname)["openid"])
    phone_as(phone, base, openid)
    phone.get_by_role("button", name="关注公众号").click()
    expect(phone.locator(".msg.out").last).to_contain_text("实名绑定")
    return openid


def fill_identity(frame: Frame, name: str, number: str) -> None:
    """Type the name and the number, and let every live check answer before going on: a submit that
    leaves the page with a check in flight would abort it (a failed request)."""
    checked = re.compile(r"/api/v1/identity/check$")
    page = frame.page
    in_flight: list[Request] = []

    def note(request: Request) -> None:
        if checked.search(request.url):
            in_flight.append(request)

    page.on("request", note)
    try:
        frame.locator("#name").fill(name)
        number_field = frame.locator("#id_number")
        number_field.fill(number)  # leaving the name checks it; a complete number is checked as typed
        expect(frame.get_by_test_id("id-check")).to_be_visible()
        # Leaving the number checks it again, as a thumb taps outside the keyboard before the button.
        if number_field.evaluate("el => el === document.activeElement"):
            with page.expect_response(lambda r: bool(checked.search(r.url))):
                number_field.blur()
        for request in in_flight:
            request.response()  # waits for its answer
    finally:
        page.remove_listener("request", note)


def bind_and_link(phone: Page, name: str, number: str, province: str, school_code: str) -> Frame:
    """实名绑定 then 关联学校 (the school's open batch) in the phone's WeChat browser."""
    frame = open_in_wechat(phone, "/h5/bind")
    fill_identity(frame, name, number)
    frame.get_by_test_id("bind-submit").click()
    frame.wait_for_url(re.compile(r"/h5/bind\?done=bound$"))
    frame.get_by_test_id("next-step").click()
    frame.wait_for_url(re.compile(r"/h5/school$"))
    expect(frame.locator("#school-page")).to_have_attribute("data-state", "ready")
    frame.select_option("#province", province)
    expect(frame.locator("#city")).not_to_have_value("")  # each demo province has one city: chosen
    frame.select_option("#school", school_code)
    frame.locator("#batch-list input[name=batch]:not([disabled])").check()
    frame.locator("#link-button").click()
    expect(frame.locator("#linked")).to_be_visible()
    return frame


def read_notice(phone: Page, first_line: str) -> Frame:
    """The batch's 须知, acknowledged with 我已阅读: on to the photo page."""
    frame = open_in_wechat(phone, "/h5/notice")
    expect(frame.locator("#notice-text")).to_contain_text(first_line)
    frame.get_by_role("button", name="我已阅读").click()
    frame.wait_for_url(re.compile(r"/h5/photo$"))
    return frame


def photo_on(background: str, source: Path = FIXTURES / "id_ok.jpg", *, mirrored: bool = False) -> bytes:
    """The fixture (shot against the standard light blue) with its wall recoloured to the batch's
    background, as a student standing before that wall would have it; the subject is left alone."""
    picture = Image.open(source).convert("RGB")
    if mirrored:  # another shot of the same person: not the same picture for the duplicate checks
        picture = picture.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    img = np.asarray(picture).astype(np.float32)
    wall = np.array(BACKGROUND_RGB["light_blue"], np.float32)
    distance = np.linalg.norm(img - wall, axis=2)
    # Fully recoloured near the wall's colour, fading out by 70: the JPEG's fringes follow the wall.
    weight = np.clip((70 - distance) / 40, 0, 1)[..., None]
    out = img + weight * (np.array(BACKGROUND_RGB[background], np.float32) - wall)
    buffer = io.BytesIO()
    Image.fromarray(np.clip(out, 0, 255).astype(np.uint8)).save(buffer, "JPEG", quality=92)
    return buffer.getvalue()


def upload_passing(frame: Frame, photo: bytes) -> None:
    """Upload `photo` and wait for its own verdict (the page may still show an earlier photo's)."""
    posted = re.compile(r"/api/v1/me/photos$")
    with frame.page.expect_response(lambda r: bool(posted.search(r.url)) and r.request.method == "POST"):
        frame.locator("#file-album").set_input_files(
            files=[{"name": "IMG_0001.jpg", "mimeType": "image/jpeg", "buffer": photo}]
        )
    expect(frame.locator("#photo-page")).to_have_attribute("data-state", "done", timeout=30_000)
    images_loaded(frame)
    expect(frame.locator("#result")).to_have_attribute("data-passed", "true", timeout=30_000)
    expect(frame.locator("#next-step")).to_be_visible()


def draw_signature(page: Page, scope: Page | Frame) -> None:
    """A scribble across `scope`'s signature pad with the mouse, as a finger writes a name."""
    pad = scope.locator("#signature-pad")
    pad.scroll_into_view_if_needed()
    box = pad.bounding_box()  # in the top page's coordinates, frame or not
    assert box is not None
    x, y, w, h = box["x"], box["y"], box["width"], box["height"]
    points = [(0.1, 0.7), (0.25, 0.2), (0.4, 0.8), (0.55, 0.25), (0.7, 0.75), (0.9, 0.3)]
    page.mouse.move(x + w * points[0][0], y + h * points[0][1])
    page.mouse.down()
    for px, py in points[1:]:
        page.mouse.move(x + w * px, y + h * py, steps=8)
    page.mouse.up()
    expect(pad).not_to_have_attribute("data-strokes", "0")


def staff_sign_in(desk: Page, base: str, username: str = "admin") -> None:
    desk.goto(base + "/review/login")
    desk.fill("#username", username)
    desk.fill("#password", STAFF_PASSWORD)
    desk.click("button[type=submit]")
    desk.wait_for_url(base + "/review/")
    images_loaded(desk)


def staff_decides(
    desk: Page, base: str, submission_id: int, preset: str | None = None, note: str = ""
) -> None:
    """On the decision page: 领取, then 通过, or 驳回 with the preset reason `preset` and `note`."""
    desk.goto(f"{base}/review/submissions/{submission_id}")
    desk.click("#claim-btn")
    expect(desk.locator("#approve-btn")).to_be_visible()
    if preset is None:
        desk.click("#approve-btn")
        done = "已通过"
    else:
        desk.select_option("#reason-preset", label=preset)
        desk.fill("#reason-text", note)
        desk.click("#return-btn")
        done = "已驳回"
    expect(desk.locator(".rv-flash").first).to_contain_text(f"提交 #{submission_id} {done}")
    images_loaded(desk)  # the queue's thumbnails: a page left half-loaded aborts their requests


def pay_approved_on_the_sheet(app: Flask, phone: Page, frame: Frame, fee_yuan: int) -> None:
    """review_first after 通过: on /h5/pay/<id> in the frame, 确认支付 → the sandbox sheet → paid."""
    page = frame.locator("#pay-page")
    expect(page).to_have_attribute("data-mode", "jsapi")
    expect(page).to_have_attribute("data-status", "approved_unpaid")
    expect(page).to_have_attribute("data-state", "ready")
    frame.get_by_role("button", name=f"确认支付 {fee_yuan} 元").click()
    sheet = phone.locator("#paysheet")
    expect(sheet).to_be_visible()
    expect(phone.locator("#paysheet-amount")).to_have_text(f"¥{fee_yuan}.00")
    sheet.get_by_role("button", name="确认支付").click()
    expect(sheet).to_be_hidden()


def chat_texts(app: Flask, openid: str) -> list[str]:
    """What the account sent this student, oldest first: texts, and template cards' fields joined."""
    with app.app_context():
        entries = state.chat(redis_client(), openid)
    out = []
    for entry in entries:
        if entry.get("direction") != "out":
            continue
        if entry.get("type") == "template":
            values = [str(v.get("value", "")) for v in (entry.get("data") or {}).values()]
            out.append(" | ".join([str(entry.get("title", "")), *values, str(entry.get("url", ""))]))
        else:
            out.append(str(entry.get("text", "")))
    return out


def images_loaded(scope: Page | Frame) -> None:
    """Every picture on the page has loaded: leaving before that aborts its request (a failure). A lazy
    one below the fold is loaded as a person scrolling to it would (it never completes otherwise)."""
    scope.evaluate(
        "() => document.querySelectorAll('img[loading=lazy]').forEach(i => { i.loading = 'eager'; })"
    )
    scope.wait_for_function("() => Array.from(document.images).every(i => i.complete)")


def in_browser(phone: Page, path: str) -> Frame:
    """The phone's WeChat browser once it shows `path` (after a tap on a link or a card), its pictures
    loaded."""
    phone.wait_for_function(
        "p => document.getElementById('browser-frame').contentWindow.location.pathname === p", arg=path
    )
    frame = phone.frame(name="wechat-browser")
    assert frame is not None
    frame.wait_for_load_state()
    images_loaded(frame)
    return frame


def chat_card(phone: Page, count: int) -> Locator:
    """The latest 审核结果通知 card once the chat shows `count` of them, the WeChat browser closed. The
    chat picks new messages up by itself: reloading the phone would abort its poll."""
    if phone.get_by_role("region", name="微信内置浏览器").is_visible():
        phone.get_by_role("button", name="关闭").click()
    cards = phone.locator(".msg.out[data-type=template] .card.template")
    expect(cards).to_have_count(count, timeout=10_000)
    card = cards.last
    expect(card.locator(".card-title")).to_have_text("审核结果通知")
    return card


# --- the batch's form and documents (/h5/form, /h5/documents) --------------------------------------

Answers = Mapping[str, "str | list[dict[str, str]]"]
# A Windows program: refused whatever its name says.
EXECUTABLE = b"MZ\x90\x00\x03" + bytes(300)


def image_file(
    name: str = "scan.jpg", size: tuple[int, int] = (900, 600), colour: tuple[int, int, int] = (200, 180, 120)
) -> FilePayload:
    """A small real picture (a scan, a certificate): JPEG or PNG by the name's extension."""
    out = io.BytesIO()
    png = name.endswith(".png")
    Image.new("RGB", size, colour).save(out, "PNG" if png else "JPEG", quality=90)
    return {"name": name, "mimeType": "image/png" if png else "image/jpeg", "buffer": out.getvalue()}


def pdf_file(name: str = "document.pdf", pages: int = 2) -> FilePayload:
    return {"name": name, "mimeType": "application/pdf", "buffer": form_students.pdf(pages)}


def docx_file(name: str = "document.docx") -> FilePayload:
    mime = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    return {"name": name, "mimeType": mime, "buffer": form_students.docx()}


def _enter(field: Locator, value: str) -> None:
    expect(field).to_be_visible()
    if field.evaluate("el => el.tagName") == "SELECT":
        field.select_option(value)  # its change event applies the `when`s
    else:
        field.fill(value)


def fill_form(frame: Frame, answers: Answers) -> None:
    """Type `answers` into /h5/form in their order, as a thumb would (a choice before the fields its
    `when` shows); a group's rows after the first are added with 添加一行."""
    for key, value in answers.items():
        if isinstance(value, str):
            _enter(frame.locator(f'[data-key="{key}"]:not([data-sub])'), value)
            continue
        rows = frame.locator(f'[data-group="{key}"] .group-row')
        for n, row in enumerate(value):
            if n >= rows.count():
                frame.locator(f'[data-add-row="{key}"]').click()
                expect(rows).to_have_count(n + 1)
            for sub, text in row.items():
                _enter(rows.nth(n).locator(f'[data-sub="{sub}"]'), text)


def save_form(frame: Frame, *, complete: bool = True) -> None:
    """保存, and the page says so (and that nothing required is missing when `complete`)."""
    frame.locator("#form-save").click()
    expect(frame.locator("#form-saved")).to_be_visible()
    expect(frame.locator("#form-page")).to_have_attribute("data-state", "complete" if complete else "draft")


def form_refuses(frame: Frame, path: str, message: str) -> None:
    """保存 is refused with `message` under the field `path` (rows count from 1); nothing is saved."""
    frame.locator("#form-save").click()
    expect(frame.locator(f'[data-error="{path}"]')).to_contain_text(message)
    expect(frame.locator("#form-saved")).to_be_hidden()


def _posted(frame: Frame, slot: str, file: FilePayload) -> Response:
    posted = re.compile(rf"/api/v1/me/documents/{re.escape(slot)}$")
    # An ID card slot reads the card before it answers: slow on a busy machine.
    with frame.page.expect_response(
        lambda r: bool(posted.search(r.url)) and r.request.method == "POST", timeout=30_000
    ) as answer:
        frame.locator(f'[data-upload="{slot}"]').set_input_files(files=[file])
    return answer.value


def upload_document(frame: Frame, slot: str, file: FilePayload) -> None:
    """Pick `file` in the slot on /h5/documents: stored (201), the page reloads with it listed."""
    files = frame.locator(f'[data-slot="{slot}"] [data-document]')
    before = files.count()
    answer = _posted(frame, slot, file)
    assert answer.status == 201, (slot, file["name"], answer.text())
    expect(files).to_have_count(before + 1, timeout=15_000)
    frame.wait_for_load_state()  # the reloaded page's script: a change before it runs goes unnoticed


def upload_refused(frame: Frame, slot: str, file: FilePayload, message: str) -> None:
    """Pick `file` in the slot: refused (422) with `message` at the slot, nothing stored."""
    files = frame.locator(f'[data-slot="{slot}"] [data-document]')
    before = files.count()
    answer = _posted(frame, slot, file)
    assert answer.status == 422, (slot, file["name"], answer.status)
    expect(frame.locator(f'[data-slot="{slot}"] [data-slot-error]')).to_contain_text(message)
    expect(files).to_have_count(before)


def delete_documents(frame: Frame, slot: str) -> None:
    """删除 every file of the slot, one reload each."""
    files = frame.locator(f'[data-slot="{slot}"] [data-document]')
    while (count := files.count()) > 0:
        files.first.locator("[data-delete]").click()
        expect(files).to_have_count(count - 1)
        frame.wait_for_load_state()


def return_items(desk: Page, base: str, submission_id: int, items: Mapping[str, str], note: str = "") -> None:
    """On the decision page: 领取, tick 退回修改 beside each item (`field:mobile`, `document:diploma`,
    `photo:photo`) with its reason, then 驳回 (the overall reason is derived from the items)."""
    desk.goto(f"{base}/review/submissions/{submission_id}")
    desk.click("#claim-btn")
    expect(desk.locator("#approve-btn")).to_be_visible()
    images_loaded(desk)
    for item, reason in items.items():
        desk.check(f'[data-return-tick="{item}"]')
        desk.fill(f'[data-return-reason="{item}"]', reason)
    if note:
        desk.fill("#reason-text", note)
    desk.click("#return-btn")
    expect(desk.locator(".rv-flash").first).to_contain_text(f"提交 #{submission_id} 已驳回")
    images_loaded(desk)


def fix_returned_field(phone: Page, key: str, reason: str, answers: Answers, locked: str) -> Frame:
    """/h5/form after an itemised 驳回: the reason in red at `key`, `locked` (another field) read-only;
    the new `answers` saved."""
    frame = open_in_wechat(phone, "/h5/form")
    expect(frame.locator(f'[data-rejected-reason="{key}"]')).to_have_text(f"需修改：{reason}")
    expect(frame.locator("#form-notice")).to_contain_text("只有标红的项目可以修改")
    expect(frame.locator(f'[data-field="{locked}"]')).to_have_attribute("data-editable", "false")
    expect(frame.locator(f'[data-key="{locked}"]').first).to_be_disabled()
    fill_form(frame, answers)
    save_form(frame)
    return frame


def fix_returned_document(phone: Page, slot: str, reason: str, file: FilePayload, locked: str) -> Frame:
    """/h5/documents after an itemised 驳回: the reason at `slot`, `locked` (another slot) without upload
    or delete; the slot's files replaced by `file`."""
    frame = open_in_wechat(phone, "/h5/documents")
    box = frame.locator(f'[data-slot="{slot}"]')
    expect(box.locator("[data-rejected-reason]")).to_have_text(f"需修改：{reason}")
    other = frame.locator(f'[data-slot="{locked}"]')
    expect(other).to_have_attribute("data-editable", "false")
    expect(other.locator("[data-upload], [data-delete]")).to_have_count(0)
    delete_documents(frame, slot)
    upload_document(frame, slot, file)
    return frame
