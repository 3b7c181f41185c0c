"""Pushes to a student about their attempt: a template message (审核结果通知) when the account has
the template, a custom text message otherwise, always through the outbox so the push commits with
the state change it announces."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from app.services import outbox


@dataclass(frozen=True)
class ResultPush:
    """How a push reaches the student: the H5 pages' base URL and the template to use (the 审核结果通知
    for results, the 办理提醒 for reminders)."""

    base_url: str
    template_id: str  # "" = a custom text message instead

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> ResultPush:
        template = config.get("WECHAT_TEMPLATE_REVIEW_RESULT")
        if template is None:
            template = "sandbox-review-result" if config.get("SANDBOX") else ""
        return cls(base_url=str(config["PUBLIC_BASE_URL"]).rstrip("/"), template_id=template)

    @classmethod
    def reminders_from_config(cls, config: Mapping[str, Any]) -> ResultPush:
        template = str(config.get("WECHAT_TEMPLATE_REMINDER") or "")
        return cls(base_url=str(config["PUBLIC_BASE_URL"]).rstrip("/"), template_id=template)


def announce(
    session: Session,
    push: ResultPush,
    openid: str,
    key: str,
    *,
    template_data: Callable[[], dict[str, Any]],
    text: Callable[[], str],
    path: str = "/h5/status",
) -> None:
    """Enqueue one push about an attempt (no commit); `key` makes a second enqueue a no-op and
    lets WeChat drop a resend (outbox.announce). `path` is the H5 page the push opens."""
    outbox.announce(
        session,
        openid,
        key,
        template_id=push.template_id,
        url=f"{push.base_url}{path}",
        template_data=template_data,
        text=text,
    )
