"""Staff review: the queue, claims, decisions, and the result push that commits with each decision.

A claim marks an attempt 审核中 (in_review) for one reviewer until `claim_expires_at`; an expired
claim counts as unclaimed, so no periodic job has to reset it. Claims and decisions are conditional
UPDATEs (the row's state is re-checked by the database under its row lock), so two reviewers racing
for the same attempt get exactly one winner on SQLite and PostgreSQL alike.

Scoping: a reviewer sees only the attempts of their schools; anything else is "not found" (404 at
the edge), never "forbidden", so ids of other schools' attempts leak nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, NoReturn

from sqlalchemy import ColumnElement, and_, false, func, or_, select, true, tuple_, union_all, update
from sqlalchemy.orm import Session

from app.services import applications, audit, flows, pushes, returns, submissions, wording
from app.services.errors import ServiceError
from app.services.id_documents import DocumentType, normalise_number
from app.services.identities import name_lookup_hash
from app.services.pii import Keyring
from app.services.pushes import ResultPush
from models import AuditEntry, Batch, Enrollment, Identity, LockOn, Photo, School, Staff, StaffRole, User
from models.submission import (
    IN_FLIGHT,
    STATUS_LABELS,
    OrderStatus,
    PaymentOrder,
    Submission,
    SubmissionStatus,
)

# What a reviewer picks from; free text (or a preset plus details) is accepted as well.
PRESET_REASONS: tuple[str, ...] = (
    "照片质量不符合学信网要求",
    "背景颜色不符",
    "身份核验失败",
    "人像不清晰",
    "非本人近期照片",
)
MAX_REASON_CHARS = 200
QUEUE_STATUSES: tuple[SubmissionStatus, ...] = (SubmissionStatus.PENDING_REVIEW, SubmissionStatus.IN_REVIEW)
MAX_PAGE = 200

Decision = Literal["approve", "return", "refuse"]
DECISIONS: dict[str, SubmissionStatus] = {
    "approve": SubmissionStatus.APPROVED,
    "return": SubmissionStatus.RETURNED,
    "refuse": SubmissionStatus.REFUSED,
}
# 审核通过，待缴费 is a decision too (review_first): shown with its decider, and it can be withdrawn.
DECIDED = frozenset((*DECISIONS.values(), SubmissionStatus.APPROVED_UNPAID))
APPROVALS = (SubmissionStatus.APPROVED, SubmissionStatus.APPROVED_UNPAID)
# 逾期未缴费 was approved first: the queue still names who approved it and when.
SHOWS_DECIDER = DECIDED | {SubmissionStatus.VOID}


class ReviewError(ServiceError):
    message = "无法完成审核操作"


class ReviewNotFoundError(ReviewError):
    """Unknown, or belongs to a school the reviewer does not cover (404 at the edge)."""

    message = "没有找到该提交"


class ReviewClaimedError(ReviewError):
    message = "已被其他审核员领取"


class ReviewClaimRequiredError(ReviewError):
    message = "请先领取该提交再审核（领取已过期时请重新领取）"


class ReviewNotHeldError(ReviewClaimRequiredError):
    """A reviewer's batch approval named an attempt they have not claimed: a glance at a row someone
    else (or no one) opened is no review."""

    message = "只能批量通过自己已领取的提交"


class ReviewStateError(ReviewError):
    message = "该提交当前不在待审核状态"


class ReviewReasonError(ReviewError):
    message = "驳回或不通过需要填写原因"


class ReviewStaffError(ReviewError):
    message = "账号已停用"


class ReviewItemsError(ReviewError):
    message = "退回的项目有误"


# --- scoping ---------------------------------------------------------------------------------


def school_scope(staff: Staff) -> set[int] | None:
    """The schools a staff member covers; None = all (admins)."""
    if not staff.is_active:
        raise ReviewStaffError()
    if staff.role == StaffRole.ADMIN:
        return None
    return {school.id for school in staff.schools}


def _batch_ids(session: Session, school_ids: set[int]) -> list[int]:
    if not school_ids:
        return []
    return list(session.scalars(select(Batch.id).where(Batch.school_id.in_(school_ids))))


def _in_scope(session: Session, school_ids: set[int] | None) -> ColumnElement[bool]:
    """A WHERE clause limiting submissions to the schools' batches (a literal id list: batches are
    few, and a literal list lets the planner estimate the filter)."""
    if school_ids is None:
        return true()
    ids = _batch_ids(session, school_ids)
    return Submission.batch_id.in_(ids) if ids else false()


# --- the queue -------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueItem:
    id: int
    created_at: datetime
    status: SubmissionStatus
    status_label: str
    school_id: int
    school_name: str
    batch_id: int
    batch_name: str
    flow_label: str  # 先缴费 / 先审后缴 / 免费: whether 通过 still awaits the fee
    user_id: int
    identity_id: int
    photo_id: int
    has_normalized: bool
    claimed_by_id: int | None
    claim_expires_at: datetime | None
    decided_by_id: int | None
    decided_at: datetime | None


@dataclass(frozen=True)
class Page:
    items: list[QueueItem]
    # Pass back as `after` for the next page; None on the last page.
    next_cursor: tuple[datetime, int] | None


def queue(
    session: Session,
    *,
    school_ids: set[int] | None,
    batch_id: int | None = None,
    status: Sequence[SubmissionStatus] | SubmissionStatus = QUEUE_STATUSES,
    created_from: datetime | None = None,
    created_to: datetime | None = None,
    after: tuple[datetime, int] | None = None,
    limit: int = 50,
    now: datetime | None = None,
    number_hashes: Sequence[str] | None = None,
    name_hashes: Sequence[str] | None = None,
    newest_first: bool = False,
) -> Page:
    """Oldest first, keyset-paginated on (created_at, id): never OFFSET, so page 10,000 costs what
    page 1 does.

    Each status is read as its own branch of a UNION ALL, ordered and limited on the index
    (status, created_at, id), and the branches are merged: `status IN (...)` over one index would
    have to read and sort every waiting row before the first page comes out. `created_to` is
    exclusive. `now` only labels expired claims 未审核 (they count as unclaimed).
    `number_hashes` / `name_hashes` (from `search_keys`) keep the attempts made under those ID numbers
    / those whole names only.
    `newest_first` reverses the order (decided attempts: the recent ones are the ones looked for).
    """
    statuses = [status] if isinstance(status, SubmissionStatus) else list(dict.fromkeys(status))
    limit = max(1, min(limit, MAX_PAGE))
    scope = _in_scope(session, school_ids)
    if batch_id is not None:
        scope = and_(scope, Submission.batch_id == batch_id)
    conditions: list[ColumnElement[bool]] = [scope]
    if created_from is not None:
        conditions.append(Submission.created_at >= created_from)
    if created_to is not None:
        conditions.append(Submission.created_at < created_to)
    if after is not None:
        key = tuple_(Submission.created_at, Submission.id)
        conditions.append(key < tuple(after) if newest_first else key > tuple(after))
    searched: list[ColumnElement[bool]] = []
    if number_hashes is not None:
        searched.append(Identity.number_hash.in_(list(number_hashes)))
    if name_hashes is not None:
        searched.append(Identity.name_hash.in_(list(name_hashes)))
    if searched:
        # The few identities holding the number (or name), by their keyed hash on its index (no row
        # is decrypted), read first so their students' attempts are found on the (user_id,
        # created_at) index. Ended identities count: decided attempts keep the one they were made with.
        holders = session.execute(select(Identity.id, Identity.user_id).where(*searched)).all()
        if not holders:
            return Page([], None)
        conditions.append(Submission.user_id.in_({user_id for _, user_id in holders}))
        conditions.append(Submission.identity_id.in_([identity_id for identity_id, _ in holders]))
    if not statuses:
        return Page([], None)

    # One more row than asked tells whether there is a next page.
    branches = [
        select(Submission.id, Submission.created_at)
        .where(Submission.status == s, *conditions)
        .order_by(*_order(Submission.created_at, Submission.id, newest_first))
        .limit(limit + 1)
        .subquery()
        for s in statuses
    ]
    picked: Any
    if len(branches) == 1:
        picked = branches[0]
    else:
        picked = union_all(*(select(b.c.id, b.c.created_at) for b in branches)).subquery()
    top = (
        select(picked.c.id)
        .order_by(*_order(picked.c.created_at, picked.c.id, newest_first))
        .limit(limit + 1)
        .subquery()
    )

    rows = session.execute(
        select(
            Submission.id,
            Submission.created_at,
            Submission.status,
            Submission.batch_id,
            Submission.user_id,
            Submission.identity_id,
            Submission.photo_id,
            Submission.claimed_by_id,
            Submission.claim_expires_at,
            Submission.decided_by_id,
            Submission.decided_at,
            Photo.normalized_key,
            Batch.name.label("batch_name"),
            Batch.flow,
            School.id.label("school_id"),
            School.name.label("school_name"),
        )
        .join(top, top.c.id == Submission.id)
        .join(Photo, Photo.id == Submission.photo_id)
        .join(Batch, Batch.id == Submission.batch_id)
        .join(School, School.id == Batch.school_id)
        .order_by(*_order(Submission.created_at, Submission.id, newest_first))
    ).all()

    items = [_item(row, now) for row in rows[:limit]]
    more = len(rows) > limit
    return Page(items, (items[-1].created_at, items[-1].id) if more and items else None)


def _order(created_at: Any, ident: Any, newest_first: bool) -> tuple[Any, Any]:
    return (created_at.desc(), ident.desc()) if newest_first else (created_at, ident)


def _item(row: Any, now: datetime | None) -> QueueItem:
    status = SubmissionStatus(row.status)
    claim_live = status == SubmissionStatus.IN_REVIEW and _live(row.claim_expires_at, now)
    shown = (
        SubmissionStatus.PENDING_REVIEW if status == SubmissionStatus.IN_REVIEW and not claim_live else status
    )
    return QueueItem(
        id=row.id,
        created_at=row.created_at,
        status=status,
        status_label=STATUS_LABELS[shown],
        school_id=row.school_id,
        school_name=row.school_name,
        batch_id=row.batch_id,
        batch_name=row.batch_name,
        flow_label=flows.flow_label(row.flow),
        user_id=row.user_id,
        identity_id=row.identity_id,
        photo_id=row.photo_id,
        has_normalized=row.normalized_key is not None,
        claimed_by_id=row.claimed_by_id if claim_live else None,
        claim_expires_at=row.claim_expires_at if claim_live else None,
        decided_by_id=row.decided_by_id if status in SHOWS_DECIDER else None,
        decided_at=row.decided_at if status in SHOWS_DECIDER else None,
    )


@dataclass(frozen=True)
class SearchKeys:
    """What the queue's one search box was read as: an ID number or a whole name, by its hashes."""

    kind: Literal["number", "name"]
    hashes: list[str]

    @property
    def number_hashes(self) -> list[str] | None:
        return self.hashes if self.kind == "number" else None

    @property
    def name_hashes(self) -> list[str] | None:
        return self.hashes if self.kind == "name" else None


def search_keys(keyring: Keyring, text: str) -> SearchKeys | None:
    """Read the search box: an ID number when it can be one, else a whole name; None when it is
    neither (digits that make no whole number, e.g. a part of one, which a hash cannot match).

    Names are hashed whole (like the stored name_hash), so 李四 finds 李四 and never 李 or 李四五;
    nothing is looked up in clear and no row is decrypted."""
    # Every valid number has a digit (parse_document refuses all-letter passport numbers), and no
    # name has one; a Latin name alone may pass the number's shape (JOHNSMITH), so digits decide.
    if any(ch.isdigit() for ch in text):
        hashes = number_search_hashes(keyring, text)
        return None if hashes is None else SearchKeys("number", hashes)
    if not text.strip():
        return None
    return SearchKeys("name", [name_lookup_hash(keyring, text)])


def number_search_hashes(keyring: Keyring, text: str) -> list[str] | None:
    """The lookup hashes an ID number typed into the search box may be stored under (one per
    document type, as identities.bind hashes them); None when the text cannot be an ID number
    (it must be the whole number: a hash matches nothing shorter)."""
    number = normalise_number(text)
    if not 6 <= len(number) <= 20 or not number.isascii() or not number.isalnum():
        return None
    return [keyring.lookup_hash(f"{doc.value}:{number}") for doc in DocumentType]


def _live(expires_at: datetime | None, now: datetime | None) -> bool:
    return expires_at is not None and (now is None or expires_at > now)


def get(session: Session, staff: Staff, submission_id: int) -> Submission:
    """One attempt as its reviewer may see it; other schools' attempts are not found."""
    found = session.scalar(
        select(Submission).where(Submission.id == submission_id, _in_scope(session, school_scope(staff)))
    )
    if found is None:
        raise ReviewNotFoundError()
    return found


# --- claims ----------------------------------------------------------------------------------


def claim(
    session: Session, staff: Staff, submission_id: int, now: datetime, *, minutes: int = 30
) -> datetime:
    """Take an attempt for review (or extend one's own claim); returns when the claim expires.

    Claimable: 未审核, or 审核中 whose claim expired, or already this reviewer's. Commits.
    """
    expires = now + timedelta(minutes=minutes)
    _update_or_explain(
        session,
        submission_id,
        _in_scope(session, school_scope(staff)),
        _claimable_by(staff, now),
        {
            "status": SubmissionStatus.IN_REVIEW,
            "claimed_by_id": staff.id,
            "claim_expires_at": expires,
            "updated_at": now,
        },
        explain=_refusal(staff, now),
    )
    _audit(session, staff, "claim", submission_id, expires_at=expires.isoformat())
    session.commit()
    return expires


def release(session: Session, staff: Staff, submission_id: int, now: datetime) -> None:
    """Give a claim back (admins may release anyone's): the attempt is 未审核 again. Commits."""
    owner: ColumnElement[bool] = (
        true() if staff.role == StaffRole.ADMIN and staff.is_active else Submission.claimed_by_id == staff.id
    )
    _update_or_explain(
        session,
        submission_id,
        _in_scope(session, school_scope(staff)),
        and_(Submission.status == SubmissionStatus.IN_REVIEW, owner),
        {
            "status": SubmissionStatus.PENDING_REVIEW,
            "claimed_by_id": None,
            "claim_expires_at": None,
            "updated_at": now,
        },
        explain=_not_claimed,
    )
    _audit(session, staff, "release", submission_id)
    session.commit()


Explain = Callable[[Submission], NoReturn]


def _update_or_explain(
    session: Session,
    submission_id: int,
    scope: ColumnElement[bool],
    allowed: ColumnElement[bool],
    values: dict[str, Any],
    *,
    explain: Explain,
) -> None:
    """Change one attempt only if it is in scope and `allowed` still holds, re-checked by the
    database under its row lock, so of two reviewers racing for it exactly one wins. When nothing
    matched, roll back and raise the error that says why: not found first (other schools' attempts
    are indistinguishable from unknown ones), then `explain`'s answer."""
    result = session.execute(
        update(Submission)
        .where(Submission.id == submission_id, scope, allowed)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount == 1:  # type: ignore[attr-defined]
        return
    session.rollback()
    found = session.scalar(select(Submission).where(Submission.id == submission_id, scope))
    if found is None:
        raise ReviewNotFoundError()
    explain(found)


def _refusal(staff: Staff, now: datetime, waiting: ReviewError | None = None) -> Explain:
    """Why a claim or decision was refused; `waiting` is the error for an attempt still in the
    queue that this staff member was not allowed to act on (by default: claim it first)."""

    def explain(found: Submission) -> NoReturn:
        if found.status in DECIDED:
            raise ReviewStateError(f"该提交已审核（{STATUS_LABELS[found.status]}）")
        if (
            found.status == SubmissionStatus.IN_REVIEW
            and found.claimed_by_id != staff.id
            and _live(found.claim_expires_at, now)
        ):
            raise ReviewClaimedError()
        if found.status in QUEUE_STATUSES:
            raise waiting or ReviewClaimRequiredError()
        raise ReviewStateError(f"该提交当前状态为「{STATUS_LABELS[found.status]}」，不在审核队列中")

    return explain


def _not_claimed(found: Submission) -> NoReturn:
    raise ReviewClaimRequiredError("你没有领取该提交")


# --- decisions -------------------------------------------------------------------------------


def clean_reason(decision: str, reason: str | None) -> str | None:
    """The reason as stored and shown: required for 驳回/不通过, at most 200 characters."""
    if decision not in DECISIONS:
        raise ReviewError("未知的审核结果")
    text = " ".join((reason or "").split())
    if decision == "approve":
        return text[:MAX_REASON_CHARS] or None
    if not text:
        raise ReviewReasonError()
    if len(text) > MAX_REASON_CHARS:
        raise ReviewReasonError(f"原因最多 {MAX_REASON_CHARS} 个字")
    return text


def decide(
    session: Session,
    staff: Staff,
    submission_id: int,
    decision: Decision | str,
    reason: str | None,
    now: datetime,
    *,
    push: ResultPush,
    items: Sequence[Mapping[str, Any]] = (),
) -> Submission:
    """Record 通过 / 驳回 / 不通过, its audit entry and the student's push in one commit.

    Only the claimer with a live claim decides (an admin may decide any waiting attempt in scope).
    A 驳回 may name `items` ({kind: field|document|photo, key, reason}): only those reopen for the
    student (returns.py); the reason is then derived from them, the reviewer's words added after.
    """
    returned = _returned_items(session, submission_id, decision, items)
    if returned:
        overall = " ".join((reason or "").split())[:MAX_REASON_CHARS] or None
        text: str | None = returns.status_reason(returned, overall)
    else:
        text = clean_reason(decision, reason)
    _decide_one(
        session,
        staff,
        submission_id,
        _outcome(session, submission_id, DECISIONS[decision]),
        text,
        now,
        [item.to_data() for item in returned] or None,
    )
    found = session.get(Submission, submission_id, populate_existing=True)
    assert found is not None  # the UPDATE above just matched it
    detail: dict[str, Any] = {"reason": text}
    if returned:
        detail["items"] = [item.to_data() for item in returned]
    _audit(session, staff, decision, submission_id, **detail)
    _after_decision(session, found, push)
    session.commit()
    return found


def _returned_items(
    session: Session, submission_id: int, decision: str, raw: Sequence[Mapping[str, Any]]
) -> list[returns.Item]:
    """The items of an itemised 驳回, checked against the attempt's batch definition and the
    student's stored answers (a field hidden by its `when` cannot be sent back)."""
    if not raw:
        return []
    if decision != "return":
        raise ReviewItemsError("只有驳回可以指定需修改的项目")
    found = session.get(Submission, submission_id)
    if found is None:
        return []  # the conditional update explains
    enrollment = session.scalar(
        select(Enrollment)
        .where(Enrollment.user_id == found.user_id, Enrollment.batch_id == found.batch_id)
        .order_by(Enrollment.active.desc(), Enrollment.id.desc())
        .limit(1)
    )
    answers = (enrollment.form_answers if enrollment is not None else None) or {}
    try:
        return returns.clean_items(applications.definition_of(found.batch), answers, raw)
    except returns.ReturnedItemsError as exc:
        raise ReviewItemsError(exc.message) from None


def batch_approve(
    session: Session,
    staff: Staff,
    submission_ids: Iterable[int],
    now: datetime,
    *,
    push: ResultPush,
    max_items: int = 200,
) -> list[int]:
    """Approve many in one unit of work; any refusal refuses the whole batch (nothing
    half-approved). Returns the ids. Commits.

    Each must be in scope. A reviewer approves only attempts they hold (claimed, claim live): a
    batch is a shortcut for rows already opened, not a way around opening them. An admin may also
    approve unclaimed ones, but not one another reviewer holds.
    """
    ids = list(dict.fromkeys(submission_ids))
    if len(ids) > max_items:
        raise ReviewError(f"一次最多批量通过 {max_items} 条")
    scope = _in_scope(session, school_scope(staff))
    if staff.role == StaffRole.ADMIN:
        allowed, explain = _claimable_by(staff, now), _refusal(staff, now)
    else:
        allowed, explain = _held_by(staff, now), _refusal(staff, now, ReviewNotHeldError())
    for submission_id in ids:
        approved = {
            "status": _outcome(session, submission_id, SubmissionStatus.APPROVED),
            "decided_by_id": staff.id,
            "decided_at": now,
            "status_reason": None,
            "rejected_items": None,
            "claim_expires_at": None,
            "updated_at": now,
        }
        _update_or_explain(session, submission_id, scope, allowed, approved, explain=explain)
    for submission_id in ids:
        found = session.get(Submission, submission_id, populate_existing=True)
        assert found is not None
        _audit(session, staff, "approve", submission_id, batch=True)
        _after_decision(session, found, push)
    session.commit()
    return ids


def _claimable_by(staff: Staff, now: datetime) -> ColumnElement[bool]:
    """Unclaimed (or expired) 未审核/审核中, or claimed by this staff member and still live."""
    return or_(
        Submission.status == SubmissionStatus.PENDING_REVIEW,
        and_(
            Submission.status == SubmissionStatus.IN_REVIEW,
            or_(
                Submission.claimed_by_id == staff.id,
                Submission.claim_expires_at.is_(None),
                Submission.claim_expires_at <= now,
            ),
        ),
    )


def _held_by(staff: Staff, now: datetime) -> ColumnElement[bool]:
    """审核中 under this staff member's live claim."""
    return and_(
        Submission.status == SubmissionStatus.IN_REVIEW,
        Submission.claimed_by_id == staff.id,
        Submission.claim_expires_at > now,
    )


def _decide_one(
    session: Session,
    staff: Staff,
    submission_id: int,
    status: SubmissionStatus,
    reason: str | None,
    now: datetime,
    rejected_items: list[dict[str, str]] | None = None,
) -> None:
    mine = _held_by(staff, now)
    allowed: ColumnElement[bool] = (
        or_(mine, Submission.status.in_(QUEUE_STATUSES)) if staff.role == StaffRole.ADMIN else mine
    )
    _update_or_explain(
        session,
        submission_id,
        _in_scope(session, school_scope(staff)),
        allowed,
        {
            "status": status,
            "decided_by_id": staff.id,
            "decided_at": now,
            "status_reason": reason if status not in APPROVALS else None,
            "rejected_items": rejected_items if status == SubmissionStatus.RETURNED else None,
            "claim_expires_at": None,
            "updated_at": now,
        },
        explain=_refusal(staff, now),
    )


def _outcome(session: Session, submission_id: int, status: SubmissionStatus) -> SubmissionStatus:
    """The state a decision puts this attempt in: 通过 depends on the batch's flow."""
    if status != SubmissionStatus.APPROVED:
        return status
    batch = session.scalar(
        select(Batch).join(Submission, Submission.batch_id == Batch.id).where(Submission.id == submission_id)
    )
    if batch is None:
        return status  # no such attempt: the conditional update explains
    paid = session.scalar(
        select(PaymentOrder.id)
        .where(PaymentOrder.submission_id == submission_id, PaymentOrder.status == OrderStatus.PAID)
        .limit(1)
    )
    return flows.after_approval(batch, paid is not None)


def _after_decision(session: Session, found: Submission, push: ResultPush) -> None:
    """What follows a decision in its unit of work: the data frozen where the batch freezes it at
    approval, and the student's push."""
    if found.status in APPROVALS:
        submissions.lock_data(session, found.batch, found.user_id, LockOn.APPROVE)
    _enqueue_push(session, found, push)


# --- the push --------------------------------------------------------------------------------


def _enqueue_push(session: Session, found: Submission, push: ResultPush) -> None:
    openid, batch_name, school_name = _recipient(session, found.id)
    status = SubmissionStatus(found.status)
    at = found.decided_at or found.updated_at
    path = wording.result_path(status, found.batch, found.id)
    url = f"{push.base_url}{path}"
    following = wording.result_next_step(status, found.batch)
    note = wording.result_note(status, found.batch)
    # One decision, one announcement: the key makes a second enqueue a no-op, and the
    # client_msg_id makes WeChat drop a resend after a worker died between send and commit.
    # A decision made after a reopen is a new announcement, so each round has its own key.
    rounds = _reopens(session, found.id)
    suffix = f"-{rounds}" if rounds else ""
    key = f"decision:{found.id}{suffix}"
    pushes.announce(
        session,
        push,
        openid,
        key,
        template_data=lambda: wording.result_template_data(
            status, school_name, found.status_reason, at, note
        ),
        text=lambda: wording.result_text(
            status, school_name, batch_name, found.status_reason, at, url, following
        ),
        path=path,
    )


def _recipient(session: Session, submission_id: int) -> tuple[str, str, str]:
    """The student's openid, the batch's and the school's names: what a push about the attempt needs."""
    openid, batch_name, school_name = session.execute(
        select(User.openid, Batch.name, School.name)
        .select_from(Submission)
        .join(User, User.id == Submission.user_id)
        .join(Batch, Batch.id == Submission.batch_id)
        .join(School, School.id == Batch.school_id)
        .where(Submission.id == submission_id)
    ).one()
    return openid, batch_name, school_name


def _reopens(session: Session, submission_id: int) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(AuditEntry)
            .where(
                AuditEntry.target_type == "submission",
                AuditEntry.target_id == submission_id,
                AuditEntry.action == "reopen",
            )
        )
        or 0
    )


# --- reopening a decision --------------------------------------------------------------------


class ReviewReopenError(ReviewError):
    message = "无法撤回该审核结果"


def reopen_deadline(decided_at: datetime | None, hours: int) -> datetime | None:
    """Until when an admin may withdraw the decision (None: nothing decided)."""
    if decided_at is None:
        return None
    aware = decided_at if decided_at.tzinfo is not None else decided_at.replace(tzinfo=UTC)
    return aware + timedelta(hours=hours)


def can_reopen(staff: Staff, found: Submission, now: datetime, hours: int) -> bool:
    deadline = reopen_deadline(found.decided_at, hours)
    return (
        staff.role == StaffRole.ADMIN
        and staff.is_active
        and found.status in DECIDED
        and deadline is not None
        and now < deadline
    )


def reopen(
    session: Session,
    staff: Staff,
    submission_id: int,
    reason: str | None,
    now: datetime,
    *,
    hours: int,
    push: ResultPush,
) -> Submission:
    """An admin withdraws a wrong decision: the attempt is 未审核 again, the audit log keeps what
    was withdrawn (result, decider, time, reason) and the student is told, all in one commit.

    Only within `hours` of the decision (a receipt printed long ago is not silently voided), and
    not once the student has started another attempt (that one is the live one now).
    """
    if staff.role != StaffRole.ADMIN or not staff.is_active:
        raise ReviewReopenError("只有管理员可以撤回审核结果")
    text = " ".join((reason or "").split())
    if not text:
        raise ReviewReasonError("撤回审核结果需要填写原因")
    if len(text) > MAX_REASON_CHARS:
        raise ReviewReasonError(f"原因最多 {MAX_REASON_CHARS} 个字")
    found = get(session, staff, submission_id)
    previous = SubmissionStatus(found.status)
    if previous not in DECIDED:
        raise ReviewReopenError(f"该提交当前为「{STATUS_LABELS[previous]}」，没有可撤回的审核结果")
    if not can_reopen(staff, found, now, hours):
        raise ReviewReopenError(f"审核结果只能在审结后 {hours} 小时内撤回")
    newer = session.scalar(
        select(Submission.id).where(
            Submission.user_id == found.user_id, Submission.id != found.id, Submission.status.in_(IN_FLIGHT)
        )
    )
    if newer is not None:
        raise ReviewReopenError(f"学生已有新的提交（#{newer}），不能撤回这次的审核结果")
    withdrawn = {
        "previous": previous.value,
        "decided_by": found.decided_by_id,
        "decided_at": found.decided_at.isoformat() if found.decided_at else None,
        "previous_reason": found.status_reason,
        "reason": text,
    }
    # Conditional on the decision still being the one read above: a concurrent reopen (or a
    # second click) finds nothing to change.
    _update_or_explain(
        session,
        submission_id,
        _in_scope(session, school_scope(staff)),
        and_(Submission.status == previous, Submission.decided_at == found.decided_at),
        {
            "status": SubmissionStatus.PENDING_REVIEW,
            "decided_by_id": None,
            "decided_at": None,
            "status_reason": None,
            "rejected_items": None,
            "claimed_by_id": None,
            "claim_expires_at": None,
            "updated_at": now,
        },
        explain=_already_reopened,
    )
    rounds = _reopens(session, submission_id) + 1  # counting this one
    _audit(session, staff, "reopen", submission_id, **withdrawn)
    _enqueue_reopened(session, submission_id, previous, now, push, rounds)
    session.commit()
    reopened = session.get(Submission, submission_id, populate_existing=True)
    assert reopened is not None
    return reopened


def _already_reopened(found: Submission) -> NoReturn:
    raise ReviewReopenError("该审核结果已被撤回或已变更，请刷新页面")


def _enqueue_reopened(
    session: Session,
    submission_id: int,
    previous: SubmissionStatus,
    now: datetime,
    push: ResultPush,
    rounds: int,
) -> None:
    openid, batch_name, school_name = _recipient(session, submission_id)
    url = f"{push.base_url}/h5/status"
    key = f"reopen:{submission_id}-{rounds}"
    pushes.announce(
        session,
        push,
        openid,
        key,
        template_data=lambda: wording.reopened_template_data(school_name, now),
        text=lambda: wording.reopened_text(previous, school_name, batch_name, now, url),
    )


def _audit(session: Session, staff: Staff, action: str, submission_id: int, **detail: Any) -> None:
    audit.record(
        session,
        staff.id,
        action,
        "submission",
        submission_id,
        **{k: v for k, v in detail.items() if v is not None},
    )
