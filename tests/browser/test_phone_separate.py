"""The sandbox phone on the emulator's own port (as `make run` serves it), the student's pages on the
service's: two origins. Paying from the phone's "WeChat browser" frame goes through WeChat's bridge
(the emulator's bridge.js in the page, the phone's pay sheet over postMessage); paying in an ordinary
browser by 用沙箱手机扫码支付 is a call from the service's origin to the emulator's. Both end 待审核,
with the emulator's own notifier and the service's own worker: nothing driven by the test.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from playwright.sync_api import expect

from tests.browser.conftest import BrowserErrors
from tests.sandbox_process import Processes, ready_to_pay, two_processes


@pytest.fixture(scope="module")
def processes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Processes]:
    with two_processes(tmp_path_factory.mktemp("phone-separate")) as both:
        yield both


def _attempt(processes: Processes, openid: str, channel: str) -> int:
    student, photo_id = ready_to_pay(processes, openid)
    created = student.http.post(
        f"{processes.service}/api/v1/me/submissions",
        json={"photo_id": photo_id, "channel": channel},
        headers={"X-CSRFToken": student.token},
        timeout=20,
    )
    assert created.status_code == 201, created.text
    return int(created.json()["id"])


def test_pay_in_the_phones_frame_on_another_origin(
    processes: Processes, new_page: Callable[..., Any], browser_errors: BrowserErrors
) -> None:
    browser_errors.expect_status(404, "/media/photos/")  # the test's photo row has no file
    submission_id = _attempt(processes, "o-separate-jsapi", "jsapi")
    phone = new_page()
    # Signed in through the emulator's OAuth2, as the phone's menu links do; then the phone itself.
    phone.goto(f"{processes.sandbox}/_sandbox/login-as/o-separate-jsapi?next=/h5/photo")
    expect(phone).to_have_url(re.compile(re.escape(f"{processes.service}/h5/photo")))
    phone.goto(f"{processes.sandbox}/_sandbox/")
    phone.evaluate(
        "url => { document.getElementById('browser').hidden = false;"
        " document.getElementById('browser-frame').src = url; }",
        f"{processes.service}/h5/pay/{submission_id}",
    )
    frame = phone.frame(name="wechat-browser")
    assert frame is not None
    frame.wait_for_url(f"{processes.service}/h5/pay/{submission_id}")
    page = frame.locator("#pay-page")
    expect(page).to_have_attribute("data-mode", "jsapi")
    expect(page).to_have_attribute("data-state", "ready")
    frame.get_by_role("button", name="确认支付 2 元").click()
    sheet = phone.locator("#paysheet")
    expect(sheet).to_be_visible()
    expect(phone.locator("#paysheet-amount")).to_have_text("¥2.00")
    sheet.get_by_role("button", name="确认支付").click()
    expect(sheet).to_be_hidden()
    expect(frame.locator("#result")).to_have_attribute("data-status", "pending_review", timeout=20_000)


def test_scan_with_the_sandbox_phone_from_an_ordinary_browser(
    processes: Processes, new_page: Callable[..., Any], browser_errors: BrowserErrors
) -> None:
    browser_errors.expect_status(404, "/media/photos/")  # the test's photo row has no file
    submission_id = _attempt(processes, "o-separate-native", "native")
    page = new_page()
    # The sign-in leaves the phone's cookie (the emulator's, path /_sandbox) in this browser too.
    page.goto(f"{processes.sandbox}/_sandbox/login-as/o-separate-native?next=/h5/pay/{submission_id}")
    pay_page = f"{processes.service}/h5/pay/{submission_id}"
    expect(page).to_have_url(re.compile(re.escape(pay_page) + r"(#.*)?$"))
    expect(page.locator("#pay-page")).to_have_attribute("data-mode", "native")
    expect(page.locator("#pay-page")).to_have_attribute("data-state", "qr")
    page.get_by_role("button", name="用沙箱手机扫码支付").click()
    expect(page.locator("#pay-message")).to_contain_text("正在确认缴费结果")
    expect(page.locator("#result")).to_have_attribute("data-status", "pending_review", timeout=20_000)
    deliveries = requests.get(f"{processes.sandbox}/_sandbox/pay/_ctl/deliveries", timeout=5).json()
    assert all(d["status"] == 204 for d in deliveries["deliveries"])


def test_the_staff_pages_open_in_the_phones_frame_from_another_origin(
    processes: Processes, new_page: Callable[..., Any], browser_errors: BrowserErrors
) -> None:
    # Operators open 运营 › 待审核 inside WeChat: the staff pages allow the emulator's origin as framer.
    # Chromium does not autofocus the username in a frame of another origin (inside WeChat the page is
    # the whole window): it says so on the console.
    browser_errors.expect(r"Blocked autofocusing on a <input> element in a cross-origin subframe")
    phone = new_page()
    phone.goto(f"{processes.sandbox}/_sandbox/")
    phone.evaluate(
        "url => { document.getElementById('browser').hidden = false;"
        " document.getElementById('browser-frame').src = url; }",
        f"{processes.service}/review/login",
    )
    frame = phone.frame(name="wechat-browser")
    assert frame is not None
    frame.wait_for_url(re.compile(re.escape(f"{processes.service}/review/login")))
    expect(frame.get_by_role("button", name="登录")).to_be_visible()
