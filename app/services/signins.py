"""Signing in to the H5 pages: the openid WeChat's OAuth2 vouched for → our User row."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models import User


def user_for_openid(session: Session, openid: str) -> User:
    """The user with this openid, created if the service has not met them yet.

    snsapi_base sign-in works for people who do not follow the account (a shared link), so a new
    row does not claim a follow; the subscribe event or their first message sets that.
    """
    user = session.scalar(select(User).where(User.openid == openid))
    if user is not None:
        return user
    user = User(openid=openid, subscribed=False)
    session.add(user)
    try:
        session.commit()
    except IntegrityError:
        # Their first message (or a second tab) created the row at the same moment.
        session.rollback()
        existing = session.scalar(select(User).where(User.openid == openid))
        if existing is None:
            raise
        return existing
    return user
