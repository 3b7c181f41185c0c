"""The staff dashboard (issue 6, item 8) and the operators' 今日统计 review figures (item 9)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from flask import Flask
from flask.testing import FlaskClient

from app.extensions import db
from app.services import dashboard
from app.services.localtime import BEIJING
from models import Submission, SubmissionStatus, User
from tests.test_review_pages import Desk, make_desk, make_waiting, sign_in
from tests.wechat_posts import WeChat, event_message

CHINA = BEIJING
S = SubmissionStatus


def add(
    app: Flask,
    batch_id: int,
    openid: str,
    status: SubmissionStatus,
    paid: datetime,
    decided: datetime | None = None,
) -> int:
    sub_id = make_waiting(app, batch_id, openid, paid)
    with app.app_context():
        sub = db.session.get(Submission, sub_id)
        assert sub is not None
        sub.status = status
        sub.paid_at = paid
        sub.decided_at = decided
        db.session.commit()
    return sub_id


def known_data(app: Flask) -> Desk:
    """School A: 2 approved (10 h, 20 h), 1 returned (30 h), 1 waiting; school B: 1 refused (100 h)."""
    desk = make_desk(app)
    now = datetime.now(UTC)
    for openid, days, hours, status in (
        ("o-a1", 3, 10, S.APPROVED),
        ("o-a2", 2, 20, S.APPROVED),
        ("o-a3", 2, 30, S.RETURNED),
    ):
        paid = now - timedelta(days=days)
        add(app, desk.batch_a, openid, status, paid, paid + timedelta(hours=hours))
    add(app, desk.batch_a, "o-a4", S.PENDING_REVIEW, now - timedelta(hours=1))
    paid_b = now - timedelta(days=5)
    add(app, desk.batch_b, "o-b1", S.REFUSED, paid_b, paid_b + timedelta(hours=100))
    return desk


def cell(html: str, batch_id: int, state: str) -> str:
    row = re.search(rf'<tr data-batch="{batch_id}">(.*?)</tr>', html, re.S)
    assert row, f"batch {batch_id} not shown"
    found = re.search(rf'data-state="{state}">(\d+)<', row.group(1))
    assert found
    return found.group(1)


def test_figures_on_a_known_data_set(app: Flask) -> None:
    desk = known_data(app)
    with app.app_context():
        board = dashboard.build(db.session, None)
        rows = {row.batch_id: row for row in board.batches}
        a, b = rows[desk.batch_a], rows[desk.batch_b]
        assert a.counts == {"approved": 2, "returned": 1, "pending_review": 1}
        assert (a.total, a.approved, a.decided) == (4, 2, 3)
        assert a.pass_rate is not None and abs(a.pass_rate - 2 / 3) < 1e-9
        assert b.counts == {"refused": 1} and b.pass_rate == 0.0
        assert board.pass_rate == 0.5
        assert board.median_hours == 25.0  # median of 10, 20, 30, 100
        assert board.decided_in_period == 4
        assert len(board.days) == dashboard.DAYS and board.days[-1].day == board.until
        assert sum(d.submissions for d in board.days) == 5
        assert sum(d.decisions for d in board.days) == 4
        assert len(board.bars) == 2 * dashboard.DAYS
        tallest = max(board.bars, key=lambda bar: bar.h)
        assert tallest.value == board.peak and tallest.y >= 0


def test_admin_page_shows_all_schools_and_the_charts(app: Flask, client: FlaskClient) -> None:
    desk = known_data(app)
    sign_in(client, "admin")
    response = client.get("/review/dashboard")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert cell(html, desk.batch_a, "approved") == "2"
    assert cell(html, desk.batch_b, "refused") == "1"
    assert '<dd id="pass-rate">50.0%</dd>' in html
    assert "25.0 小时" in html
    assert '<svg id="daily-chart"' in html
    assert html.count('class="bar-submissions"') == dashboard.DAYS
    assert html.count('class="bar-decisions"') == dashboard.DAYS
    assert 'class="batch-bar"' in html
    assert "<script" not in html  # server-rendered, no chart library
    assert "失败任务" in html and "/review/outbox" in html


def test_a_reviewer_sees_only_their_schools(app: Flask, client: FlaskClient) -> None:
    desk = known_data(app)
    sign_in(client, "rev-a")
    html = client.get("/review/dashboard").get_data(as_text=True)
    assert f'<tr data-batch="{desk.batch_a}">' in html
    assert f'<tr data-batch="{desk.batch_b}">' not in html
    assert "西北工业大学" not in html
    assert '<dd id="pass-rate">66.7%</dd>' in html
    assert "20.0 小时" in html  # median of 10, 20, 30: school B's 100 h is not counted
    assert "/review/outbox" not in html  # the admin links are not in a reviewer's header
    with app.app_context():
        assert dashboard.build(db.session, set()).batches == []


def test_dashboard_needs_sign_in(client: FlaskClient) -> None:
    response = client.get("/review/dashboard")
    assert response.status_code == 302 and "/review/login" in response.headers["Location"]


def test_today_stats_adds_the_review_figures(app: Flask, client: FlaskClient) -> None:
    desk = make_desk(app)
    with app.app_context():
        db.session.add(User(openid="o-operator", subscribed=True, is_operator=True))
        db.session.commit()
    now = datetime.now(UTC)
    local = now.astimezone(CHINA)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    today = midnight + (local - midnight) / 2  # safely inside today, Beijing time
    yesterday = midnight - timedelta(hours=1)
    add(app, desk.batch_a, "o-t1", S.PENDING_REVIEW, today)
    add(app, desk.batch_a, "o-t2", S.APPROVED, yesterday, today)
    add(app, desk.batch_b, "o-t3", S.RETURNED, today, today)
    add(app, desk.batch_b, "o-t4", S.REFUSED, yesterday - timedelta(hours=2), yesterday)
    add(app, desk.batch_a, "o-t5", S.IN_REVIEW, yesterday)

    wx = WeChat.for_app(app)
    signed = wx.post(event_message("o-operator", "CLICK", "TODAY_STATS"))
    response = client.post(signed.path, data=signed.body, content_type="text/xml")
    assert response.status_code == 200
    reply = wx.reply_of(response.data)
    assert reply is not None and reply["MsgType"] == "text"
    content = reply["Content"]
    assert content.startswith(f"今日统计（{local.date().isoformat()}）")
    assert "新增关注：" in content and "当前关注总数：" in content  # the follower lines stay
    assert "今日提交（已缴费）：2" in content
    assert "今日审结：通过 1，驳回 1，不通过 0" in content
    assert "待审核：2" in content
