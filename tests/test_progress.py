"""The progress answer for every submission state (one query), and the 进度 keyword through /wechat."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from pay_students import student
from sqlalchemy import event, func, select
from wechat_posts import WeChat, text_message

from app.extensions import db
from app.services import progress, submissions
from models import Submission, SubmissionStatus, User, utcnow

S = SubmissionStatus


def _attempt(status: SubmissionStatus, reason: str | None = None) -> tuple[int, int]:
    """A student whose latest attempt is in `status`: (user_id, submission_id)."""
    user_id, photo_id = student("o-progress")
    attempt = submissions.create(db.session, user_id, photo_id, utcnow())
    attempt.status = status
    attempt.status_reason = reason
    db.session.commit()
    return user_id, attempt.id


@pytest.mark.parametrize(
    ("status", "reason", "step", "words", "path"),
    [
        (S.AWAITING_PAYMENT, None, "pay", "请完成缴费", "/h5/pay/{id}"),
        # The checklist's verify step: the status page shows the check's outcome.
        (S.VERIFYING, None, "verify", "正在核验身份信息", "/h5/status"),
        (S.PENDING_REVIEW, None, "review", "照片已提交审核，一般需要 7–10 天", "/h5/status"),
        (S.IN_REVIEW, None, "review", "正在审核", "/h5/status"),
        (
            S.VERIFY_FAILED,
            "姓名与证件号码不一致",
            "bind",
            "姓名与证件号码不一致。请修改实名信息后重新提交",
            "/h5/bind",
        ),
        (
            S.REFUNDED,
            "身份核验服务暂时不可用，已退款",
            "pay",
            "已退款（身份核验服务暂时不可用",
            "/h5/photo",
        ),
        (S.CANCELLED, "超过 24 小时未缴费", "pay", "已取消。如需继续，请重新提交核验", "/h5/photo"),
        (S.APPROVED, None, "result", "可在「审核结果」页面打印回执单", "/h5/status"),
        (
            S.RETURNED,
            "背景颜色不符",
            "photo",
            "照片被驳回：背景颜色不符。请按要求重新上传照片，在批次截止前重新提交",
            "/h5/photo",
        ),
        (S.REFUSED, "证件照非本人", "result", "「不通过」：证件照非本人。这是最终结果", "/h5/status"),
    ],
)
def test_each_state_tells_the_next_step(
    app: Flask, status: SubmissionStatus, reason: str | None, step: str, words: str, path: str
) -> None:
    with app.app_context():
        user_id, submission_id = _attempt(status, reason)
        now = progress.of(db.session, user_id, utcnow())
    assert now.step == step
    assert words in now.message, now.message
    assert now.path == path.format(id=submission_id)


def test_the_latest_attempt_counts(app: Flask) -> None:
    with app.app_context():
        user_id, first_id = _attempt(S.VERIFY_FAILED, "姓名与证件号码不一致")
        first = db.session.get(Submission, first_id)
        assert first is not None
        second_id = submissions.create(db.session, user_id, first.photo_id, utcnow()).id
        now = progress.of(db.session, user_id, utcnow())
    assert now.step == "pay" and now.path == f"/h5/pay/{second_id}"


def test_a_returned_attempt_after_the_batch_closed_cannot_be_resubmitted(app: Flask) -> None:
    from datetime import timedelta

    with app.app_context():
        user_id, _ = _attempt(S.RETURNED, "背景颜色不符")
        now = progress.of(db.session, user_id, utcnow() + timedelta(days=60))
    assert now.step == "school" and "驳回" not in now.message


def test_progress_is_one_query(app: Flask) -> None:
    with app.app_context():
        _attempt(S.PENDING_REVIEW)
        statements: list[str] = []
        engine = db.engine

        def count(*args: Any) -> None:
            statements.append(args[2])

        session = db.session()
        session.close()
        event.listen(engine, "before_cursor_execute", count)
        try:
            found = progress.of_sender(session, "o-progress", utcnow())
        finally:
            event.remove(engine, "before_cursor_execute", count)
        # Read in autocommit outside the session: no transaction left to roll back afterwards.
        assert not session.in_transaction()
    assert found.step == "review"
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) == 1


def test_progress_sees_the_sessions_uncommitted_changes(app: Flask) -> None:
    with app.app_context():
        _, submission_id = _attempt(S.PENDING_REVIEW)
        session = db.session()
        attempt = session.get(Submission, submission_id)
        assert attempt is not None
        attempt.status = S.APPROVED
        session.flush()  # not committed: only this session sees it
        assert progress.of_sender(session, "o-progress", utcnow()).step == "result"
        session.rollback()
        assert progress.of_sender(session, "o-progress", utcnow()).step == "review"


def test_progress_of_an_unknown_or_unfollowed_sender_only_reads(app: Flask) -> None:
    # The same answers as once the sender is recorded as a follower, without writing anything.
    with app.app_context():
        session = db.session()
        assert progress.of_sender(session, "o-nobody", utcnow()).step == "bind"
        user_id, _ = _attempt(S.PENDING_REVIEW)
        user = session.get(User, user_id)
        assert user is not None
        user.subscribed = False
        session.commit()
        assert progress.of_sender(session, "o-progress", utcnow()).step == "review"
        session.expire_all()
        assert not user.subscribed and session.scalar(select(func.count(User.id))) == 1


def _say(app: Flask, client: FlaskClient, text: str) -> str:
    wx = WeChat.for_app(app)
    signed = wx.post(text_message("o-progress", text))
    response = client.post(signed.path, data=signed.body, content_type="text/xml")
    assert response.status_code == 200
    reply = wx.reply_of(response.data)
    assert reply is not None and reply["MsgType"] == "text"
    content: str = reply["Content"]
    return content


def test_the_progress_keyword_in_chat_follows_the_payment(app: Flask, client: FlaskClient) -> None:
    with app.app_context():
        _, submission_id = _attempt(S.AWAITING_PAYMENT)
    reply = _say(app, client, "进度")
    assert "当前进度：缴费核验" in reply and "请完成缴费" in reply
    base = app.config["PUBLIC_BASE_URL"]
    # The checklist as short lines: done ✓, the current step → as a link, the rest ○.
    assert "办理清单：\n✓ 实名绑定\n✓ 关联学校\n✓ 上传照片\n" in reply
    assert f'→ <a href="{base}/h5/pay/{submission_id}">缴费核验</a>\n○ 身份核验\n○ 审核' in reply
    with app.app_context():
        attempt = db.session.get(Submission, submission_id)
        assert attempt is not None
        attempt.status = S.VERIFYING
        db.session.commit()
    reply = _say(app, client, "查询")
    assert "正在核验身份信息" in reply and f'✓ 缴费核验\n→ <a href="{base}/h5/status">身份核验</a>' in reply
    with app.app_context():
        attempt = db.session.get(Submission, submission_id)
        assert attempt is not None
        attempt.status = S.VERIFY_FAILED
        attempt.status_reason = "姓名与证件号码不一致"
        db.session.commit()
    reply = _say(app, client, "进度")
    assert "身份核验未通过：姓名与证件号码不一致" in reply and "/h5/bind" in reply
