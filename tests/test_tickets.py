"""The 准考证 (/h5/ticket, /h5/ticket.pdf) in and out of its window, its QR token at the door, 签到,
the check-in lists, the push when the window opens and the checklist's step, through HTTP."""

from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from itsdangerous import URLSafeTimedSerializer
from pypdf import PdfReader
from sqlalchemy import select

from app.extensions import db
from app.jobs import periodic
from app.services import progress, schools, seating, steps, tickets
from app.services import staff as staff_service
from app.services.pushes import ResultPush
from models import AuditEntry, Batch, ExamSeat, OutboxItem, StaffRole, User
from models.submission import SubmissionStatus
from tests.conftest import TEST_SECRET_KEY
from tests.exam_factories import (
    BATCH_NAME,
    TICKET_NOTICE,
    TICKET_PLEDGE,
    id_number,
    make_candidate,
    make_exam_batch,
    with_form,
)
from tests.factories import NOW, STAFF_PASSWORD, jpeg
from tests.staff_pages import sign_in as staff_sign_in

DOOR_URL = re.compile(r'data-door-url="[^"]*/verify/ticket/([^"]+)"')


def sign_in(client: FlaskClient, user_id: int) -> None:
    with client.session_transaction() as sess:
        sess["user_id"] = user_id


def seat_everyone(batch_id: int) -> None:
    batch = db.session.get(Batch, batch_id)
    assert batch is not None
    seating.assign(db.session, batch)


def one_seated(app: Flask, *, ticket_open: bool = True, form: bool = True) -> tuple[int, int]:
    """A 武汉轻工大学 candidate (成考, 英语; female) seated; (user id, batch id)."""
    with app.app_context():
        exam = make_exam_batch(ticket_open=ticket_open)
        if form:
            with_form(exam.batch_id)
        answers = {"category": "成考(在籍)", "language": "英语"} if form else None
        user_id, _ = make_candidate(
            exam.batch_id, 7, name="王晓燕", male=False, answers=answers, photo_bytes=jpeg((180, 150, 140))
        )
        seat_everyone(exam.batch_id)
        return user_id, exam.batch_id


def make_staff() -> None:
    schools.upsert_school(db.session, "10542", "湖南师范大学", "湖南省", "长沙市")
    db.session.commit()
    staff_service.create(db.session, "door-a", STAFF_PASSWORD, StaffRole.REVIEWER, ["10496"])
    staff_service.create(db.session, "door-b", STAFF_PASSWORD, StaffRole.REVIEWER, ["10542"])


def ticket_token(client: FlaskClient) -> str:
    html = client.get("/h5/ticket").get_data(as_text=True)
    found = DOOR_URL.search(html)
    assert found, html[:800]
    return found.group(1)


# --- the page and its window ----------------------------------------------------------------------


def test_the_ticket_shows_every_field_in_its_window(app: Flask, client: FlaskClient) -> None:
    user_id, _ = one_seated(app)
    sign_in(client, user_id)
    response = client.get("/h5/ticket")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "private, no-store"
    html = response.get_data(as_text=True)
    with app.app_context():
        seat = db.session.scalars(select(ExamSeat).where(ExamSeat.user_id == user_id)).one()
        receipt_no = seat.submission.receipt_no
    assert receipt_no  # 报名号: the 回执编号, issued on first view
    for text in (
        f"{BATCH_NAME} 准考证",
        receipt_no,
        seat.ticket_no,
        "王晓燕",
        "女",
        "4201**********",
        f"第 {seat.room_no} 考场",
        f"{seat.seat_no} 号",
        "成考(在籍)",
        "英语",
        "武汉市东西湖区常青花园学府南路68号",
        "2026年12月20日 09:00–11:00 英语（二）",
        "考生入场时间是考前15分钟",
        TICKET_PLEDGE,
        "/media/photos/",
        "<svg",
    ):
        assert text in html, text
    assert id_number(7, male=False) not in html  # masked, as on the receipt
    # Nothing personal in the QR's link: the token is a signed seat id.
    token = DOOR_URL.search(html).group(1)  # type: ignore[union-attr]
    assert URLSafeTimedSerializer(TEST_SECRET_KEY, salt=tickets.SALT).loads(token) == seat.id


def test_before_the_window_the_page_says_when_it_opens(app: Flask, client: FlaskClient) -> None:
    user_id, batch_id = one_seated(app, ticket_open=False)
    sign_in(client, user_id)
    html = client.get("/h5/ticket").get_data(as_text=True)
    assert 'data-testid="ticket"' not in html
    assert "准考证打印时间为" in html
    with app.app_context():
        batch = db.session.get(Batch, batch_id)
        assert batch is not None and batch.ticket_opens_at is not None
        opens = tickets.stored_utc(batch.ticket_opens_at).astimezone(tickets.BEIJING)
    assert f"{opens.month}月{opens.day}日至" in html
    assert client.get("/h5/ticket.pdf").status_code == 404


def test_after_the_window_the_page_says_it_closed(app: Flask, client: FlaskClient) -> None:
    user_id, batch_id = one_seated(app)
    with app.app_context():
        batch = db.session.get(Batch, batch_id)
        assert batch is not None
        batch.ticket_opens_at, batch.ticket_closes_at = NOW - timedelta(days=10), NOW - timedelta(days=6)
        db.session.commit()
    sign_in(client, user_id)
    html = client.get("/h5/ticket").get_data(as_text=True)
    assert "打印时间已过" in html and 'data-testid="ticket"' not in html


def test_without_a_seat_the_page_says_so(app: Flask, client: FlaskClient) -> None:
    with app.app_context():
        exam = make_exam_batch()
        user_id, _ = make_candidate(exam.batch_id, 1)
        other, _ = make_candidate(exam.batch_id, 2, status=SubmissionStatus.PENDING_REVIEW)
    sign_in(client, user_id)
    assert "考场和座位尚未安排" in client.get("/h5/ticket").get_data(as_text=True)
    sign_in(client, other)
    html = client.get("/h5/ticket").get_data(as_text=True)
    assert "审核通过并完成缴费的考生" in html and "尚未安排" not in html


def test_the_pdf_carries_the_fields(app: Flask, client: FlaskClient) -> None:
    user_id, _ = one_seated(app)
    sign_in(client, user_id)
    response = client.get("/h5/ticket.pdf")
    if response.status_code == 503:
        pytest.skip("no Noto CJK font on this machine (apt-get install fonts-noto-cjk)")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    reader = PdfReader(io.BytesIO(response.data))
    text = "".join(page.extract_text() for page in reader.pages)
    # pypdf reads fpdf2's two-byte CID text with a NUL before each character.
    compact = re.sub(r"[\s\x00]+", "", text)
    with app.app_context():
        seat = db.session.scalars(select(ExamSeat).where(ExamSeat.user_id == user_id)).one()
        receipt_no = seat.submission.receipt_no
    assert receipt_no
    for value in (
        f"{BATCH_NAME}准考证",
        "报名号",
        receipt_no,
        "准考证号",
        seat.ticket_no,
        "王晓燕",
        "性别女",
        f"第{seat.room_no}考场",
        f"{seat.seat_no}号",
        "考生类别成考(在籍)",
        "应试语种英语",
        "武汉市东西湖区常青花园学府南路68号",
        "2026年12月20日09:00–11:0",
        "考生须知",
        "考生入场时间是考前15分钟",
        "承诺书",
    ):
        assert value.replace(" ", "") in compact, value
    assert TICKET_NOTICE.splitlines()[0][2:10] in compact
    assert len(reader.pages[0].images) == 2  # the photo and the QR


# --- the door -------------------------------------------------------------------------------------


def test_staff_open_the_qr_and_check_in_once(app: Flask, client: FlaskClient) -> None:
    user_id, _ = one_seated(app)
    with app.app_context():
        make_staff()
    sign_in(client, user_id)
    token = ticket_token(client)
    # The QR's link leads to the staff page, behind the staff sign-in.
    response = client.get(f"/verify/ticket/{token}")
    assert response.status_code == 302 and response.location.endswith(f"/review/exams/door/{token}")
    assert "/review/login" in client.get(f"/review/exams/door/{token}").location
    staff = app.test_client()
    staff_sign_in(staff, "door-a")
    html = staff.get(f"/review/exams/door/{token}").get_data(as_text=True)
    with app.app_context():
        seat = db.session.scalars(select(ExamSeat).where(ExamSeat.user_id == user_id)).one()
    for text in (
        "王晓燕",
        seat.ticket_no,
        f"第 {seat.room_no} 考场",
        f"{seat.seat_no} 号",
        "已缴费",
        "/media/photos/",
    ):
        assert text in html, text
    photo = re.search(r'data-testid="door-photo"|src="(/media/photos/[^"]+)"', html)
    assert photo
    src = re.search(r'class="ex-big" src="([^"]+)"', html)
    assert src and staff.get(src.group(1)).status_code == 200
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert csrf
    first = staff.post(f"/review/exams/door/{token}/check-in", data={"csrf_token": csrf.group(1)})
    assert first.status_code == 303
    html = staff.get(f"/review/exams/door/{token}").get_data(as_text=True)
    assert "已签到" in html and "door-a" in html and 'data-testid="check-in"' not in html
    with app.app_context():
        stamped = db.session.get(ExamSeat, seat.id)
        assert stamped is not None and stamped.checked_in_at is not None
        at = stamped.checked_in_at
    again = staff.post(f"/review/exams/door/{token}/check-in", data={"csrf_token": csrf.group(1)})
    assert again.status_code == 303
    assert "无需重复签到" in staff.get(f"/review/exams/door/{token}").get_data(as_text=True)
    with app.app_context():
        db.session.expire_all()
        assert db.session.get(ExamSeat, seat.id).checked_in_at == at  # type: ignore[union-attr]
        entries = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "exams.check_in")).all()
        assert len(entries) == 1 and entries[0].target_id == seat.id


def test_forged_expired_and_other_schools_tokens_are_refused(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    user_id, _ = one_seated(app)
    with app.app_context():
        make_staff()
        seat_id = db.session.scalars(select(ExamSeat.id).where(ExamSeat.user_id == user_id)).one()
    staff = app.test_client()
    staff_sign_in(staff, "door-a")
    forged = URLSafeTimedSerializer("another-secret-key-0123456789abcdef", salt=tickets.SALT).dumps(seat_id)
    receipt_like = URLSafeTimedSerializer(TEST_SECRET_KEY, salt="receipt-v1").dumps(seat_id)
    for token in (
        forged,
        receipt_like,
        "not-a-token",
        URLSafeTimedSerializer(TEST_SECRET_KEY, salt=tickets.SALT).dumps("1"),
    ):
        response = staff.get(f"/review/exams/door/{token}")
        assert response.status_code == 404, token
        assert "无效的准考证二维码" in response.get_data(as_text=True)
    # A token older than TOKEN_MAX_AGE.
    import itsdangerous.timed

    old = NOW - tickets.TOKEN_MAX_AGE - timedelta(days=1)
    monkeypatch.setattr(itsdangerous.timed.time, "time", lambda: old.timestamp())
    expired = tickets.make_token(TEST_SECRET_KEY, seat_id)
    monkeypatch.undo()
    assert staff.get(f"/review/exams/door/{expired}").status_code == 404
    # Another school's reviewer sees nothing of the candidate and cannot check them in.
    good = tickets.make_token(TEST_SECRET_KEY, seat_id)
    other = app.test_client()
    staff_sign_in(other, "door-b")
    response = other.get(f"/review/exams/door/{good}")
    assert response.status_code == 403 and "王晓燕" not in response.get_data(as_text=True)
    html = staff.get(f"/review/exams/door/{good}").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert csrf
    other_csrf = re.search(
        r'name="csrf_token" value="([^"]+)"', other.get("/review/exams").get_data(as_text=True)
    )
    assert other_csrf
    refused = other.post(f"/review/exams/door/{good}/check-in", data={"csrf_token": other_csrf.group(1)})
    assert refused.status_code == 403
    with app.app_context():
        assert db.session.get(ExamSeat, seat_id).checked_in_at is None  # type: ignore[union-attr]
        assert db.session.get(User, user_id) is not None


def test_the_room_list_counts_who_came(app: Flask, client: FlaskClient) -> None:
    with app.app_context():
        exam = make_exam_batch(sites=(("0101", 6),), room_size=3)
        users = [make_candidate(exam.batch_id, n, name=f"考生{n}")[0] for n in range(5)]
        seat_everyone(exam.batch_id)
        make_staff()
        first = db.session.scalars(select(ExamSeat).where(ExamSeat.user_id == users[0])).one()
        first_room, first_ticket = first.room_no, first.ticket_no
        token = tickets.make_token(TEST_SECRET_KEY, first.id)
    staff = app.test_client()
    staff_sign_in(staff, "door-a")
    overview = staff.get("/review/exams").get_data(as_text=True)
    assert BATCH_NAME in overview and "0 / 5" in overview
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', overview)
    assert csrf
    staff.post(f"/review/exams/door/{token}/check-in", data={"csrf_token": csrf.group(1)})
    html = staff.get(f"/review/exams/sites/{exam.site_ids[0]}").get_data(as_text=True)
    assert "应到 5" in html and "已到 1" in html and "未到 4" in html
    assert html.count('data-testid="roster-row"') == 5
    assert f'data-ticket="{first_ticket}" data-present="1"' in html
    html = staff.get(f"/review/exams/sites/{exam.site_ids[0]}?room={first_room}").get_data(as_text=True)
    assert html.count('data-testid="roster-row"') == (3 if first_room == 1 else 2)
    assert "已到 1" in html
    other = app.test_client()
    staff_sign_in(other, "door-b")
    assert other.get(f"/review/exams/sites/{exam.site_ids[0]}").status_code == 404
    assert BATCH_NAME not in other.get("/review/exams").get_data(as_text=True)


def test_a_candidate_whose_qr_cannot_be_read_is_checked_in_from_the_room_list(app: Flask) -> None:
    with app.app_context():
        exam = make_exam_batch(sites=(("0101", 6),), room_size=3)
        user_id = make_candidate(exam.batch_id, 1, name="考生甲")[0]
        seat_everyone(exam.batch_id)
        make_staff()
        seat = db.session.scalars(select(ExamSeat).where(ExamSeat.user_id == user_id)).one()
        seat_id, room = seat.id, seat.room_no
    site_url = f"/review/exams/sites/{exam.site_ids[0]}"
    other = app.test_client()
    staff_sign_in(other, "door-b")
    other_csrf = re.search(
        r'name="csrf_token" value="([^"]+)"', other.get("/review/exams").get_data(as_text=True)
    )
    assert other_csrf
    # Another school's staff cannot stamp it by guessing the seat's id.
    refused = other.post(f"{site_url}/seats/{seat_id}/check-in", data={"csrf_token": other_csrf.group(1)})
    assert refused.status_code == 404
    staff = app.test_client()
    staff_sign_in(staff, "door-a")
    html = staff.get(f"{site_url}?room={room}").get_data(as_text=True)
    assert 'data-testid="check-in-row"' in html
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert csrf
    for _ in range(2):  # a double tap stamps once
        answer = staff.post(
            f"{site_url}/seats/{seat_id}/check-in?room={room}", data={"csrf_token": csrf.group(1)}
        )
        assert answer.status_code == 303 and answer.location.endswith(f"?room={room}#seat-{seat_id}")
    html = staff.get(f"{site_url}?room={room}").get_data(as_text=True)
    assert "已到 1" in html and "无需重复签到" in html and 'data-testid="check-in-row"' not in html
    with app.app_context():
        entries = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "exams.check_in")).all()
        assert len(entries) == 1 and entries[0].target_id == seat_id
        assert entries[0].detail["via"] == "list"


# --- the push and the checklist -------------------------------------------------------------------


def test_each_seated_candidate_is_told_once(app: Flask) -> None:
    with app.app_context():
        exam = make_exam_batch()
        for n in range(3):
            make_candidate(exam.batch_id, n)
        make_candidate(exam.batch_id, 9, status=SubmissionStatus.APPROVED_UNPAID)  # not a candidate
        push = ResultPush("https://photo.example.edu.cn", "")
        day = NOW.replace(hour=4)  # 12:00 in Beijing
        assert tickets.push_due(db.session, push, day) == 0  # nobody seated yet
        seat_everyone(exam.batch_id)
        assert tickets.push_due(db.session, push, day) == 3
        assert tickets.push_due(db.session, push, day) == 0
        assert tickets.push_due(db.session, push, day.replace(hour=16)) == 0  # night: 00:00 Beijing
        items = db.session.scalars(
            select(OutboxItem).where(OutboxItem.idempotency_key.like("ticket:%"))
        ).all()
        assert len(items) == 3
        assert all(
            "准考证打印时间为" in i.payload["text"] and "/h5/ticket" in i.payload["text"] for i in items
        )
        # Outside the window: nothing.
        batch = db.session.get(Batch, exam.batch_id)
        assert batch is not None
        make_candidate(exam.batch_id, 4)
        seat_everyone(exam.batch_id)
        assert tickets.push_due(db.session, push, day + timedelta(days=10)) == 0
        assert tickets.push_due(db.session, push, day) == 1
    assert "push_tickets" in [task.name for task in periodic.tasks()]


def test_the_checklist_has_a_ticket_step(app: Flask) -> None:
    with app.app_context():
        exam = make_exam_batch(ticket_open=False)
        user_id, _ = make_candidate(exam.batch_id, 1)
        checklist = steps.of(db.session, user_id, NOW)
        ticket = checklist[-1]
        assert ticket.key == "ticket" and ticket.label == "打印准考证" and ticket.url == "/h5/ticket"
        assert ticket.status == "locked" and "准考证打印时间为" in ticket.hint
        later = NOW + timedelta(days=3, hours=1)
        ticket = steps.of(db.session, user_id, later)[-1]
        assert ticket.status == "current" and "尚未安排" in ticket.hint
        seat_everyone(exam.batch_id)
        ticket = steps.of(db.session, user_id, later)[-1]
        assert ticket.status == "current" and "已可打印" in ticket.hint
        # 进度 and the status page lead to the ticket in its window, and say 审核通过 outside it.
        found = progress.of(db.session, user_id, later)
        assert (found.step, found.path, found.title) == ("ticket", "/h5/ticket", "打印准考证")
        assert progress.of(db.session, user_id, NOW).step == "result"
