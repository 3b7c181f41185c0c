"""Writing to the outbox: call inside the unit of work whose commit the message announces."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.services.job_kinds import JobKind
from models import OutboxItem, utcnow


def enqueue(
    session: Session,
    kind: JobKind,
    payload: dict[str, Any],
    *,
    key: str | None = None,
    delay_seconds: float = 0,
) -> OutboxItem | None:
    """Add a job to the caller's transaction (no commit here: the caller commits once).

    With `key`, a second enqueue of the same announcement is a no-op and returns None; the unique
    constraint on `idempotency_key` backs this up against concurrent writers.
    """
    if key is not None:
        existing = session.scalar(select(OutboxItem.id).where(OutboxItem.idempotency_key == key))
        if existing is not None:
            return None
    item = OutboxItem(
        kind=str(kind),
        payload=payload,
        idempotency_key=key,
        next_attempt_at=utcnow() + timedelta(seconds=delay_seconds),
    )
    session.add(item)
    return item


def announce(
    session: Session,
    openid: str,
    key: str,
    *,
    template_id: str,
    url: str,
    template_data: Callable[[], dict[str, Any]],
    text: Callable[[], str],
) -> OutboxItem | None:
    """A message to a student: a template message when the account has the template, a custom text
    otherwise. `key` makes a second enqueue a no-op and doubles as the client_msg_id, which lets
    WeChat drop a resend after a worker died between sending and recording it."""
    if template_id:
        payload = {
            "openid": openid,
            "template_id": template_id,
            "data": template_data(),
            "url": url,
            "client_msg_id": key.replace(":", "-"),
        }
        return enqueue(session, JobKind.SEND_TEMPLATE, payload, key=key)
    return enqueue(session, JobKind.SEND_TEXT, {"openid": openid, "text": text()}, key=key)
