"""Schools and their batches (学历/级/届): where a student links to, and whose rules apply."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, utcnow

RECEIPT_TITLE = "学位证书照片审核回执单"
RECEIPT_NOTE = "领取学位证时出示本回执；工作人员扫码即可核验真伪。"


class School(Base):
    __tablename__ = "schools"

    id: Mapped[int] = mapped_column(primary_key=True)
    # The Ministry of Education's institution code where there is one (e.g. 10542); used in QR scenes.
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    province: Mapped[str] = mapped_column(String(20))
    city: Mapped[str] = mapped_column(String(30))
    # Shown to students on 联系客服 and the status page; from the schools CSV (docs/schools-csv.md).
    contact_phone: Mapped[str | None] = mapped_column(String(40))
    contact_email: Mapped[str | None] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    batches: Mapped[list[Batch]] = relationship(back_populates="school", order_by="Batch.opens_at")


class Batch(Base):
    __tablename__ = "batches"
    __table_args__ = (UniqueConstraint("school_id", "name", name="uq_batches_school_id_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    school_id: Mapped[int] = mapped_column(ForeignKey("schools.id", ondelete="CASCADE"), index=True)
    # As students see it, e.g. 「成人教育 2022 年上学位申请」.
    name: Mapped[str] = mapped_column(String(100))
    # 成人教育 / 自学考试 / 网络教育
    education: Mapped[str] = mapped_column(String(20))
    opens_at: Mapped[datetime]
    closes_at: Mapped[datetime]
    # Money is integer fen end to end.
    fee_fen: Mapped[int]
    review_days_min: Mapped[int] = mapped_column(default=7)
    review_days_max: Mapped[int] = mapped_column(default=10)
    # media.spec.PhotoSpec as JSON; validated on the way in by the schools service.
    photo_spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    # The printed 审核回执单: its title and the line under it, which say what the receipt is for (a
    # 学位证 photo batch and a 新生入学 photo batch are shown at different counters).
    receipt_title: Mapped[str] = mapped_column(
        String(60), default=RECEIPT_TITLE, server_default=RECEIPT_TITLE
    )
    receipt_note: Mapped[str] = mapped_column(String(200), default=RECEIPT_NOTE, server_default=RECEIPT_NOTE)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    school: Mapped[School] = relationship(back_populates="batches")

    def is_open(self, at: datetime) -> bool:
        return self.opens_at <= at < self.closes_at
