"""A photo a student uploaded (H5 page or chat): both files, and what the automatic checks said.

The original is kept exactly as received (for staff to compare); the normalised file (cropped,
resized, compressed to the batch's spec, metadata stripped) is what a submission sends. Files live in
media storage under content-addressed keys (sha256 of the bytes), never in the database. A photo that
fails a check is kept too: the report tells the student what to fix, and a later upload of the same
picture is recognised by its perceptual hash.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, utcnow
from models.school import Batch
from models.user import User


class Photo(Base):
    __tablename__ = "photos"
    __table_args__ = (
        # The chat job's idempotency: one photo per WeChat message, however often the job runs.
        UniqueConstraint("user_id", "source_ref", name="uq_photos_user_id_source_ref"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    # The batch the student was linked to when uploading: its PhotoSpec is what was checked.
    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id", ondelete="RESTRICT"), index=True)
    # "h5" (the upload page) or "chat" (a picture sent to the account)
    source: Mapped[str] = mapped_column(String(8))
    # Where it came from, unique per user when set (e.g. "wechat-msg:<MsgId>").
    source_ref: Mapped[str | None] = mapped_column(String(64))

    original_key: Mapped[str] = mapped_column(String(128))
    original_sha256: Mapped[str] = mapped_column(String(64))
    original_bytes: Mapped[int]
    # As the browser or WeChat declared it; the pipeline sniffs the real type from the bytes.
    declared_type: Mapped[str | None] = mapped_column(String(100))
    original_filename: Mapped[str | None] = mapped_column(String(255))

    # None when the pipeline could not produce a normalised file (e.g. no face to crop around).
    normalized_key: Mapped[str | None] = mapped_column(String(128))
    normalized_bytes: Mapped[int | None]
    normalized_format: Mapped[str | None] = mapped_column(String(8))
    width: Mapped[int | None]
    height: Mapped[int | None]

    passed: Mapped[bool]
    # [{"name", "ok", "value", "limit", "message", "blocking"}], in the order the checks ran
    checks: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    # What auto-fix did, in Chinese ("已裁剪为 480×640", ...)
    fixes: Mapped[list[str]] = mapped_column(JSON)
    # {"x", "y", "w", "h", "left_eye", "right_eye"} in the normalised image's pixels
    face: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # 64-bit perceptual hash, 16 hex digits
    phash: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    user: Mapped[User] = relationship()
    batch: Mapped[Batch] = relationship()


# "The user's latest photos" (the upload page, the progress query, duplicate detection).
Index("ix_photos_user_id_created_at", Photo.user_id, Photo.created_at)
