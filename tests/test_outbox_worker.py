"""The outbox worker: runs committed jobs once, retries with backoff, dead-letters, survives crashes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from app.extensions import db
from app.jobs import JOBS, PermanentJobError
from app.jobs.worker import _claim, backoff_seconds, run_due
from app.services import outbox
from models import OutboxItem, OutboxStatus, utcnow

ROOT = Path(__file__).resolve().parents[1]
calls: list[dict[str, Any]] = []


@pytest.fixture(autouse=True)
def _test_jobs() -> Any:
    calls.clear()

    def ok(payload: dict[str, Any]) -> None:
        calls.append(payload)

    def flaky(payload: dict[str, Any]) -> None:
        calls.append(payload)
        raise ConnectionError("WeChat unreachable")

    def permanent(payload: dict[str, Any]) -> None:
        raise PermanentJobError("openid does not exist")

    JOBS.update({"test.ok": ok, "test.flaky": flaky, "test.permanent": permanent})
    yield
    for kind in ("test.ok", "test.flaky", "test.permanent"):
        JOBS.pop(kind)


def _item(item_id: int) -> OutboxItem:
    db.session.expire_all()
    item = db.session.get(OutboxItem, item_id)
    assert item is not None
    return item


def test_a_committed_job_runs_once(app: Flask) -> None:
    with app.app_context():
        item = outbox.enqueue(db.session, "test.ok", {"n": 1})
        db.session.commit()
        assert item is not None
        item_id = item.id
    assert run_due(app) == 1
    assert run_due(app) == 0
    assert calls == [{"n": 1, "outbox_id": item_id}]
    with app.app_context():
        assert _item(item_id).status == OutboxStatus.DONE


def test_an_uncommitted_job_never_runs(app: Flask) -> None:
    with app.app_context():
        outbox.enqueue(db.session, "test.ok", {"n": 1})
        db.session.rollback()
    assert run_due(app) == 0
    assert calls == []


def test_the_same_idempotency_key_is_enqueued_once(app: Flask) -> None:
    with app.app_context():
        assert outbox.enqueue(db.session, "test.ok", {"n": 1}, key="decision:7") is not None
        db.session.commit()
        assert outbox.enqueue(db.session, "test.ok", {"n": 2}, key="decision:7") is None
        db.session.commit()
    run_due(app)
    assert [c["n"] for c in calls] == [1]


def test_failures_back_off_then_go_dead(app: Flask) -> None:
    app.config["WORKER_MAX_ATTEMPTS"] = 3
    with app.app_context():
        item = outbox.enqueue(db.session, "test.flaky", {"n": 1})
        db.session.commit()
        assert item is not None
        item_id = item.id
    assert run_due(app) == 1
    with app.app_context():
        first = _item(item_id)
        assert first.status == OutboxStatus.PENDING
        assert first.attempts == 1
        assert first.next_attempt_at > utcnow() + timedelta(seconds=3)
        assert "WeChat unreachable" in (first.last_error or "")
    assert run_due(app) == 0  # not due yet: backoff holds it
    for _ in range(2):
        with app.app_context():
            _item(item_id).next_attempt_at = utcnow()
            db.session.commit()
        assert run_due(app) == 1
    with app.app_context():
        dead = _item(item_id)
        assert dead.status == OutboxStatus.DEAD
        assert dead.attempts == 3
    assert len(calls) == 3


def test_permanent_errors_go_dead_at_once(app: Flask) -> None:
    with app.app_context():
        outbox.enqueue(db.session, "test.permanent", {})
        outbox.enqueue(db.session, "no.such.kind", {})
        db.session.commit()
    assert run_due(app) == 2
    with app.app_context():
        statuses = db.session.scalars(select(OutboxItem.status)).all()
        assert statuses == [OutboxStatus.DEAD, OutboxStatus.DEAD]


def test_a_crashed_workers_lease_runs_out_and_the_job_runs_again(app: Flask) -> None:
    with app.app_context():
        item = outbox.enqueue(db.session, "test.ok", {"n": 1})
        db.session.commit()
        assert item is not None
        # A worker claimed it and died before recording the result.
        item.locked_until = utcnow() + timedelta(minutes=2)
        item.attempts = 1
        db.session.commit()
        item_id = item.id
    assert run_due(app) == 0  # still leased
    with app.app_context():
        _item(item_id).locked_until = utcnow() - timedelta(seconds=1)
        db.session.commit()
    assert run_due(app) == 1
    assert calls == [{"n": 1, "outbox_id": item_id}]


def test_backoff_grows_and_is_capped() -> None:
    assert 4 <= backoff_seconds(1) <= 6
    assert 16 <= backoff_seconds(3) <= 24
    assert backoff_seconds(50) <= 3600 * 1.2


# --- leases: a killed worker's rows come back in seconds; a live worker's slow job keeps its rows --------


def test_a_killed_workers_rows_come_back_within_seconds(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    from app.jobs import worker

    assert timedelta(seconds=30) >= worker.LEASE
    with app.app_context():
        item = outbox.enqueue(db.session, "test.ok", {"n": 1})
        db.session.commit()
        assert item is not None
        claimed, _ = worker._claim(20)  # a worker claims the row, then dies (no finish, no heartbeat)
        assert [i.id for i in claimed] == [item.id]
        db.session.remove()
        assert worker._claim(20)[0] == []  # held: another worker leaves it alone
        db.session.remove()
        later = utcnow() + worker.LEASE + timedelta(seconds=1)
        monkeypatch.setattr(worker, "utcnow", lambda: later)
        again, _ = worker._claim(20)
        assert [i.id for i in again] == [item.id]


def test_renewing_keeps_held_leases_and_drops_one_taken_over(app: Flask) -> None:
    from app.jobs import worker

    with app.app_context():
        first = outbox.enqueue(db.session, "test.ok", {"n": 1})
        second = outbox.enqueue(db.session, "test.ok", {"n": 2})
        db.session.commit()
        assert first is not None and second is not None
        _, leases = worker._claim(20)
        # The second row's lease ran out and another worker took it (its own lease value).
        taken = _item(second.id)
        taken.locked_until = utcnow() + timedelta(minutes=5)
        db.session.commit()
        now = utcnow() + timedelta(seconds=3)
        leases.renew(now)
        assert leases.held() == {first.id}
        assert _item(first.id).locked_until == now + worker.LEASE
        assert _item(second.id).locked_until == taken.locked_until


def test_a_slow_job_keeps_its_row_while_it_runs(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    import threading
    import time

    from app.jobs import worker

    monkeypatch.setattr(worker, "HEARTBEAT_SECONDS", 0.02)
    seen: dict[str, Any] = {}

    def slow(payload: dict[str, Any]) -> None:
        # Runs inside the worker: wait until the heartbeat has renewed this row's lease, then look at
        # the row as another worker would once the first lease has run out.
        item_id = payload["outbox_id"]
        engine = db.engine
        table = OutboxItem.__table__
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                held = conn.execute(select(table.c.locked_until).where(table.c.id == item_id)).scalar_one()
            if held is not None and held.replace(tzinfo=None) > seen["first"].replace(tzinfo=None):
                seen["renewed"] = held
                break
            threading.Event().wait(0.01)

    JOBS["test.slow"] = slow
    try:
        with app.app_context():
            item = outbox.enqueue(db.session, "test.slow", {})
            db.session.commit()
            assert item is not None
        original_claim = worker._claim

        def claim(limit: int) -> Any:
            items, leases = original_claim(limit)
            seen["first"] = next(iter(leases._held.values()))
            return items, leases

        monkeypatch.setattr(worker, "_claim", claim)
        assert run_due(app) == 1
    finally:
        JOBS.pop("test.slow")
    assert "renewed" in seen, "the lease was never renewed while the job ran"


def test_workers_claiming_at_once_take_different_rows_and_leave_none(app: Flask) -> None:
    """Four workers (four hosts' `flask worker`) claim at the same moment: no row twice, none left
    behind because a worker read the same first rows as another and then found them taken."""
    with app.app_context():
        for n in range(30):
            outbox.enqueue(db.session, "test.ok", {"n": n})
        db.session.commit()
    start = threading.Barrier(4)
    taken: list[list[int]] = []

    def worker() -> None:
        with app.app_context():
            start.wait()
            items, _ = _claim(10)
            taken.append([item.id for item in items])
            db.session.remove()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    ids = [item_id for claim in taken for item_id in claim]
    assert len(ids) == len(set(ids)) == 30


def test_a_stopping_worker_finishes_the_running_job_and_hands_the_rest_back(app: Flask) -> None:
    stopping = threading.Event()

    def stopped_meanwhile(payload: dict[str, Any]) -> None:
        calls.append(payload)
        stopping.set()  # SIGTERM arrives while this job runs

    JOBS["test.stop"] = stopped_meanwhile
    try:
        with app.app_context():
            first = outbox.enqueue(db.session, "test.stop", {"n": 0})
            rest = [outbox.enqueue(db.session, "test.ok", {"n": n}) for n in (1, 2)]
            db.session.commit()
            assert first is not None and all(rest)
            first_id, rest_ids = first.id, [item.id for item in rest if item is not None]
        assert run_due(app, stopping=stopping) == 1
        assert calls == [{"n": 0, "outbox_id": first_id}]
        with app.app_context():
            for item_id in rest_ids:  # back at once, uncounted: not waiting out a lease
                item = _item(item_id)
                assert (item.status, item.locked_until, item.attempts) == (OutboxStatus.PENDING, None, 0)
        assert run_due(app) == 2
    finally:
        JOBS.pop("test.stop")


def test_flask_worker_stops_on_sigterm(tmp_path: Path) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")},
        "APP_ENV": "testing",
        "SECRET_KEY": "test-secret-key-0123456789abcdef0123456789",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'app.db'}",
        "MEDIA_ROOT": str(tmp_path / "media"),
        "LOG_FORMAT": "text",
    }
    flask = [sys.executable, "-m", "flask", "--app", "wsgi"]
    subprocess.run([*flask, "db", "upgrade"], cwd=ROOT, env=env, check=True, capture_output=True, timeout=120)
    worker = subprocess.Popen([*flask, "worker"], cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
    try:
        assert worker.stderr is not None
        deadline = time.monotonic() + 60
        for line in worker.stderr:  # the log goes to stderr
            if "worker started" in line or time.monotonic() > deadline:
                break
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(15) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
