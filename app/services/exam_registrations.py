"""报考: an approved candidate's choice of site, major and courses in a batch with course selection, the
order's amount (the sum of the chosen courses' fees), and the exam office's cancellation of a course.

新疆自考's manual: after 审核通过 the candidate chooses 地州 → 县市 (the site), a major and at least one
course; 每次报考只能进行一次网上缴费，缴费订单生成后不能增、减或修改已填报课程. So a registration may
change freely until its first order exists: the order's creation sets `locked_at` in the same commit
(`order_amount`), and every change after it is refused.

A site seats `capacity` candidates. Taking a seat first updates the site's row (a no-op UPDATE): on
PostgreSQL that is a row lock held to the commit, on SQLite the database's write lock, so of two requests
for the last seat the second counts after the first committed and is refused.

A special major (监所管理, 公安管理, 护理学) may be chosen only with materials a reviewer has seen: the
batch's definition has a document slot `special_<major code>`, the candidate uploaded a file to it
before the attempt that was approved, and that attempt was approved (which choosing needs anyway).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import exists, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.services import applications, batch_forms, enrollments, outbox, payments, wording
from app.services.errors import ServiceError
from app.services.exam_catalog import exam_time_label, exam_time_range
from app.services.job_kinds import JobKind
from models import Batch, Document, User
from models.exam import ExamCourse, ExamMajor, ExamRegistration, ExamRegistrationCourse, ExamSite
from models.submission import OrderStatus, PaymentOrder, Submission, SubmissionStatus

# The document slot a special major's materials go in (docs/exams.md).
SPECIAL_SLOT_PREFIX = "special_"


class RegistrationError(ServiceError):
    message = "暂时不能报考"


class RegistrationNotOpenError(RegistrationError):
    """No approved attempt in a batch with course selection: nothing to choose (yet)."""

    message = "注册信息审核通过后才能报考。"


class RegistrationLockedError(RegistrationError):
    message = "缴费订单生成后不能增、减或修改已填报课程"


class RegistrationMissingError(RegistrationError):
    """An order is asked for before any course was chosen."""

    message = "请先完成报考（选择考点、专业和课程），再缴费。"


class RegistrationInvalidError(RegistrationError):
    """The choice breaks a rule; `problems` are (field, message) pairs in Chinese."""

    message = "报考信息有误，请按提示修改。"

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__()
        self.problems = problems


class CourseNotFoundError(RegistrationError):
    message = "找不到这门课程。"


@dataclass(frozen=True)
class CourseLine:
    code: str
    name: str
    exam_time: str  # "2021年04月01日 上午"
    exam_time_range: str  # "2021-04-01 09:00–11:30"
    fee_fen: int
    cancelled: bool


@dataclass(frozen=True)
class RegistrationView:
    batch: Batch
    submission: Submission
    registration: ExamRegistration | None
    courses: list[CourseLine]
    # Sum of the courses' fees (cancelled ones excluded): what the order charges.
    total_fen: int
    editable: bool


# --- reading -----------------------------------------------------------------------------------------


def _approved_attempt(session: Session, user_id: int) -> tuple[Batch, Submission]:
    """The linked batch with course selection and the student's latest attempt there, approved."""
    enrollment = enrollments.active(session, user_id)
    if enrollment is None or not enrollment.batch.exam_selection:
        raise RegistrationNotOpenError("你所关联的批次不需要报考课程。")
    batch = enrollment.batch
    submission = session.scalar(
        select(Submission)
        .where(Submission.user_id == user_id, Submission.batch_id == batch.id)
        .order_by(Submission.created_at.desc(), Submission.id.desc())
        .limit(1)
    )
    if submission is None or submission.status not in (
        SubmissionStatus.APPROVED_UNPAID,
        SubmissionStatus.APPROVED,
    ):
        raise RegistrationNotOpenError()
    return batch, submission


def find(session: Session, user_id: int, batch_id: int) -> ExamRegistration | None:
    return session.scalar(
        select(ExamRegistration).where(
            ExamRegistration.user_id == user_id, ExamRegistration.batch_id == batch_id
        )
    )


def _lines(registration: ExamRegistration | None) -> list[CourseLine]:
    if registration is None:
        return []
    chosen = sorted(registration.courses, key=lambda rc: (rc.course.starts_at, rc.course.code))
    return [
        CourseLine(
            rc.course.code,
            rc.course.name,
            exam_time_label(rc.course.starts_at),
            exam_time_range(rc.course.starts_at, rc.course.ends_at),
            rc.fee_fen,
            rc.cancelled_at is not None,
        )
        for rc in chosen
    ]


def _locked(session: Session, registration: ExamRegistration | None, submission: Submission) -> bool:
    if registration is not None and registration.locked_at is not None:
        return True
    # Paid, or an order on its way: either way the courses are what the money is for.
    return submission.status != SubmissionStatus.APPROVED_UNPAID or bool(
        session.scalar(select(exists().where(PaymentOrder.submission_id == submission.id)))
    )


def view(session: Session, user_id: int) -> RegistrationView:
    """The student's registration in their linked batch (None before the first choice). Raises
    RegistrationNotOpenError where there is nothing to choose."""
    batch, submission = _approved_attempt(session, user_id)
    registration = find(session, user_id, batch.id)
    lines = _lines(registration)
    total = sum(line.fee_fen for line in lines if not line.cancelled)
    return RegistrationView(
        batch, submission, registration, lines, total, not _locked(session, registration, submission)
    )


# --- choosing ----------------------------------------------------------------------------------------


def choose(
    session: Session,
    user_id: int,
    site_code: str | None,
    major_code: str | None,
    course_codes: list[str],
    now: datetime,
    *,
    pledged: bool,
) -> RegistrationView:
    """Make or change the registration; commits. Raises RegistrationNotOpenError,
    RegistrationLockedError (an order exists) or RegistrationInvalidError with every problem.
    `pledged`: the candidate ticked 本人担保以上信息真实准确, recorded with the choice."""
    batch, submission = _approved_attempt(session, user_id)
    registration = find(session, user_id, batch.id)
    if _locked(session, registration, submission):
        raise RegistrationLockedError()
    problems: list[tuple[str, str]] = []

    site = None
    if not site_code:
        problems.append(("site_code", "请选择考点"))
    else:
        site = session.scalar(
            select(ExamSite).where(ExamSite.batch_id == batch.id, ExamSite.code == site_code)
        )
        if site is None:
            problems.append(("site_code", "找不到这个考点，请重新选择"))

    major = None
    if not major_code:
        problems.append(("major_code", "请选择报考专业"))
    else:
        major = session.scalar(
            select(ExamMajor).where(ExamMajor.batch_id == batch.id, ExamMajor.code == major_code)
        )
        if major is None:
            problems.append(("major_code", "找不到这个专业，请重新选择"))
        elif major.special and not _special_materials_approved(session, batch, submission, major):
            problems.append(
                (
                    "major_code",
                    f"「{major.name}」为特殊专业，须在注册时上传相关材料并审核通过后方可报考",
                )
            )

    courses = _check_courses(session, batch, major, course_codes, problems)
    if not pledged:
        problems.append(("pledge", "请勾选「本人担保以上信息真实准确」后再提交"))
    if site is not None and not problems:
        _take_seat(session, site, user_id, problems)
    if problems:
        session.rollback()
        raise RegistrationInvalidError(problems)
    assert site is not None and major is not None

    if registration is None:
        registration = ExamRegistration(user_id=user_id, batch_id=batch.id, site_id=site.id)
        session.add(registration)
    registration.site_id, registration.major_id = site.id, major.id
    registration.submission_id = submission.id
    registration.updated_at = registration.pledged_at = now
    wanted = {course.id: course for course in courses}
    for kept in list(registration.courses):
        if kept.course_id not in wanted:
            registration.courses.remove(kept)
    held = {rc.course_id for rc in registration.courses}
    for course_id, course in wanted.items():
        if course_id not in held:
            # The fee as it is now: a later change of the catalogue does not change what was chosen.
            registration.courses.append(ExamRegistrationCourse(course=course, fee_fen=course.fee_fen))
    try:
        session.commit()
    except IntegrityError:
        # A double tap on 提交 choosing two different sites: the other request made the registration.
        session.rollback()
        raise RegistrationError("报考信息刚刚已提交，请刷新页面后再试。") from None
    return view(session, user_id)


def _check_courses(
    session: Session,
    batch: Batch,
    major: ExamMajor | None,
    codes: list[str],
    problems: list[tuple[str, str]],
) -> list[ExamCourse]:
    codes = list(dict.fromkeys(code.strip() for code in codes if code and code.strip()))
    if not codes:
        problems.append(("course_codes", "每次报考至少选择一门课程"))
        return []
    found = {
        course.code: course
        for course in session.scalars(
            select(ExamCourse).where(ExamCourse.batch_id == batch.id, ExamCourse.code.in_(codes))
        )
    }
    unknown = [code for code in codes if code not in found]
    if unknown:
        problems.append(("course_codes", "找不到课程：" + "、".join(unknown)))
    chosen = [found[code] for code in codes if code in found]
    for course in chosen:
        if course.cancelled_at is not None:
            problems.append(("course_codes", f"「{course.name}」（{course.code}）已取消考试，不能报考"))
        elif major is not None and course.major_id is not None and course.major_id != major.id:
            problems.append(
                ("course_codes", f"「{course.name}」（{course.code}）不属于所选专业「{major.name}」")
            )
    ordered = sorted(chosen, key=lambda c: (c.starts_at, c.code))
    for i, first in enumerate(ordered):
        for second in ordered[i + 1 :]:
            if second.starts_at >= first.ends_at:
                break
            problems.append(
                (
                    "course_codes",
                    f"「{first.name}」（{exam_time_range(first.starts_at, first.ends_at)}）与"
                    f"「{second.name}」（{exam_time_range(second.starts_at, second.ends_at)}）考试时间冲突，"
                    "只能选择其中一门",
                )
            )
    return chosen


def _take_seat(session: Session, site: ExamSite, user_id: int, problems: list[tuple[str, str]]) -> None:
    """Refuse a full site, counting under the site's lock (see the module's docstring)."""
    session.execute(
        update(ExamSite)
        .where(ExamSite.id == site.id)
        .values(capacity=ExamSite.capacity)
        .execution_options(synchronize_session=False)
    )
    taken = session.scalar(
        select(func.count())
        .select_from(ExamRegistration)
        .where(ExamRegistration.site_id == site.id, ExamRegistration.user_id != user_id)
    )
    if int(taken or 0) >= site.capacity:
        problems.append(("site_code", f"考点「{site.name}」名额已满，请选择其他考点"))


def _special_materials_approved(
    session: Session, batch: Batch, submission: Submission, major: ExamMajor
) -> bool:
    definition = applications.definition_of(batch)
    key = SPECIAL_SLOT_PREFIX + major.code
    if definition is None or batch_forms.slot(definition, key) is None:
        return False
    # Uploaded before the approved attempt was submitted: the reviewer had it in front of them.
    return bool(
        session.scalar(
            select(
                exists().where(
                    Document.user_id == submission.user_id,
                    Document.batch_id == batch.id,
                    Document.slot == key,
                    Document.created_at <= submission.created_at,
                )
            )
        )
    )


# --- the order ----------------------------------------------------------------------------------------


def order_amount(session: Session, submission: Submission, now: datetime) -> int:
    """The amount of an order for `submission` in a batch with course selection: the sum of its
    registration's courses (cancelled ones excluded). Locks the registration (no commit: the order's
    unit of work). Raises RegistrationMissingError before any course is chosen."""
    registration = find(session, submission.user_id, submission.batch_id)
    total = 0
    if registration is not None:
        total = sum(rc.fee_fen for rc in registration.courses if rc.cancelled_at is None)
    if registration is None or total <= 0:
        raise RegistrationMissingError()
    registration.submission_id = submission.id
    if registration.locked_at is None:
        registration.locked_at = now
    return total


# --- the exam office cancels a course ------------------------------------------------------------------


@dataclass(frozen=True)
class CancelResult:
    course_code: str
    course_name: str
    refunds: int  # refunds requested now
    refunded_fen: int
    unpaid: int  # registrations without an order: the course is dropped from them, nothing to refund
    awaiting: int  # ordered but not paid yet: run again once they are paid
    already: bool  # the course was cancelled before this run


def cancel_course(
    session: Session, batch: Batch, course_code: str, reason: str, requested_by: str, now: datetime
) -> CancelResult:
    """Cancel a course: no new choices of it, and for every registration holding it, its fee back
    through a partial refund of the paid order (the student told); commits once. Running it again
    refunds nothing more: each chosen course is marked by a conditional update before its refund. A
    registration with an order not paid yet keeps the course until it is paid (the next run refunds)."""
    course = session.scalar(
        select(ExamCourse).where(ExamCourse.batch_id == batch.id, ExamCourse.code == course_code)
    )
    if course is None:
        raise CourseNotFoundError(f"本批次没有代码为 {course_code} 的课程。")
    reason = (reason.strip() or f"课程「{course.name}」取消考试")[:80]
    already = course.cancelled_at is not None
    if not already:
        course.cancelled_at, course.cancel_reason = now, reason
    held = session.execute(
        select(ExamRegistrationCourse, ExamRegistration)
        .join(ExamRegistration, ExamRegistration.id == ExamRegistrationCourse.registration_id)
        .where(ExamRegistrationCourse.course_id == course.id, ExamRegistrationCourse.cancelled_at.is_(None))
        .order_by(ExamRegistrationCourse.id)
    ).all()
    refunds = refunded = unpaid = awaiting = 0
    for chosen, registration in held:
        order = None
        if registration.submission_id is not None:
            order = session.scalar(
                select(PaymentOrder).where(
                    PaymentOrder.submission_id == registration.submission_id,
                    PaymentOrder.status == OrderStatus.PAID,
                )
            )
        if order is None and registration.locked_at is not None:
            # Ordered but not paid: the open order still charges the course. It stays chosen, so a
            # run after the payment refunds it; a renewed order would charge it too.
            awaiting += 1
            continue
        marked = session.execute(
            update(ExamRegistrationCourse)
            .where(ExamRegistrationCourse.id == chosen.id, ExamRegistrationCourse.cancelled_at.is_(None))
            .values(cancelled_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount  # type: ignore[attr-defined]
        if marked != 1:
            continue  # another run took it
        if order is None:
            unpaid += 1  # no order yet: the course is dropped, the next order charges the rest
            continue
        refund = payments.new_refund(session, order, reason, requested_by, amount_fen=chosen.fee_fen)
        session.execute(
            update(ExamRegistrationCourse)
            .where(ExamRegistrationCourse.id == chosen.id)
            .values(refund_id=refund.id)
            .execution_options(synchronize_session=False)
        )
        refunds += 1
        refunded += chosen.fee_fen
        openid = session.scalar(select(User.openid).where(User.id == registration.user_id))
        if openid:
            outbox.enqueue(
                session,
                JobKind.SEND_TEXT,
                {
                    "openid": openid,
                    "text": wording.course_cancelled(course.name, course.code, chosen.fee_fen, reason),
                },
                key=f"notice:refund:{refund.id}",
            )
    session.commit()
    return CancelResult(course.code, course.name, refunds, refunded, unpaid, awaiting, already)
