"""One paid attempt (Submission), its payment orders, refunds, and every payment event received.

A new attempt is a new Submission with its own order: after 驳回 or 身份核验失败 the student fixes
and pays again (湖南师范大学: 技术服务费 2 元/次). Money is integer fen. Events and refunds are kept for
reconciliation against WeChat Pay's trade bill.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, utcnow
from models.identity import Identity
from models.photo import Photo
from models.school import Batch
from models.user import User


class SubmissionStatus(StrEnum):
    AWAITING_PAYMENT = "awaiting_payment"
    VERIFYING = "verifying"
    PENDING_REVIEW = "pending_review"
    IN_REVIEW = "in_review"
    APPROVED = "approved"
    RETURNED = "returned"
    REFUSED = "refused"
    CANCELLED = "cancelled"
    VERIFY_FAILED = "verify_failed"
    REFUNDED = "refunded"
    # review_first: approved, the fee is due within the batch's pay window.
    APPROVED_UNPAID = "approved_unpaid"
    # review_first: the pay window closed before payment (逾期未缴费，报名无效). Final.
    VOID = "void"


# The labels students see.
STATUS_LABELS: dict[SubmissionStatus, str] = {
    SubmissionStatus.AWAITING_PAYMENT: "待缴费",
    SubmissionStatus.VERIFYING: "核验中",
    SubmissionStatus.PENDING_REVIEW: "未审核",
    SubmissionStatus.IN_REVIEW: "审核中",
    SubmissionStatus.APPROVED: "通过",
    SubmissionStatus.RETURNED: "驳回",
    SubmissionStatus.REFUSED: "不通过",
    SubmissionStatus.CANCELLED: "已取消",
    SubmissionStatus.VERIFY_FAILED: "身份核验失败",
    SubmissionStatus.REFUNDED: "已退款",
    SubmissionStatus.APPROVED_UNPAID: "审核通过，待缴费",
    SubmissionStatus.VOID: "逾期未缴费，报名无效",
}

# An attempt in one of these states blocks a new one (one attempt in flight per student).
IN_FLIGHT = (
    SubmissionStatus.AWAITING_PAYMENT,
    SubmissionStatus.VERIFYING,
    SubmissionStatus.PENDING_REVIEW,
    SubmissionStatus.IN_REVIEW,
    SubmissionStatus.APPROVED_UNPAID,
)
# An attempt in one of these states is being checked, reviewed or awaits its fee after approval:
# the identity and school link it was made with cannot change meanwhile, whatever the batch's
# lock point (an unpaid pay_first attempt does not hold them: the student may still correct a typo).
HOLDS_DATA = (
    SubmissionStatus.VERIFYING,
    SubmissionStatus.PENDING_REVIEW,
    SubmissionStatus.IN_REVIEW,
    SubmissionStatus.APPROVED_UNPAID,
)
_IN_FLIGHT_SQL = "status IN ({})".format(", ".join(f"'{s.value}'" for s in IN_FLIGHT))


class Submission(Base):
    __tablename__ = "submissions"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id", ondelete="RESTRICT"))
    photo_id: Mapped[int] = mapped_column(ForeignKey("photos.id", ondelete="RESTRICT"))
    identity_id: Mapped[int] = mapped_column(ForeignKey("identities.id", ondelete="RESTRICT"))
    status: Mapped[SubmissionStatus] = mapped_column(String(24), default=SubmissionStatus.AWAITING_PAYMENT)
    # Why it is where it is, for the student (verification failure, 驳回 reason).
    status_reason: Mapped[str | None] = mapped_column(Text)
    # An itemised 驳回: what the student must fix, [{"kind": "field"|"document"|"photo", "key", "label",
    # "reason"}] (app/services/returns.py); only those reopen. None or empty: everything reopens.
    rejected_items: Mapped[list[dict[str, str]] | None] = mapped_column(JSON)
    # The provider's answer: {"result", "reason", "provider", "reference", "at"}
    verification: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    verify_attempts: Mapped[int] = mapped_column(default=0)
    # Review: a claim marks the attempt 审核中 for one reviewer until it expires.
    claimed_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id", ondelete="SET NULL"))
    claim_expires_at: Mapped[datetime | None]
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    paid_at: Mapped[datetime | None]
    verified_at: Mapped[datetime | None]
    decided_at: Mapped[datetime | None]
    # The 回执编号 printed on the receipt once it is first shown: random, so nobody can guess another
    # student's; unique, so staff find the attempt from the printed number.
    receipt_no: Mapped[str | None] = mapped_column(String(24), unique=True)
    # The batch's 承诺 ticked (and, where the batch asks, signed) by the student; the signature is a
    # PNG in the media storage under this key, printed on the receipt.
    pledged_at: Mapped[datetime | None]
    signature_key: Mapped[str | None] = mapped_column(String(200))
    # lock_on=confirm: the student's final confirmation after 通过, which freezes the data.
    confirmed_at: Mapped[datetime | None]
    # fee_per_attempt=no: the earlier paid attempt in the same batch whose fee covers this one.
    fee_paid_by_id: Mapped[int | None] = mapped_column(ForeignKey("submissions.id", ondelete="RESTRICT"))

    user: Mapped[User] = relationship()
    batch: Mapped[Batch] = relationship()
    photo: Mapped[Photo] = relationship()
    identity: Mapped[Identity] = relationship()
    orders: Mapped[list[PaymentOrder]] = relationship(back_populates="submission", order_by="PaymentOrder.id")


# One attempt in flight per student, guaranteed by the database under concurrent requests.
Index(
    "uq_submissions_in_flight_user",
    Submission.user_id,
    unique=True,
    postgresql_where=text(_IN_FLIGHT_SQL),
    sqlite_where=text(_IN_FLIGHT_SQL),
)
# The review queue (oldest first, keyset pagination) and a student's history.
Index("ix_submissions_status_created_at", Submission.status, Submission.created_at, Submission.id)
Index("ix_submissions_user_id_created_at", Submission.user_id, Submission.created_at)
# A reviewer's queue: their schools' batches, oldest first (a rare school stays as fast as a common one).
Index(
    "ix_submissions_batch_id_status_created_at",
    Submission.batch_id,
    Submission.status,
    Submission.created_at,
    Submission.id,
)
# The staff dashboard (bench/review_queue.py, a million rows): the last 30 days' payments and
# decisions are read by range instead of scanning the table, and the counts by state per batch
# from a small index (PostgreSQL deduplicates its equal keys: ~7 MB for a million rows against the
# queue's 67 MB above; counting all of them takes ~50 ms instead of 100-150 ms).
Index("ix_submissions_paid_at", Submission.paid_at)
Index("ix_submissions_decided_at", Submission.decided_at)
Index("ix_submissions_batch_id_status", Submission.batch_id, Submission.status)


class OrderStatus(StrEnum):
    OPEN = "open"  # created at WeChat Pay, not paid yet
    PAID = "paid"
    CLOSED = "closed"  # expired or replaced before payment
    REFUNDED = "refunded"


class PaymentOrder(Base):
    __tablename__ = "payment_orders"

    id: Mapped[int] = mapped_column(primary_key=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id", ondelete="RESTRICT"), index=True)
    out_trade_no: Mapped[str] = mapped_column(String(32), unique=True)
    # "jsapi" (inside WeChat) or "native" (a QR code for a browser outside WeChat)
    channel: Mapped[str] = mapped_column(String(8))
    amount_fen: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    status: Mapped[OrderStatus] = mapped_column(String(16), default=OrderStatus.OPEN)
    prepay_id: Mapped[str | None] = mapped_column(String(64))
    code_url: Mapped[str | None] = mapped_column(String(256))
    expires_at: Mapped[datetime]
    transaction_id: Mapped[str | None] = mapped_column(String(32), unique=True)
    payer_openid: Mapped[str | None] = mapped_column(String(64))
    paid_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    submission: Mapped[Submission] = relationship(back_populates="orders")


class PaymentEvent(Base):
    """Every notification or query answer about an order, applied or not (reconciliation, audit)."""

    __tablename__ = "payment_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    out_trade_no: Mapped[str] = mapped_column(String(32), index=True)
    # "notify", "query", "refund_notify"
    source: Mapped[str] = mapped_column(String(16))
    # WeChat Pay's notification id, when it came as a notification.
    event_id: Mapped[str | None] = mapped_column(String(64))
    event_type: Mapped[str | None] = mapped_column(String(32))
    trade_state: Mapped[str | None] = mapped_column(String(16))
    amount_fen: Mapped[int | None]
    currency: Mapped[str | None] = mapped_column(String(3))
    transaction_id: Mapped[str | None] = mapped_column(String(32))
    # "applied", "duplicate", "ignored" or "rejected: <why>"
    outcome: Mapped[str] = mapped_column(String(120))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class RefundStatus(StrEnum):
    REQUESTED = "requested"  # written with the decision, sent by the worker
    PROCESSING = "processing"  # WeChat Pay accepted it
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class Refund(Base):
    __tablename__ = "refunds"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("payment_orders.id", ondelete="RESTRICT"), index=True)
    out_refund_no: Mapped[str] = mapped_column(String(64), unique=True)
    amount_fen: Mapped[int]
    reason: Mapped[str] = mapped_column(String(80))
    status: Mapped[RefundStatus] = mapped_column(String(16), default=RefundStatus.REQUESTED)
    refund_id: Mapped[str | None] = mapped_column(String(64))
    # "system" (our fault: verification stayed down) or "staff:<id>"
    requested_by: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    succeeded_at: Mapped[datetime | None]

    order: Mapped[PaymentOrder] = relationship()
