"""The sandbox roster editor (人口库名单) in headless Chromium, at the phone's size.

The panel is the same partial the phone page includes; here it is driven on its own page. What a
person enters is what the sandbox verification provider then answers.
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from playwright.sync_api import expect

from app.integrations import identity_verifier
from app.integrations.identity import VerificationOutcome

NUMBER = "11010519491231002X"
XSS_NAME = "<img src=x onerror=alert(1)>"


def test_a_person_adds_and_deletes_roster_entries(
    app: Flask, live_server: Any, phone: Any, browser_errors: Any
) -> None:
    browser_errors.expect_status(400, "/_sandbox/roster")
    dialogs: list[str] = []
    phone.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    phone.goto(f"{live_server.url}/_sandbox/roster/editor")
    panel = phone.locator("#roster-panel")
    expect(panel).to_have_attribute("open", "")
    expect(phone.locator("#roster-empty")).to_be_visible()

    # Nothing filled in: each field says what is missing, beside it.
    phone.get_by_role("button", name="添加").click()
    expect(phone.locator("#roster-error-id_number")).to_have_text("请填写证件号码")
    expect(phone.locator("#roster-error-name")).to_have_text("请填写姓名")
    expect(phone.get_by_label("证件号码")).to_have_attribute("aria-invalid", "true")

    phone.get_by_label("证件号码").fill(NUMBER.lower())
    phone.get_by_label("姓名").fill("张三")
    phone.get_by_label("核验结果").select_option("not_found")
    phone.get_by_role("button", name="添加").click()
    rows = phone.locator("#roster-list li")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("1101**********002X 张三 → 查无此号")
    expect(phone.locator("#roster-count")).to_have_text("（1 条）")
    expect(phone.locator("#roster-error-id_number")).to_be_hidden()
    expect(phone.get_by_label("证件号码")).to_have_value("")
    assert NUMBER not in phone.content()
    with app.app_context():
        assert (
            identity_verifier().verify("resident_id", NUMBER, "张三").outcome is VerificationOutcome.NOT_FOUND
        )

    # A name is shown as text, never as markup.
    phone.get_by_label("证件号码").fill("110105194912310037")
    phone.get_by_label("姓名").fill(XSS_NAME)
    phone.get_by_role("button", name="添加").click()
    expect(rows).to_have_count(2)
    expect(phone.locator("#roster-list")).to_contain_text(XSS_NAME)
    expect(phone.locator("#roster-list img")).to_have_count(0)

    phone.get_by_role("button", name="删除 1101**********002X").click()
    expect(rows).to_have_count(1)
    expect(rows.first).not_to_contain_text("张三")
    with app.app_context():
        assert identity_verifier().verify("resident_id", NUMBER, "张三").outcome is VerificationOutcome.MATCH
    phone.get_by_role("button", name="删除 1101**********0037").click()
    expect(rows).to_have_count(0)
    expect(phone.locator("#roster-empty")).to_be_visible()
    expect(phone.locator("#roster-count")).to_have_text("")
    assert dialogs == []


def test_the_panel_collapses_and_loads_when_opened(app: Flask, live_server: Any, phone: Any) -> None:
    app.test_client().post("/_sandbox/roster", json={"id_number": NUMBER, "name": "李四", "result": "error"})
    phone.goto(f"{live_server.url}/_sandbox/roster/editor")
    expect(phone.locator("#roster-list li")).to_have_count(1)
    phone.locator("#roster-panel summary").click()
    expect(phone.locator("#roster-form")).to_be_hidden()
    app.test_client().post(
        "/_sandbox/roster", json={"id_number": "H12345678", "name": "陈大文", "result": "timeout"}
    )
    phone.locator("#roster-panel summary").click()
    expect(phone.locator("#roster-list li")).to_have_count(2)
    expect(phone.locator("#roster-list")).to_contain_text("服务超时")
