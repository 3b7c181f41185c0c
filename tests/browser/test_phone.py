"""The sandbox phone in headless Chromium: a person plays a student chatting with the account.

Everything goes over real HTTP: page → sandbox → signed post to /wechat → handler → reply, and the
service's outbound calls → sandbox API → the chat the page polls.
"""

from __future__ import annotations

import io
import re
from typing import Any
from urllib.parse import urlsplit

from flask import Flask
from PIL import Image
from playwright.sync_api import Page, expect

from app.extensions import db
from app.integrations import redis_client
from app.jobs.worker import run_due
from app.sandbox import messenger, state, store
from app.sandbox import phone as phone_view
from app.services import outbox


def _jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (480, 640), (142, 194, 245)).save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def _menu_item(menu: dict[str, Any], predicate: Any) -> tuple[str | None, dict[str, Any]]:
    """(name of the top button holding it or None for a top-level item, the item)."""
    for button in menu["button"]:
        if predicate(button):
            return None, button
        for sub in button.get("sub_button") or []:
            if predicate(sub):
                return button["name"], sub
    raise AssertionError(f"no such item in the pushed menu: {menu}")


def _tap(page: Page, parent: str | None, item: dict[str, Any]) -> None:
    if parent is None:
        page.locator("#menu-buttons").get_by_role("button", name=item["name"], exact=True).click()
    else:
        page.locator("#menu-buttons").get_by_role("button", name=parent, exact=True).click()
        page.get_by_role("menuitem", name=item["name"], exact=True).click()


def _last_reply(page: Page) -> Any:
    return page.locator(".msg.out").last


def test_student_follows_taps_the_menu_types_and_sends_a_photo(
    app: Flask, phone: Page, live_server: Any, runner: Any
) -> None:
    pushed = runner.invoke(args=["wechat", "push-menu"])
    assert pushed.exit_code == 0, pushed.output

    phone.goto(f"{live_server.url}/_sandbox/")
    expect(phone.get_by_text("选择或新建一个用户")).to_be_visible()
    phone.get_by_label("昵称").fill("小明")
    phone.get_by_role("button", name="创建").click()
    expect(phone.get_by_label("当前用户")).to_have_value(re.compile(r"^o"))
    openid = phone.get_by_label("当前用户").input_value()
    # The openid is on show, ready to copy for `flask --app wsgi wechat add-operator OPENID`.
    expect(phone.locator("#openid-text")).to_have_text(openid)
    phone.locator("#openid-row").get_by_role("button", name="复制").click()
    assert phone.evaluate("window.getSelection().toString()") == openid

    # Follow: the welcome guides to 实名绑定.
    phone.get_by_role("button", name="关注公众号").click()
    expect(phone.get_by_text("你关注了公众号")).to_be_visible()
    expect(_last_reply(phone)).to_contain_text("实名绑定")

    # The pushed menu, as this user sees it.
    with app.app_context():
        menu = store.current_menu_for(redis_client(), openid)
    assert menu is not None
    parent, help_item = _menu_item(menu, lambda b: b.get("type") == "click" and b.get("name") == "使用说明")
    _tap(phone, parent, help_item)
    expect(_last_reply(phone)).to_contain_text("使用帮助")

    # Type 帮助 (switch from the menu to the keyboard first, as in WeChat).
    phone.get_by_role("button", name="切换到键盘输入").click()
    phone.get_by_label("输入消息").fill("帮助")
    phone.get_by_role("button", name="发送").click()
    expect(phone.locator(".msg.in").last).to_have_text(re.compile("帮助"))
    expect(phone.locator(".msg.out", has_text="使用帮助")).to_have_count(2)

    # Send a photo from the album: the account acknowledges it.
    phone.locator("#image-input").set_input_files(
        files=[{"name": "证件照.jpg", "mimeType": "image/jpeg", "buffer": _jpeg()}]
    )
    expect(phone.locator(".msg.in .bubble.image img")).to_have_count(1)
    expect(_last_reply(phone)).to_contain_text("已收到您的图片")
    expect(phone.locator(".msg.in .bubble.image img")).to_have_js_property("naturalWidth", 480)

    # A VIEW item opens its H5 page in WeChat's browser, signed in as this user.
    phone.get_by_role("button", name="切换到菜单").click()
    expect(phone.get_by_role("navigation", name="公众号菜单")).to_be_visible()
    phone.screenshot(path="/tmp/phone.png")
    parent, view_item = _menu_item(
        menu, lambda b: b.get("type") == "view" and urlsplit(b.get("url", "")).path.startswith("/h5/")
    )
    _tap(phone, parent, view_item)
    expect(phone.get_by_role("region", name="微信内置浏览器")).to_be_visible()
    path = urlsplit(view_item["url"]).path
    phone.wait_for_function(
        "path => document.getElementById('browser-frame').contentWindow.location.pathname === path", arg=path
    )
    frame = phone.frame(name="wechat-browser")
    assert frame is not None
    expect(frame.locator("body")).not_to_contain_text("请先选择微信用户")
    # Signed in: the H5 home page answers this browser's session (it redirects to sign-in otherwise).
    # (The body is read too: closing the browser below would abort it, a failed request.)
    status = "fetch('/h5/', {redirect: 'manual'}).then(r => r.text().then(() => r.status))"
    assert frame.evaluate(status) == 200
    with app.app_context():
        exchanges = state.calls(redis_client(), "/sns/oauth2/access_token")
    assert exchanges, "the H5 page was not reached through WeChat's OAuth2 flow"
    expect(phone.locator("#browser-title")).not_to_have_text("加载中…")
    phone.get_by_role("button", name="关闭").click()
    expect(phone.get_by_role("region", name="微信内置浏览器")).to_be_hidden()


def _phone_as(page: Page, live_server: Any, openid: str) -> None:
    host = urlsplit(live_server.url).hostname
    page.context.add_cookies(
        [{"name": phone_view.COOKIE, "value": openid, "domain": host, "path": "/_sandbox"}]
    )
    page.goto(f"{live_server.url}/_sandbox/")
    expect(page.get_by_label("当前用户")).to_have_value(openid)


def test_a_custom_message_from_the_worker_appears_without_reload(
    app: Flask, phone: Page, live_server: Any
) -> None:
    with app.app_context():
        r = redis_client()
        openid = state.create_user(r, "小红")["openid"]
        messenger.subscribe(r, openid)  # also opens the 48 h window for custom messages
    _phone_as(phone, live_server, openid)
    expect(_last_reply(phone)).to_contain_text("实名绑定")
    phone.evaluate("window.__noReload = true")

    with app.app_context():
        outbox.enqueue(db.session, "wechat.send_text", {"openid": openid, "text": "您的照片已通过初审。"})
        db.session.commit()
    assert run_due(app) == 1

    expect(_last_reply(phone)).to_contain_text("您的照片已通过初审。")
    assert phone.evaluate("window.__noReload") is True


def test_chat_content_is_shown_as_text_and_only_links_become_links(
    app: Flask, phone: Page, live_server: Any
) -> None:
    with app.app_context():
        r = redis_client()
        openid = state.create_user(r, "<b>小刚</b>")["openid"]
        messenger.subscribe(r, openid)
        base = app.config["PUBLIC_BASE_URL"]
        hostile = (
            f'请<a href="{base}/h5/bind">点此绑定</a>。'
            '<img src=x onerror="window.__xss=1"><a href="javascript:window.__xss=2">坏链接</a>'
            f" 或打开 {base}/h5/photo。"
        )
        state.append_chat(r, openid, {"direction": "out", "type": "text", "via": "custom", "text": hostile})
        state.append_chat(
            r,
            openid,
            {
                "direction": "out",
                "type": "template",
                "via": "template",
                "title": "审核结果通知",
                "text": "审核结果：驳回\n原因：<i>背景颜色不符</i>",
                "url": f"{base}/h5/status",
                "data": {},
            },
        )
    _phone_as(phone, live_server, openid)

    bubble = phone.locator(".msg.out .bubble", has_text="点此绑定")
    expect(bubble).to_contain_text('<img src=x onerror="window.__xss=1">')
    expect(bubble).to_contain_text('<a href="javascript:window.__xss=2">坏链接</a>')
    links = bubble.locator("a")
    expect(links).to_have_count(2)
    expect(links.nth(0)).to_have_attribute("href", f"{base}/h5/bind")
    expect(links.nth(1)).to_have_attribute("href", f"{base}/h5/photo")
    assert bubble.locator("img, script, i").count() == 0
    assert phone.evaluate("window.__xss") is None

    card = phone.locator(".card.template")
    expect(card).to_contain_text("审核结果通知")
    expect(card).to_contain_text("<i>背景颜色不符</i>")
    expect(card.get_by_role("link", name="详情")).to_have_attribute("href", f"{base}/h5/status")
    expect(phone.get_by_label("当前用户")).to_contain_text("<b>小刚</b>")
