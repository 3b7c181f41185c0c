"""客服留言 in headless Chromium: a student asks a question on the sandbox phone (390×844), a reviewer
at the desk (1366×900) reads it in the inbox and answers, and the answer arrives in the student's chat
as a customer-service message. Leaves a screenshot of the inbox in var/screenshots/."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flask import Flask
from playwright.sync_api import Page, expect

from app.extensions import db
from app.integrations import redis_client
from app.jobs.worker import run_due
from app.sandbox import phone as phone_view
from app.sandbox import state
from models import School
from tests.factories import STAFF_PASSWORD, add_enrollment, add_user, make_desk

PHONE = {"width": 390, "height": 844}
DESK = {"width": 1366, "height": 900}
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
QUESTION = "请问照片可以用手机自拍吗？背景没有蓝色的怎么办"
ANSWER = "可以用手机拍，背景可以是白墙，上传后系统会自动换成蓝底；不要美颜。"


def linked_follower(app: Flask, batch_id: int, nickname: str) -> str:
    """A sandbox user who follows the account and is linked to `batch_id`'s school."""
    with app.app_context():
        r = redis_client()
        user = state.create_user(r, nickname)
        user["subscribed"] = True
        state.save_user(r, user)
        openid = str(user["openid"])
        add_enrollment(add_user(openid).id, batch_id)
        db.session.commit()
        return openid


def watch_errors(page: Page) -> list[str]:
    """Console errors and failed requests of a page, as they happen (the favicon is not this walk's
    concern)."""
    errors: list[str] = []

    def console(message: Any) -> None:
        if message.type == "error" and "favicon" not in str(message.location.get("url", "")):
            errors.append(f"console: {message.text}")

    def response(answer: Any) -> None:
        if answer.status >= 400 and "favicon" not in answer.url:
            errors.append(f"{answer.status} {answer.url}")

    page.on("console", console)
    page.on("response", response)
    page.on("requestfailed", lambda request: errors.append(f"failed {request.url}"))
    return errors


def test_a_students_question_is_answered_from_the_inbox(
    app: Flask, live_server: Any, new_page: Any, runner: Any
) -> None:
    base = live_server.url
    pushed = runner.invoke(args=["wechat", "push-menu"])
    assert pushed.exit_code == 0, pushed.output
    desk_world = make_desk(app)
    with app.app_context():
        school = db.session.get(School, desk_world.school_a)
        assert school is not None
        school.contact_phone = "0731-88872114"
        db.session.commit()
    openid = linked_follower(app, desk_world.batch_a, "小李")

    # The student types a question no keyword matches: a person will answer.
    phone = new_page(PHONE)
    phone_errors = watch_errors(phone)
    phone.context.add_cookies(
        [{"name": phone_view.COOKIE, "value": openid, "domain": urlsplit(base).hostname, "path": "/_sandbox"}]
    )
    phone.goto(f"{base}/_sandbox/")
    expect(phone.get_by_label("当前用户")).to_have_value(openid)
    phone.get_by_role("button", name="切换到键盘输入").click()
    phone.get_by_label("输入消息").fill(QUESTION)
    phone.get_by_role("button", name="发送").click()
    expect(phone.locator(".msg.in").last).to_contain_text(QUESTION)
    expect(phone.locator(".msg.out").last).to_contain_text("人工回复")

    # The reviewer of the student's school finds it in the inbox and answers.
    desk = new_page(DESK)
    desk_errors = watch_errors(desk)
    desk.goto(base + "/review/login")
    desk.fill("#username", "rev-a")
    desk.fill("#password", STAFF_PASSWORD)
    desk.click("button[type=submit]")
    desk.wait_for_url(base + "/review/")
    desk.get_by_role("link", name="客服留言").click()
    desk.wait_for_url(base + "/review/inbox")
    row = desk.locator("#inbox tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("湖南师范大学")
    expect(row).to_contain_text("待回复 1 条")
    expect(row).to_contain_text(QUESTION[:20])
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    desk.screenshot(path=str(SCREENSHOTS / "inbox.png"), full_page=True)

    row.get_by_role("link", name="回复").click()
    expect(desk.locator("#messages li")).to_have_count(1)
    expect(desk.locator("#messages")).to_contain_text(QUESTION)
    desk.get_by_label("回复内容", exact=False).fill(ANSWER)
    desk.get_by_role("button", name="发送回复").click()
    expect(desk.get_by_role("status")).to_contain_text("回复已发出")
    expect(desk.locator("#messages li")).to_have_count(2)
    expect(desk.locator("#messages li").last).to_contain_text("发送中")

    # The worker sends it as a customer-service message; the student's chat shows it.
    assert run_due(app) == 1
    answer = phone.locator(".msg.out", has_text=ANSWER)
    expect(answer).to_have_count(1)
    expect(answer).to_contain_text("【客服回复】")
    phone.screenshot(path=str(SCREENSHOTS / "inbox-answer-phone.png"))
    desk.reload()
    expect(desk.locator("#messages li").last).to_contain_text("已送达")
    desk.goto(base + "/review/inbox")
    expect(desk.locator("#inbox-empty")).to_have_text("没有待回复的留言")

    # 联系客服 gives the school's phone and says where answers arrive.
    phone.get_by_role("button", name="切换到菜单").click()
    phone.locator("#menu-buttons").get_by_role("button", name="帮助", exact=True).click()
    phone.get_by_role("menuitem", name="联系客服", exact=True).click()
    contact = phone.locator(".msg.out").last
    expect(contact).to_contain_text("湖南师范大学电话：0731-88872114")
    expect(contact).to_contain_text("回复会发到这里")

    assert phone_errors == [] and desk_errors == []
