"""Exam sign-up (报考): a batch's catalogue of sites, majors and courses, each candidate's choice of
courses, and the seats and admission tickets (准考证) assigned before the exam.

新疆自考: after the registration is approved the candidate chooses 地州 → 县市 (the site), a major and at
least one course, and pays per course; 武汉轻工大学: one exam, a seat per paid candidate, a ticket printed in
its window. The catalogue is imported per batch (docs/exams.md); money is integer fen as everywhere.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, utcnow
from models.school import Batch
from models.submission import Submission
from models.user import User


class ExamSite(Base):
    """A 考点 in a 县市 of a 地州, with how many candidates it seats."""

    __tablename__ = "exam_sites"
    __table_args__ = (UniqueConstraint("batch_id", "code", name="uq_exam_sites_batch_id_code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id", ondelete="CASCADE"), index=True)
    district: Mapped[str] = mapped_column(String(40))  # 地州 (考区)
    county: Mapped[str] = mapped_column(String(40))  # 县市
    code: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(100))
    address: Mapped[str] = mapped_column(String(200))
    capacity: Mapped[int]

    batch: Mapped[Batch] = relationship()


class ExamMajor(Base):
    """A 专业 with its 毕业标准; a special one (监所管理, 公安管理, 护理学) needs approved materials."""

    __tablename__ = "exam_majors"
    __table_args__ = (UniqueConstraint("batch_id", "code", name="uq_exam_majors_batch_id_code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id", ondelete="CASCADE"), index=True)
    code: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(100))
    standard: Mapped[str | None] = mapped_column(Text)  # 毕业标准, shown on 查看所选专业毕业标准
    special: Mapped[bool] = mapped_column(default=False, server_default=false())

    batch: Mapped[Batch] = relationship()


class ExamCourse(Base):
    """A course sat in this batch: of one major, or public (major_id None) and open to every major."""

    __tablename__ = "exam_courses"
    __table_args__ = (UniqueConstraint("batch_id", "code", name="uq_exam_courses_batch_id_code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id", ondelete="CASCADE"), index=True)
    major_id: Mapped[int | None] = mapped_column(ForeignKey("exam_majors.id", ondelete="CASCADE"), index=True)
    code: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(100))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    fee_fen: Mapped[int]
    # Cancelled by the exam office (`flask exams cancel-course`): no longer chosen, its fee refunded.
    cancelled_at: Mapped[datetime | None]
    cancel_reason: Mapped[str | None] = mapped_column(String(80))

    batch: Mapped[Batch] = relationship()
    major: Mapped[ExamMajor | None] = relationship()


class ExamRegistration(Base):
    """One candidate's 报考 in a batch: the site, the major and the courses (rows below).

    Changeable until an order exists for it (缴费订单生成后不能增、减或修改已填报课程): `locked_at` is set
    in the same transaction as the order.
    """

    __tablename__ = "exam_registrations"
    __table_args__ = (UniqueConstraint("user_id", "batch_id", name="uq_exam_registrations_user_id_batch_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id", ondelete="RESTRICT"), index=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("exam_sites.id", ondelete="RESTRICT"), index=True)
    major_id: Mapped[int | None] = mapped_column(ForeignKey("exam_majors.id", ondelete="RESTRICT"))
    # The approved attempt this registration is paid through (its orders carry the courses' total).
    submission_id: Mapped[int | None] = mapped_column(ForeignKey("submissions.id", ondelete="RESTRICT"))
    # When the candidate last ticked 本人担保以上信息真实准确 (every change of the choice asks again).
    pledged_at: Mapped[datetime | None]
    locked_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    user: Mapped[User] = relationship()
    batch: Mapped[Batch] = relationship()
    site: Mapped[ExamSite] = relationship()
    major: Mapped[ExamMajor | None] = relationship()
    submission: Mapped[Submission | None] = relationship()
    courses: Mapped[list[ExamRegistrationCourse]] = relationship(
        back_populates="registration", cascade="all, delete-orphan", order_by="ExamRegistrationCourse.id"
    )


# Seats left per site (the catalogue's every request counts a batch's registrations by site): read
# from the index alone.
Index("ix_exam_registrations_batch_id_site_id", ExamRegistration.batch_id, ExamRegistration.site_id)


class ExamRegistrationCourse(Base):
    """A chosen course, at the fee it had when chosen; refunded alone if the exam office cancels it."""

    __tablename__ = "exam_registration_courses"
    __table_args__ = (
        UniqueConstraint("registration_id", "course_id", name="uq_exam_registration_courses_course"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    registration_id: Mapped[int] = mapped_column(ForeignKey("exam_registrations.id", ondelete="CASCADE"))
    course_id: Mapped[int] = mapped_column(ForeignKey("exam_courses.id", ondelete="RESTRICT"), index=True)
    fee_fen: Mapped[int]
    # Set when the course is cancelled after payment; the refund row carries the money's progress.
    cancelled_at: Mapped[datetime | None]
    refund_id: Mapped[int | None] = mapped_column(ForeignKey("refunds.id", ondelete="RESTRICT"))

    registration: Mapped[ExamRegistration] = relationship(back_populates="courses")
    course: Mapped[ExamCourse] = relationship()


class ExamSeat(Base):
    """A paid candidate's room and seat at a site, and the ticket number printed on the 准考证.

    Assigned by `flask exams assign-seats` (or imported); a second run keeps every row already here.
    """

    __tablename__ = "exam_seats"
    __table_args__ = (
        UniqueConstraint("batch_id", "user_id", name="uq_exam_seats_batch_id_user_id"),
        UniqueConstraint("site_id", "room_no", "seat_no", name="uq_exam_seats_site_room_seat"),
        UniqueConstraint("batch_id", "ticket_no", name="uq_exam_seats_batch_id_ticket_no"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id", ondelete="RESTRICT"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id", ondelete="RESTRICT"))
    site_id: Mapped[int] = mapped_column(ForeignKey("exam_sites.id", ondelete="RESTRICT"))
    room_no: Mapped[int]
    seat_no: Mapped[int]
    ticket_no: Mapped[str] = mapped_column(String(32))
    checked_in_at: Mapped[datetime | None]
    checked_in_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    batch: Mapped[Batch] = relationship()
    user: Mapped[User] = relationship()
    submission: Mapped[Submission] = relationship()
    site: Mapped[ExamSite] = relationship()


Index("ix_exam_seats_site_room", ExamSeat.site_id, ExamSeat.room_no)
