"""A file a student uploaded into one of their batch's document slots (身份证正面, 毕业证, 论文 …).

Only what media.documents' check returned is stored (images re-encoded, metadata stripped), in the
photo storage under a content-addressed key; the uploaded file name is not kept (it often holds the
student's name).

`reading` is what the ID card reading found on a file uploaded into an id_card_front/id_card_back slot
(app/services/idcard_fill.py): every value read is a Fernet token like the other personal data; the
warnings, the uncertain keys and the form fields it filled are kept in clear (no personal data).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, utcnow


class Document(Base):
    __tablename__ = "documents"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id", ondelete="RESTRICT"))
    slot: Mapped[str] = mapped_column(String(40))
    storage_key: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(8))  # jpg png pdf doc docx ppt pptx: the real type
    mime_type: Mapped[str] = mapped_column(String(100))
    bytes: Mapped[int]
    width: Mapped[int | None]
    height: Mapped[int | None]
    pages: Mapped[int | None]
    reading: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


Index("ix_documents_user_batch", Document.user_id, Document.batch_id)
