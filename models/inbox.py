"""客服留言: what students write that no handler understands, and the staff's answers to it.

One row per message, both ways, keyed by the student's openid (a sender the service has not recorded
as a user yet can still leave a message). A conversation is all the rows of one openid.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, utcnow


class InboxDirection(StrEnum):
    IN = "in"  # from the student
    OUT = "out"  # a staff member's answer


class InboxDelivery(StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    FAILED = "failed"


class InboxMessage(Base):
    __tablename__ = "inbox_messages"
    __table_args__ = (Index("ix_inbox_messages_openid_id", "openid", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    openid: Mapped[str] = mapped_column(String(64))
    direction: Mapped[InboxDirection] = mapped_column(String(8))
    text: Mapped[str] = mapped_column(Text)
    # The school the student was linked to when writing (None: not linked): whose staff may answer.
    school_id: Mapped[int | None] = mapped_column(ForeignKey("schools.id", ondelete="SET NULL"), index=True)
    # WeChat's MsgId of a student's message: a replayed post is not recorded twice.
    wechat_msg_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    # A student's message: when a staff member answered the conversation after it.
    answered_at: Mapped[datetime | None]
    # An answer: who wrote it, and whether WeChat took it.
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id", ondelete="SET NULL"))
    delivery: Mapped[InboxDelivery | None] = mapped_column(String(16))
    delivery_error: Mapped[str | None] = mapped_column(String(200))
