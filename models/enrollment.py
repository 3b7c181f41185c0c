"""A student's link to a school's batch (关联学校): whose photo spec, fee and dates apply."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, utcnow
from models.school import Batch
from models.user import User


class Enrollment(Base):
    __tablename__ = "enrollments"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"), index=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id", ondelete="RESTRICT"), index=True)
    active: Mapped[bool] = mapped_column(default=True)
    # Set when a paid submission is made under this enrollment: the school can no longer change.
    locked_at: Mapped[datetime | None]
    # When the student acknowledged the batch's 须知 (once per link; a batch without one needs none).
    notice_acked_at: Mapped[datetime | None]
    # The batch form's answers, personal values encrypted (app/services/applications.py), and when
    # the form and the documents were last complete: the checklist reads these, not the answers.
    form_answers: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    form_completed_at: Mapped[datetime | None]
    documents_completed_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None]
    # "changed" (linked to another batch) or "unbound" (取消微信绑定)
    end_reason: Mapped[str | None] = mapped_column(String(16))

    user: Mapped[User] = relationship()
    batch: Mapped[Batch] = relationship()


Index(
    "uq_enrollments_active_user",
    Enrollment.user_id,
    unique=True,
    postgresql_where=text("active"),
    sqlite_where=text("active"),
)
