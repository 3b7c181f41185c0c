"""The issue's review walk in headless Chromium (desktop): a reviewer signs in, filters the queue,
claims an attempt, returns it with a reason, approves the next one by keyboard; the decisions reach
the students as template messages in the sandbox chat."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask

from app.extensions import redis_client
from app.jobs.worker import run_due
from app.sandbox import state
from models import SubmissionStatus
from tests.test_review_pages import PASSWORD, T0, make_desk, make_waiting, status_of


@pytest.fixture
def desk(browser: Any, app: Flask) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


def follower(app: Flask, nickname: str) -> str:
    with app.app_context():
        r = redis_client()
        user = state.create_user(r, nickname)
        user["subscribed"] = True
        state.save_user(r, user)
        return str(user["openid"])


def test_reviewer_returns_one_and_approves_the_next_by_keyboard(
    app: Flask, live_server: Any, desk: Any
) -> None:
    world = make_desk(app)
    first_openid, second_openid = follower(app, "小明"), follower(app, "小红")
    first = make_waiting(app, world.batch_a, first_openid, T0)
    second = make_waiting(app, world.batch_a, second_openid, T0 + timedelta(minutes=5))
    make_waiting(app, world.batch_b, follower(app, "小刚"), T0 - timedelta(minutes=5))

    desk.goto(live_server.url + "/review/")
    desk.fill("#username", "rev-a")
    desk.fill("#password", PASSWORD)
    desk.click("button[type=submit]")
    desk.wait_for_url(live_server.url + "/review/")

    desk.select_option("#f-school", label="湖南师范大学（10542）")
    desk.select_option("#f-state", value="pending")
    desk.get_by_role("button", name="筛选").click()
    desk.wait_for_url("**/review/?school=*")
    rows = desk.locator("#queue tbody tr")
    assert rows.count() == 2
    assert [rows.nth(i).get_attribute("data-id") for i in range(2)] == [str(first), str(second)]

    rows.nth(0).get_by_role("button", name="领取").click()
    desk.wait_for_url(f"{live_server.url}/review/submissions/{first}")
    assert desk.locator("#sub-state").inner_text() == "审核中"
    assert desk.locator("#claimer").inner_text() == "rev-a"
    assert desk.locator("#face-box").is_visible()
    # The face box sits over the displayed photo, scaled with it.
    photo = desk.locator("#photo-normalized").bounding_box()
    box = desk.locator("#face-box").bounding_box()
    assert photo and box and abs(box["x"] - (photo["x"] + photo["width"] * 0.25)) < 3
    assert abs(box["width"] - photo["width"] * 0.5) < 3
    assert desk.locator("#photo-normalized").evaluate("img => img.naturalWidth") > 0
    assert desk.get_by_text("快捷键").is_visible()

    desk.keyboard.press("r")  # 驳回: the reason gets the focus
    assert desk.evaluate("document.activeElement.id") == "reason-preset"
    desk.select_option("#reason-preset", label="背景颜色不符")
    desk.fill("#reason-text", "请换成白色背景")
    desk.click("#return-btn")
    desk.wait_for_url(f"{live_server.url}/review/submissions/{second}")
    assert f"提交 #{first} 已驳回" in desk.locator(".rv-flash").inner_text()

    desk.keyboard.press("c")  # claim the next one
    desk.wait_for_selector("#approve-btn")
    assert desk.locator("#claimer").inner_text() == "rev-a"
    desk.keyboard.press("a")  # 通过
    desk.wait_for_url(live_server.url + "/review/")
    assert f"提交 #{second} 已通过" in desk.locator(".rv-flash").first.inner_text()

    assert status_of(app, first) == (SubmissionStatus.RETURNED, "背景颜色不符：请换成白色背景")
    assert status_of(app, second)[0] == SubmissionStatus.APPROVED

    assert run_due(app) >= 2
    with app.app_context():
        r = redis_client()
        [returned] = [e for e in state.chat(r, first_openid) if e.get("type") == "template"]
        [approved] = [e for e in state.chat(r, second_openid) if e.get("type") == "template"]
    assert returned["data"]["phrase1"]["value"] == "审核驳回"
    assert returned["data"]["thing3"]["value"].startswith("背景颜色不符")
    assert approved["data"]["phrase1"]["value"] == "审核通过"
    assert returned["url"] == approved["url"] == f"{live_server.url}/h5/status"
