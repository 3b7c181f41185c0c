"""The outbox worker: claims due rows, runs their job, retries with exponential backoff.

Hand-written rather than RQ/Celery/dramatiq because the queue *is* the outbox table: a job exists
exactly when the transaction that created it committed, on SQLite and PostgreSQL alike, and no
second broker has to agree with the database. A claim is one conditional UPDATE with a lease over
rows read with FOR UPDATE SKIP LOCKED, so several workers can run side by side without taking or
waiting on each other's rows, and a killed worker's rows come back when its lease ends.

Delivery is at least once: a worker killed after a job's effect (a WeChat push sent) but before it
marked the row done leaves the row to run again when the lease ends, and the push goes out twice
with the same `client_msg_id` (WeChat drops such a repeat only within its own short window). The
lease is short (LEASE) so that a killed worker's rows come back within seconds, and a heartbeat
thread renews the leases of the rows a live worker still holds, so a slow job is never taken over.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from datetime import datetime, timedelta

from flask import Flask
from sqlalchemy import or_, select, update

from app.extensions import db
from app.jobs import JOBS, PermanentJobError, load_jobs
from app.jobs.periodic import PeriodicRunner
from models import OutboxItem, OutboxStatus, utcnow

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=15)
HEARTBEAT_SECONDS = 5.0  # a third of the lease: two beats may be late before a row is taken over
BATCH = 20
MAX_BACKOFF_SECONDS = 3600.0


def backoff_seconds(attempts: int, base: float = 5.0) -> float:
    """5 s, 10 s, 20 s ... capped at an hour, with jitter so failed rows do not retry in lockstep."""
    delay: float = min(base * 2 ** max(attempts - 1, 0), MAX_BACKOFF_SECONDS)
    return delay * random.uniform(0.8, 1.2)  # noqa: S311 (jitter, not a secret)


class Leases:
    """The rows this worker claimed and has not finished, each with the lease it holds on it.

    `renew` extends every lease still held, compare-and-set on the lease's own timestamp, so a lease
    that ran out and was claimed by another worker is dropped here instead of being taken back. It
    runs on the heartbeat thread with a connection of its own, beside the job's session.
    """

    def __init__(self, held: dict[int, datetime]) -> None:
        self._held = dict(held)
        self._lock = threading.Lock()

    def release(self, item_id: int) -> None:
        with self._lock:
            self._held.pop(item_id, None)

    def held(self) -> set[int]:
        with self._lock:
            return set(self._held)

    def renew(self, now: datetime) -> None:
        until = now + LEASE
        with self._lock:
            held = dict(self._held)
        table = OutboxItem.__table__
        kept: dict[int, datetime] = {}
        with db.engine.begin() as conn:
            for item_id, lease in held.items():
                result = conn.execute(
                    update(table)
                    .where(
                        table.c.id == item_id,
                        table.c.status == OutboxStatus.PENDING,
                        table.c.locked_until == lease,
                    )
                    .values(locked_until=until)
                )
                if result.rowcount == 1:
                    kept[item_id] = until
        with self._lock:
            # Rows released meanwhile stay released; rows whose lease was lost are dropped.
            self._held = {i: kept[i] for i in self._held if i in kept}


def _heartbeat(app: Flask, leases: Leases, stop: threading.Event) -> None:
    with app.app_context():
        while not stop.wait(HEARTBEAT_SECONDS):
            try:
                leases.renew(utcnow())
            except Exception:  # the database briefly away: the next beat tries again
                log.exception("outbox: could not renew leases")


def _claim(limit: int) -> tuple[list[OutboxItem], Leases]:
    now = utcnow()
    claimable = (
        OutboxItem.status == OutboxStatus.PENDING,
        or_(OutboxItem.locked_until.is_(None), OutboxItem.locked_until < now),
    )
    # FOR UPDATE SKIP LOCKED (PostgreSQL; SQLite, whose writers take turns anyway, renders nothing):
    # workers on several hosts each take rows the others have not locked, instead of all reading the
    # same first rows and then waiting on each other's row locks to find them taken.
    candidates = (
        select(OutboxItem.id)
        .where(OutboxItem.next_attempt_at <= now, *claimable)
        .order_by(OutboxItem.next_attempt_at, OutboxItem.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    lease = now + LEASE
    # One conditional UPDATE for the batch: a row another worker claimed meanwhile no longer matches.
    claimed = list(
        db.session.scalars(
            update(OutboxItem)
            .where(OutboxItem.id.in_(candidates.scalar_subquery()), *claimable)
            .values(locked_until=lease, attempts=OutboxItem.attempts + 1)
            .returning(OutboxItem.id)
        )
    )
    db.session.commit()
    leases = Leases(dict.fromkeys(claimed, lease))
    if not claimed:
        return [], leases
    items = db.session.scalars(select(OutboxItem).where(OutboxItem.id.in_(claimed)).order_by(OutboxItem.id))
    return list(items), leases


def _finish(item: OutboxItem, error: BaseException | None, max_attempts: int) -> None:
    now = utcnow()
    item.locked_until = None
    if error is None:
        item.status = OutboxStatus.DONE
        item.done_at = now
        item.last_error = None
    else:
        item.last_error = f"{type(error).__name__}: {error}"[:2000]
        if isinstance(error, PermanentJobError) or item.attempts >= max_attempts:
            item.status = OutboxStatus.DEAD
            log.error("outbox item dead", extra={"outbox_id": item.id, "kind": item.kind})
        else:
            item.next_attempt_at = now + timedelta(seconds=backoff_seconds(item.attempts))
    db.session.commit()


def run_due(app: Flask, limit: int = BATCH, stopping: threading.Event | None = None) -> int:
    """Run every due job once; returns how many ran. Tests call this to drain the outbox. With
    `stopping` set meanwhile, the running job finishes and the rest of the batch is handed back."""
    load_jobs()
    max_attempts: int = app.config["WORKER_MAX_ATTEMPTS"]
    with app.app_context():
        items, leases = _claim(limit)
        if not items:
            db.session.remove()
            return 0
        beating = threading.Event()
        beat = threading.Thread(
            target=_heartbeat, args=(app, leases, beating), name="outbox-lease", daemon=True
        )
        beat.start()
        try:
            ran = _run_claimed(items, leases, max_attempts, stopping)
        finally:
            beating.set()
            beat.join()
            db.session.remove()
    return ran


def _run_claimed(
    items: list[OutboxItem], leases: Leases, max_attempts: int, stopping: threading.Event | None = None
) -> int:
    ran = 0
    for item in items:
        if stopping is not None and stopping.is_set():
            _hand_back(leases)
            break
        if item.id not in leases.held():
            continue  # the lease ran out (the database was away too long) and may be another's now
        func = JOBS.get(item.kind)
        error: BaseException | None = None
        try:
            if func is None:
                raise PermanentJobError(f"no job registered for kind {item.kind!r}")
            func({**item.payload, "outbox_id": item.id})
        except Exception as exc:  # a failing job must never stop the worker
            db.session.rollback()
            error = exc
            log.warning(
                "job failed",
                extra={"outbox_id": item.id, "kind": item.kind, "attempt": item.attempts},
                exc_info=not isinstance(exc, PermanentJobError),
            )
        item = db.session.get(OutboxItem, item.id) or item
        leases.release(item.id)
        _finish(item, error, max_attempts)
        ran += 1
    return ran


def _hand_back(leases: Leases) -> None:
    """Give the claimed rows not yet run back at once (a stopping worker), uncounted, instead of
    leaving them to wait out their lease: another worker takes them on its next poll."""
    held = leases.held()
    table = OutboxItem.__table__
    with db.engine.begin() as conn:
        for item_id in held:
            conn.execute(
                update(table)
                .where(table.c.id == item_id, table.c.status == OutboxStatus.PENDING)
                .values(locked_until=None, attempts=table.c.attempts - 1)
            )
            leases.release(item_id)
    log.info("outbox: handed back %d claimed jobs on stopping", len(held))


def run_forever(app: Flask, stop: threading.Event | None = None) -> None:
    stop = stop or threading.Event()
    poll: float = app.config["WORKER_POLL_SECONDS"]
    periodic = PeriodicRunner(app)
    log.info("worker started")
    while not stop.is_set():
        try:
            periodic.tick()
            ran = run_due(app, stopping=stop)
        except Exception:  # database briefly away: log, wait, go on
            log.exception("worker loop error")
            ran = 0
        if ran == 0:
            stop.wait(poll)
    log.info("worker stopped")


def start_in_thread(app: Flask) -> threading.Event:
    """The embedded mode's worker: a daemon thread in the web process."""
    stop = threading.Event()
    thread = threading.Thread(target=run_forever, args=(app, stop), name="outbox-worker", daemon=True)
    thread.start()
    return stop


def wait_for_idle(app: Flask, timeout: float = 10.0) -> None:
    """Drain due jobs (tests and the CLI); raises if work is still due after `timeout`."""
    deadline = time.monotonic() + timeout
    while run_due(app):
        if time.monotonic() > deadline:
            raise TimeoutError("outbox still busy")
