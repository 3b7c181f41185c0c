"""app.services.users with a real session (SQLite or PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from app.extensions import db
from app.integrations import redis_client
from app.services import users
from models import User


@pytest.fixture
def session(app_ctx: None) -> Session:
    return db.session()


@pytest.fixture
def statements(session: Session) -> Iterator[list[str]]:
    """SQL statements run while the test body runs."""
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement.split(None, 1)[0].upper())

    engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    yield seen
    event.remove(engine, "before_cursor_execute", record)


def test_subscribe_creates_a_follower(session: Session) -> None:
    result = users.subscribe(session, "o-1")
    assert result.is_new
    assert result.user.subscribed and result.user.subscribed_at is not None
    assert result.user.last_scene is None


def test_subscribe_again_reactivates_the_same_row(session: Session) -> None:
    first = users.subscribe(session, "o-1").user
    users.unsubscribe(session, "o-1")
    again = users.subscribe(session, "o-1", scene="school:10542")
    assert not again.is_new
    assert again.user.id == first.id and again.user.subscribed
    assert again.user.unsubscribed_at is not None and again.user.last_scene == "school:10542"
    assert session.scalars(select(User)).all() == [again.user]


def test_unsubscribe_keeps_the_row(session: Session) -> None:
    users.subscribe(session, "o-1", scene="school:1")
    gone = users.unsubscribe(session, "o-1")
    assert gone is not None and not gone.subscribed and gone.last_scene == "school:1"
    assert users.unsubscribe(session, "o-unknown") is None


def test_record_scene_clips_to_the_column(session: Session) -> None:
    users.subscribe(session, "o-1")
    found = users.record_scene(session, "o-1", "s" * 80)
    assert found.last_scene == "s" * users.SCENE_MAX_LENGTH


def test_record_scene_for_an_unknown_follower_creates_them(session: Session) -> None:
    found = users.record_scene(session, "o-new", "school:2")
    assert found.subscribed and found.last_scene == "school:2"


def test_get_or_create_of_a_known_follower_reads_one_row_and_writes_nothing(
    session: Session, statements: list[str]
) -> None:
    users.subscribe(session, "o-known")
    session.expire_all()
    statements.clear()
    found = users.get_or_create(session, "o-known")
    assert found.openid == "o-known"
    assert statements == ["SELECT"]


def test_recording_a_known_follower_reads_once_and_sets_the_mark(
    session: Session, statements: list[str]
) -> None:
    cache = redis_client()
    users.subscribe(session, "o-known")  # no cache given: no mark yet
    statements.clear()
    users.record_follower(session, cache, "o-known")
    assert statements == ["SELECT"]  # a known follower: no write
    assert cache.get(users.follower_mark("o-known")) == "1"


def test_recording_creates_an_unknown_sender(session: Session) -> None:
    users.record_follower(session, redis_client(), "o-new")
    found = users.get(session, "o-new")
    assert found is not None and found.subscribed


def test_follow_sets_the_mark_and_unfollow_clears_it(session: Session) -> None:
    cache = redis_client()
    users.subscribe(session, "o-1", cache=cache)
    assert cache.get(users.follower_mark("o-1")) == "1"
    users.unsubscribe(session, "o-1", cache=cache)
    assert cache.get(users.follower_mark("o-1")) is None
    # A message after all (our record was out of date): the database is asked and corrected.
    users.record_follower(session, cache, "o-1")
    found = users.get(session, "o-1")
    assert found is not None and found.subscribed


def test_recording_without_redis_still_works(session: Session) -> None:
    class Down:
        def get(self, key: str) -> None:
            raise RedisConnectionError("down")

        def set(self, *args: Any, **kwargs: Any) -> None:
            raise RedisConnectionError("down")

    users.record_follower(session, Down(), "o-nocache")  # type: ignore[arg-type]
    assert users.get(session, "o-nocache") is not None


def test_get_or_create_of_an_unknown_user_creates_a_follower(session: Session) -> None:
    created = users.get_or_create(session, "o-earlier")
    assert created.id is not None and created.subscribed and created.subscribed_at is None
    assert users.get_or_create(session, "o-earlier").id == created.id


def test_get_or_create_survives_a_concurrent_insert(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another request inserts the same openid between our SELECT and our INSERT.
    real_get = users.get
    calls = {"n": 0}

    def get_then_race(s: Session, openid: str) -> User | None:
        calls["n"] += 1
        if calls["n"] == 1:
            with Session(db.engine) as racer:
                racer.add(User(openid=openid))
                racer.commit()
            return None
        return real_get(s, openid)

    monkeypatch.setattr(users, "get", get_then_race)
    found = users.get_or_create(session, "o-race")
    assert found.openid == "o-race"
    assert len(session.scalars(select(User).where(User.openid == "o-race")).all()) == 1


def test_today_stats_uses_the_beijing_day(session: Session) -> None:
    # 2026-03-10 00:00 in Beijing is 2026-03-09 16:00 UTC.
    now = datetime(2026, 3, 10, 4, 0, tzinfo=UTC)
    midnight = datetime(2026, 3, 9, 16, 0, tzinfo=UTC)
    session.add_all(
        [
            User(openid="o-yesterday", subscribed=True, subscribed_at=midnight - timedelta(seconds=1)),
            User(openid="o-today", subscribed=True, subscribed_at=midnight),
            User(
                openid="o-left",
                subscribed=False,
                subscribed_at=midnight + timedelta(hours=1),
                unsubscribed_at=midnight + timedelta(hours=2),
            ),
            User(openid="o-left-yesterday", subscribed=False, unsubscribed_at=midnight - timedelta(hours=1)),
        ]
    )
    session.commit()
    stats = users.today_stats(session, now=now)
    assert stats == users.TodayStats(day="2026-03-10", new_followers=2, unfollows=1, total_followers=2)


def test_operator_today_stats_refuses_others(session: Session) -> None:
    users.subscribe(session, "o-student")
    session.add(User(openid="o-op", is_operator=True))
    session.commit()
    with pytest.raises(users.UserNotOperatorError):
        users.operator_today_stats(session, "o-student")
    with pytest.raises(users.UserNotOperatorError):
        users.operator_today_stats(session, "o-nobody")
    assert users.operator_today_stats(session, "o-op").total_followers == 2
