"""Exam rows for tests: a 武汉轻工大学-style batch (one exam, no course selection, tickets printed in a
window) with its sites and course, candidates with a done attempt, registrations for batches with
course selection, and valid made-up resident ID numbers. Call inside an app context; each commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from app.extensions import db
from models import Batch, Enrollment, ExamCourse, ExamRegistration, ExamRegistrationCourse, ExamSite, Flow
from models.submission import SubmissionStatus
from tests.factories import NOW, make_flow_batch, make_student

# The seed manual's ticket texts (武汉轻工大学, 考生须知 and the continued-exam pledge), abridged.
TICKET_NOTICE = (
    "1.考生必须凭《准考证》和居民身份证原件参加考试。\n"
    "2.考生入场时间是考前15分钟，开考15分钟后不准入场。\n"
    "3.严禁携带任何资料、通讯工具、电子存储记忆录放设备进入考场。"
)
TICKET_PLEDGE = "本人承诺遵守考试纪律，诚信应考，如有违纪作弊行为，愿意接受处理。"
BATCH_NAME = "2026年武汉轻工大学成人学士学位外语考试"
EXAM_DAY = datetime(2026, 12, 20, 1, 0, tzinfo=UTC)  # 09:00 Beijing


def id_number(serial: int, *, male: bool = True) -> str:
    """A valid made-up resident ID: 420102 (武汉市江岸区), born 1990-01-01, serial and checksum."""
    order = serial % 500 * 2 + (1 if male else 0)  # the 17th digit's parity is the sex
    body = f"42010219900101{order:03d}"
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    check = "10X98765432"[sum(int(d) * w for d, w in zip(body, weights, strict=True)) % 11]
    return body + check


@dataclass
class ExamBatch:
    batch_id: int
    site_ids: list[int]
    course_id: int


def make_exam_batch(
    *,
    sites: tuple[tuple[str, int], ...] = (("0101", 60),),
    room_size: int = 30,
    ticket_open: bool = True,
    selection: bool = False,
    **fields: Any,
) -> ExamBatch:
    """A review_first batch of 武汉轻工大学 (code 10496) with sites (code, capacity), one course on
    EXAM_DAY and the ticket window open now (or opening in three days with ticket_open=False)."""
    opens = NOW - timedelta(days=1) if ticket_open else NOW + timedelta(days=3)
    values: dict[str, Any] = {
        "exam_selection": selection,
        "exam_room_size": room_size,
        "ticket_opens_at": opens,
        "ticket_closes_at": opens + timedelta(days=4),
        "ticket_notice": TICKET_NOTICE,
        "ticket_pledge": TICKET_PLEDGE,
        **fields,
    }
    batch_id = make_flow_batch(Flow.REVIEW_FIRST, code="10496", school_name="武汉轻工大学", **values)
    batch = db.session.get(Batch, batch_id)
    assert batch is not None
    batch.name = BATCH_NAME
    site_ids = []
    for code, capacity in sites:
        site = ExamSite(
            batch_id=batch_id,
            district="武汉市",
            county="江岸区" if code.endswith("1") else "洪山区",
            code=code,
            name=f"武汉轻工大学常青校区 {code} 考点",
            address="武汉市东西湖区常青花园学府南路68号",
            capacity=capacity,
        )
        db.session.add(site)
        db.session.flush()
        site_ids.append(site.id)
    course = ExamCourse(
        batch_id=batch_id,
        code="00015",
        name="英语（二）",
        starts_at=EXAM_DAY,
        ends_at=EXAM_DAY + timedelta(hours=2),
        fee_fen=10000,
    )
    db.session.add(course)
    db.session.commit()
    return ExamBatch(batch_id, site_ids, course.id)


def make_candidate(
    batch_id: int,
    serial: int,
    *,
    status: SubmissionStatus = SubmissionStatus.APPROVED,
    name: str = "李小明",
    male: bool = True,
    answers: dict[str, Any] | None = None,
    photo_bytes: bytes | None = None,
) -> tuple[int, int]:
    """A student with a done attempt (or one in `status`) in the batch; (user id, submission id)."""
    attempt = make_student(
        batch_id,
        status,
        openid=f"o-cand-{serial}",
        id_number=id_number(serial, male=male),
        name=name,
        photo_bytes=photo_bytes,
    )
    if answers is not None:
        enrollment = db.session.query(Enrollment).filter_by(user_id=attempt.user_id).one()
        enrollment.form_answers = answers
        db.session.commit()
    return attempt.user_id, attempt.submission_id


def register(user_id: int, batch_id: int, site_id: int, course_ids: list[int], submission_id: int) -> int:
    """An ExamRegistration at `site_id` with `course_ids`, locked (paid)."""
    registration = ExamRegistration(
        user_id=user_id,
        batch_id=batch_id,
        site_id=site_id,
        submission_id=submission_id,
        locked_at=NOW,
        courses=[ExamRegistrationCourse(course_id=c, fee_fen=10000) for c in course_ids],
    )
    db.session.add(registration)
    db.session.commit()
    return registration.id


# 考生类别 and 应试语种 as 武汉轻工大学's form asks them (its manual's 报名信息), plus a personal field.
FORM = {
    "version": 1,
    "school": "10496",
    "batch": BATCH_NAME,
    "sections": [
        {
            "title": "报名信息",
            "fields": [
                {
                    "key": "category",
                    "label": "考生类别",
                    "kind": "radio",
                    "required": True,
                    "options": ["自考(在籍)", "成考(在籍)"],
                },
                {
                    "key": "language",
                    "label": "应试语种",
                    "kind": "select",
                    "required": True,
                    "options": ["英语", "日语", "俄语"],
                },
                {"key": "mobile", "label": "手机号码", "kind": "phone", "personal": True},
            ],
        }
    ],
    "documents": [],
}


def with_form(batch_id: int) -> None:
    """Attach FORM to the batch (its answers are set per candidate: make_candidate(answers=…))."""
    from app.services import batch_forms

    batch = db.session.get(Batch, batch_id)
    assert batch is not None
    batch.form = batch_forms.to_data(batch_forms.from_data(FORM))
    batch.has_form = True
    db.session.commit()
