"""Staff accounts: creation, password checks (argon2id) and sign-in with lockout."""

from __future__ import annotations

import contextlib
import hashlib
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from redis import Redis
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.services import audit, rate_limits
from app.services.errors import ServiceError
from models import School, Staff, StaffRole

_hasher = PasswordHasher()
MIN_PASSWORD_LENGTH = 10


class StaffPasswordTooWeakError(ValueError):
    pass


def set_password(staff: Staff, password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise StaffPasswordTooWeakError(f"password must be at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise StaffPasswordTooWeakError(f"password must be at most {MAX_PASSWORD_LENGTH} characters")
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


# --- Sign-in with lockout, and the account commands (`flask staff ...`) -------------------------

USERNAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
MAX_PASSWORD_LENGTH = 1024  # argon2 takes any length; a bound keeps a hostile post cheap


class StaffUsernameInvalidError(ServiceError):
    message = "用户名只能使用小写字母、数字和 . _ -，2–64 个字符，以字母或数字开头"


class StaffExistsError(ServiceError):
    message = "该用户名已存在"


class StaffNotFoundError(ServiceError):
    message = "没有这个员工账号"


class StaffSchoolUnknownError(ServiceError):
    message = "学校代码不存在"


class StaffSchoolsError(ServiceError):
    message = "审核员必须至少指定一所学校（--school）；管理员可查看全部学校，不需指定"


def normalize_username(raw: str) -> str:
    """How a typed username is looked up: trimmed and lower-case (accounts are created lower-case)."""
    return raw.strip().lower()[:200]


def create(
    session: Session,
    username: str,
    password: str,
    role: StaffRole,
    school_codes: Sequence[str] = (),
) -> Staff:
    """A new account; reviewers need at least one school, admins take none. Commits."""
    if not USERNAME_PATTERN.match(username):
        raise StaffUsernameInvalidError
    if session.scalar(select(Staff.id).where(Staff.username == username)) is not None:
        raise StaffExistsError(f"用户名 {username} 已存在")
    codes = list(dict.fromkeys(school_codes))
    if (role == StaffRole.REVIEWER) != bool(codes):
        raise StaffSchoolsError
    found = {s.code: s for s in session.scalars(select(School).where(School.code.in_(codes)))}
    missing = [code for code in codes if code not in found]
    if missing:
        raise StaffSchoolUnknownError(f"学校代码不存在：{', '.join(missing)}")
    staff = Staff(username=username, role=role, is_active=True, schools=[found[c] for c in codes])
    set_password(staff, password)
    session.add(staff)
    session.flush()
    audit.record(session, None, "staff_create", "staff", staff.id, role=str(role), schools=codes)
    session.commit()
    return staff


def get_by_username(session: Session, username: str) -> Staff:
    staff = session.scalar(select(Staff).where(Staff.username == normalize_username(username)))
    if staff is None:
        raise StaffNotFoundError(f"没有员工账号 {username}")
    return staff


def list_all(session: Session) -> list[Staff]:
    return list(session.scalars(select(Staff).order_by(Staff.username)))


def change_password(session: Session, r: Redis, username: str, password: str) -> Staff:
    """New password (sessions signed in with the old one end); lifts the name's lockout. Commits."""
    staff = get_by_username(session, username)
    set_password(staff, password)
    audit.record(session, None, "staff_password", "staff", staff.id)
    session.commit()
    r.delete(lockout_keys(staff.username, "")[0])
    return staff


def deactivate(session: Session, username: str) -> Staff:
    """The account can no longer sign in; its open sessions end at their next request. Commits."""
    staff = get_by_username(session, username)
    staff.is_active = False
    audit.record(session, None, "staff_deactivate", "staff", staff.id)
    session.commit()
    return staff


@dataclass(frozen=True)
class LockoutPolicy:
    threshold: int  # attempts per username per window
    ip_threshold: int  # attempts per client address per window
    window_seconds: int


class LoginOutcome(StrEnum):
    OK = "ok"
    BAD_CREDENTIALS = "bad_credentials"
    LOCKED = "locked"
    INACTIVE = "inactive"


@dataclass(frozen=True)
class LoginResult:
    outcome: LoginOutcome
    staff: Staff | None = None
    retry_after_seconds: int = 0  # LOCKED: when the window ends


def lockout_keys(username: str, client_ip: str) -> tuple[str, str]:
    """The Redis counters of a (normalised) username and of a client address."""
    name = hashlib.sha256(username.encode()).hexdigest()[:32]  # bounded, whatever was typed
    return f"staff:login:user:{name}", f"staff:login:ip:{client_ip}"


@cache
def _dummy_hash() -> str:
    return _hasher.hash(secrets.token_urlsafe(16))


def authenticate(
    session: Session,
    r: Redis,
    username: str,
    password: str,
    client_ip: str,
    policy: LockoutPolicy,
) -> LoginResult:
    """Check a sign-in, counting failures per username and per address in Redis.

    While either counter is past its threshold nothing is looked up or verified. Unknown names cost
    one argon2 verification like known ones (no timing hint that a name exists). A correct password
    does not count as a failure: the username's counter is cleared and the address's attempt given
    back (clearing the whole address counter would let any valid account reset it between guesses
    at others). Every outcome but a repeated locked refusal is audited; commits.
    """
    name = normalize_username(username)
    user_key, ip_key = lockout_keys(name, client_ip)
    (user_n, user_ttl), (ip_n, ip_ttl) = rate_limits.reserve(r, (user_key, ip_key), policy.window_seconds)
    over = [
        (n, ttl, limit)
        for n, ttl, limit in ((user_n, user_ttl, policy.threshold), (ip_n, ip_ttl, policy.ip_threshold))
        if n > limit
    ]
    if over:
        if any(n == limit + 1 for n, _, limit in over):  # the first refusal of this lock
            staff_id = session.scalar(select(Staff.id).where(Staff.username == name))
            audit.record(session, staff_id, "login_failed", "staff", staff_id, reason="locked", ip=client_ip)
            session.commit()
        return LoginResult(LoginOutcome.LOCKED, retry_after_seconds=max(ttl for _, ttl, _ in over))

    password = password[:MAX_PASSWORD_LENGTH]
    staff = session.scalar(select(Staff).where(Staff.username == name))
    if staff is None:
        with contextlib.suppress(VerificationError, InvalidHashError):
            _hasher.verify(_dummy_hash(), password)
        audit.record(session, None, "login_failed", reason="unknown_user", ip=client_ip)
        session.commit()
        return LoginResult(LoginOutcome.BAD_CREDENTIALS)
    if not check_password(staff, password):
        audit.record(
            session, staff.id, "login_failed", "staff", staff.id, reason="bad_password", ip=client_ip
        )
        session.commit()
        return LoginResult(LoginOutcome.BAD_CREDENTIALS)

    pipe = r.pipeline(transaction=True)
    pipe.delete(user_key)
    pipe.decr(ip_key)
    pipe.execute()
    if not staff.is_active:
        audit.record(session, staff.id, "login_failed", "staff", staff.id, reason="inactive", ip=client_ip)
        session.commit()
        return LoginResult(LoginOutcome.INACTIVE)
    if _hasher.check_needs_rehash(staff.password_hash):
        staff.password_hash = _hasher.hash(password)  # parameters raised since it was set
    audit.record(session, staff.id, "login", "staff", staff.id, ip=client_ip)
    session.commit()
    return LoginResult(LoginOutcome.OK, staff=staff)
