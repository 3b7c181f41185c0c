"""拍身份证自动填写 on a phone-sized headless Chromium, with synthetic cards (tests/idcards.py):

- 实名绑定: the student picks a photo of the card's front, the form gets its name and number (the live
  check then shows birth date and sex), the other fields are shown to check, and binding works as before;
- 上传材料 → 填写报名信息: a front uploaded into an id_card_front slot fills the form's empty answers, the
  documents page says which, the form page marks them, and the student corrects one and saves.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from idcards import FONT_MISSING, card_photos, font_available, readings_cached
from playwright.sync_api import Page, expect

from app.extensions import db
from app.services import applications, batch_forms, demo_data
from models import Batch, Flow
from tests.factories import NOW, make_flow_batch, make_linked_student

pytestmark = pytest.mark.skipif(not font_available(), reason=FONT_MISSING)

SEED = 13
OPENID = "oPhoneIdcard00000000000001"

DEFINITION: dict[str, Any] = {
    "school": "10488",
    "batch": "placeholder",
    "sections": [
        {
            "title": "基本信息",
            "fields": [
                {"key": "xm", "label": "姓名", "required": True, "personal": True},
                {
                    "key": "gender",
                    "label": "性别",
                    "kind": "radio",
                    "options": ["男", "女"],
                    "personal": True,
                },
                {"key": "nation", "label": "民族", "personal": True},
                {"key": "birth", "label": "出生日期", "kind": "date", "personal": True},
                {"key": "hukou", "label": "户籍地址", "personal": True},
            ],
        }
    ],
    "documents": [
        {
            "key": "front",
            "label": "身份证正面",
            "kind": "id_card_front",
            "formats": ["jpg", "png"],
            "fills": {
                "name": "xm",
                "sex": "gender",
                "ethnicity": "nation",
                "birth_date": "birth",
                "address": "hukou",
            },
        }
    ],
}


@pytest.fixture(scope="module", autouse=True)
def _cached() -> Iterator[None]:
    with readings_cached():
        yield


def _file(data: bytes) -> dict[str, Any]:
    return {"name": "idcard.jpg", "mimeType": "image/jpeg", "buffer": data}


def test_the_bind_form_is_filled_from_a_photo_of_the_card(
    app: Flask, live_server: Any, phone: Page, browser_errors: Any
) -> None:
    ident, front, _ = card_photos(SEED)
    with app.app_context():
        demo_data.load_schools(db.session)
        db.session.remove()
    base = live_server.url
    phone.goto(f"{base}/_sandbox/login-as/{OPENID}?next=/h5/bind")
    expect(phone.get_by_test_id("idcard-read")).to_have_text("拍身份证自动填写")
    phone.select_option("#id_type", "passport")  # whatever was chosen: a 居民身份证 was read
    phone.set_input_files("#idcard-file", files=[_file(front)])

    expect(phone.get_by_test_id("idcard-status")).to_contain_text("已根据身份证填写，请逐项核对")
    expect(phone.locator("#id_type")).to_have_value("resident_id")
    expect(phone.locator("#name")).to_have_value(ident.name)
    expect(phone.locator("#id_number")).to_have_value(ident.number)
    born = ident.birth
    expect(phone.get_by_test_id("id-check")).to_have_text(
        f"请核对：{born.year}年{born.month}月{born.day}日出生，{ident.sex}"
    )
    facts = phone.get_by_test_id("idcard-facts")
    expect(facts.locator('[data-read="address"]')).to_have_text(ident.address)
    expect(facts.locator('[data-read="ethnicity"]')).to_have_text(ident.ethnicity)
    expect(phone.get_by_test_id("idcard-warnings")).to_be_hidden()

    phone.get_by_test_id("bind-submit").click()
    expect(phone).to_have_url(re.compile(r"/h5/bind\?done=bound$"))
    expect(phone.get_by_test_id("identity-number")).to_have_text(
        ident.number[:4] + "*" * 10 + ident.number[-4:]
    )


def test_an_id_card_front_upload_fills_the_form_for_the_student_to_check(
    app: Flask, live_server: Any, phone: Page, browser_errors: Any
) -> None:
    ident, front, _ = card_photos(SEED)
    with app.app_context():
        batch_id = make_flow_batch(Flow.FREE)
        batch = db.session.get(Batch, batch_id)
        assert batch is not None
        applications.attach(
            db.session, batch, batch_forms.from_data({**DEFINITION, "batch": batch.name}), NOW
        )
        db.session.commit()
        make_linked_student(batch_id, OPENID, id_number=ident.number, name=ident.name)
        db.session.remove()
    base = live_server.url
    phone.goto(f"{base}/_sandbox/login-as/{OPENID}?next=/h5/documents")
    slot = phone.locator('[data-slot="front"]')
    slot.locator('[data-upload="front"]').set_input_files(files=[_file(front)])

    filled = slot.locator("[data-filled]")  # the page reloads with the stored file and its reading
    expect(filled).to_contain_text("已根据身份证自动填写：「姓名」「性别」「民族」「出生日期」「户籍地址」")
    expect(slot.locator("[data-reading-warning]")).to_have_count(0)  # the bound identity's card
    filled.get_by_role("link", name="填写报名信息").click()

    expect(phone.locator("#f-xm")).to_have_value(ident.name)
    expect(phone.locator("#f-gender")).to_have_value(ident.sex)
    expect(phone.locator("#f-nation")).to_have_value(ident.ethnicity)
    expect(phone.locator("#f-birth")).to_have_value(ident.birth.isoformat())
    expect(phone.locator("#f-hukou")).to_have_value(ident.address)
    expect(phone.locator('[data-autofilled="hukou"]')).to_have_text("✎ 由身份证识别自动填写，请核对")

    # A misread is corrected by hand and saved as any answer.
    phone.locator("#f-hukou").fill(ident.address + "（已核对）")
    phone.locator("#form-save").click()
    expect(phone.locator("#form-saved")).to_be_visible()
    phone.reload()
    expect(phone.locator("#f-hukou")).to_have_value(ident.address + "（已核对）")
