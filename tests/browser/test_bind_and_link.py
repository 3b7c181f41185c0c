"""The binding walk on a phone-sized headless Chromium: login-as → 实名绑定 (a wrong check digit first,
then the right number, with birth date and sex shown to confirm) → 关联学校 through the cascade →
我的 shows both, masked → 取消微信绑定 → bind again."""

from __future__ import annotations

import re
from typing import Any

from flask import Flask
from playwright.sync_api import Page, expect

from app.extensions import db
from app.services import demo_data

OPENID = "oPhoneStudent0000000000001"
NAME = "张三"
NUMBER = "210101200101010011"
WRONG_CHECK_DIGIT = "210101200101010012"
MASKED = "2101**********0011"


def _at(base: str, path: str) -> re.Pattern[str]:
    """The page's URL; the sign-in hops carry WeChat's #wechat_redirect fragment along, as browsers do."""
    return re.compile(re.escape(base + path) + r"(#.*)?$")


def _type_number(page: Page, number: str) -> None:
    field = page.locator("#id_number")
    field.fill("")
    field.press_sequentially(number, delay=5)  # as a thumb types it: the check starts by itself


def _bind(page: Page) -> None:
    expect(page.locator("#id_type")).to_have_value("resident_id")  # the default document
    page.locator("#name").fill(NAME)
    _type_number(page, NUMBER)
    expect(page.get_by_test_id("id-check")).to_have_text("请核对：2001年1月1日出生，男")
    page.get_by_test_id("bind-submit").click()
    expect(page).to_have_url(re.compile(r"/h5/bind\?done=bound$"))
    expect(page.get_by_test_id("notice")).to_have_text("实名绑定成功。")
    expect(page.get_by_test_id("identity-number")).to_have_text(MASKED)
    expect(page.get_by_test_id("identity-name")).to_have_text("张*")


def test_bind_link_me_unbind_and_rebind(
    app: Flask, live_server: Any, phone: Page, browser_errors: Any
) -> None:
    browser_errors.expect_status(422, "/api/v1/identity/check")
    browser_errors.expect_status(422, "/api/v1/me/identity")
    with app.app_context():
        demo_data.load_schools(db.session)
        db.session.remove()
    base = live_server.url
    phone.goto(f"{base}/_sandbox/login-as/{OPENID}?next=/h5/bind")
    expect(phone).to_have_url(_at(base, "/h5/bind"))
    expect(phone.locator("h1")).to_have_text("实名绑定")
    expect(phone.get_by_text("来华留学生选「护照」，港澳台学生选对应证件。")).to_be_visible()
    # The number field's keyboard follows the document type.
    expect(phone.locator("#id_number")).to_have_attribute("autocapitalize", "characters")
    phone.select_option("#id_type", "taiwan_permit")
    expect(phone.locator("#id_number")).to_have_attribute("inputmode", "numeric")
    phone.select_option("#id_type", "resident_id")
    expect(phone.locator("#id_number")).to_have_attribute("inputmode", "text")

    # A wrong check digit first: the message appears beside the number, nothing is bound.
    phone.locator("#name").fill(NAME)
    _type_number(phone, WRONG_CHECK_DIGIT)
    error = phone.locator("#err-id_number")
    expect(error).to_have_text("证件号码校验位不正确，请逐位核对（最后一位 X 请大写）")
    expect(phone.get_by_test_id("id-check")).to_be_hidden()
    expect(phone.locator("#id_number")).to_have_attribute("aria-invalid", "true")
    phone.screenshot(path="/tmp/h5_bind_error.png", full_page=True)
    phone.get_by_test_id("bind-submit").click()  # submitting anyway is refused beside the field too
    expect(error).to_have_text("证件号码校验位不正确，请逐位核对（最后一位 X 请大写）")
    expect(phone).to_have_url(_at(base, "/h5/bind"))

    # The right number: birth date and sex to confirm, the error gone.
    _type_number(phone, NUMBER)
    expect(phone.get_by_test_id("id-check")).to_have_text("请核对：2001年1月1日出生，男")
    expect(error).to_be_hidden()
    phone.screenshot(path="/tmp/h5_bind.png", full_page=True)
    phone.get_by_test_id("bind-submit").click()
    expect(phone).to_have_url(re.compile(r"/h5/bind\?done=bound$"))
    expect(phone.get_by_test_id("identity-number")).to_have_text(MASKED)
    expect(phone.get_by_test_id("identity-name")).to_have_text("张*")
    phone.screenshot(path="/tmp/h5_bind_bound.png", full_page=True)

    # 去关联学校 → the cascade: 湖南省 → 长沙市 → 湖南师范大学 → its open batch → 确定关联.
    phone.get_by_test_id("next-step").click()
    expect(phone).to_have_url(_at(base, "/h5/school"))
    expect(phone.locator("#school-page")).to_have_attribute("data-state", "ready")
    phone.select_option("#province", "湖南省")
    expect(phone.locator("#city")).to_have_value("长沙市")  # the only city: chosen by itself
    phone.select_option("#school", "10542")
    open_batch = phone.locator("#batch-list input[name=batch]:not([disabled])")
    expect(open_batch).to_have_count(1)
    batch_name = phone.locator("#batch-list label.batch:not(.closed) .batch-name").inner_text()
    open_batch.check()
    expect(phone.locator("#detail-spec")).to_have_text("480×640 像素，JPG 格式，100–200 KB，浅蓝色背景")
    phone.locator("#link-button").click()
    expect(phone.locator("#linked")).to_be_visible()
    phone.locator("#to-me").click()

    # 我的: both, masked, with the photo spec in words and the next step.
    expect(phone).to_have_url(_at(base, "/h5/me"))
    expect(phone.get_by_test_id("identity-number")).to_have_text(MASKED)
    expect(phone.get_by_test_id("identity-name")).to_have_text("张*")
    expect(phone.get_by_test_id("school-name")).to_have_text("湖南师范大学")
    expect(phone.get_by_test_id("batch-name")).to_have_text(batch_name)
    expect(phone.get_by_test_id("photo-spec")).to_have_text("480×640 像素，JPG 格式，100–200 KB，浅蓝色背景")
    # 湖南师范大学's batch has a 须知: it is read (once) before the photo.
    expect(phone.get_by_test_id("progress")).to_have_attribute("data-step", "notice")
    expect(phone.get_by_test_id("next-step")).to_have_text("去阅读须知")
    assert NUMBER not in phone.content() and NAME not in phone.content()
    phone.screenshot(path="/tmp/h5_me.png", full_page=True)
    phone.get_by_test_id("next-step").click()
    expect(phone).to_have_url(_at(base, "/h5/notice"))
    phone.locator("#notice-ack").click()
    expect(phone).to_have_url(_at(base, "/h5/photo"))
    phone.goto(f"{base}/h5/me")
    expect(phone.get_by_test_id("progress")).to_have_attribute("data-step", "photo")
    expect(phone.get_by_test_id("next-step")).to_have_text("去上传照片")

    # 取消微信绑定, with a confirmation step that can be backed out of.
    phone.get_by_test_id("unbind").click()
    expect(phone.get_by_text("确定取消微信绑定吗？")).to_be_visible()
    phone.get_by_role("button", name="不取消").click()
    expect(phone.get_by_test_id("unbind-confirm")).to_be_hidden()
    phone.get_by_test_id("unbind").click()
    phone.screenshot(path="/tmp/h5_me_unbind_confirm.png")
    phone.get_by_test_id("unbind-confirm").click()
    expect(phone).to_have_url(re.compile(r"/h5/me\?done=unbound$"))
    expect(phone.get_by_test_id("notice")).to_have_text("已取消微信绑定。需要时可以重新绑定。")
    expect(phone.get_by_test_id("me-identity")).to_contain_text("还没有实名绑定")
    expect(phone.get_by_test_id("me-school")).to_contain_text("实名绑定后即可关联学校")
    expect(phone.get_by_test_id("progress")).to_have_attribute("data-step", "bind")

    # Bind again from 我的: the same identity is free again; the school is linked afresh.
    phone.get_by_test_id("me-identity").get_by_role("link", name="去实名绑定").click()
    expect(phone).to_have_url(_at(base, "/h5/bind"))
    _bind(phone)
    expect(phone.get_by_test_id("next-step")).to_have_text("去关联学校")


def test_modify_from_me_and_the_server_side_refusal_beside_the_name(
    app: Flask, live_server: Any, phone: Page, browser_errors: Any
) -> None:
    browser_errors.expect_status(422, "/api/v1/identity/check")
    browser_errors.expect_status(422, "/api/v1/me/identity")
    base = live_server.url
    phone.goto(f"{base}/_sandbox/login-as/{OPENID}?next=/h5/bind")
    _bind(phone)
    phone.goto(f"{base}/h5/me")
    phone.get_by_test_id("modify").click()
    expect(phone).to_have_url(_at(base, "/h5/bind?edit=1"))
    expect(phone.locator("#bind-form")).to_be_visible()
    expect(phone.get_by_test_id("bind-submit")).to_have_text("保存修改")
    phone.locator("#name").fill("Zhang San")  # a Latin name is only for passports
    _type_number(phone, NUMBER)  # leaving the name field checks it
    latin_refused = "请填写证件上的中文姓名，少数民族姓名中间的点用「·」"
    expect(phone.locator("#err-name")).to_have_text(latin_refused)
    expect(phone.get_by_test_id("id-check")).to_have_text("请核对：2001年1月1日出生，男")
    phone.get_by_test_id("bind-submit").click()
    expect(phone.locator("#err-name")).to_have_text(latin_refused)
    expect(phone).to_have_url(_at(base, "/h5/bind?edit=1"))
    phone.locator("#name").fill("阿依古丽•买买提")  # any middle dot the phone offers
    phone.get_by_test_id("bind-submit").click()
    expect(phone).to_have_url(re.compile(r"/h5/bind\?done=bound$"))
    expect(phone.get_by_test_id("identity-name")).to_have_text("阿******提")
