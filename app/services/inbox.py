"""客服留言: students' messages that no handler understands, read and answered by staff.

A message lands here with the school the student is linked to at that moment; a conversation is
every message of one openid, and the school of its latest message decides who may read and answer
it: a reviewer the schools they cover, an admin every school and the students not linked to one.

Answers go out as WeChat customer-service messages (客服消息), which WeChat accepts only within 48
hours of the student's last message to the account: a reply after that is refused here, with the
reason, rather than left to fail in the worker. The window is counted from the last message
recorded here, so a keyword the student sent later (帮助, 进度), which WeChat also counts, does not
extend it: the service may refuse a little early, never send late.

https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Service_Center_messages.html
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Insert, bindparam, case, func, select, true
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from app.services import audit, outbox, reviews, single_statement, wording
from app.services.errors import ServiceError
from app.services.job_kinds import JobKind
from app.services.localtime import BEIJING
from models import Batch, Enrollment, InboxDelivery, InboxDirection, InboxMessage, School, Staff, User

WINDOW = timedelta(hours=48)
# A custom text is limited to 2048 bytes (3 per Chinese character), with the wording around it.
MAX_REPLY_CHARS = 600
# A student's message is kept whole up to this (WeChat's own limit on a text is about the same).
MAX_MESSAGE_CHARS = 2000
LIST_LIMIT = 100
CONVERSATION_LIMIT = 200


class InboxError(ServiceError):
    message = "操作失败，请稍后再试"


class InboxNotFoundError(InboxError):
    message = "找不到这条留言，或它不属于你负责的学校"


class InboxReplyInvalidError(InboxError):
    message = "请输入回复内容"


class InboxWindowClosedError(InboxError):
    message = "已超过 48 小时，无法再回复"


@dataclass(frozen=True)
class Summary:
    """One conversation in the inbox list."""

    handle: int  # the id of its latest student message: the conversation's address
    openid: str
    school_name: str | None
    last_text: str
    last_at: datetime
    waiting: int  # student messages not answered yet
    window_open: bool


@dataclass(frozen=True)
class Conversation:
    handle: int
    openid: str
    school_name: str | None
    messages: list[InboxMessage]
    authors: dict[int, str]  # staff id → username, for the answers
    last_in_at: datetime
    window_ends_at: datetime

    @property
    def waiting(self) -> int:
        return sum(1 for m in self.messages if m.direction == InboxDirection.IN and m.answered_at is None)

    def window_open(self, now: datetime) -> bool:
        return now < self.window_ends_at


@dataclass(frozen=True)
class PendingReply:
    openid: str
    text: str  # as the student reads it


# --- students' side -------------------------------------------------------------------------------


def _keep_statement(dialect: str) -> Insert:
    """INSERT of a student's message with the school they are linked to now (a subquery), skipped
    when its WeChat MsgId is already kept: one statement, so the /wechat handler pays one round trip
    in autocommit instead of five (BEGIN, look-up by MsgId, school, INSERT, COMMIT)."""
    school = (
        select(Batch.school_id)
        .join(Enrollment, (Enrollment.batch_id == Batch.id) & Enrollment.active.is_(True))
        .join(User, User.id == Enrollment.user_id)
        .where(User.openid == bindparam("openid"))
        .limit(1)
        .scalar_subquery()
    )
    insert = sqlite_insert if dialect == "sqlite" else postgresql_insert
    return (
        insert(InboxMessage)
        .values(
            openid=bindparam("openid"),
            direction=InboxDirection.IN,
            text=bindparam("text"),
            school_id=school,
            wechat_msg_id=bindparam("msg_id"),
            at=bindparam("at"),
        )
        .on_conflict_do_nothing(index_elements=[InboxMessage.wechat_msg_id])
        .returning(InboxMessage.id)
    )


_KEEP = {dialect: _keep_statement(dialect) for dialect in ("postgresql", "sqlite")}


def record(session: Session, openid: str, text: str, *, msg_id: str | None, at: datetime) -> int | None:
    """Keep a student's message for staff, with the school they are linked to; commits. The new
    row's id, or None when this WeChat message (`msg_id`) is already kept."""
    params = {"openid": openid, "text": text.strip()[:MAX_MESSAGE_CHARS], "msg_id": msg_id, "at": at}
    row = single_statement.first_row(session, _KEEP[session.get_bind().dialect.name], params)
    session.commit()  # in autocommit the row is committed already, and this sends nothing
    return None if row is None else int(row.id)


# --- staff's side ---------------------------------------------------------------------------------


def _visible(staff: Staff) -> ColumnElement[bool]:
    """Reviewers: their schools' messages; admins: all, also students linked to no school."""
    scope = reviews.school_scope(staff)
    if scope is None:
        return true()
    return InboxMessage.school_id.in_(scope)


def conversations(
    session: Session, staff: Staff, now: datetime, *, waiting_only: bool = False, limit: int = LIST_LIMIT
) -> list[Summary]:
    """The conversations a staff member may answer: those waiting for an answer first, newest first."""
    latest = (
        select(
            InboxMessage.openid.label("openid"),
            func.max(InboxMessage.id).label("last_id"),
            func.sum(case((InboxMessage.answered_at.is_(None), 1), else_=0)).label("waiting"),
        )
        .where(InboxMessage.direction == InboxDirection.IN)
        .group_by(InboxMessage.openid)
        .subquery()
    )
    query = (
        select(InboxMessage, School.name, latest.c.waiting)
        .join(latest, InboxMessage.id == latest.c.last_id)
        .outerjoin(School, School.id == InboxMessage.school_id)
        .where(_visible(staff))
        .order_by((latest.c.waiting > 0).desc(), InboxMessage.id.desc())
        .limit(limit)
    )
    if waiting_only:
        query = query.where(latest.c.waiting > 0)
    return [
        Summary(
            handle=message.id,
            openid=message.openid,
            school_name=school_name,
            last_text=message.text,
            last_at=message.at,
            waiting=int(waiting or 0),
            window_open=now < message.at + WINDOW,
        )
        for message, school_name, waiting in session.execute(query)
    ]


def conversation(session: Session, staff: Staff, handle: int) -> Conversation:
    """The conversation of a message (any of its ids), if the staff member may read it; raises
    InboxNotFoundError otherwise. Its latest student message decides whose it is."""
    found = session.get(InboxMessage, handle)
    if found is None:
        raise InboxNotFoundError()
    latest = session.scalar(
        select(InboxMessage)
        .where(InboxMessage.openid == found.openid, InboxMessage.direction == InboxDirection.IN)
        .order_by(InboxMessage.id.desc())
        .limit(1)
    )
    scope = reviews.school_scope(staff)
    if latest is None or (scope is not None and latest.school_id not in scope):
        raise InboxNotFoundError()
    messages = list(
        session.scalars(
            select(InboxMessage)
            .where(InboxMessage.openid == found.openid)
            .order_by(InboxMessage.id.desc())
            .limit(CONVERSATION_LIMIT)
        )
    )[::-1]
    staff_ids = {m.staff_id for m in messages if m.staff_id is not None}
    authors: dict[int, str] = {}
    if staff_ids:
        rows = session.execute(select(Staff.id, Staff.username).where(Staff.id.in_(staff_ids)))
        authors = {staff_id: username for staff_id, username in rows}
    school = session.get(School, latest.school_id) if latest.school_id is not None else None
    return Conversation(
        handle=latest.id,
        openid=found.openid,
        school_name=school.name if school else None,
        messages=messages,
        authors=authors,
        last_in_at=latest.at,
        window_ends_at=latest.at + WINDOW,
    )


def reply(session: Session, staff: Staff, handle: int, text: str, now: datetime) -> InboxMessage:
    """Answer a conversation: the answer is kept, the student's messages marked answered and the
    custom message queued, in one commit. Refuses an empty or too long text, a conversation the staff
    member may not read, and a reply after WeChat's 48-hour window."""
    text = text.strip()
    if not text:
        raise InboxReplyInvalidError()
    if len(text) > MAX_REPLY_CHARS:
        raise InboxReplyInvalidError(f"回复最多 {MAX_REPLY_CHARS} 字（现在 {len(text)} 字），请分几次发送")
    found = conversation(session, staff, handle)
    if not found.window_open(now):
        last = found.last_in_at.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M")
        raise InboxWindowClosedError(
            f"无法回复：学生最后一次留言在 {last}，已超过微信规定的 48 小时客服消息时限。"
            "请等学生再次留言后再回复，或通过学校电话联系学生。"
        )
    answer = InboxMessage(
        openid=found.openid,
        direction=InboxDirection.OUT,
        text=text,
        school_id=next(
            (m.school_id for m in reversed(found.messages) if m.direction == InboxDirection.IN), None
        ),
        at=now,
        staff_id=staff.id,
        delivery=InboxDelivery.QUEUED,
    )
    session.add(answer)
    for message in found.messages:
        if message.direction == InboxDirection.IN and message.answered_at is None:
            message.answered_at = now
    session.flush()
    outbox.enqueue(
        session, JobKind.SEND_INBOX_REPLY, {"message_id": answer.id}, key=f"inbox-reply:{answer.id}"
    )
    audit.record(session, staff.id, "inbox_reply", "inbox_message", answer.id, conversation=found.handle)
    session.commit()
    return answer


# --- the worker's side ----------------------------------------------------------------------------


def pending_reply(session: Session, message_id: int) -> PendingReply | None:
    """What to send for a queued answer; None when there is nothing to send (sent already, gone)."""
    answer = session.get(InboxMessage, message_id)
    if answer is None or answer.direction != InboxDirection.OUT or answer.delivery == InboxDelivery.SENT:
        return None
    return PendingReply(answer.openid, wording.staff_reply(answer.text))


def mark_delivery(session: Session, message_id: int, *, error: str | None = None) -> None:
    """Record that WeChat took an answer, or (`error`) refused it for good; commits."""
    answer = session.get(InboxMessage, message_id)
    if answer is None:
        return
    answer.delivery = InboxDelivery.FAILED if error else InboxDelivery.SENT
    answer.delivery_error = error[:200] if error else None
    session.commit()
