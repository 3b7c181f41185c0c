"""The dedupe store itself (app/wechat/dedupe.py, `Dedupe`), on fakeredis and on real Redis: the reply goes
out without waiting for Redis's answer, and nothing is left unread on the pooled connection."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import redis
from flask import Flask

from app.integrations import redis_client
from app.wechat import dedupe
from app.wechat.dedupe import Produced


@pytest.fixture
def r(app: Flask) -> Iterator[redis.Redis]:
    with app.app_context():
        yield redis_client()


def test_the_reply_is_stored_and_the_connection_is_left_clean(r: redis.Redis) -> None:
    key = f"{dedupe.PREFIX}m:{uuid.uuid4().int % 10**12}"
    r.set("mark", "1")
    seen: list[str | None] = []

    def produce(mark: str | None) -> Produced:
        seen.append(mark)
        return Produced("<xml>reply</xml>")

    assert dedupe.Dedupe(r, 120).run_once(key, produce, prefetch="mark").reply == "<xml>reply</xml>"
    assert seen == ["1"]  # the prefetched key, read with the claim
    # No answer is waiting on the pooled connection (CLIENT REPLY SKIP left none behind) ...
    pool = r.connection_pool
    conn = pool.get_connection()
    try:
        assert not conn.can_read()
    finally:
        pool.release(conn)
    # ... and the next commands on it get their own answers.
    assert r.get(key) == dedupe.DONE + "<xml>reply</xml>"
    assert 0 < r.ttl(key) <= 120
    assert dedupe.Dedupe(r, 120).run_once(key, produce).reply == "<xml>reply</xml>"  # a retry
    assert len(seen) == 1


def test_many_stores_in_a_row_keep_answers_in_step(r: redis.Redis) -> None:
    keys = [f"{dedupe.PREFIX}m:step-{uuid.uuid4().hex}-{i}" for i in range(50)]
    once = dedupe.Dedupe(r, 60)
    for i, key in enumerate(keys):
        assert (
            once.run_once(key, lambda _m, i=i: Produced(f"reply {i}"), prefetch="nothing").reply
            == f"reply {i}"
        )
    assert r.mget(keys) == [dedupe.DONE + f"reply {i}" for i in range(len(keys))]


def test_a_server_that_refuses_client_reply_still_gets_the_reply(app: Flask) -> None:
    url = os.environ.get("REDIS_URL", "")
    if not url.startswith("redis://"):
        pytest.skip("needs a real Redis (an ACL user without the CLIENT command)")
    admin = redis.Redis.from_url(url, decode_responses=True)
    user = f"no-client-{uuid.uuid4().hex[:8]}"
    admin.acl_setuser(user, enabled=True, nopass=True, keys=["*"], commands=["+@all", "-client"])
    try:
        limited = redis.Redis.from_url(url, username=user, password="", decode_responses=True)
        key = f"{dedupe.PREFIX}m:acl-{uuid.uuid4().hex}"
        assert (
            dedupe.Dedupe(limited, 60).run_once(key, lambda _m: Produced("reply"), prefetch="x").reply
            == "reply"
        )
        assert dedupe._skip_support[limited.connection_pool] is False
        assert limited.get(key) == dedupe.DONE + "reply"
        assert dedupe.Dedupe(limited, 60).run_once(key + "2", lambda _m: Produced("again")).reply == "again"
        assert limited.get(key + "2") == dedupe.DONE + "again"
        limited.close()
    finally:
        admin.acl_deluser(user)


def test_a_connection_the_server_closed_is_replaced_after_idling(
    r: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not os.environ.get("REDIS_URL", "").startswith("redis://"):
        pytest.skip("needs a real Redis (CLIENT KILL)")
    first = f"{dedupe.PREFIX}m:kill-{uuid.uuid4().hex}"
    assert dedupe.Dedupe(r, 60).run_once(first, lambda _m: Produced("one")).reply == "one"
    own = dedupe._own.by_pool[r.connection_pool].conn
    own.send_command("CLIENT", "ID")
    client_id = own.read_response()
    assert r.client_kill_filter(_id=client_id) == 1  # as a Redis restart or idle timeout would

    monkeypatch.setattr(dedupe, "IDLE_CHECK_SECONDS", 0.0)
    second = f"{dedupe.PREFIX}m:kill-{uuid.uuid4().hex}"
    runs: list[str] = []
    assert (
        dedupe.Dedupe(r, 60).run_once(second, lambda _m: runs.append("x") or Produced("two")).reply == "two"
    )
    # Deduplicated as usual on a fresh connection: the reply is stored, a retry does not run it.
    assert r.get(second) == dedupe.DONE + "two"
    assert (
        dedupe.Dedupe(r, 60).run_once(second, lambda _m: runs.append("y") or Produced("again")).reply == "two"
    )
    assert runs == ["x"]


def test_each_thread_has_its_own_connection(r: redis.Redis) -> None:
    import threading

    seen: list[object] = []

    def claim() -> None:
        dedupe.Dedupe(r, 60).run_once(
            f"{dedupe.PREFIX}m:thread-{uuid.uuid4().hex}", lambda _m: Produced("ok")
        )
        seen.append(dedupe._own.by_pool[r.connection_pool].conn)

    threads = [threading.Thread(target=claim) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(c) for c in seen}) == 3


def test_answer_first_keeps_the_first_answer_and_hands_it_to_later_tries(r: redis.Redis) -> None:
    key = f"{dedupe.PREFIX}m:first-{uuid.uuid4().hex}"
    r.set("mark", "1")
    first = dedupe.Dedupe(r, 120).answer_first(key, lambda: Produced("<xml>one</xml>"), prefetch="mark")
    assert first == dedupe.First("<xml>one</xml>", mine=True, mark="1")
    assert r.get(key) == dedupe.DONE + "<xml>one</xml>" and 0 < r.ttl(key) <= 120
    later = dedupe.Dedupe(r, 120).answer_first(
        key, lambda: Produced("<xml>two</xml>"), prefetch="no-such-mark"
    )
    assert later == dedupe.First("<xml>one</xml>", mine=False, mark=None)
    assert r.get(key) == dedupe.DONE + "<xml>one</xml>"
    # run_once (a retry claimed first) sees the same answer.
    assert (
        dedupe.Dedupe(r, 120).run_once(key, lambda _m: Produced("<xml>three</xml>")).reply == "<xml>one</xml>"
    )


def test_answer_first_waits_for_a_claimed_try_of_the_same_message(
    r: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A retry that claimed the message (run_once) and is still in its handler: answer_first must
    # not overwrite the claim, and answers the claimed try's reply once it is stored.
    key = f"{dedupe.PREFIX}m:claimed-{uuid.uuid4().hex}"
    r.set(key, dedupe.PENDING, ex=60)
    pauses: list[float] = []

    def pause(seconds: float) -> None:
        pauses.append(seconds)
        r.set(key, dedupe.DONE + "<xml>claimed</xml>", ex=60)

    monkeypatch.setattr(dedupe, "_pause", pause)
    found = dedupe.Dedupe(r, 60).answer_first(key, lambda: Produced("<xml>mine</xml>"))
    assert found == dedupe.First("<xml>claimed</xml>", mine=False, mark=None)
    assert len(pauses) == 1


def test_answer_first_answers_when_redis_is_down(app: Flask) -> None:
    down = dedupe.Dedupe(
        redis.Redis(host="127.0.0.1", port=1, decode_responses=True, socket_connect_timeout=0.5), 60
    )
    key = f"{dedupe.PREFIX}m:down"
    found = down.answer_first(key, lambda: Produced("<xml>still</xml>"), prefetch="mark")
    assert found == dedupe.First("<xml>still</xml>", mine=True, mark=None)
    # A failure, not an unsupported server: the next message is answered first too.
    again = down.answer_first(key, lambda: Produced("<xml>next</xml>"))
    assert again == dedupe.First("<xml>next</xml>", mine=True, mark=None)


def test_answer_first_on_a_redis_without_set_nx_get_declines_and_remembers(app: Flask) -> None:
    import fakeredis

    old = dedupe.Dedupe(
        fakeredis.FakeRedis(server=fakeredis.FakeServer(version=(6, 2)), decode_responses=True), 60
    )
    produced: list[str] = []
    key = f"{dedupe.PREFIX}m:old-{uuid.uuid4().hex}"
    assert old.answer_first(key, lambda: produced.append("1") or Produced("<xml>1</xml>")) is None
    assert old.redis.get(key) is None  # nothing stored: the caller claims it
    assert old.answer_first(key, lambda: produced.append("2") or Produced("<xml>2</xml>")) is None
    assert produced == ["1"]  # known now: declined before producing anything
    assert old.run_once(key, lambda _m: Produced("<xml>claimed</xml>")).reply == "<xml>claimed</xml>"
