"""Reminders 24 h before a window closes, to each student who has not done what it governs.

- sign-up (Batch.closes_at): students linked to the batch with no attempt past submission (in flight
  after payment or submission, approved, or final); a pay-first attempt still awaiting payment counts
  as not done, since paying is what that window governs for it;
- pay (Batch.pay_closes_at, review-first): attempts approved and not paid (approved_unpaid).

Once per student and window (the outbox key; a second run finds it and skips), only while the window
is open, never at night in Beijing (22:00–08:00): a reminder due then waits for the first run after
08:00, if the window is still open. One query per window kind; students who unfollowed are skipped.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, time, timedelta
from functools import partial
from typing import Any

from sqlalchemy import ColumnElement, String, cast, exists, literal, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.services import outbox, wording
from app.services.localtime import BEIJING
from app.services.pushes import ResultPush
from models import Batch, Enrollment, OutboxItem, School, User
from models.submission import Submission, SubmissionStatus

S = SubmissionStatus
AHEAD = timedelta(hours=24)
NIGHT_FROM, NIGHT_UNTIL = time(22, 0), time(8, 0)
# Past the sign-up step: nothing left for the sign-up window to remind of.
SUBMITTED = (S.VERIFYING, S.PENDING_REVIEW, S.IN_REVIEW, S.APPROVED_UNPAID, S.APPROVED, S.REFUSED, S.VOID)


def is_night(now: datetime) -> bool:
    local = now.astimezone(BEIJING).time()
    return local >= NIGHT_FROM or local < NIGHT_UNTIL


def _key(kind: str) -> ColumnElement[str]:
    """The outbox key of a reminder, in SQL: remind:<kind>:<batch id>:<user id>."""
    return (
        literal(f"remind:{kind}:", String)
        + cast(Batch.id, String)
        + literal(":", String)
        + cast(User.id, String)
    )


def _not_sent(kind: str) -> ColumnElement[bool]:
    return ~exists().where(OutboxItem.idempotency_key == _key(kind))


def send_due(session: Session, push: ResultPush, now: datetime) -> int:
    """Queue the reminders due at `now`; returns how many. Safe on several workers at once: the
    unique outbox key lets one of them queue each reminder."""
    if is_night(now):
        return 0
    done = exists().where(
        Submission.user_id == User.id, Submission.batch_id == Batch.id, Submission.status.in_(SUBMITTED)
    )
    sign_up = session.execute(
        select(User.id, User.openid, Batch.id, Batch.name, School.name, Batch.closes_at)
        .join(Enrollment, (Enrollment.user_id == User.id) & Enrollment.active)
        .join(Batch, Batch.id == Enrollment.batch_id)
        .join(School, School.id == Batch.school_id)
        .where(
            User.subscribed,
            Batch.opens_at <= now,
            Batch.closes_at > now,
            Batch.closes_at <= now + AHEAD,
            ~done,
            _not_sent("sign-up"),
        )
    ).all()
    pay = session.execute(
        select(User.id, User.openid, Batch.id, Batch.name, School.name, Batch.pay_closes_at, Submission.id)
        .select_from(Submission)
        .join(User, User.id == Submission.user_id)
        .join(Batch, Batch.id == Submission.batch_id)
        .join(School, School.id == Batch.school_id)
        .where(
            Submission.status == S.APPROVED_UNPAID,
            User.subscribed,
            Batch.pay_opens_at <= now,
            Batch.pay_closes_at > now,
            Batch.pay_closes_at <= now + AHEAD,
            _not_sent("pay"),
        )
    ).all()
    session.rollback()  # end the read before the one-commit-per-reminder writes
    queued = 0
    for user_id, openid, batch_id, batch, _school, closes_at in sign_up:
        queued += _queue(
            session,
            openid,
            f"remind:sign-up:{batch_id}:{user_id}",
            push.template_id,
            f"{push.base_url}/h5/photo",
            partial(wording.reminder_template_data, "报名截止提醒", closes_at, wording.SIGN_UP_REMINDER_NOTE),
            partial(wording.sign_up_reminder, push.base_url, batch, closes_at),
        )
    for user_id, openid, batch_id, batch, _school, pay_closes_at, submission_id in pay:
        assert pay_closes_at is not None  # the query compared it with now
        queued += _queue(
            session,
            openid,
            f"remind:pay:{batch_id}:{user_id}",
            push.template_id,
            f"{push.base_url}/h5/pay/{submission_id}",
            partial(wording.reminder_template_data, "缴费截止提醒", pay_closes_at, wording.PAY_REMINDER_NOTE),
            partial(wording.pay_reminder, push.base_url, batch, pay_closes_at, submission_id),
        )
    return queued


def _queue(
    session: Session,
    openid: str,
    key: str,
    template_id: str,
    url: str,
    template_data: Callable[[], dict[str, Any]],
    text: Callable[[], str],
) -> int:
    try:
        item = outbox.announce(
            session, openid, key, template_id=template_id, url=url, template_data=template_data, text=text
        )
        session.commit()
    except IntegrityError:
        session.rollback()  # another worker queued it at the same moment
        return 0
    return 0 if item is None else 1
