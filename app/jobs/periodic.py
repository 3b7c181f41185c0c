"""Periodic work, listed in one place. Each task must be safe to run on several workers at once."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from flask import Flask
from sqlalchemy import delete

from app.extensions import db
from app.services.pushes import ResultPush
from models import OutboxItem, OutboxStatus, utcnow

log = logging.getLogger(__name__)


def purge_done_outbox() -> None:
    """Delivered rows are kept 30 days for audit, then removed; dead rows stay until handled."""
    cutoff = utcnow() - timedelta(days=30)
    db.session.execute(
        delete(OutboxItem).where(OutboxItem.status == OutboxStatus.DONE, OutboxItem.done_at < cutoff)
    )
    db.session.commit()


@dataclass
class Task:
    name: str
    every_seconds: float
    func: Callable[[], None]
    last_run: float = field(default=0.0)


def replay_parked_messages() -> None:
    from flask import current_app

    from app.wechat import answering

    answering.replay_parked(current_app.config["SETTINGS"])


def remind_windows_closing() -> None:
    from flask import current_app

    from app.services import reminders

    reminders.send_due(db.session, ResultPush.reminders_from_config(current_app.config), utcnow())


def push_tickets() -> None:
    from flask import current_app

    from app.services import tickets

    tickets.push_due(db.session, ResultPush.reminders_from_config(current_app.config), utcnow())


def tasks() -> list[Task]:
    from app.jobs import payments

    return [
        Task("purge_done_outbox", 3600, purge_done_outbox),
        # WeChat messages whose handler failed (the database away): applied once it is back.
        Task("wechat_replay_parked", 2, replay_parked_messages),
        # WeChat Pay upkeep (app/jobs/payments.py): late notifications, expiry, unpaid, refunds.
        Task("pay_queue_order_queries", 10, payments.queue_order_queries),
        Task("pay_close_expired_orders", 15, payments.close_expired_orders),
        Task("pay_cancel_unpaid_submissions", 600, payments.cancel_unpaid_submissions),
        Task("pay_queue_refund_queries", 60, payments.queue_refund_queries),
        # review_first: approvals still unpaid when the pay window closes become void.
        Task("pay_void_overdue_approvals", 60, payments.void_overdue_approvals),
        # 24 h before a sign-up or pay window closes, the students who have not done its step
        # (app/services/reminders.py); every 10 minutes, so the night's reminders go soon after 08:00.
        Task("remind_windows_closing", 600, remind_windows_closing),
        # Once a batch's ticket window opens, each seated candidate is told once (app/services/tickets.py).
        Task("push_tickets", 600, push_tickets),
    ]


class PeriodicRunner:
    def __init__(self, app: Flask) -> None:
        self.app = app
        self.tasks = tasks()

    def tick(self) -> None:
        now = time.monotonic()
        for task in self.tasks:
            if now - task.last_run < task.every_seconds:
                continue
            task.last_run = now
            with self.app.app_context():
                try:
                    task.func()
                except Exception:
                    db.session.rollback()
                    log.exception("periodic task failed", extra={"task": task.name})
