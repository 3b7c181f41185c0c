"""SQLAlchemy models, one module per aggregate."""

from models.base import Base, utcnow
from models.outbox import OutboxItem, OutboxStatus
from models.user import User

__all__ = ["Base", "OutboxItem", "OutboxStatus", "User", "utcnow"]
