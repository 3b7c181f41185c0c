"""Job kinds that call WeChat's API.

A WeChat error that no retry can fix (the user is outside the 48 h window, the openid is wrong, the
message is malformed) raises PermanentJobError so the row goes dead at once; network errors, HTTP
5xx and WeChat's "system busy" (-1) raise as they are and the worker retries with backoff.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from wechatpy.exceptions import WeChatClientException

from app.integrations import wechat_client
from app.jobs import PermanentJobError, job
from app.services.job_kinds import JobKind

# https://developers.weixin.qq.com/doc/offiaccount/en/Getting_Started/Global_Return_Code.html
PERMANENT_ERRCODES = frozenset(
    {
        40003,  # invalid openid
        40007,  # invalid media_id
        40008,  # invalid message type
        40037,  # invalid template_id
        43004,  # the user does not follow the account
        43019,  # the user blocked the account
        44002,  # empty post data
        44003,  # empty news data
        44004,  # empty content
        45002,  # content too long
        45008,  # too many news articles
        45015,  # outside the 48 h window for custom messages
        45047,  # more than 20 custom messages without an answer from the user
        47001,  # malformed JSON
        47003,  # argument invalid (e.g. a template value over its limit)
        48001,  # api unauthorized for this account
    }
)


def call_wechat(func: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return func(*args, **kwargs)
    except WeChatClientException as exc:
        if exc.errcode in PERMANENT_ERRCODES:
            raise PermanentJobError(f"WeChat refused: {exc.errcode} {exc.errmsg}") from exc
        raise


def _require(payload: dict[str, Any], *names: str) -> None:
    missing = [n for n in names if payload.get(n) in (None, "")]
    if missing:
        raise PermanentJobError(f"payload lacks {', '.join(missing)}")


@job(JobKind.SEND_TEXT)
def send_text(payload: dict[str, Any]) -> None:
    """Custom (客服) text message: {"openid", "text"}. Only within 48 h of the user's last message."""
    _require(payload, "openid", "text")
    call_wechat(wechat_client().message.send_text, payload["openid"], payload["text"])


def fallback_client_msg_id(payload: dict[str, Any]) -> str:
    """Same announcement, same id: a stable digest of what is sent (when the enqueuer gave none)."""
    content = {k: payload.get(k) for k in ("openid", "template_id", "data", "url")}
    digest = hashlib.sha256(json.dumps(content, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
    return "p-" + digest[:30]


@job(JobKind.SEND_TEMPLATE)
def send_template(payload: dict[str, Any]) -> None:
    """Template message: {"openid", "template_id", "data", "url"[, "client_msg_id"]}.

    `client_msg_id` defaults to the outbox row's id (the worker passes it as `outbox_id`): a worker
    killed after sending and before recording success sends again, and WeChat drops that repeat.
    """
    _require(payload, "openid", "template_id", "data")
    if not isinstance(payload["data"], dict):
        raise PermanentJobError("payload data must be an object")
    client_msg_id = str(
        payload.get("client_msg_id")
        or (f"outbox-{payload['outbox_id']}" if payload.get("outbox_id") else None)
        or fallback_client_msg_id(payload)
    )
    call_wechat(
        wechat_client().send_template,
        payload["openid"],
        payload["template_id"],
        payload["data"],
        url=payload.get("url"),
        client_msg_id=client_msg_id,
    )


@job(JobKind.PUSH_MENU)
def push_menu(payload: dict[str, Any]) -> None:
    """Push app/data/menus.json (default, then the operators' menu); a no-op when WeChat has it.

    Queued by `flask demo load`: in the embedded mode the sandbox lives inside the server process,
    so the push has to happen once that process runs, which is what the in-process worker is for.
    """
    from flask import current_app

    from app.services import menus

    loaded = menus.load(current_app.config["PUBLIC_BASE_URL"])
    call_wechat(menus.push, wechat_client(), loaded)
