"""Dead outbox rows for the admin page (/review/outbox) and the retry an admin asks for.

A row is dead after the worker's last attempt (or a permanent error). Retrying puts it back as a
fresh pending row: the idempotency key stays, so a retried push still reaches a student once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.services import audit
from models import OutboxItem, OutboxStatus, utcnow

OPENID_SHOWN = 6
# Payload keys that may carry personal data beyond an openid: never shown on the page.
_HIDDEN = frozenset({"name", "id_number", "number", "phone", "mobile", "reason_detail", "token"})


class DeadLetterError(Exception):
    """The row does not exist or is not dead (someone retried it already)."""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    id: int
    kind: str
    created_at: datetime
    attempts: int
    last_error: str | None
    payload: dict[str, Any]


def mask_payload(payload: dict[str, Any]) -> dict[str, Any]:
    """Ids and flags as they are; openids cut to their first 6 characters; anything else personal dropped."""
    shown: dict[str, Any] = {}
    for key, value in payload.items():
        if key in _HIDDEN:
            shown[key] = "***"
        elif "openid" in key.lower() and isinstance(value, str):
            shown[key] = value[:OPENID_SHOWN] + "…"
        elif isinstance(value, bool | int | float) or value is None:
            shown[key] = value
        elif isinstance(value, str) and (key == "id" or key.endswith("_id") or key in {"kind", "result"}):
            shown[key] = value[:64]
        else:
            shown[key] = "…"
    return shown


def list_dead(session: Session, limit: int = 200) -> list[DeadLetter]:
    """The newest dead rows first."""
    rows = session.scalars(
        select(OutboxItem)
        .where(OutboxItem.status == OutboxStatus.DEAD)
        .order_by(OutboxItem.id.desc())
        .limit(limit)
    )
    return [
        DeadLetter(
            id=item.id,
            kind=item.kind,
            created_at=item.created_at,
            attempts=item.attempts,
            last_error=item.last_error,
            payload=mask_payload(item.payload or {}),
        )
        for item in rows
    ]


def retry(session: Session, item_id: int, staff_id: int | None) -> None:
    """dead → pending, attempts reset, due now, with an audit entry; refuses any row not dead."""
    now = utcnow()
    result = session.execute(
        update(OutboxItem)
        .where(OutboxItem.id == item_id, OutboxItem.status == OutboxStatus.DEAD)
        .values(
            status=OutboxStatus.PENDING,
            attempts=0,
            next_attempt_at=now,
            locked_until=None,
        )
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        session.rollback()
        raise DeadLetterError("该任务不存在或已不在失败列表中")
    audit.record(session, staff_id, "outbox_retry", "outbox", item_id)
    session.commit()
