"""Staff who review submissions (reviewers) or run the service (admins)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, ForeignKey, Index, String, Table
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, utcnow
from models.school import School


class StaffRole(StrEnum):
    REVIEWER = "reviewer"
    ADMIN = "admin"


# Which schools a reviewer may see; admins see all.
staff_schools = Table(
    "staff_schools",
    Base.metadata,
    Column("staff_id", ForeignKey("staff.id", ondelete="CASCADE"), primary_key=True),
    Column("school_id", ForeignKey("schools.id", ondelete="CASCADE"), primary_key=True),
)


class Staff(Base):
    __tablename__ = "staff"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    # argon2id, encoded with its parameters (argon2-cffi's PasswordHasher format).
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[StaffRole] = mapped_column(String(16), default=StaffRole.REVIEWER)
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    schools: Mapped[list[School]] = relationship(secondary=staff_schools)


class AuditEntry(Base):
    """Who did what to which record, when: every decision, export, claim and staff sign-in."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id", ondelete="SET NULL"))
    # e.g. "login", "login_failed", "claim", "approve", "return", "refuse", "export", "refund"
    action: Mapped[str] = mapped_column(String(32))
    target_type: Mapped[str | None] = mapped_column(String(32))
    target_id: Mapped[int | None]
    # Never raw personal data: ids, masked values, reasons.
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    at: Mapped[datetime] = mapped_column(default=utcnow)


Index("ix_audit_log_target", AuditEntry.target_type, AuditEntry.target_id)
Index("ix_audit_log_at", AuditEntry.at)
