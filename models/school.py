"""Schools and their batches (学历/级/届): where a student links to, and whose rules apply."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, Text, UniqueConstraint, false, true
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, utcnow

RECEIPT_TITLE = "学位证书照片审核回执单"
RECEIPT_NOTE = "领取学位证时出示本回执；工作人员扫码即可核验真伪。"


class Flow(StrEnum):
    """The order a batch's steps run in (docs/workflows.md)."""

    # Pay, then the identity check, then review (湖南师范大学: 技术服务费 2 元/次).
    PAY_FIRST = "pay_first"
    # Review first; only approved students pay, within the pay window (武汉轻工大学, 新疆自考).
    REVIEW_FIRST = "review_first"
    # No fee and never an order (西北工业大学, 重庆科技学院: 不收取任何费用).
    FREE = "free"


class LockOn(StrEnum):
    """When the student's identity and school link freeze for good."""

    PAY = "pay"
    APPROVE = "approve"
    # The student's own final confirmation after approval (湖南师范大学: 点击确认后，无法再修改信息).
    CONFIRM = "confirm"


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
    # --- the batch's workflow (docs/workflows.md) ---
    flow: Mapped[Flow] = mapped_column(
        String(16), default=Flow.PAY_FIRST, server_default=Flow.PAY_FIRST.value
    )
    # 人口库核验: after payment for pay_first, at submission otherwise.
    verify_identity: Mapped[bool] = mapped_column(default=True, server_default=true())
    # review_first only: when approved students may pay (武汉轻工大学: 缴费时间为…); unpaid at the
    # close → void.
    pay_opens_at: Mapped[datetime | None]
    pay_closes_at: Mapped[datetime | None]
    lock_on: Mapped[LockOn] = mapped_column(String(8), default=LockOn.PAY, server_default=LockOn.PAY.value)
    # Whether each attempt pays (湖南师范大学: 2 元/次) or one payment covers the batch (a resubmission
    # after 驳回 then costs nothing more).
    fee_per_attempt: Mapped[bool] = mapped_column(default=True, server_default=true())
    # 须知: shown before the student starts, acknowledged once per link.
    notice: Mapped[str | None] = mapped_column(Text)
    # 承诺: a checkbox when the data becomes final (at submission, or at the confirmation where
    # lock_on is confirm); with `signature` also a signature drawn on the phone.
    pledge: Mapped[str | None] = mapped_column(Text)
    signature: Mapped[bool] = mapped_column(default=False, server_default=false())
    # What to do after 通过 (重庆科技学院: 邮寄纸质照片…), pushed with the result and on the status page.
    after_approval: Mapped[str | None] = mapped_column(Text)
    # The sign-up form and document slots (app/services/batch_forms.py Definition as JSON); None: the
    # batch asks for the photo only. The two flags let the checklist's one query skip the JSON.
    form: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    has_form: Mapped[bool] = mapped_column(default=False, server_default=false())
    has_documents: Mapped[bool] = mapped_column(default=False, server_default=false())
    # --- exam sign-up (models/exam.py, docs/exams.md) ---
    # Whether an approved candidate chooses site, major and courses (报考) and pays their sum
    # (新疆自考); without it a batch with a catalogue seats every paid candidate for all its courses
    # at the batch's fee (武汉轻工大学).
    exam_selection: Mapped[bool] = mapped_column(default=False, server_default=false())
    # Candidates per exam room when seats are assigned.
    exam_room_size: Mapped[int | None]
    # When the 准考证 can be opened and printed (武汉轻工大学: 11月1日至4日), its 考生须知 and 承诺书.
    ticket_opens_at: Mapped[datetime | None]
    ticket_closes_at: Mapped[datetime | None]
    ticket_notice: Mapped[str | None] = mapped_column(Text)
    ticket_pledge: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    school: Mapped[School] = relationship(back_populates="batches")

    def is_open(self, at: datetime) -> bool:
        """Whether sign-up is open: submissions (and resubmissions after 驳回) are taken."""
        return self.opens_at <= at < self.closes_at

    def pay_is_open(self, at: datetime) -> bool:
        """Whether an order may be paid now: the pay window for review_first, sign-up otherwise."""
        if self.flow == Flow.REVIEW_FIRST:
            if self.pay_opens_at is None or self.pay_closes_at is None:
                return False
            return self.pay_opens_at <= at < self.pay_closes_at
        return self.is_open(at)

    @property
    def takes_fee(self) -> bool:
        return self.flow != Flow.FREE
