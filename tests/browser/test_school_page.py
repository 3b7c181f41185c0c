"""/h5/school in headless Chromium (390×844): the cascade, search, closed batches, 确定关联, and the
school pre-selected by a school QR code. Demo data = the schools of the seed manuals."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from flask import Flask
from playwright.sync_api import Page, expect
from sqlalchemy import select

from app.extensions import db
from app.integrations import pii_keyring
from app.services import demo_data, enrollments, identities
from app.services.identities import IdentityInput
from models import Batch, School, User

OPENID = "oSchoolPageStudent00000001"


def _signed_in_and_bound(app: Flask, phone: Page, base: str, scene: str | None = None) -> int:
    with app.app_context():
        demo_data.load_schools(db.session)
    phone.goto(f"{base}/_sandbox/login-as/{OPENID}?next=/h5/")
    # Browsers carry the authorize URL's #wechat_redirect through the redirects.
    expect(phone).to_have_url(re.compile(re.escape(f"{base}/h5/") + r"(#.*)?$"))
    with app.app_context():
        user = db.session.scalar(select(User).where(User.openid == OPENID))
        assert user is not None
        user.last_scene = scene
        db.session.commit()
        identities.bind(
            db.session,
            pii_keyring(),
            user.id,
            IdentityInput("resident_id", "210101200101010011", "张三"),
            date.today(),
        )
        return user.id


def _batch_ids(app: Flask, code: str) -> dict[str, int]:
    """{"open": id, "closed": id} of a demo school."""
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    with app.app_context():
        found = db.session.scalars(select(Batch).join(School).where(School.code == code)).all()
        return {("open" if b.is_open(now) else "closed"): b.id for b in found}


def _ready(phone: Page) -> None:
    expect(phone.locator("#school-page")).to_have_attribute("data-state", "ready")


def test_cascade_closed_batch_and_link(app: Flask, phone: Page, live_server: Any) -> None:
    user_id = _signed_in_and_bound(app, phone, live_server.url)
    batches = _batch_ids(app, "10542")
    phone.goto(f"{live_server.url}/h5/school")
    _ready(phone)
    expect(phone.locator("#link-button")).to_be_disabled()

    phone.select_option("#province", "湖南省")
    # 湖南省 has schools in one city only: it is chosen for the student.
    expect(phone.locator("#city")).to_have_value("长沙市")
    phone.select_option("#school", "10542")

    closed = phone.locator(f"#batch-{batches['closed']}")
    expect(closed).to_be_disabled()
    expect(phone.locator(f"[data-testid=batch-{batches['closed']}] .batch-closed")).to_contain_text("截止")
    phone.locator(f"[data-testid=batch-{batches['open']}]").click()
    expect(phone.locator("#batch-detail")).to_be_visible()
    expect(phone.locator("#detail-spec")).to_have_text("480×640 像素，JPG 格式，100–200 KB，浅蓝色背景")
    expect(phone.locator("#detail-fee")).to_contain_text("2 元")
    expect(phone.locator("#detail-review")).to_contain_text("7–10 天")

    phone.locator("#link-button").click()
    expect(phone.locator("#linked")).to_be_visible()
    expect(phone.locator("#linked")).to_contain_text("已关联")
    expect(phone.locator("#linked-summary")).to_contain_text("湖南师范大学")
    expect(phone.locator("#to-me")).to_have_attribute("href", "/h5/me")
    expect(phone.locator("#next-step")).to_have_attribute("href", "/h5/photo")
    with app.app_context():
        enrollment = enrollments.active(db.session, user_id)
        assert enrollment is not None and enrollment.batch_id == batches["open"]

    # Coming back: the linked school and batch are selected.
    phone.reload()
    _ready(phone)
    expect(phone.locator("#current-link")).to_contain_text("湖南师范大学")
    expect(phone.locator("#school")).to_have_value("10542")
    expect(phone.locator(f"#batch-{batches['open']}")).to_be_checked()


def test_search_by_name_and_a_refusal_shown_beside_the_button(
    app: Flask, phone: Page, live_server: Any, browser_errors: Any
) -> None:
    browser_errors.expect_status(422, "/api/v1/me/enrollment")
    user_id = _signed_in_and_bound(app, phone, live_server.url)
    batches = _batch_ids(app, "10496")
    phone.goto(f"{live_server.url}/h5/school")
    _ready(phone)

    phone.fill("#school-search", "轻工")
    phone.locator("#search-button").click()
    phone.locator("#search-results button[data-code='10496']").click()
    expect(phone.locator("#province")).to_have_value("湖北省")
    expect(phone.locator("#city")).to_have_value("武汉市")
    expect(phone.locator("#school")).to_have_value("10496")
    phone.locator(f"[data-testid=batch-{batches['open']}]").click()
    expect(phone.locator("#detail-spec")).to_contain_text("不超过 500 KB")

    # The identity was unbound in another tab meanwhile: the API's message appears on the page.
    with app.app_context():
        identities.unbind(db.session, user_id)
    phone.locator("#link-button").click()
    expect(phone.locator("#link-error")).to_contain_text("请先完成实名绑定")
    expect(phone.locator("#linked")).to_be_hidden()

    phone.fill("#school-search", "没有这所学校")
    phone.locator("#search-button").click()
    expect(phone.locator("#search-results")).to_contain_text("没有找到")


def test_the_school_of_a_scanned_qr_code_is_preselected(app: Flask, phone: Page, live_server: Any) -> None:
    _signed_in_and_bound(app, phone, live_server.url, scene="school:10699")
    phone.goto(f"{live_server.url}/h5/school")
    _ready(phone)
    expect(phone.locator("#scene-note")).to_be_visible()
    expect(phone.locator("#province")).to_have_value("陕西省")
    expect(phone.locator("#school")).to_have_value("10699")
    expect(phone.locator("#batch-list input[name=batch]")).to_have_count(2)
