"""The student's checklist: every step of their batch's workflow, each done, current, to do or locked.

Derived from one row (the query below: identity, enrollment, batch workflow columns, the latest
attempt in the linked batch and whether a photo passed), never from the services that move attempts
along, so every surface (the 进度 keyword, the home and 我的 pages, GET /api/v1/me) shows the same
checklist. app/services/progress.py reads the same row and takes its next step from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Row, Select, bindparam, exists, select
from sqlalchemy.orm import Session

from app.services import enrollments, returns, wording
from app.services.localtime import stored_utc
from models import Batch, Enrollment, ExamSeat, Identity, Photo, User
from models.exam import ExamRegistration, ExamRegistrationCourse
from models.school import Flow, LockOn
from models.submission import Submission, SubmissionStatus

S = SubmissionStatus
StepStatus = Literal["done", "current", "todo", "locked"]


@dataclass(frozen=True)
class Step:
    # bind | school | notice | form | documents | photo | submit | pay | verify | review | exam | confirm
    # | ticket
    # | after
    key: str
    label: str
    status: StepStatus
    url: str
    hint: str = ""  # one short sentence: what to do now (current) or why not (locked)


# The attempt has left the student's hands: photo and submission are done.
SUBMITTED = frozenset(
    {
        S.AWAITING_PAYMENT,
        S.VERIFYING,
        S.PENDING_REVIEW,
        S.IN_REVIEW,
        S.APPROVED_UNPAID,
        S.APPROVED,
        S.REFUSED,
        S.VOID,
    }
)
# The identity check passed (or was not asked for) and a reviewer has or had the attempt.
VERIFIED = frozenset({S.PENDING_REVIEW, S.IN_REVIEW, S.APPROVED_UNPAID, S.APPROVED, S.REFUSED, S.VOID})
PAID_FIRST = frozenset({S.VERIFYING, S.PENDING_REVIEW, S.IN_REVIEW, S.APPROVED, S.REFUSED})


# Before a batch is linked its flow is unknown: the steps every flow has.
GENERIC = ("bind", "school", "photo", "review")


def state() -> Select[*tuple[Any, ...]]:
    """One row: the user, the active identity, the linked batch's workflow columns, the enrollment,
    whether a photo passed its checks for that batch (also: since the latest attempt), and the latest
    attempt in that batch (a correlated subquery on the submissions' user index)."""
    photo_passed = (
        exists()
        .where(Photo.user_id == User.id, Photo.batch_id == Enrollment.batch_id, Photo.passed)
        .label("photo_passed")
    )
    latest = (
        select(Submission.id)
        .where(Submission.user_id == User.id, Submission.batch_id == Enrollment.batch_id)
        .order_by(Submission.created_at.desc(), Submission.id.desc())
        .limit(1)
        .correlate(User, Enrollment)
        .scalar_subquery()
    )
    # A passed photo uploaded after the latest attempt: the new photo after a 驳回.
    photo_since = (
        exists()
        .where(
            Photo.user_id == User.id,
            Photo.batch_id == Enrollment.batch_id,
            Photo.passed,
            Photo.created_at > Submission.created_at,
        )
        .label("photo_since")
    )
    # A seat in the linked batch: its 准考证 can be printed in the ticket window.
    seated = (
        exists().where(ExamSeat.user_id == User.id, ExamSeat.batch_id == Enrollment.batch_id).label("seated")
    )
    # 报考 done: a registration in the linked batch holding at least one course.
    registered = (
        exists()
        .where(
            ExamRegistration.user_id == User.id,
            ExamRegistration.batch_id == Enrollment.batch_id,
            ExamRegistrationCourse.registration_id == ExamRegistration.id,
        )
        .label("exam_registered")
    )
    return (
        select(
            User.id,
            Identity.id.label("identity_id"),
            Batch.name,
            Batch.opens_at,
            Batch.closes_at,
            Batch.review_days_min,
            Batch.review_days_max,
            Batch.flow,
            Batch.verify_identity,
            Batch.pay_opens_at,
            Batch.pay_closes_at,
            Batch.lock_on,
            Batch.fee_per_attempt,
            Batch.signature,
            (Batch.notice.is_not(None) & (Batch.notice != "")).label("has_notice"),
            Batch.after_approval,
            Batch.ticket_opens_at,
            Batch.ticket_closes_at,
            seated,
            Enrollment.locked_at.label("enrollment_locked_at"),
            Enrollment.notice_acked_at,
            Batch.has_form,
            Batch.has_documents,
            Batch.exam_selection,
            registered,
            Enrollment.form_completed_at,
            Enrollment.documents_completed_at,
            photo_passed,
            photo_since,
            Submission.id.label("submission_id"),
            Submission.identity_id.label("submission_identity_id"),
            Submission.status.label("submission_status"),
            Submission.status_reason,
            Submission.rejected_items,
            Submission.paid_at,
            Submission.fee_paid_by_id,
            Submission.confirmed_at,
            Submission.pledged_at,
        )
        .outerjoin(Identity, (Identity.user_id == User.id) & Identity.active)
        .outerjoin(Enrollment, (Enrollment.user_id == User.id) & Enrollment.active)
        .outerjoin(Batch, Batch.id == Enrollment.batch_id)
        .outerjoin(Submission, Submission.id == latest)
    )


def of(session: Session, user_id: int, now: datetime) -> list[Step]:
    """The checklist of the student `user_id` (one query, read-only)."""
    return from_row(session.execute(BY_USER, {"user_id": user_id}).first(), now)


# Built once: constructing this select costs more CPU than the database spends running it.
BY_USER = state().where(User.id == bindparam("user_id"))


def current(checklist: list[Step]) -> Step | None:
    return next((step for step in checklist if step.status == "current"), None)


def _aware(moment: datetime | None) -> datetime | None:
    return None if moment is None else stored_utc(moment)


def _keys(row: Row[Any]) -> list[str]:
    """The batch's steps in order (flows of models.Flow); before linking, the steps every flow has."""
    if row.name is None:
        return list(GENERIC)
    keys = ["bind", "school", *(["notice"] if row.has_notice else [])]
    # Only batches that define a form or document slots ask for them (app/services/batch_forms.py).
    keys += [*(["form"] if row.has_form else []), *(["documents"] if row.has_documents else []), "photo"]
    verify = ["verify"] if row.verify_identity else []
    if row.flow == Flow.PAY_FIRST:
        confirm = ["confirm"] if row.lock_on == LockOn.CONFIRM else []
        keys += ["pay", *verify, "review", *confirm]
    elif row.flow == Flow.REVIEW_FIRST:
        # 新疆自考: after approval the candidate chooses the courses (报考), whose sum is what they pay.
        keys += ["submit", *verify, "review", *(["exam"] if row.exam_selection else []), "pay"]
    else:
        keys += ["submit", *verify, "review"]
    # Batches that print an admission ticket (准考证) end with it, before what comes after approval.
    keys += ["ticket"] if row.ticket_opens_at is not None and row.ticket_closes_at is not None else []
    return keys + (["after"] if row.after_approval else [])


def from_row(row: Row[Any] | None, now: datetime) -> list[Step]:
    """The checklist from the state row (None: a sender the service does not know yet)."""
    if row is None:
        # Nobody known yet: the steps every flow starts with.
        return [
            Step("bind", wording.STEP_LABELS["bind"], "current", "/h5/bind", wording.STEP_HINTS["bind"]),
            *(Step(key, wording.STEP_LABELS[key], "todo", wording.STEP_URLS[key]) for key in GENERIC[1:]),
        ]
    status = S(row.submission_status) if row.submission_status is not None else None
    reason = (row.status_reason or "").rstrip("。")
    keys = _keys(row)
    flow = row.flow
    opens, closes = _aware(row.opens_at), _aware(row.closes_at)
    sign_up_open = opens is not None and closes is not None and opens <= now < closes
    pay_opens, pay_closes = _aware(row.pay_opens_at), _aware(row.pay_closes_at)
    submission_id = row.submission_id
    submitted = status in SUBMITTED
    # 身份核验失败 sends the student back to their identity until they bind another one.
    identity_failed = status == S.VERIFY_FAILED and row.identity_id in (None, row.submission_identity_id)
    # A 驳回 that named other items only leaves the photo as it was: it goes in again unchanged.
    photo_back = status == S.RETURNED and returns.photo_goes_back(status, row.rejected_items)
    returned_fresh = photo_back and not row.photo_since

    done: dict[str, bool] = {
        "bind": row.identity_id is not None and not identity_failed,
        "school": row.name is not None,
        "notice": row.notice_acked_at is not None or submitted,
        "form": row.form_completed_at is not None or submitted,
        "documents": row.documents_completed_at is not None or submitted,
        "photo": submitted or (bool(row.photo_passed) and not returned_fresh),
        "submit": submitted,
        "verify": status in VERIFIED,
        "review": status in (S.APPROVED, S.APPROVED_UNPAID),
        "confirm": row.confirmed_at is not None,
        "exam": bool(row.exam_registered) or status == S.APPROVED,
        "after": False,
        "ticket": False,
    }
    done["pay"] = status in PAID_FIRST if flow == Flow.PAY_FIRST else status == S.APPROVED

    hints: dict[str, str] = {}
    locked: dict[str, str] = {}
    urls = dict(wording.STEP_URLS)
    if status in (S.AWAITING_PAYMENT, S.APPROVED_UNPAID) and submission_id is not None:
        urls["pay"] = f"/h5/pay/{submission_id}"
    if submission_id is not None:
        urls["confirm"] = f"/h5/confirm/{submission_id}"

    if identity_failed:
        hints["bind"] = wording.step_verify_failed(reason)
    if status == S.RETURNED:
        hints["photo"] = wording.step_returned(reason)
    if status == S.AWAITING_PAYMENT:
        hints["pay"] = wording.STEP_PAY_NOW
    if status in (S.CANCELLED, S.REFUNDED):
        hints["pay" if flow == Flow.PAY_FIRST else "submit"] = wording.step_again(status)
    if (
        flow == Flow.PAY_FIRST
        and status == S.RETURNED
        and not row.fee_per_attempt
        and (row.paid_at is not None or row.fee_paid_by_id is not None)
    ):
        # fee_per_attempt=no: the resubmission after 驳回 is covered by the earlier payment.
        hints["pay"] = wording.STEP_PAY_COVERED
    if status == S.RETURNED and row.rejected_items and not photo_back:
        # An itemised 驳回 that kept the photo: the next step (submit, or pay again) names what to fix.
        for key in ("submit", "pay"):
            hints[key] = " ".join(filter(None, [wording.step_fix_items(reason), hints.get(key)]))
    if row.name is not None and not sign_up_open and opens is not None and closes is not None:
        # Nothing can be submitted (or, pay-first, paid) outside the sign-up window.
        window = wording.step_sign_up_closed(row.name, opens, closes, now)
        for key in (
            "notice",
            "form",
            "documents",
            "photo",
            "submit",
            *(["pay"] if flow == Flow.PAY_FIRST else []),
        ):
            locked[key] = window
    if flow == Flow.REVIEW_FIRST and pay_opens is not None and pay_closes is not None:
        hints["pay"] = wording.pay_window(pay_opens, pay_closes)
        # A window still to come only holds a student who has reached it; one that closed is final.
        if now >= pay_closes or (now < pay_opens and status == S.APPROVED_UNPAID):
            locked["pay"] = wording.step_pay_window(pay_opens, pay_closes, now)
    if status == S.REFUSED:
        locked["review"] = wording.step_refused(reason)
    if status == S.VOID:
        locked["pay"] = wording.STEP_VOID
    if "ticket" in keys:
        ticket_opens, ticket_closes = _aware(row.ticket_opens_at), _aware(row.ticket_closes_at)
        assert ticket_opens is not None and ticket_closes is not None  # _keys checked
        if now < ticket_opens:
            locked["ticket"] = wording.ticket_window(ticket_opens, ticket_closes) + "。"
        elif now >= ticket_closes:
            locked["ticket"] = wording.ticket_closed(ticket_opens, ticket_closes)
        else:
            hints["ticket"] = wording.TICKET_STEP_NOW if row.seated else wording.TICKET_NO_SEAT
    if row.after_approval:
        hints["after"] = row.after_approval
    hints.setdefault("verify", wording.STEP_HINTS["verify"])
    if row.name is not None:
        in_review = status == S.IN_REVIEW
        hints["review"] = wording.step_review(row.review_days_min, row.review_days_max, in_review)

    checklist: list[Step] = []
    found_current = False  # the first step not done is the only one that can be current
    final = status in (S.REFUSED, S.VOID)
    for key in keys:
        label = wording.STEP_LABELS["pay_review_first" if key == "pay" and flow != Flow.PAY_FIRST else key]
        if key == "confirm" and not row.signature:
            label = wording.STEP_LABELS["confirm_plain"]
        url = urls[key]
        if done.get(key):
            checklist.append(Step(key, label, "done", url))
            continue
        if key == "after" and not done["review"]:
            checklist.append(Step(key, label, "locked" if final else "todo", url))
            continue
        why = locked.get(key)
        if key == "ticket" and why is not None and not final:
            # Held by its window only: what comes after it (通过后) is not held with it.
            checklist.append(Step(key, label, "locked", url, why))
            continue
        if final or why is not None:
            checklist.append(Step(key, label, "locked", url, why or ""))
            found_current = True  # a step behind a locked one waits for it
            continue
        if found_current:
            checklist.append(Step(key, label, "todo", url))
            continue
        found_current = True
        hint = hints.get(key) or wording.STEP_HINTS.get(key, "")
        if key == "photo" and row.name is not None and status != S.RETURNED:
            hint = wording.step_photo(row.name)
        checklist.append(Step(key, label, "current", url, hint))

    return _relink_when_closed(row, checklist, now, sign_up_open, submitted)


def _relink_when_closed(
    row: Row[Any], checklist: list[Step], now: datetime, sign_up_open: bool, submitted: bool
) -> list[Step]:
    """Outside the sign-up window with nothing submitted, the one thing left is another batch: the
    school step becomes current (locked when the link is frozen)."""
    if row.name is None or sign_up_open or submitted or current(checklist) is not None:
        return checklist
    first_open = next((s for s in checklist if s.status != "done"), None)
    if first_open is None or first_open.key not in ("notice", "form", "documents", "photo", "submit", "pay"):
        return checklist
    if row.enrollment_locked_at is not None:
        status: StepStatus = "locked"
        hint = wording.STEP_SCHOOL_FROZEN
    else:
        status = "current"
        hint = wording.step_relink(enrollments.closed_message(row, now), now < stored_utc(row.opens_at))
    return [Step(s.key, s.label, status, s.url, hint) if s.key == "school" else s for s in checklist]
