"""A 武汉轻工大学 candidate (成考, 英语; seated) opens /h5/ticket on the phone inside the ticket window and
sees every field; staff at the door open the ticket's QR link on their phone, sign in, see the photo
and the seat, tap 签到, and the room's list shows the candidate present (headless Chromium, 390×844;
screenshots under var/screenshots/)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from flask import Flask
from playwright.sync_api import Page, expect
from sqlalchemy import select

from app.extensions import db
from app.services import seating
from app.services import staff as staff_service
from models import Batch, ExamSeat, StaffRole
from tests.exam_factories import BATCH_NAME, make_candidate, make_exam_batch, with_form
from tests.factories import STAFF_PASSWORD, jpeg

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "var" / "screenshots"  # git-ignored; CI keeps it as an artifact
FACE = ROOT / "tests" / "fixtures" / "photos" / "id_ok.jpg"


def test_candidate_prints_the_ticket_and_staff_check_them_in_at_the_door(
    app: Flask, phone: Page, new_page: Any, live_server: Any
) -> None:
    base = live_server.url
    with app.app_context():
        exam = make_exam_batch(sites=(("0101", 60),), room_size=30)
        with_form(exam.batch_id)
        for n in range(3):  # classmates: the candidate is not alone in the room list
            make_candidate(exam.batch_id, 100 + n, name=f"同学{n}", photo_bytes=jpeg((150 + n, 170, 200)))
        user_id, _ = make_candidate(
            exam.batch_id,
            7,
            name="王晓燕",
            male=False,
            answers={"category": "成考(在籍)", "language": "英语"},
            photo_bytes=FACE.read_bytes(),
        )
        batch = db.session.get(Batch, exam.batch_id)
        assert batch is not None
        seating.assign(db.session, batch)
        seat = db.session.scalars(select(ExamSeat).where(ExamSeat.user_id == user_id)).one()
        ticket_no, room, seat_no = seat.ticket_no, seat.room_no, seat.seat_no
        staff_service.create(db.session, "door-a", STAFF_PASSWORD, StaffRole.REVIEWER, ["10496"])

    phone.goto(f"{base}/_sandbox/login-as/o-cand-7?next=/h5/ticket")
    expect(phone).to_have_url(re.compile(re.escape(f"{base}/h5/ticket")))
    expect(phone.get_by_test_id("ticket-title")).to_have_text(f"{BATCH_NAME} 准考证")
    expect(phone.get_by_test_id("ticket-registration")).to_have_text(re.compile(r"^\d{8}-[0-9A-Z]{8}$"))
    expect(phone.get_by_test_id("ticket-no")).to_have_text(ticket_no)
    expect(phone.get_by_test_id("ticket-name")).to_have_text("王晓燕")
    expect(phone.get_by_test_id("ticket-sex")).to_have_text("女")
    expect(phone.get_by_test_id("ticket-number")).to_have_text(re.compile(r"^4201\*+\d{3}[\dX]$"))
    expect(phone.get_by_test_id("ticket-room")).to_have_text(f"第 {room} 考场")
    expect(phone.get_by_test_id("ticket-seat")).to_have_text(f"{seat_no} 号")
    expect(phone.get_by_test_id("ticket-category")).to_have_text("成考(在籍)")
    expect(phone.get_by_test_id("ticket-language")).to_have_text("英语")
    expect(phone.get_by_test_id("ticket-site")).to_contain_text("武汉市东西湖区常青花园学府南路68号")
    expect(phone.get_by_test_id("ticket-times")).to_have_text("2026年12月20日 09:00–11:00 英语（二）")
    expect(phone.get_by_test_id("ticket-notice")).to_contain_text("考生入场时间是考前15分钟")
    expect(phone.get_by_test_id("ticket-pledge")).to_contain_text("诚信应考")
    expect(phone.get_by_test_id("ticket-qr").locator("svg")).to_be_visible()
    photo = phone.get_by_test_id("ticket-photo")
    phone.wait_for_function("el => el.complete && el.naturalWidth > 0", arg=photo.element_handle())
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    phone.emulate_media(media="print")
    expect(phone.get_by_test_id("print")).to_be_hidden()
    phone.emulate_media(media="screen")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    phone.screenshot(path=str(SCREENSHOTS / "ticket-phone.png"), full_page=True)
    door_url = phone.get_by_test_id("ticket").get_attribute("data-door-url")
    assert door_url and door_url.startswith(f"{base}/verify/ticket/")

    # The staff's phone scans the QR: the sign-in first, then the door check.
    door = new_page()
    door.goto(door_url)
    door.get_by_label("用户名").fill("door-a")
    door.get_by_label("密码").fill(STAFF_PASSWORD)
    door.get_by_role("button", name="登录").click()
    expect(door).to_have_url(re.compile(r"/review/exams/door/"))
    expect(door.get_by_test_id("door-name")).to_have_text("王晓燕")
    expect(door.get_by_test_id("door-ticket")).to_have_text(ticket_no)
    expect(door.get_by_test_id("door-room")).to_have_text(f"第 {room} 考场")
    expect(door.get_by_test_id("door-seat")).to_have_text(f"{seat_no} 号")
    expect(door.get_by_test_id("door-paid")).to_have_text("已缴费")
    big = door.get_by_test_id("door-photo")
    door.wait_for_function("el => el.complete && el.naturalWidth > 0", arg=big.element_handle())
    assert door.evaluate("document.documentElement.scrollWidth") <= 390
    door.screenshot(path=str(SCREENSHOTS / "ticket-door-phone.png"), full_page=True)
    door.get_by_test_id("check-in").click()
    expect(door.get_by_test_id("door-checked-in")).to_contain_text("已签到")
    expect(door.get_by_test_id("check-in")).to_have_count(0)

    door.get_by_test_id("door-room-list").click()
    row = door.locator(f'[data-testid="roster-row"][data-ticket="{ticket_no}"]')
    expect(row).to_have_attribute("data-present", "1")
    expect(row).to_contain_text("已到")
    expect(door.get_by_test_id("count-present")).to_have_text("已到 1")
    expect(door.get_by_test_id("count-absent")).to_have_text(re.compile(r"^未到 \d+$"))
    door.wait_for_load_state("load")
    assert door.evaluate("document.documentElement.scrollWidth") <= 390
    door.screenshot(path=str(SCREENSHOTS / "ticket-room-list-phone.png"), full_page=True)

    # A classmate whose printed QR will not scan is checked in from the list, by the photo.
    absent = door.locator('[data-testid="roster-row"][data-present="0"]').first
    classmate = absent.get_attribute("data-ticket")
    absent.get_by_test_id("check-in-row").click()
    expect(door.locator(".rv-flash").first).to_contain_text("已签到")
    expect(door.locator(f'[data-testid="roster-row"][data-ticket="{classmate}"]')).to_have_attribute(
        "data-present", "1"
    )
    expect(door.get_by_test_id("count-present")).to_have_text("已到 2")

    # The overview of every site and room fits the phone too.
    door.goto(f"{base}/review/exams")
    expect(door.get_by_test_id("exam-site")).to_contain_text("2 / 4")
    door.wait_for_load_state("load")
    assert door.evaluate("document.documentElement.scrollWidth") <= 390
    door.screenshot(path=str(SCREENSHOTS / "exams-overview-phone.png"), full_page=True)
