"""SQLAlchemy models, one module per aggregate."""

from models.base import Base, utcnow
from models.enrollment import Enrollment
from models.identity import Identity
from models.outbox import OutboxItem, OutboxStatus
from models.school import Batch, School
from models.staff import Staff, StaffRole, staff_schools
from models.user import User

__all__ = [
    "Base",
    "Batch",
    "Enrollment",
    "Identity",
    "OutboxItem",
    "OutboxStatus",
    "School",
    "Staff",
    "StaffRole",
    "User",
    "staff_schools",
    "utcnow",
]
