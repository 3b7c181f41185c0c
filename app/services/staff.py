"""Staff accounts: creation and password checks (argon2id)."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import School, Staff, StaffRole

_hasher = PasswordHasher()
MIN_PASSWORD_LENGTH = 10


class StaffPasswordTooWeakError(ValueError):
    pass


def set_password(staff: Staff, password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise StaffPasswordTooWeakError(f"password must be at least {MIN_PASSWORD_LENGTH} characters")
    staff.password_hash = _hasher.hash(password)


def ensure(
    session: Session,
    username: str,
    password: str,
    role: StaffRole,
    schools: list[School] | None = None,
) -> Staff:
    """Create the account, or reset its password, role and schools; commits."""
    staff = session.scalar(select(Staff).where(Staff.username == username))
    if staff is None:
        staff = Staff(username=username, role=role)
        session.add(staff)
    staff.role = role
    staff.is_active = True
    staff.schools = list(schools or [])
    set_password(staff, password)
    session.commit()
    return staff


def check_password(staff: Staff, password: str) -> bool:
    try:
        return _hasher.verify(staff.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
