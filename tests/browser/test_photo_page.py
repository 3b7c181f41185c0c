"""The photo walk on a phone-sized headless Chromium:

- login-as → /h5/photo → upload a 4000×3000 phone-style photo → the auto-fixed 480×640 preview, its
  file size within 湖南师范大学's 100–200 KB and every check green; then a picture with no face → the
  face message in red;
- on the sandbox phone, sending a picture in the chat yields a verdict message in the chat.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from flask import Flask
from photo_students import FIXTURES, prepare
from playwright.sync_api import Page, expect

from app.jobs.worker import run_due

PHONE_PHOTO = FIXTURES / "phone_4000x3000.jpg"
NO_FACE = FIXTURES / "no_face_coffee.jpg"


def _at(base: str, path: str) -> re.Pattern[str]:
    return re.compile(re.escape(base + path) + r"(#.*)?$")


def _choose(page: Page, path: Path) -> None:
    page.locator("#file-album").set_input_files(str(path))


def test_upload_a_phone_photo_then_one_without_a_face(app: Flask, live_server: Any, phone: Page) -> None:
    prepare(app, "oPhotoPageStudent000000001")
    base = live_server.url
    phone.goto(f"{base}/_sandbox/login-as/oPhotoPageStudent000000001?next=/h5/photo")
    expect(phone).to_have_url(_at(base, "/h5/photo"))
    expect(phone.locator("h1")).to_have_text("上传照片")
    expect(phone.locator("#spec-text")).to_have_text("480×640 像素，JPG 格式，100–200 KB，浅蓝色背景")
    expect(phone.locator("#requirements")).to_contain_text("不得上传扫描件、翻拍的纸质照片或自拍照")
    expect(phone.locator("#file-camera")).to_have_attribute("accept", "image/*")
    expect(phone.locator("#file-camera")).to_have_attribute("capture", re.compile(r"^(user|environment)$"))
    expect(phone.locator("#result")).to_be_hidden()  # nothing uploaded yet

    # The phone photo: preview, progress, then the auto-fixed result with every check green.
    _choose(phone, PHONE_PHOTO)
    expect(phone.locator("#preview-box")).to_be_visible()
    expect(phone.locator("#photo-page")).to_have_attribute("data-state", "done", timeout=30_000)
    result = phone.locator("#result")
    expect(result).to_be_visible()
    expect(result).to_have_attribute("data-passed", "true")
    expect(phone.locator("#result-verdict")).to_have_text("照片符合要求 ✓")
    image = phone.locator("#result-image")
    expect(image).to_have_js_property("naturalWidth", 480)
    expect(image).to_have_js_property("naturalHeight", 640)
    size = phone.locator("#result-size")
    expect(size).to_contain_text("480×640 像素")
    shown_bytes = int(size.get_attribute("data-bytes") or 0)
    assert 100 * 1024 <= shown_bytes <= 200 * 1024
    expect(size).to_contain_text(f"{shown_bytes / 1024:.1f} KB")
    checks = phone.locator("#checks li")
    assert checks.count() >= 8
    expect(phone.locator('#checks li[data-ok="false"]')).to_have_count(0)
    for item in checks.all():
        expect(item).to_have_class("ok")
    # All green: folded under one line; what auto-fix did (JPG quality …) is for staff, not shown here.
    expect(phone.locator("#checks-passed-summary")).to_have_text(f"全部 {checks.count()} 项符合要求")
    expect(phone.locator("#fixes")).to_have_count(0)
    expect(phone.locator("#next-step")).to_be_visible()
    assert phone.locator("#upload-progress").is_hidden()
    phone.screenshot(path="/tmp/h5_photo_passed.png", full_page=True)

    # A picture with no face: stored, reported, the face line red with what to do.
    _choose(phone, NO_FACE)
    expect(result).to_have_attribute("data-passed", "false", timeout=30_000)
    expect(phone.locator("#photo-page")).to_have_attribute("data-state", "done")
    face = phone.locator('#checks li[data-check="face_count"]')
    expect(face).to_have_attribute("data-ok", "false")
    expect(face).to_have_class("fail")
    expect(face).to_contain_text("没有检测到人脸")
    expect(phone.locator("#result-verdict")).to_contain_text("未通过")
    expect(phone.locator("#next-step")).to_be_hidden()
    phone.screenshot(path="/tmp/h5_photo_no_face.png", full_page=True)

    # Coming back later: the page shows the latest verdict by itself.
    phone.reload()
    expect(result).to_have_attribute("data-passed", "false")
    expect(phone.locator('#checks li[data-check="face_count"]')).to_contain_text("没有检测到人脸")


def test_not_an_image_shows_the_message(
    app: Flask, live_server: Any, phone: Page, browser_errors: Any
) -> None:
    browser_errors.expect_status(422, "/api/v1/me/photos")
    prepare(app, "oPhotoPageStudent000000002")
    base = live_server.url
    phone.goto(f"{base}/_sandbox/login-as/oPhotoPageStudent000000002?next=/h5/photo")
    expect(phone).to_have_url(_at(base, "/h5/photo"))
    phone.locator("#file-album").set_input_files(str(FIXTURES / "document.pdf"))
    expect(phone.locator("#upload-error")).to_contain_text("PDF")
    expect(phone.locator("#photo-page")).to_have_attribute("data-state", "error")
    expect(phone.locator("#result")).to_be_hidden()


def test_a_picture_sent_in_the_phone_chat_gets_a_verdict(app: Flask, live_server: Any, phone: Page) -> None:
    phone.goto(f"{live_server.url}/_sandbox/")
    phone.get_by_label("昵称").fill("小红")
    phone.get_by_role("button", name="创建").click()
    expect(phone.get_by_label("当前用户")).to_have_value(re.compile(r"^o"))
    openid = phone.get_by_label("当前用户").input_value()
    phone.get_by_role("button", name="关注公众号").click()
    expect(phone.get_by_text("你关注了公众号")).to_be_visible()
    prepare(app, openid)

    phone.locator("#image-input").set_input_files(str(PHONE_PHOTO))
    expect(phone.locator(".msg.in .bubble.image img")).to_have_count(1)
    expect(phone.locator(".msg.out").last).to_contain_text("正在检查")
    # The worker: the check, then the custom message with the verdict.
    assert run_due(app) == 1
    assert run_due(app) == 1
    expect(phone.locator(".msg.out").last).to_contain_text("照片检查通过", timeout=15_000)
    expect(phone.locator(".msg.out").last).to_contain_text("480×640")
    phone.screenshot(path="/tmp/phone_photo_verdict.png")
