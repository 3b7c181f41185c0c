"""客服留言 on the staff pages: the inbox (/review/inbox), a conversation and its reply form.

Reviewers see the conversations of the schools they cover; admins see all of them, including
students not linked to any school. Views call app/services/inbox.py; its refusals carry the Chinese
message shown on the page.
"""

from __future__ import annotations

from datetime import UTC, datetime

from flask import abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from app.extensions import db
from app.review import bp
from app.review.auth import signed_in_staff, staff_required
from app.review.queue import local_time
from app.services import inbox
from app.services.inbox import InboxError, InboxNotFoundError
from models import InboxDelivery, InboxDirection

DELIVERY_LABELS = {
    InboxDelivery.QUEUED: "发送中",
    InboxDelivery.SENT: "已送达",
    InboxDelivery.FAILED: "发送失败",
}


def _now() -> datetime:
    return datetime.now(UTC)


@bp.get("/inbox")
@staff_required()
def inbox_page() -> ResponseReturnValue:
    staff = signed_in_staff()
    waiting_only = request.args.get("show") != "all"
    items = inbox.conversations(db.session, staff, _now(), waiting_only=waiting_only)
    return render_template(
        "review/inbox.html",
        staff=staff,
        items=items,
        waiting_only=waiting_only,
        local=local_time,
    )


def _conversation_page(handle: int, error: str | None = None, status: int = 200) -> ResponseReturnValue:
    staff = signed_in_staff()
    try:
        found = inbox.conversation(db.session, staff, handle)
    except InboxNotFoundError:
        abort(404)
    return (
        render_template(
            "review/conversation.html",
            staff=staff,
            conv=found,
            window_open=found.window_open(_now()),
            max_chars=inbox.MAX_REPLY_CHARS,
            IN=InboxDirection.IN,
            deliveries=DELIVERY_LABELS,
            error=error,
            draft=request.form.get("text", "") if request.method == "POST" else "",
            local=local_time,
        ),
        status,
    )


@bp.get("/inbox/<int:handle>")
@staff_required()
def conversation_page(handle: int) -> ResponseReturnValue:
    return _conversation_page(handle)


@bp.post("/inbox/<int:handle>/reply")
@staff_required()
def inbox_reply(handle: int) -> ResponseReturnValue:
    try:
        inbox.reply(db.session, signed_in_staff(), handle, request.form.get("text", ""), _now())
    except InboxNotFoundError:
        abort(404)
    except InboxError as exc:
        return _conversation_page(handle, exc.message, 422)
    flash("回复已发出，学生会在微信对话中收到", "ok")
    return redirect(url_for("review.conversation_page", handle=handle), 303)
