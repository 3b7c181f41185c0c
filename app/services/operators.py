"""Operators: followers who run the account from its menu, marked by the WeChat tag `operator`.

The tag is what WeChat's conditional menu matches on (menus.py); `User.is_operator` is what the
service checks before answering an operator-only menu key.
https://developers.weixin.qq.com/doc/offiaccount/User_Management/User_Tag_Management.html
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session
from wechatpy.exceptions import WeChatClientException

from app.services import users
from models import User

OPERATOR_TAG = "operator"
TAG_NAME_TAKEN = 45157  # tags/create: the name exists (another process created it just now)


@dataclass(frozen=True, slots=True)
class TagResult:
    tag_id: int
    created: bool


@dataclass(frozen=True, slots=True)
class OperatorAdded:
    openid: str
    tag_id: int
    tag_created: bool
    user_created: bool


def ensure_tag(client: Any, name: str) -> TagResult:
    """The id of the tag called `name` at WeChat, creating the tag if it does not exist."""
    for tag in client.tag.get():
        if tag["name"] == name:
            return TagResult(int(tag["id"]), created=False)
    try:
        created = client.tag.create(name)
    except WeChatClientException as exc:
        if exc.errcode != TAG_NAME_TAKEN:
            raise
        for tag in client.tag.get():
            if tag["name"] == name:
                return TagResult(int(tag["id"]), created=False)
        raise
    return TagResult(int(created["id"]), created=True)


def add_operator(session: Session, client: Any, openid: str) -> OperatorAdded:
    """Tag the user at WeChat, then mark them here (the row is created if the service never saw them).

    WeChat goes first: if it refuses (unknown openid, not a follower), nothing changes here.
    """
    tag = ensure_tag(client, OPERATOR_TAG)
    client.tag.tag_user(tag.tag_id, openid)
    user = users.get(session, openid)
    user_created = False
    if user is None:
        # WeChat only tags followers of the account.
        user, user_created = users.insert(session, User(openid=openid, subscribed=True))
    user.is_operator = True
    session.commit()
    return OperatorAdded(openid=openid, tag_id=tag.tag_id, tag_created=tag.created, user_created=user_created)
