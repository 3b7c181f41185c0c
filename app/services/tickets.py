"""The admission ticket (准考证), its signed QR token, the check at the door (签到) and the staff's
check-in lists (docs/exams.md, "Seats, tickets and the door").

A ticket exists for a seated candidate whose attempt is still complete (receipts.complete), and is
shown only within the batch's ticket window; outside it the page names the window. The QR carries
the seat id signed with SECRET_KEY under its own salt and a timestamp (itsdangerous), nothing
personal: only staff who cover the school see the candidate behind it, and a token older than
TOKEN_MAX_AGE (longer than any window before an exam) or not signed by us is refused.

Check-in is idempotent: the first 签到 stamps the seat (who, when) and is audited; a second scan
shows who checked the candidate in and changes nothing.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import String, cast, exists, func, literal, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.services import applications, audit, batch_forms, outbox, photos, receipts, reminders, wording
from app.services.errors import ServiceError
from app.services.localtime import BEIJING, stored_utc
from app.services.pii import Keyring, mask_id_number
from app.services.pushes import ResultPush
from media.storage import MediaNotFoundError, Storage
from models import (
    Batch,
    Enrollment,
    ExamCourse,
    ExamRegistration,
    ExamRegistrationCourse,
    ExamSeat,
    ExamSite,
    Identity,
    OutboxItem,
    Photo,
    School,
    Staff,
    StaffRole,
    User,
)
from models.submission import Submission, SubmissionStatus

SALT = "exam-ticket-v1"
TOKEN_MAX_AGE = timedelta(days=180)
# The form fields printed on the ticket when the batch's definition has them (by label).
CATEGORY_LABEL = "考生类别"
LANGUAGE_LABEL = "应试语种"


class TicketError(ServiceError):
    message = "准考证无效"


class TicketTokenError(TicketError):
    message = "无效的准考证二维码：不是本系统签发的，或已过期。"


class TicketForbiddenError(TicketError):
    message = "这张准考证不属于你负责的学校。"


@dataclass(frozen=True)
class ExamTime:
    course: str
    starts_at: datetime
    ends_at: datetime

    @property
    def text(self) -> str:
        start, end = self.starts_at.astimezone(BEIJING), self.ends_at.astimezone(BEIJING)
        return f"{start.year}年{start.month}月{start.day}日 {start:%H:%M}–{end:%H:%M} {self.course}"


@dataclass(frozen=True)
class Ticket:
    seat_id: int
    title: str
    registration_no: str  # 报名号: the attempt's 回执编号
    ticket_no: str
    name: str
    sex: str
    number_masked: str
    room_no: int
    seat_no: int
    category: str | None
    language: str | None
    site_name: str
    site_address: str
    exam_times: list[ExamTime]
    notice: str | None
    pledge: str | None
    photo_id: int
    user_id: int
    token: str


@dataclass(frozen=True)
class TicketPage:
    """What /h5/ticket shows: the ticket, or why there is none (a sentence naming the window)."""

    ticket: Ticket | None
    message: str = ""


def _serializer(secret_key: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key, salt=SALT)


def make_token(secret_key: str, seat_id: int) -> str:
    return str(_serializer(secret_key).dumps(seat_id))


def _seat_id(secret_key: str, token: str) -> int:
    try:
        value = _serializer(secret_key).loads(token, max_age=int(TOKEN_MAX_AGE.total_seconds()))
    except (SignatureExpired, BadSignature):
        raise TicketTokenError() from None
    if not isinstance(value, int) or isinstance(value, bool):
        raise TicketTokenError()
    return value


def sex_of(id_number: str) -> str:
    """男/女 from a resident ID's 17th digit (odd: male); "" for other documents."""
    if len(id_number) == 18 and id_number[16].isdigit():
        return "男" if int(id_number[16]) % 2 else "女"
    return ""


def window_open(batch: Batch, now: datetime) -> bool:
    if batch.ticket_opens_at is None or batch.ticket_closes_at is None:
        return False
    return stored_utc(batch.ticket_opens_at) <= now < stored_utc(batch.ticket_closes_at)


def exam_times(session: Session, batch: Batch, user_id: int) -> list[ExamTime]:
    """The candidate's courses (not cancelled) in a batch with course selection; every course of the
    batch otherwise. Earliest first."""
    query = select(ExamCourse.name, ExamCourse.starts_at, ExamCourse.ends_at).where(
        ExamCourse.batch_id == batch.id
    )
    if batch.exam_selection:
        query = (
            query.join(ExamRegistrationCourse, ExamRegistrationCourse.course_id == ExamCourse.id)
            .join(ExamRegistration, ExamRegistration.id == ExamRegistrationCourse.registration_id)
            .where(ExamRegistration.user_id == user_id, ExamRegistrationCourse.cancelled_at.is_(None))
        )
    rows = session.execute(query.order_by(ExamCourse.starts_at, ExamCourse.code)).all()
    return [ExamTime(name, stored_utc(start), stored_utc(end)) for name, start, end in rows]


def _form_values(session: Session, keyring: Keyring, batch: Batch, user_id: int) -> dict[str, str]:
    """考生类别 and 应试语种 from the candidate's answers, when the batch's form asks for them."""
    definition = applications.definition_of(batch)
    if definition is None:
        return {}
    stored = session.scalar(
        select(Enrollment.form_answers)
        .where(Enrollment.user_id == user_id, Enrollment.batch_id == batch.id)
        .order_by(Enrollment.active.desc(), Enrollment.id.desc())
        .limit(1)
    )
    if not stored:
        return {}
    answers: dict[str, Any] = batch_forms.transform(definition, stored, keyring.decrypt)
    found: dict[str, str] = {}
    for field in definition.fields():
        if field.label in (CATEGORY_LABEL, LANGUAGE_LABEL) and isinstance(answers.get(field.key), str):
            found[field.label] = answers[field.key]
    return found


def _ticket(session: Session, keyring: Keyring, secret_key: str, seat: ExamSeat) -> Ticket:
    batch, site, submission = seat.batch, seat.site, seat.submission
    identity = submission.identity
    number = keyring.decrypt(identity.number_enc)
    form = _form_values(session, keyring, batch, seat.user_id)
    return Ticket(
        seat_id=seat.id,
        title=f"{batch.name} 准考证",
        registration_no=receipts.number_of(session, submission),
        ticket_no=seat.ticket_no,
        name=keyring.decrypt(identity.name_enc),
        sex=sex_of(number),
        number_masked=mask_id_number(number),
        room_no=seat.room_no,
        seat_no=seat.seat_no,
        category=form.get(CATEGORY_LABEL),
        language=form.get(LANGUAGE_LABEL),
        site_name=site.name,
        site_address=site.address,
        exam_times=exam_times(session, batch, seat.user_id),
        notice=batch.ticket_notice or None,
        pledge=batch.ticket_pledge or None,
        photo_id=submission.photo_id,
        user_id=seat.user_id,
        token=make_token(secret_key, seat.id),
    )


def _latest_seat(session: Session, user_id: int) -> ExamSeat | None:
    return session.scalar(
        select(ExamSeat).where(ExamSeat.user_id == user_id).order_by(ExamSeat.id.desc()).limit(1)
    )


def for_student(
    session: Session, keyring: Keyring, secret_key: str, user_id: int, now: datetime
) -> TicketPage:
    """The student's ticket within its window, or the sentence the page shows instead (may commit:
    the 报名号 is issued on first view, as the receipt's)."""
    seat = _latest_seat(session, user_id)
    if seat is None or not receipts.complete(seat.submission):
        enrollment = session.scalar(
            select(Enrollment).where(Enrollment.user_id == user_id, Enrollment.active).limit(1)
        )
        batch = enrollment.batch if enrollment is not None else None
        if batch is not None and batch.ticket_opens_at is not None and batch.ticket_closes_at is not None:
            done = session.scalar(
                select(
                    exists().where(
                        Submission.user_id == user_id,
                        Submission.batch_id == batch.id,
                        Submission.status == SubmissionStatus.APPROVED,
                    )
                )
            )
            window = wording.ticket_window(batch.ticket_opens_at, batch.ticket_closes_at)
            return TicketPage(None, f"{window}。{wording.TICKET_NO_SEAT if done else wording.TICKET_NONE}")
        return TicketPage(None, wording.TICKET_NONE)
    batch = seat.batch
    if batch.ticket_opens_at is None or batch.ticket_closes_at is None:
        return TicketPage(None, wording.TICKET_NONE)
    if now < stored_utc(batch.ticket_opens_at):
        return TicketPage(None, wording.ticket_window(batch.ticket_opens_at, batch.ticket_closes_at) + "。")
    if not window_open(batch, now):
        return TicketPage(None, wording.ticket_closed(batch.ticket_opens_at, batch.ticket_closes_at))
    return TicketPage(_ticket(session, keyring, secret_key, seat))


def photo(session: Session, storage: Storage, ticket: Ticket) -> bytes | None:
    """The approved photo printed on the ticket (the processed file, as reviewed)."""
    picture = session.get(Photo, ticket.photo_id)
    if picture is None:
        return None
    kind: photos.FileKind = "normalized" if picture.normalized_key else "original"
    try:
        return photos.open_file(session, storage, photos.FileLink(picture.id, kind, ticket.user_id))[0]
    except (MediaNotFoundError, photos.PhotoNotFoundError):
        return None


# --- the door ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DoorCard:
    seat_id: int
    name: str
    number_masked: str
    ticket_no: str
    room_no: int
    seat_no: int
    site_id: int
    site_name: str
    site_address: str
    batch_id: int
    batch_name: str
    school_name: str
    paid: bool
    paid_label: str
    photo_id: int
    user_id: int
    checked_in_at: datetime | None
    checked_in_by: str | None


def _covered_seat(session: Session, secret_key: str, token: str, staff: Staff) -> ExamSeat:
    seat = session.get(ExamSeat, _seat_id(secret_key, token))
    if seat is None:
        raise TicketTokenError()
    if not receipts.covers(staff, seat.batch.school_id):
        raise TicketForbiddenError()
    return seat


def _paid(submission: Submission) -> tuple[bool, str]:
    """Whether the candidate's fee is in: a done attempt (通过 is reached by paying in review_first,
    after paying in pay_first), paid, or in a free batch."""
    if not receipts.complete(submission):
        return False, "未完成缴费或已退费"
    if not submission.batch.takes_fee:
        return True, "免费批次"
    paid = submission.paid_at is not None or submission.fee_paid_by_id is not None
    return paid, "已缴费" if paid else "未缴费"


def _card(session: Session, keyring: Keyring, seat: ExamSeat) -> DoorCard:
    identity = seat.submission.identity
    paid, label = _paid(seat.submission)
    by = session.get(Staff, seat.checked_in_by_id) if seat.checked_in_by_id is not None else None
    return DoorCard(
        seat_id=seat.id,
        name=keyring.decrypt(identity.name_enc),
        number_masked=mask_id_number(keyring.decrypt(identity.number_enc)),
        ticket_no=seat.ticket_no,
        room_no=seat.room_no,
        seat_no=seat.seat_no,
        site_id=seat.site_id,
        site_name=seat.site.name,
        site_address=seat.site.address,
        batch_id=seat.batch_id,
        batch_name=seat.batch.name,
        school_name=seat.batch.school.name,
        paid=paid,
        paid_label=label,
        photo_id=seat.submission.photo_id,
        user_id=seat.user_id,
        checked_in_at=stored_utc(seat.checked_in_at) if seat.checked_in_at else None,
        checked_in_by=by.username if by is not None else None,
    )


def door(session: Session, keyring: Keyring, secret_key: str, token: str, staff: Staff) -> DoorCard:
    """The candidate behind a ticket's QR, for staff who cover the school. Raises TicketTokenError
    (forged, altered, expired, no such seat) or TicketForbiddenError (another school's)."""
    return _card(session, keyring, _covered_seat(session, secret_key, token, staff))


def check_in(
    session: Session, keyring: Keyring, secret_key: str, token: str, staff: Staff, now: datetime
) -> tuple[DoorCard, bool]:
    """签到 from the ticket's QR: stamps the seat once (audited; commits); (the card, whether this call
    stamped it)."""
    return _stamp(session, keyring, _covered_seat(session, secret_key, token, staff), staff, now, "qr")


def check_in_seat(
    session: Session, keyring: Keyring, seat_id: int, staff: Staff, now: datetime
) -> tuple[DoorCard, bool] | None:
    """签到 from a room's list, for a candidate whose QR cannot be read (a crumpled print, a dead
    phone): the proctor has the photo and the ID card in front of them. None when the seat is unknown
    or of another school."""
    seat = session.get(ExamSeat, seat_id)
    if seat is None or not receipts.covers(staff, seat.batch.school_id):
        return None
    return _stamp(session, keyring, seat, staff, now, "list")


def _stamp(
    session: Session, keyring: Keyring, seat: ExamSeat, staff: Staff, now: datetime, via: str
) -> tuple[DoorCard, bool]:
    # A conditional UPDATE: two proctors tapping at once stamp once.
    stamped = session.execute(
        update(ExamSeat)
        .where(ExamSeat.id == seat.id, ExamSeat.checked_in_at.is_(None))
        .values(checked_in_at=now, checked_in_by_id=staff.id)
    ).rowcount  # type: ignore[attr-defined]
    if stamped:
        audit.record(
            session,
            staff.id,
            "exams.check_in",
            "exam_seat",
            seat.id,
            ticket_no=seat.ticket_no,
            room=seat.room_no,
            via=via,
        )
    session.commit()
    session.refresh(seat)
    return _card(session, keyring, seat), bool(stamped)


# --- check-in lists -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RoomCount:
    room_no: int
    seated: int
    present: int


@dataclass(frozen=True)
class SiteCount:
    site_id: int
    code: str
    name: str
    rooms: list[RoomCount]

    @property
    def seated(self) -> int:
        return sum(r.seated for r in self.rooms)

    @property
    def present(self) -> int:
        return sum(r.present for r in self.rooms)


@dataclass(frozen=True)
class ExamBatch:
    batch_id: int
    name: str
    school_name: str
    sites: list[SiteCount]


def overview(session: Session, staff: Staff) -> list[ExamBatch]:
    """The batches with seats that `staff` covers, each site's rooms with who is seated and present."""
    query = (
        select(
            Batch.id,
            Batch.name,
            School.name,
            School.id,
            ExamSite.id,
            ExamSite.code,
            ExamSite.name,
            ExamSeat.room_no,
            func.count(),
            func.count(ExamSeat.checked_in_at),
        )
        .select_from(ExamSeat)
        .join(Batch, Batch.id == ExamSeat.batch_id)
        .join(School, School.id == Batch.school_id)
        .join(ExamSite, ExamSite.id == ExamSeat.site_id)
        .group_by(Batch.id, Batch.name, School.name, School.id, ExamSite.id, ExamSite.code, ExamSite.name)
        .group_by(ExamSeat.room_no)
        .order_by(Batch.id.desc(), ExamSite.code, ExamSeat.room_no)
    )
    if staff.role != StaffRole.ADMIN:
        query = query.where(Batch.school_id.in_([school.id for school in staff.schools]))
    rows = session.execute(query).all()
    batches: dict[int, tuple[str, str]] = {}
    sites: dict[int, dict[int, tuple[str, str, list[RoomCount]]]] = defaultdict(dict)
    for batch_id, batch_name, school_name, school_id, site_id, code, site_name, room, seated, present in rows:
        if not receipts.covers(staff, school_id):
            continue
        batches[batch_id] = (batch_name, school_name)
        site = sites[batch_id].setdefault(site_id, (code, site_name, []))
        site[2].append(RoomCount(room, seated, present))
    return [
        ExamBatch(
            batch_id,
            name,
            school,
            [
                SiteCount(site_id, code, sname, rooms)
                for site_id, (code, sname, rooms) in sites[batch_id].items()
            ],
        )
        for batch_id, (name, school) in batches.items()
    ]


@dataclass(frozen=True)
class RosterRow:
    seat_id: int
    room_no: int
    seat_no: int
    ticket_no: str
    name: str
    photo_id: int
    user_id: int
    checked_in_at: datetime | None


@dataclass(frozen=True)
class Roster:
    batch_name: str
    site_id: int
    site_code: str
    site_name: str
    rooms: list[int]  # every room of the site, for the filter
    room: int | None  # the filter (None: the whole site)
    rows: list[RosterRow]

    @property
    def present(self) -> int:
        return sum(1 for r in self.rows if r.checked_in_at is not None)

    @property
    def absent(self) -> int:
        return len(self.rows) - self.present


def roster(session: Session, keyring: Keyring, staff: Staff, site_id: int, room: int | None) -> Roster | None:
    """A site's candidates by room and seat (one room with `room`), who came and who did not; None
    when the site is unknown or not the staff member's school."""
    site = session.get(ExamSite, site_id)
    if site is None or not receipts.covers(staff, site.batch.school_id):
        return None
    rooms = list(
        session.scalars(
            select(ExamSeat.room_no).where(ExamSeat.site_id == site_id).distinct().order_by(ExamSeat.room_no)
        )
    )
    # One query for the list (a site seats hundreds): the seat, the photo and the sealed name.
    query = (
        select(
            ExamSeat.id,
            ExamSeat.room_no,
            ExamSeat.seat_no,
            ExamSeat.ticket_no,
            Identity.name_enc,
            Submission.photo_id,
            ExamSeat.user_id,
            ExamSeat.checked_in_at,
        )
        .join(Submission, Submission.id == ExamSeat.submission_id)
        .join(Identity, Identity.id == Submission.identity_id)
        .where(ExamSeat.site_id == site_id)
        .order_by(ExamSeat.room_no, ExamSeat.seat_no)
    )
    if room is not None:
        query = query.where(ExamSeat.room_no == room)
    rows = [
        RosterRow(
            row.id,
            row.room_no,
            row.seat_no,
            row.ticket_no,
            keyring.decrypt(row.name_enc),
            row.photo_id,
            row.user_id,
            stored_utc(row.checked_in_at) if row.checked_in_at else None,
        )
        for row in session.execute(query)
    ]
    return Roster(site.batch.name, site.id, site.code, site.name, rooms, room, rows)


# --- the push when the window opens -----------------------------------------------------------------


def _key() -> Any:
    """The outbox key of a ticket push, in SQL: ticket:<batch id>:<user id>."""
    return (
        literal("ticket:", String)
        + cast(ExamSeat.batch_id, String)
        + literal(":", String)
        + cast(ExamSeat.user_id, String)
    )


def push_due(session: Session, push: ResultPush, now: datetime) -> int:
    """Tell each seated candidate, once, that their ticket can be printed (while the window is
    open, never at night in Beijing: reminders.is_night). Returns how many were queued; safe on
    several workers at once (the unique outbox key)."""
    if reminders.is_night(now):
        return 0
    rows = session.execute(
        select(
            ExamSeat.user_id, User.openid, Batch.id, Batch.name, Batch.ticket_opens_at, Batch.ticket_closes_at
        )
        .join(User, User.id == ExamSeat.user_id)
        .join(Batch, Batch.id == ExamSeat.batch_id)
        .join(Submission, Submission.id == ExamSeat.submission_id)
        .where(
            User.subscribed,
            Submission.status == SubmissionStatus.APPROVED,
            Batch.ticket_opens_at <= now,
            Batch.ticket_closes_at > now,
            ~exists().where(OutboxItem.idempotency_key == _key()),
        )
    ).all()
    session.rollback()  # end the read before the one-commit-per-push writes
    queued = 0
    for user_id, openid, batch_id, batch_name, opens_at, closes_at in rows:
        key = f"ticket:{batch_id}:{user_id}"
        assert opens_at is not None and closes_at is not None  # the query compared them with now
        try:
            item = outbox.announce(
                session,
                openid,
                key,
                template_id=push.template_id,
                url=f"{push.base_url}/h5/ticket",
                template_data=partial(
                    wording.reminder_template_data, "准考证打印", closes_at, wording.TICKET_REMINDER_NOTE
                ),
                text=partial(wording.ticket_ready, push.base_url, batch_name, opens_at, closes_at),
            )
            session.commit()
        except IntegrityError:
            session.rollback()  # another worker queued it at the same moment
            continue
        queued += item is not None
    return queued


__all__ = [
    "DoorCard",
    "ExamBatch",
    "ExamTime",
    "Roster",
    "Ticket",
    "TicketError",
    "TicketForbiddenError",
    "TicketPage",
    "TicketTokenError",
    "check_in",
    "door",
    "exam_times",
    "for_student",
    "make_token",
    "overview",
    "photo",
    "push_due",
    "roster",
    "sex_of",
    "window_open",
]
