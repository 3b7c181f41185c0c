"""Schools and batches: creating and updating them (imports, demo data), and reading them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from media.spec import PhotoSpec
from models import Batch, Enrollment, Flow, LockOn, School, User
from models.school import RECEIPT_NOTE, RECEIPT_TITLE


@dataclass(frozen=True)
class ExamSettings:
    """A batch's exam sign-up settings (models/school.py; docs/exams.md)."""

    selection: bool = False
    room_size: int | None = None
    ticket_opens_at: datetime | None = None
    ticket_closes_at: datetime | None = None
    ticket_notice: str | None = None
    ticket_pledge: str | None = None


@dataclass(frozen=True)
class BatchData:
    name: str
    education: str
    opens_at: datetime
    closes_at: datetime
    fee_fen: int
    photo_spec: PhotoSpec
    review_days_min: int = 7
    review_days_max: int = 10
    # The printed receipt's title and the line under it; None = the 学位证 wording (models/school.py).
    receipt_title: str | None = None
    receipt_note: str | None = None
    # The batch's workflow (models/school.py); the defaults are the pay-first flow every batch had
    # before batches carried one.
    flow: Flow = Flow.PAY_FIRST
    verify_identity: bool = True
    pay_opens_at: datetime | None = None
    pay_closes_at: datetime | None = None
    lock_on: LockOn = LockOn.PAY
    fee_per_attempt: bool = True
    notice: str | None = None
    pledge: str | None = None
    signature: bool = False
    after_approval: str | None = None
    # None: leave the batch's exam settings as they are (a CSV without those columns).
    exam: ExamSettings | None = None


class BatchDataError(ValueError):
    """A batch that cannot exist (closes before it opens, negative fee, a self-contradicting workflow)."""


def workflow_problems(data: BatchData) -> list[str]:
    """What contradicts itself in a batch's workflow, in Chinese naming the CSV columns (the import shows
    these lines as they are); empty when the batch is consistent."""
    problems = []
    free = data.flow == Flow.FREE
    if free and data.fee_fen != 0:
        problems.append("flow=free 的批次不收费，费用必须为 0")
    if not free and data.fee_fen == 0:
        # A paying flow with nothing to pay would create orders of 0 that WeChat Pay refuses.
        problems.append(f"费用为 0 只适用于 flow=free（不收费）的批次；flow={data.flow.value} 须填写费用")
    window = (data.pay_opens_at, data.pay_closes_at)
    if data.flow == Flow.REVIEW_FIRST:
        if None in window:
            problems.append("flow=review_first 必须填写缴费时间 pay_opens_at 和 pay_closes_at")
    elif window != (None, None):
        problems.append(
            f"只有 flow=review_first 的批次有单独的缴费时间，flow={data.flow.value} 的 pay_opens_at、"
            "pay_closes_at 应留空"
        )
    if data.pay_opens_at is not None and data.pay_opens_at < data.opens_at:
        problems.append("pay_opens_at 不能早于报名开始时间 opens_at")
    if data.pay_opens_at and data.pay_closes_at and data.pay_closes_at <= data.pay_opens_at:
        problems.append("pay_closes_at 必须晚于 pay_opens_at")
    if free and data.lock_on == LockOn.PAY:
        problems.append("flow=free 的批次没有缴费，lock_on 不能为 pay（应为 approve 或 confirm）")
    if data.signature and not data.pledge:
        problems.append("signature=yes 需要填写承诺 pledge（学生在承诺下签名）")
    return problems + exam_problems(data)


def exam_problems(data: BatchData) -> list[str]:
    """What contradicts itself in a batch's exam settings, naming the CSV columns."""
    exam = data.exam
    if exam is None:
        return []
    problems = []
    if exam.selection and data.flow != Flow.REVIEW_FIRST:
        # 报考 follows approval, and the courses' sum is paid after it.
        problems.append("exam_selection=yes 只适用于 flow=review_first（审核通过后报考课程再缴费）的批次")
    window = (exam.ticket_opens_at, exam.ticket_closes_at)
    if None in window and window != (None, None):
        problems.append("准考证打印时间 ticket_opens_at 和 ticket_closes_at 须同时填写或同时留空")
    if exam.ticket_opens_at and exam.ticket_closes_at and exam.ticket_closes_at <= exam.ticket_opens_at:
        problems.append("ticket_closes_at 必须晚于 ticket_opens_at")
    if exam.room_size is not None and not 1 <= exam.room_size <= 500:
        problems.append("exam_room_size 应在 1–500 之间")
    return problems


@dataclass(frozen=True)
class Contact:
    """A school's contact for students (客服电话, 邮箱); None = not given."""

    phone: str | None = None
    email: str | None = None


def upsert_school(
    session: Session, code: str, name: str, province: str, city: str, *, contact: Contact | None = None
) -> School:
    """Create or update a school by its code (no commit: part of the caller's unit of work).

    `contact` None leaves the school's contact as it is (a CSV without the contact columns)."""
    school = session.scalar(select(School).where(School.code == code))
    if school is None:
        school = School(code=code, name=name, province=province, city=city)
        session.add(school)
    else:
        school.name, school.province, school.city = name, province, city
    if contact is not None:
        school.contact_phone, school.contact_email = contact.phone, contact.email
    session.flush()
    return school


def upsert_batch(session: Session, school: School, data: BatchData) -> Batch:
    """Create or update a batch by (school, name) (no commit)."""
    if data.closes_at <= data.opens_at:
        raise BatchDataError(f"batch {data.name!r} closes before it opens")
    if data.fee_fen < 0:
        raise BatchDataError(f"batch {data.name!r} has a negative fee")
    problems = workflow_problems(data)
    if problems:
        raise BatchDataError(f"batch {data.name!r}: " + "；".join(problems))
    batch = session.scalar(select(Batch).where(Batch.school_id == school.id, Batch.name == data.name))
    if batch is None:
        batch = Batch(school=school, name=data.name)
        session.add(batch)
    batch.education = data.education
    batch.opens_at, batch.closes_at = data.opens_at, data.closes_at
    batch.fee_fen = data.fee_fen
    batch.review_days_min, batch.review_days_max = data.review_days_min, data.review_days_max
    batch.photo_spec = data.photo_spec.model_dump(mode="json")
    batch.receipt_title = data.receipt_title or RECEIPT_TITLE
    batch.receipt_note = data.receipt_note or RECEIPT_NOTE
    batch.flow, batch.verify_identity, batch.lock_on = data.flow, data.verify_identity, data.lock_on
    batch.pay_opens_at, batch.pay_closes_at = data.pay_opens_at, data.pay_closes_at
    batch.fee_per_attempt = data.fee_per_attempt
    batch.notice, batch.pledge, batch.after_approval = data.notice, data.pledge, data.after_approval
    batch.signature = data.signature
    if data.exam is not None:
        exam = data.exam
        batch.exam_selection, batch.exam_room_size = exam.selection, exam.room_size
        batch.ticket_opens_at, batch.ticket_closes_at = exam.ticket_opens_at, exam.ticket_closes_at
        batch.ticket_notice, batch.ticket_pledge = exam.ticket_notice, exam.ticket_pledge
    session.flush()
    return batch


# --- reading: the 关联学校 cascade and search -----------------------------------------------------

# A search box returns at most this many schools; the page asks the student to narrow it down.
SEARCH_LIMIT = 50
# The scene string of a per-school QR code is SCENE_PREFIX + code (app/services/school_qrcodes.py).
SCENE_PREFIX = "school:"


class SchoolNotFoundError(LookupError):
    message = "找不到这所学校，请重新选择。"


@dataclass(frozen=True)
class Region:
    province: str
    cities: list[str]


@dataclass(frozen=True)
class SearchResult:
    schools: list[School]
    # More schools matched than were returned.
    truncated: bool


def regions(session: Session) -> list[Region]:
    """Provinces with their cities, only where there are schools (the cascade's first two lists)."""
    rows = session.execute(
        select(School.province, School.city).distinct().order_by(School.province, School.city)
    ).all()
    found: dict[str, list[str]] = {}
    for province, city in rows:
        found.setdefault(province, []).append(city)
    return [Region(province, cities) for province, cities in found.items()]


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search(
    session: Session,
    province: str | None = None,
    city: str | None = None,
    q: str | None = None,
    limit: int = SEARCH_LIMIT,
) -> SearchResult:
    """Schools in a province/city and/or whose name contains `q` (case-insensitive), by name."""
    query = select(School)
    if province:
        query = query.where(School.province == province)
    if city:
        query = query.where(School.city == city)
    if q and q.strip():
        query = query.where(School.name.ilike(_like_pattern(q.strip()), escape="\\"))
    found = list(session.scalars(query.order_by(School.name, School.code).limit(limit + 1)))
    return SearchResult(found[:limit], truncated=len(found) > limit)


def get_by_code(session: Session, code: str) -> School | None:
    return session.scalar(select(School).where(School.code == code))


def batches_of(session: Session, code: str) -> tuple[School, list[Batch]]:
    """A school and its batches, newest first. Raises SchoolNotFoundError."""
    school = get_by_code(session, code)
    if school is None:
        raise SchoolNotFoundError(code)
    batches = list(
        session.scalars(
            select(Batch).where(Batch.school_id == school.id).order_by(Batch.opens_at.desc(), Batch.name)
        )
    )
    return school, batches


def scene_school_code(scene: str | None) -> str | None:
    """The school code of a per-school QR scene ("school:<code>"), else None."""
    if scene and scene.startswith(SCENE_PREFIX):
        code = scene[len(SCENE_PREFIX) :].strip()
        return code or None
    return None


# --- the school a student is linked to: fee and contact ------------------------------------------


@dataclass(frozen=True)
class LinkedSchool:
    school_id: int
    school_name: str
    batch_name: str
    fee_fen: int
    contact: Contact


def linked(session: Session, *, openid: str | None = None, user_id: int | None = None) -> LinkedSchool | None:
    """The school and batch a student is linked to now (by openid or user id), or None. One SELECT, so
    read-only WeChat handlers may call it."""
    query = (
        select(School.id, School.name, Batch.name, Batch.fee_fen, School.contact_phone, School.contact_email)
        .select_from(Enrollment)
        .join(Batch, Batch.id == Enrollment.batch_id)
        .join(School, School.id == Batch.school_id)
        .where(Enrollment.active.is_(True))
    )
    if user_id is not None:
        query = query.where(Enrollment.user_id == user_id)
    elif openid is not None:
        query = query.join(User, User.id == Enrollment.user_id).where(User.openid == openid)
    else:
        raise ValueError("linked() needs an openid or a user id")
    row = session.execute(query.limit(1)).first()
    if row is None:
        return None
    school_id, school_name, batch_name, fee_fen, phone, email = row
    return LinkedSchool(school_id, school_name, batch_name, fee_fen, Contact(phone, email))
