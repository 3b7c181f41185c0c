"""Staff answers to students' messages (客服留言), sent as WeChat custom messages."""

from __future__ import annotations

from typing import Any

from app.extensions import db
from app.integrations import wechat_client
from app.jobs import PermanentJobError, job
from app.jobs.wechat import call_wechat
from app.services import inbox
from app.services.job_kinds import JobKind


@job(JobKind.SEND_INBOX_REPLY)
def send_reply(payload: dict[str, Any]) -> None:
    """{"message_id"}: send the answer and record that WeChat took it, or why it refused it for good
    (outside the 48-hour window, the student unfollowed). Sent twice only if the worker dies between
    the send and the record."""
    try:
        message_id = int(payload["message_id"])
    except (KeyError, TypeError, ValueError):
        raise PermanentJobError("payload lacks message_id") from None
    pending = inbox.pending_reply(db.session, message_id)
    if pending is None:
        return
    try:
        call_wechat(wechat_client().message.send_text, pending.openid, pending.text)
    except PermanentJobError as exc:
        inbox.mark_delivery(db.session, message_id, error=str(exc))
        raise
    inbox.mark_delivery(db.session, message_id)
