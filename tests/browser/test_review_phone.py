"""The staff pages in headless Chromium at a phone's width (390×844, operators review from WeChat) and a
desk's (1366×900): sign-in, the queue with names, ID tails and photos, search by ID number or whole
name, the decision page, reopening a decision, the dashboard with its export links, the export
chooser and the dead letters — none wider than the screen, no console error, no failed request.
And the operator's 运营 › 待审核 menu opens the queue inside the sandbox phone's WeChat browser (the
frame is allowed).

The phone-width queue and decision page are saved under var/screenshots/ (review-*-phone.png).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from playwright.sync_api import Page, expect

from app.extensions import db
from app.integrations import redis_client
from app.sandbox import phone as phone_view
from app.sandbox import state, store
from app.services import reviews
from app.services.id_documents import check_character
from app.services.reviews import ResultPush
from models import Staff, utcnow
from tests.factories import STAFF_PASSWORD, T0, make_dead, make_desk, make_waiting

PHONE = {"width": 390, "height": 844}
DESK = {"width": 1366, "height": 900}
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"


def id_number(serial: int) -> str:
    first17 = f"43010219900101{serial:03d}"
    return first17 + check_character(first17)


def watch(page: Page) -> list[str]:
    """Console errors and failed requests, as they happen (a favicon is another part's business)."""
    problems: list[str] = []

    def console(message: Any) -> None:
        where = (message.location or {}).get("url", "")
        if message.type == "error" and not where.endswith("/favicon.ico"):
            problems.append(f"console: {message.text} ({where})")

    page.on("console", console)
    page.on("requestfailed", lambda r: problems.append(f"failed: {r.url}"))

    def bad_status(response: Any) -> None:
        if response.status >= 400 and not response.url.endswith("/favicon.ico"):
            problems.append(f"{response.status}: {response.url}")

    page.on("response", bad_status)
    return problems


def fits(page: Page) -> None:
    """Nothing wider than the screen: no horizontal scrolling."""
    width, inner = page.evaluate("[document.scrollingElement.scrollWidth, innerWidth]")
    assert width <= inner, f"{page.url} is {width}px wide on a {inner}px screen"


def world(app: Flask) -> tuple[Any, int, int, int]:
    desk = make_desk(app)
    first = make_waiting(app, desk.batch_a, "o-p1", T0, name="王小明", id_number=id_number(1))
    second = make_waiting(app, desk.batch_a, "o-p2", T0, name="欧阳娜娜", id_number=id_number(2))
    done = make_waiting(app, desk.batch_a, "o-p3", T0, name="李四", id_number=id_number(3))
    with app.app_context():
        admin = db.session.query(Staff).filter_by(username="admin").one()
        push = ResultPush(base_url=app.config["PUBLIC_BASE_URL"], template_id="")
        reviews.decide(db.session, admin, done, "approve", None, utcnow(), push=push)
    return desk, first, second, done


@pytest.mark.parametrize("viewport", [PHONE, DESK], ids=["phone", "desk"])
def test_staff_pages_fit_the_screen_and_work(
    app: Flask, live_server: Any, new_page: Any, viewport: dict[str, int]
) -> None:
    desk, first, second, done = world(app)
    make_dead(app, "oABCDEFsecretpart")
    base = live_server.url
    page = new_page(viewport)
    problems = watch(page)

    page.goto(base + "/review/")
    assert "/review/login" in page.url
    fits(page)
    page.fill("#username", "admin")
    page.fill("#password", STAFF_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(base + "/review/")
    fits(page)
    # The header's buttons keep their words on one line (they wrapped a character per line).
    for box in page.locator(".rv-top .rv-link-btn").evaluate_all(
        "els => els.map(e => [e.getBoundingClientRect().height, parseFloat(getComputedStyle(e).fontSize)])"
    ):
        assert box[0] < 2.5 * box[1], box

    rows = page.locator("#queue tbody tr")
    expect(rows).to_have_count(2)
    row = page.locator(f"#queue tr[data-id='{first}']")
    expect(row.locator(".rv-name")).to_have_text("王小明")
    expect(row.locator(".rv-idtail")).to_contain_text("*" * 14 + id_number(1)[-4:])
    thumb = row.locator(".rv-thumb img")
    expect(thumb).to_be_visible()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=thumb.element_handle())
    if viewport == PHONE:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "review-queue-phone.png"), full_page=True)

    # Search by the whole ID number, typed with spaces.
    number = id_number(2)
    page.fill("#f-q", f"{number[:6]} {number[6:14]} {number[14:]}")
    page.get_by_role("button", name="筛选").click()
    page.wait_for_url("**/review/?q=*")
    expect(rows).to_have_count(1)
    expect(page.locator(f"#queue tr[data-id='{second}'] .rv-name")).to_have_text("欧阳娜娜")
    fits(page)

    # Search by the whole name, typed with a space; decided attempts are found too. The box says a
    # part of a name will not do, and a part indeed finds nothing.
    expect(page.locator("#f-q")).to_have_attribute("placeholder", "输入完整姓名或证件号码")
    for typed, found in (("王 小明", first), ("李四", done)):
        page.fill("#f-q", typed)
        with page.expect_navigation():
            page.get_by_role("button", name="筛选").click()
        expect(rows).to_have_count(1)
        expect(page.locator(f"#queue tr[data-id='{found}'] .rv-name")).to_have_text(typed.replace(" ", ""))
        fits(page)
    page.fill("#f-q", "小明")
    with page.expect_navigation():
        page.get_by_role("button", name="筛选").click()
    expect(page.locator("#queue-empty")).to_contain_text("姓名需完整输入")
    expect(page.locator("#search-error")).to_have_count(0)
    fits(page)

    # Decided attempts: their decider and time; the export link of the batch with its count.
    page.goto(base + f"/review/?state=approved&batch={desk.batch_a}")
    expect(rows).to_have_count(1)
    expect(page.locator(f"#queue tr[data-id='{done}'] .rv-decider")).to_contain_text("admin")
    expect(page.locator("#queue-export a")).to_have_text("导出本批次通过照片（1 张）")
    fits(page)

    # The decision page: the full name, the number (in full for an admin), no wider than the screen.
    page.goto(base + "/review/")
    page.locator(f"#queue tr[data-id='{first}']").get_by_role("button", name="领取").click()
    page.wait_for_url(f"{base}/review/submissions/{first}")
    expect(page.locator("#name")).to_have_text("王小明")
    expect(page.locator("#id-number")).to_have_text(id_number(1))
    page.wait_for_function("() => document.getElementById('photo-normalized').naturalWidth > 0")
    photo = page.locator("#photo-normalized").bounding_box()
    assert photo is not None and photo["x"] + photo["width"] <= viewport["width"]
    expect(page.locator("#approve-btn")).to_be_visible()
    fits(page)
    if viewport == PHONE:
        page.screenshot(path=str(SCREENSHOTS / "review-decision-phone.png"), full_page=True)

    # Reopen the approved one: back in the queue.
    page.goto(f"{base}/review/submissions/{done}")
    expect(page.locator("#decider")).to_have_text("admin")
    fits(page)
    page.fill("#reopen-reason", "误通过，需重新核对")
    page.click("#reopen-btn")
    page.wait_for_url(f"{base}/review/submissions/{done}")
    expect(page.locator("#sub-state")).to_have_text("未审核")
    expect(page.locator(".rv-flash")).to_contain_text("已撤回")
    fits(page)

    page.get_by_role("link", name="数据看板").click()
    page.wait_for_url("**/review/dashboard")
    expect(page.locator("#batch-table")).to_contain_text("湖南师范大学")
    fits(page)
    page.get_by_role("link", name="导出", exact=True).click()
    page.wait_for_url("**/review/export")
    expect(page.locator(f"#export-table tr[data-batch='{desk.batch_a}']")).to_contain_text("0 张")
    fits(page)
    page.get_by_role("link", name="失败任务").click()
    page.wait_for_url("**/review/outbox")
    expect(page.locator("#dead-table tbody tr")).to_have_count(1)
    fits(page)

    assert problems == []


def test_the_operator_menu_opens_the_queue_inside_the_sandbox_phone(
    app: Flask, live_server: Any, new_page: Any, runner: Any
) -> None:
    make_desk(app)
    assert runner.invoke(args=["wechat", "push-menu"]).exit_code == 0
    with app.app_context():
        r = redis_client()
        user = state.create_user(r, "运营小王")
        user["subscribed"] = True
        state.save_user(r, user)
        openid = str(user["openid"])
    added = runner.invoke(args=["wechat", "add-operator", openid])
    assert added.exit_code == 0, added.output
    with app.app_context():
        menu = store.current_menu_for(redis_client(), openid)
    assert menu is not None and "运营" in [b["name"] for b in menu["button"]]

    page = new_page(PHONE)
    problems = watch(page)
    host = urlsplit(live_server.url).hostname
    page.context.add_cookies(
        [{"name": phone_view.COOKIE, "value": openid, "domain": host, "path": "/_sandbox"}]
    )
    page.goto(f"{live_server.url}/_sandbox/")
    expect(page.get_by_label("当前用户")).to_have_value(openid)
    page.locator("#menu-buttons").get_by_role("button", name="运营", exact=True).click()
    page.get_by_role("menuitem", name="待审核", exact=True).click()
    expect(page.get_by_role("region", name="微信内置浏览器")).to_be_visible()
    page.wait_for_function(
        "() => document.getElementById('browser-frame').contentWindow.location.pathname === '/review/login'"
    )
    frame = page.frame(name="wechat-browser")
    assert frame is not None
    frame.fill("#username", "admin")
    frame.fill("#password", STAFF_PASSWORD)
    frame.click("button[type=submit]")
    frame.wait_for_url("**/review/")
    expect(frame.locator("h2", has_text="审核队列")).to_be_visible()
    # Inside the phone's frame too, nothing is wider than the frame.
    width, inner = frame.evaluate("[document.scrollingElement.scrollWidth, innerWidth]")
    assert width <= inner
    assert problems == []
