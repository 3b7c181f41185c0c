"""The staff dashboard and the operators' 今日统计 review figures."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from flask import Flask
from flask.testing import FlaskClient

from app.extensions import db
from app.services import dashboard
from app.services.localtime import BEIJING
from models import Submission, SubmissionStatus, User
from tests.factories import Desk, make_desk, make_waiting
from tests.staff_pages import sign_in
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


# The figures the database aggregates (per Beijing day, the median, the pass rate), pinned on a data
# set built around the edges, so that both backends' SQL keep agreeing with each other and with
# what the dashboard meant when it counted in Python.
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=BEIJING)  # the period: 2026-10-25 to 2026-11-23


def bj(month: int, day: int, *hms: int) -> datetime:
    """A Beijing wall-clock moment in 2026 (hour, minute, second, microsecond), as UTC."""
    return datetime(2026, month, day, *hms, tzinfo=BEIJING).astimezone(UTC)


def put(
    app: Flask,
    batch_id: int,
    openid: str,
    status: SubmissionStatus,
    *,
    paid: datetime | None,
    decided: datetime | None = None,
    created: datetime | None = None,
) -> None:
    sub_id = make_waiting(app, batch_id, openid, created or paid or NOW)
    with app.app_context():
        sub = db.session.get(Submission, sub_id)
        assert sub is not None
        sub.status, sub.paid_at, sub.decided_at = status, paid, decided
        db.session.commit()


def edge_data(app: Flask) -> Desk:
    desk = make_desk(app)
    a = desk.batch_a
    # 0.4 ms before a Beijing midnight: still that day (SQLite would round it into the next one).
    put(app, a, "o-e1", S.PENDING_REVIEW, paid=bj(11, 21, 23, 59, 59, 999_600))
    put(app, a, "o-e2", S.PENDING_REVIEW, paid=bj(11, 22))  # on the midnight: the new day
    # 07:59:59 Beijing is the previous day in UTC: a Beijing day, not a UTC one. Decided 2 h later.
    put(app, a, "o-e3", S.APPROVED, paid=bj(11, 22, 7, 59, 59), decided=bj(11, 22, 9, 59, 59))
    # Paid 1 µs before the period (not counted), decided on its first instant (counted): 1 µs.
    put(app, a, "o-e4", S.RETURNED, paid=bj(10, 24, 23, 59, 59, 999_999), decided=bj(10, 25))
    # Paid on the period's first instant; decided today, 1 µs before noon: 29.5 days.
    put(app, a, "o-e5", S.APPROVED, paid=bj(10, 25), decided=bj(11, 23, 11, 59, 59, 999_999))
    # Never paid (decided all the same): the wait counts from its creation, 10 h.
    put(app, a, "o-e6", S.REFUSED, paid=None, created=bj(11, 10, 10), decided=bj(11, 10, 20))
    # Decided 1 µs before the period: neither its payment nor its decision is in it.
    put(app, a, "o-e7", S.APPROVED, paid=bj(10, 20), decided=bj(10, 24, 23, 59, 59, 999_999))
    # Refunded after a decision: a payment in the period, but not a decision (not a decided state).
    put(app, a, "o-e8", S.REFUNDED, paid=bj(11, 1, 12), decided=bj(11, 2))
    # School B: paid 11-15 23:30, decided a day later (24 h).
    put(app, desk.batch_b, "o-e9", S.APPROVED, paid=bj(11, 15, 23, 30), decided=bj(11, 16, 23, 30))
    return desk


def nonzero(board: dashboard.Dashboard) -> tuple[dict[str, int], dict[str, int]]:
    return (
        {d.day: d.submissions for d in board.days if d.submissions},
        {d.day: d.decisions for d in board.days if d.decisions},
    )


def test_days_are_beijing_days_and_the_median_is_interpolated(app: Flask) -> None:
    desk = edge_data(app)
    with app.app_context():
        board = dashboard.build(db.session, None, now=NOW)
        assert (board.since, board.until) == ("2026-10-25", "2026-11-23")
        assert [d.day for d in board.days][:2] == ["2026-10-25", "2026-10-26"]
        paid, decided = nonzero(board)
        assert paid == {
            "2026-10-25": 1,
            "2026-11-01": 1,
            "2026-11-15": 1,
            "2026-11-21": 1,
            "2026-11-22": 2,
        }
        assert decided == {
            "2026-10-25": 1,
            "2026-11-10": 1,
            "2026-11-16": 1,
            "2026-11-22": 1,
            "2026-11-23": 1,
        }
        assert board.decided_in_period == 5
        # 1 µs, 2 h, 10 h, 24 h, 708 h: the middle one.
        assert board.median_hours == 10.0
        assert board.peak == 2
        rows = {row.batch_id: row for row in board.batches}
        a, b = rows[desk.batch_a], rows[desk.batch_b]
        # The state counts are all-time: e7, decided before the period, counts.
        assert a.counts == {"pending_review": 2, "approved": 3, "returned": 1, "refused": 1, "refunded": 1}
        assert (a.total, a.approved, a.decided) == (8, 3, 5)
        assert a.pass_rate == 0.6 and b.pass_rate == 1.0
        assert board.pass_rate == 4 / 6

        # School A's reviewer: 1 µs, 2 h, 10 h, 708 h → halfway between 2 h and 10 h.
        mine = dashboard.build(db.session, {desk.school_a}, now=NOW)
        assert [row.batch_id for row in mine.batches] == [desk.batch_a]
        paid, decided = nonzero(mine)
        assert paid == {"2026-10-25": 1, "2026-11-01": 1, "2026-11-21": 1, "2026-11-22": 2}
        assert "2026-11-16" not in decided and sum(decided.values()) == 4
        assert (mine.decided_in_period, mine.median_hours) == (4, 6.0)
        assert mine.pass_rate == 0.6

        # School B's reviewer: one decision, its own wait.
        theirs = dashboard.build(db.session, {desk.school_b}, now=NOW)
        assert nonzero(theirs) == ({"2026-11-15": 1}, {"2026-11-16": 1})
        assert (theirs.decided_in_period, theirs.median_hours) == (1, 24.0)


def test_the_period_moves_at_beijing_midnight(app: Flask) -> None:
    edge_data(app)
    with app.app_context():
        # 1 µs before Beijing midnight: the period still starts on 10-24, so e4's payment and e7's
        # decision (both 1 µs before 10-25) are in it, on its first day.
        before = dashboard.build(
            db.session, None, now=datetime(2026, 11, 22, 23, 59, 59, 999_999, tzinfo=BEIJING)
        )
        assert (before.since, before.until) == ("2026-10-24", "2026-11-22")
        paid, decided = nonzero(before)
        assert paid["2026-10-24"] == 1 and decided["2026-10-24"] == 1
        assert paid["2026-11-22"] == 2 and decided["2026-11-22"] == 1
        # On the midnight itself: the period starts on 10-25, and they are out.
        after = dashboard.build(db.session, None, now=datetime(2026, 11, 23, tzinfo=BEIJING))
        assert (after.since, after.until) == ("2026-10-25", "2026-11-23")
        paid, decided = nonzero(after)
        assert "2026-10-24" not in paid and decided["2026-10-25"] == 1
        assert sum(paid.values()) == 6


def test_no_decisions_no_median(app: Flask) -> None:
    desk = make_desk(app)
    put(app, desk.batch_a, "o-n1", S.PENDING_REVIEW, paid=bj(11, 20))
    with app.app_context():
        board = dashboard.build(db.session, None, now=NOW)
        assert (board.decided_in_period, board.median_hours, board.pass_rate) == (0, None, None)
        assert nonzero(board) == ({"2026-11-20": 1}, {})
        # A reviewer of a school without batches: nothing, and no query needs one.
        schoolless = dashboard.build(db.session, {desk.school_b + 1000}, now=NOW)
        assert schoolless.batches == [] and schoolless.median_hours is None
        assert len(schoolless.days) == dashboard.DAYS and schoolless.peak == 1
