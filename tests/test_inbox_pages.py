"""客服留言 on the staff pages through HTTP, and the school's contact on the student's status page."""

from __future__ import annotations

import re
from datetime import timedelta

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app.extensions import db
from app.services import inbox
from models import InboxDirection, InboxMessage, OutboxItem, School, SubmissionStatus, utcnow
from tests.factories import (
    Desk,
    add_enrollment,
    add_user,
    make_batch,
    make_desk,
    make_student,
    sign_in_student,
)
from tests.staff_pages import csrf_of, sign_in


def handles(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'<tr data-handle="(\d+)"', html)]


def message_from(app: Flask, openid: str, batch_id: int | None, text: str, hours_ago: float = 1) -> int:
    with app.app_context():
        if batch_id is not None:
            add_enrollment(add_user(openid).id, batch_id)
            db.session.commit()
        kept = inbox.record(db.session, openid, text, msg_id=None, at=utcnow() - timedelta(hours=hours_ago))
        assert kept is not None
        return kept


def desk_with_messages(app: Flask) -> tuple[Desk, int, int, int]:
    desk = make_desk(app)
    a = message_from(app, "o-a", desk.batch_a, "照片审核要多久？")
    b = message_from(app, "o-b", desk.batch_b, "学校选错了怎么办")
    none = message_from(app, "o-none", None, "你好")
    return desk, a, b, none


def test_the_inbox_needs_a_staff_sign_in(client: FlaskClient) -> None:
    response = client.get("/review/inbox")
    assert response.status_code in (302, 303) and "/review/login" in response.headers["Location"]


def test_reviewers_see_their_schools_messages_admins_all(app: Flask, client: FlaskClient) -> None:
    _, a, b, none = desk_with_messages(app)
    sign_in(client, "rev-a")
    html = client.get("/review/inbox").get_data(as_text=True)
    assert handles(html) == [a]
    assert "照片审核要多久？" in html and "湖南师范大学" in html and "学校选错了" not in html
    assert client.get(f"/review/inbox/{b}").status_code == 404
    assert client.get(f"/review/inbox/{none}").status_code == 404
    # Every staff page links to the inbox.
    assert 'href="/review/inbox"' in client.get("/review/").get_data(as_text=True)

    admin = app.test_client()
    sign_in(admin, "admin")
    html = admin.get("/review/inbox").get_data(as_text=True)
    assert handles(html) == [none, b, a]
    assert "未关联学校" in html


def test_a_reviewer_answers_and_the_answer_is_queued(app: Flask, client: FlaskClient) -> None:
    _, a, _, _ = desk_with_messages(app)
    sign_in(client, "rev-a")
    page = client.get(f"/review/inbox/{a}").get_data(as_text=True)
    assert "照片审核要多久？" in page and 'id="reply-form"' in page
    token = csrf_of(client, f"/review/inbox/{a}")
    # Without the form's token: refused, nothing sent.
    assert client.post(f"/review/inbox/{a}/reply", data={"text": "一般 7–10 天"}).status_code == 400
    response = client.post(
        f"/review/inbox/{a}/reply", data={"text": "一般 7–10 个工作日", "csrf_token": token}
    )
    assert response.status_code == 303 and response.headers["Location"].endswith(f"/review/inbox/{a}")
    page = client.get(f"/review/inbox/{a}").get_data(as_text=True)
    assert "回复已发出" in page and "一般 7–10 个工作日" in page and "发送中" in page and "rev-a" in page
    with app.app_context():
        [job] = db.session.scalars(select(OutboxItem)).all()
        answer = db.session.scalars(
            select(InboxMessage).where(InboxMessage.direction == InboxDirection.OUT)
        ).one()
        assert job.payload == {"message_id": answer.id}
    # Answered: the inbox's default list (待回复) is empty, 全部 still shows it.
    assert handles(client.get("/review/inbox").get_data(as_text=True)) == []
    assert handles(client.get("/review/inbox?show=all").get_data(as_text=True)) == [a]
    # Another school's reviewer cannot answer it.
    other = app.test_client()
    sign_in(other, "rev-b")
    token_b = csrf_of(other, "/review/inbox")
    assert (
        other.post(f"/review/inbox/{a}/reply", data={"text": "x", "csrf_token": token_b}).status_code == 404
    )


def test_an_empty_reply_and_a_reply_after_48_hours_are_refused_on_the_page(
    app: Flask, client: FlaskClient
) -> None:
    desk = make_desk(app)
    old = message_from(app, "o-old", desk.batch_a, "有人吗", hours_ago=49)
    sign_in(client, "rev-a")
    page = client.get(f"/review/inbox/{old}").get_data(as_text=True)
    assert 'id="reply-form"' not in page and "已超过 48 小时" in page
    token = csrf_of(client, "/review/inbox")
    refused = client.post(f"/review/inbox/{old}/reply", data={"text": "抱歉", "csrf_token": token})
    html = refused.get_data(as_text=True)
    assert refused.status_code == 422 and "超过微信规定的 48 小时客服消息时限" in html

    recent = message_from(app, "o-recent", desk.batch_a, "在吗")
    refused = client.post(f"/review/inbox/{recent}/reply", data={"text": "  ", "csrf_token": token})
    assert refused.status_code == 422 and "请输入回复内容" in refused.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalars(select(OutboxItem)).all() == []


def test_the_status_page_shows_the_schools_contact(app: Flask, client: FlaskClient) -> None:
    with app.app_context():
        batch_id = make_batch()
        attempt = make_student(batch_id, SubmissionStatus.PENDING_REVIEW)
        school = db.session.scalars(select(School)).one()
        school.contact_phone, school.contact_email = "0731-88872114", "zsb@hunnu.edu.cn"
        db.session.commit()
    sign_in_student(app, client, attempt.user_id)
    html = client.get("/h5/status").get_data(as_text=True)
    assert 'data-testid="contact"' in html
    assert 'href="tel:0731-88872114"' in html and "湖南师范大学电话" in html
    assert 'href="mailto:zsb@hunnu.edu.cn"' in html
