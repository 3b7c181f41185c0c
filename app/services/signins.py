"""Signing in to the H5 pages: the openid WeChat's OAuth2 vouched for → our User row."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.services import users
from models import User


def user_for_openid(session: Session, openid: str) -> User:
    """The user with this openid, created if the service has not met them yet.

    snsapi_base sign-in works for people who do not follow the account (a shared link), so a new
    row does not claim a follow; the subscribe event or their first message sets that.
    """
    user = users.get(session, openid)
    if user is not None:
        return user
    return users.insert(session, User(openid=openid, subscribed=False))[0]
