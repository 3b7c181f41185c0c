"""A student's real-name identity bound to their WeChat account.

A row is one binding. Unbinding (取消微信绑定) or modifying (修改) ends the row and keeps it for
audit; partial unique indexes allow at most one *active* binding per document and per user.
The document number and the name are stored only encrypted (app/services/pii.py); `number_hash`
(an HMAC) answers "is this document bound already?" without decrypting anything; `name_hash` (an
HMAC of the whole normalised name) lets staff find a student by name the same way.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, utcnow
from models.user import User


class Identity(Base):
    __tablename__ = "identities"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"), index=True)
    # app.services.id_documents.DocumentType
    doc_type: Mapped[str] = mapped_column(String(32))
    number_hash: Mapped[str] = mapped_column(String(64))
    number_enc: Mapped[str] = mapped_column(Text)
    name_enc: Mapped[str] = mapped_column(Text)
    # NULL only on rows bound before names were searchable, until `flask pii backfill-name-hashes`.
    name_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    active: Mapped[bool] = mapped_column(default=True)
    # Set when a paid submission uses this identity: from then on it cannot be modified or unbound.
    locked_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None]
    # "unbound" (取消微信绑定) or "modified" (replaced by a corrected row)
    end_reason: Mapped[str | None] = mapped_column(String(16))

    user: Mapped[User] = relationship()


# The database itself guarantees the binding rules, also under concurrent requests.
Index(
    "uq_identities_active_document",
    Identity.doc_type,
    Identity.number_hash,
    unique=True,
    postgresql_where=text("active"),
    sqlite_where=text("active"),
)
Index(
    "uq_identities_active_user",
    Identity.user_id,
    unique=True,
    postgresql_where=text("active"),
    sqlite_where=text("active"),
)
# Searching by number covers ended identities too (decided attempts keep theirs), which the partial
# unique index above does not hold.
Index("ix_identities_number_hash", Identity.number_hash)
