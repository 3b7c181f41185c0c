"""Signing in from the phone: login-as walks WeChat's OAuth2 redirects and lands on the H5 home page."""

from __future__ import annotations

from typing import Any

from flask import Flask

OPENID = "oBrowserStudent0000000000001"


def test_login_as_lands_on_the_home_page_signed_in(app: Flask, live_server: Any, phone: Any) -> None:
    phone.goto(f"{live_server.url}/_sandbox/login-as/{OPENID}?next=/h5/")
    phone.wait_for_url(f"{live_server.url}/h5/**")
    assert phone.locator("h1").inner_text() == "你好，同学"
    steps = phone.locator("ol.checklist li")
    assert steps.count() == 4
    labels = phone.locator("ol.checklist .label").all_inner_texts()
    assert labels == ["实名绑定", "关联学校", "上传照片", "审核"]
    go = phone.get_by_test_id("step-go")
    assert go.get_attribute("href") == "/h5/bind"
    assert phone.locator('meta[name="csrf-token"]').get_attribute("content")
    # Mobile layout: nothing wider than the 390 px screen, tap targets at least 44 px high.
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    assert go.bounding_box()["height"] >= 44
    # Signed in: reloading stays on the page (no new trip through WeChat).
    phone.reload()
    assert phone.url.split("#")[0] == f"{live_server.url}/h5/"


def test_a_stale_sign_in_link_shows_a_chinese_retry_page(
    app: Flask, live_server: Any, phone: Any, browser_errors: Any
) -> None:
    browser_errors.expect_status(400, "/auth/wechat/callback?code=abc&state=forged")
    phone.goto(f"{live_server.url}/auth/wechat/callback?code=abc&state=forged")
    assert "登录链接已失效" in phone.locator('[data-testid="signin-problem"]').inner_text()
    assert phone.get_by_role("link", name="重新登录").is_visible()
