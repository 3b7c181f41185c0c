"""The result push: a decision's outbox row, delivered by the worker to the sandbox over HTTP."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Flask
from sqlalchemy import select

from app.extensions import db
from app.integrations import redis_client
from app.jobs import JOBS, load_jobs
from app.jobs.worker import run_due
from app.sandbox import state, store
from app.services import reviews
from app.services.reviews import ResultPush
from models import OutboxItem, OutboxStatus, SubmissionStatus, utcnow
from tests.factories import World, get_staff, make_queued, make_world, status_of

REASON = "背景颜色不符，请使用浅蓝色背景重新拍摄，注意不要有阴影"


def follower(openid: str) -> None:
    """A following sandbox user who wrote recently (so custom messages are deliverable too)."""
    r = redis_client()
    user = state.create_user(r, "学生", openid=openid)
    user["subscribed"] = True
    state.save_user(r, user)
    store.touch_user(r, openid)


def pushed(openid: str) -> list[dict[str, Any]]:
    return [e for e in state.chat(redis_client(), openid) if e.get("direction") == "out"]


def decided(app: Flask, openid: str, decision: str = "return", reason: str | None = REASON) -> int:
    """A school-A attempt claimed and decided by its reviewer; returns the submission id."""
    return decided_in_world(app, openid, decision, reason)[1]


def decided_in_world(
    app: Flask, openid: str, decision: str = "return", reason: str | None = REASON
) -> tuple[World, int]:
    world = make_world()
    follower(openid)
    sid = make_queued(world.batch_a, openid, utcnow() - timedelta(days=1))
    now = utcnow()
    me = get_staff(world.reviewer_a)
    reviews.claim(db.session, me, sid, now)
    reviews.decide(db.session, me, sid, decision, reason, now, push=ResultPush.from_config(app.config))
    return world, sid


def the_item() -> OutboxItem:
    db.session.expire_all()
    return db.session.scalars(select(OutboxItem)).one()


def make_due() -> None:
    """Skip the backoff wait (the row's time has come)."""
    item = the_item()
    item.next_attempt_at = utcnow()
    db.session.commit()


def test_a_decision_arrives_as_a_template_message(app: Flask) -> None:
    with app.app_context():
        sid = decided(app, "o-student-1")
        assert pushed("o-student-1") == []  # nothing is sent before the worker runs
    assert run_due(app) == 1
    with app.app_context():
        [message] = pushed("o-student-1")
        assert (message["via"], message["title"]) == ("template", "审核结果通知")
        assert message["data"]["phrase1"]["value"] == "审核驳回"
        assert message["data"]["thing2"]["value"] == "湖南师范大学"
        assert message["data"]["thing3"]["value"] == REASON[:19] + "…"
        assert message["url"] == f"{app.config['PUBLIC_BASE_URL']}/h5/status"
        assert "审核结果：审核驳回" in message["text"]
        [call] = state.calls(redis_client(), "/cgi-bin/message/template/send")
        assert call["body"]["client_msg_id"] == f"decision-{sid}"
        assert the_item().status == OutboxStatus.DONE


def test_an_approval_says_what_comes_next(app: Flask) -> None:
    with app.app_context():
        decided(app, "o-student-1", "approve", None)
    run_due(app)
    with app.app_context():
        [message] = pushed("o-student-1")
        assert message["data"]["phrase1"]["value"] == "审核通过"
        assert message["data"]["thing3"]["value"].startswith("照片已确认")


def test_without_a_template_the_push_is_a_custom_text(app_factory: Any) -> None:
    app = app_factory(WECHAT_TEMPLATE_REVIEW_RESULT="")
    with app.app_context():
        decided(app, "o-student-1", "refuse", "非本人近期照片")
        assert the_item().kind == "wechat.send_text"
    assert run_due(app) == 1
    with app.app_context():
        [message] = pushed("o-student-1")
        assert message["via"] == "custom"
        assert "审核不通过" in message["text"]
        assert "原因：非本人近期照片" in message["text"]
        assert "不能再次提交" in message["text"]
        assert f"{app.config['PUBLIC_BASE_URL']}/h5/status" in message["text"]
        assert state.calls(redis_client(), "/cgi-bin/message/template/send") == []


def test_a_worker_killed_between_send_and_commit_does_not_push_twice(app: Flask) -> None:
    load_jobs()
    with app.app_context():
        world, sid = decided_in_world(app, "o-student-1")
        item = the_item()
        payload = {**item.payload, "outbox_id": item.id}
        # The worker sent, then died before marking the row done: the row runs again later.
        JOBS[item.kind](payload)
        assert len(pushed("o-student-1")) == 1
        JOBS[item.kind](payload)
    assert run_due(app) == 1
    with app.app_context():
        assert len(pushed("o-student-1")) == 1  # WeChat dropped the repeats by client_msg_id
        assert len(state.calls(redis_client(), "/cgi-bin/message/template/send")) == 3
        assert the_item().status == OutboxStatus.DONE
        # Deciding again is refused, so no second announcement is ever written.
        try:
            reviews.decide(
                db.session,
                get_staff(world.admin),
                sid,
                "approve",
                None,
                utcnow(),
                push=ResultPush.from_config(app.config),
            )
        except reviews.ReviewStateError:
            pass
        else:
            raise AssertionError("a decided attempt was decided again")
        assert len(db.session.scalars(select(OutboxItem)).all()) == 1


def test_wechat_busy_is_retried_then_delivered(app: Flask) -> None:
    client = app.test_client()
    fault = {"path": "/cgi-bin/message/template/send", "errcode": -1, "times": 2}
    assert client.post("/_sandbox/api/_faults", json=fault).status_code == 200
    with app.app_context():
        decided(app, "o-student-1")
    for attempt in (1, 2):
        assert run_due(app) == 1
        with app.app_context():
            item = the_item()
            assert (item.status, item.attempts) == (OutboxStatus.PENDING, attempt)
            assert "-1" in (item.last_error or "")
            assert item.next_attempt_at > utcnow()  # backing off
            assert pushed("o-student-1") == []
            assert run_due(app) == 0  # not due yet
            make_due()
    assert run_due(app) == 1
    with app.app_context():
        assert the_item().status == OutboxStatus.DONE
        assert len(pushed("o-student-1")) == 1


def test_after_the_last_try_the_push_is_dead_and_can_be_retried(app_factory: Any) -> None:
    app = app_factory(WORKER_MAX_ATTEMPTS=2, VERIFY_MAX_ATTEMPTS=1)
    client = app.test_client()
    fault = {"path": "/cgi-bin/message/template/send", "errcode": -1, "times": 2}
    assert client.post("/_sandbox/api/_faults", json=fault).status_code == 200
    with app.app_context():
        decided(app, "o-student-1")
    run_due(app)
    with app.app_context():
        make_due()
    run_due(app)
    with app.app_context():
        item = the_item()
        assert (item.status, item.attempts) == (OutboxStatus.DEAD, 2)
        assert pushed("o-student-1") == []
        # What the admin page's retry button will do: the row is pending again, due now.
        item.status, item.attempts, item.next_attempt_at = OutboxStatus.PENDING, 0, utcnow()
        db.session.commit()
    assert run_due(app) == 1
    with app.app_context():
        assert the_item().status == OutboxStatus.DONE
        assert len(pushed("o-student-1")) == 1


def test_an_unfollowed_student_makes_the_push_dead_at_once(app: Flask) -> None:
    with app.app_context():
        sid = decided(app, "o-student-1")
        r = redis_client()
        user = state.get_user(r, "o-student-1")
        assert user is not None
        user["subscribed"] = False
        state.save_user(r, user)
    run_due(app)
    with app.app_context():
        item = the_item()
        assert item.status == OutboxStatus.DEAD
        assert "43004" in (item.last_error or "")
        assert status_of(sid) == SubmissionStatus.RETURNED  # the decision itself stands
