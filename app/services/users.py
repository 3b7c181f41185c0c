"""Followers of the official account: follow, unfollow, QR scenes, and today's follower figures.

Each function is one unit of work that commits at most once. A message from a known follower writes
nothing: this is on the path of every WeChat message. A Redis mark (`follower_mark`: "this openid
has a following row"), set after the row is committed and cleared on unfollow, answers that case,
so the common message costs one Redis GET instead of BEGIN/SELECT/ROLLBACK on PostgreSQL — /wechat
reads it in the round trip that dedupes the message and calls `record_follower` only when it is
missing. A missing or failed mark only means asking the database.
"""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime

from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.services.localtime import BEIJING
from models import Submission, SubmissionStatus, User, utcnow

SCENE_MAX_LENGTH = 64  # WeChat's scene_str is 1-64 characters; the column is as wide
FOLLOWER_MARK_SECONDS = 24 * 3600


class UserNotOperatorError(Exception):
    """An operator-only action was asked for by someone who is not an operator."""


@dataclass(frozen=True, slots=True)
class SubscribeResult:
    user: User
    # First follow ever (the service did not know this openid before).
    is_new: bool


@dataclass(frozen=True, slots=True)
class TodayStats:
    day: str  # YYYY-MM-DD, Beijing time
    new_followers: int
    unfollows: int
    total_followers: int
    # Review figures: paid attempts and decisions since Beijing midnight, and the queue now.
    submissions: int = 0
    approved: int = 0
    returned: int = 0
    refused: int = 0
    waiting: int = 0


def get(session: Session, openid: str) -> User | None:
    return session.scalar(select(User).where(User.openid == openid))


def follower_mark(openid: str) -> str:
    """The Redis key saying "this openid has a following row" (see the module docstring)."""
    return f"users:follower:{openid}"


def record_follower(session: Session, cache: Redis, openid: str) -> None:
    """The sender of a message is a known follower afterwards, and marked so. For a caller that read
    the mark and found none (the /wechat endpoint reads it in the round trip that dedupes the message)."""
    get_or_create(session, openid)
    _set_mark(cache, openid)


def get_or_create(session: Session, openid: str) -> User:
    """The sender of a message. Only followers can write to an official account, so a user we do not
    know (followed before this service existed) is created as a follower, and one we believed gone is
    marked following again. A known follower costs one SELECT and no write.
    """
    user = get(session, openid)
    if user is not None and user.subscribed:
        return user
    if user is None:
        return _create(session, openid, subscribed_at=None)
    user.subscribed = True
    session.commit()
    return user


def subscribe(
    session: Session, openid: str, scene: str | None = None, *, cache: Redis | None = None
) -> SubscribeResult:
    """A follow event: create the user, or reactivate one who had unfollowed (their data was kept)."""
    now = utcnow()
    user = get(session, openid)
    if user is None:
        user = _create(session, openid, subscribed_at=now, scene=scene)
        result = SubscribeResult(user=user, is_new=True)
    else:
        user.subscribed = True
        user.subscribed_at = now
        if scene:
            user.last_scene = _clip_scene(scene)
        session.commit()
        result = SubscribeResult(user=user, is_new=False)
    if cache is not None:
        _set_mark(cache, openid)
    return result


def unsubscribe(session: Session, openid: str, *, cache: Redis | None = None) -> User | None:
    """An unfollow event: mark it and keep everything else (bindings and history stay for audit)."""
    if cache is not None:
        # Cleared first: a mark that outlived the row's change would hide it from the endpoint.
        _clear_mark(cache, openid)
    user = get(session, openid)
    if user is None:
        return None
    user.subscribed = False
    user.unsubscribed_at = utcnow()
    session.commit()
    return user


def record_scene(session: Session, openid: str, scene: str) -> User:
    """A follower scanned a parametric QR code (e.g. a school's, scene "school:<code>")."""
    user = get(session, openid)
    if user is None:
        user = _create(session, openid, subscribed_at=None, scene=scene)
        return user
    user.last_scene = _clip_scene(scene)
    user.subscribed = True
    session.commit()
    return user


def today_stats(session: Session, now: datetime | None = None) -> TodayStats:
    """Since Beijing midnight: follows, unfollows, paid attempts and decisions; followers and the
    review queue right now (two queries)."""
    local_now = (now or utcnow()).astimezone(BEIJING)
    start = local_now.replace(hour=0, minute=0, second=0, microsecond=0)
    row = session.execute(
        select(
            func.count(User.id).filter(User.subscribed_at >= start),
            func.count(User.id).filter(User.unsubscribed_at >= start),
            func.count(User.id).filter(User.subscribed.is_(True)),
        )
    ).one()
    decided_today = Submission.decided_at >= start
    review = session.execute(
        select(
            func.count(Submission.id).filter(Submission.paid_at >= start),
            func.count(Submission.id).filter(decided_today, Submission.status == SubmissionStatus.APPROVED),
            func.count(Submission.id).filter(decided_today, Submission.status == SubmissionStatus.RETURNED),
            func.count(Submission.id).filter(decided_today, Submission.status == SubmissionStatus.REFUSED),
            func.count(Submission.id).filter(
                Submission.status.in_((SubmissionStatus.PENDING_REVIEW, SubmissionStatus.IN_REVIEW))
            ),
        )
    ).one()
    return TodayStats(
        day=start.date().isoformat(),
        new_followers=int(row[0]),
        unfollows=int(row[1]),
        total_followers=int(row[2]),
        submissions=int(review[0]),
        approved=int(review[1]),
        returned=int(review[2]),
        refused=int(review[3]),
        waiting=int(review[4]),
    )


def operator_today_stats(session: Session, openid: str, now: datetime | None = None) -> TodayStats:
    """Today's figures for an operator; anyone else gets UserNotOperatorError."""
    user = get(session, openid)
    if user is None or not user.is_operator:
        raise UserNotOperatorError(openid)
    return today_stats(session, now)


def _set_mark(cache: Redis, openid: str) -> None:
    # A failure only loses the shortcut: the next message asks the database.
    with suppress(RedisError):
        cache.set(follower_mark(openid), "1", ex=FOLLOWER_MARK_SECONDS)


def _clear_mark(cache: Redis, openid: str) -> None:
    # A failure leaves the mark to expire; someone who unfollowed cannot send messages meanwhile.
    with suppress(RedisError):
        cache.delete(follower_mark(openid))


def _clip_scene(scene: str) -> str:
    return scene[:SCENE_MAX_LENGTH]


def _create(
    session: Session, openid: str, *, subscribed_at: datetime | None, scene: str | None = None
) -> User:
    user, _ = insert(
        session,
        User(
            openid=openid,
            subscribed=True,
            subscribed_at=subscribed_at,
            last_scene=_clip_scene(scene) if scene else None,
        ),
    )
    return user


def insert(session: Session, user: User) -> tuple[User, bool]:
    """Commit a new user row; if a concurrent request (the user's first message, a second tab)
    created the same openid meanwhile, return that row instead. (user, created)."""
    session.add(user)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        existing = get(session, user.openid)
        if existing is None:
            raise
        return existing, False
    return user, True
