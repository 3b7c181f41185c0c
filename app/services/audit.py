"""The audit log: who did what to which record (models.staff.AuditEntry).

`record` only adds the row: it belongs to the caller's unit of work and commits with the change it
describes, so a decision is never kept without its entry (or the other way round).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from models import AuditEntry

# Keys that must never reach the log, whatever a caller passes.
_FORBIDDEN = frozenset({"password", "password_hash", "id_number", "token"})


def record(
    session: Session,
    staff_id: int | None,
    action: str,
    target_type: str | None = None,
    target_id: int | None = None,
    **detail: Any,
) -> AuditEntry:
    """Add an entry (no commit). `detail` holds ids, masked values and reasons, never raw PII."""
    leaked = _FORBIDDEN.intersection(detail)
    if leaked:
        raise ValueError(f"audit detail must not carry {', '.join(sorted(leaked))}")
    entry = AuditEntry(
        staff_id=staff_id,
        action=action,
        target_type=target_type,
        target_id=target_id,
        detail=detail,
    )
    session.add(entry)
    return entry
