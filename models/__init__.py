"""SQLAlchemy models, one module per aggregate."""

from models.base import Base, utcnow
from models.document import Document
from models.enrollment import Enrollment
from models.exam import ExamCourse, ExamMajor, ExamRegistration, ExamRegistrationCourse, ExamSeat, ExamSite
from models.identity import Identity
from models.inbox import InboxDelivery, InboxDirection, InboxMessage
from models.outbox import OutboxItem, OutboxStatus
from models.photo import Photo
from models.school import Batch, Flow, LockOn, School
from models.staff import AuditEntry, Staff, StaffRole, staff_schools
from models.submission import (
    STATUS_LABELS,
    OrderStatus,
    PaymentEvent,
    PaymentOrder,
    Refund,
    RefundStatus,
    Submission,
    SubmissionStatus,
)
from models.user import User

__all__ = [
    "STATUS_LABELS",
    "AuditEntry",
    "Base",
    "Batch",
    "Document",
    "Enrollment",
    "ExamCourse",
    "ExamMajor",
    "ExamRegistration",
    "ExamRegistrationCourse",
    "ExamSeat",
    "ExamSite",
    "Flow",
    "Identity",
    "InboxDelivery",
    "InboxDirection",
    "InboxMessage",
    "LockOn",
    "OrderStatus",
    "OutboxItem",
    "OutboxStatus",
    "PaymentEvent",
    "PaymentOrder",
    "Photo",
    "Refund",
    "RefundStatus",
    "School",
    "Staff",
    "StaffRole",
    "Submission",
    "SubmissionStatus",
    "User",
    "staff_schools",
    "utcnow",
]
