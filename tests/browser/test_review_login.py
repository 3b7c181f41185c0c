"""A reviewer made with `flask staff create` signs in on /review/login in headless Chromium
(desktop viewport): a wrong password first, then the right one, the landing page, and sign-out."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.testing import FlaskCliRunner

from app.extensions import db
from app.services import schools

PASSWORD = "reviewer password 2026"


def test_reviewer_signs_in_and_out(
    app: Flask, runner: FlaskCliRunner, live_server: Any, desk: Any, browser_errors: Any
) -> None:
    browser_errors.expect_status(401, "/review/login")
    with app.app_context():
        schools.upsert_school(db.session, "10542", "湖南师范大学", "湖南省", "长沙市")
        db.session.commit()
    made = runner.invoke(
        args=["staff", "create", "zhang.wei", "--role", "reviewer", "--school", "10542", "--password-stdin"],
        input=PASSWORD + "\n",
    )
    assert made.exit_code == 0, made.output

    desk.goto(live_server.url + "/review/")
    assert desk.url.startswith(live_server.url + "/review/login?next=")
    desk.fill("#username", "zhang.wei")
    desk.fill("#password", "not the password")
    desk.click("button[type=submit]")
    assert desk.locator(".rv-error").inner_text() == "用户名或密码错误"
    assert desk.input_value("#username") == "zhang.wei"

    desk.fill("#password", PASSWORD)
    desk.click("button[type=submit]")
    desk.wait_for_url(live_server.url + "/review/")
    assert desk.locator("h1").inner_text() == "你好，zhang.wei"
    assert desk.locator(".rv-role-name").inner_text() == "审核员"
    assert "湖南师范大学（10542）" in desk.locator(".rv-schools").inner_text()
    assert desk.get_by_role("heading", name="审核队列").is_visible()

    desk.get_by_role("button", name="退出登录").click()
    desk.wait_for_url(live_server.url + "/review/login")
    desk.goto(live_server.url + "/review/")
    assert "/review/login" in desk.url
