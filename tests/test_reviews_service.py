"""The review rules against the real database: queue scoping and paging, claims, decisions."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from app.extensions import db
from app.services import reviews, wording
from app.services.reviews import ResultPush
from models import (
    AuditEntry,
    OutboxItem,
    Submission,
    SubmissionStatus,
    utcnow,
)
from tests.factories import T0, World, get_staff, make_queued, make_world, status_of

PUSH = ResultPush(base_url="http://example.test", template_id="sandbox-review-result")


@pytest.fixture
def world(app: Flask) -> Any:
    with app.app_context():
        yield make_world()
        db.session.remove()


# --- queue -------------------------------------------------------------------------------------


def test_queue_is_oldest_first_and_scoped_to_the_reviewers_schools(world: World) -> None:
    a_old = make_queued(world.batch_a, "o-a1", T0)
    b_mid = make_queued(world.batch_b, "o-b1", T0 + timedelta(minutes=1))
    a_new = make_queued(world.batch_a, "o-a2", T0 + timedelta(minutes=2))
    make_queued(world.batch_a, "o-a3", T0, status=SubmissionStatus.APPROVED)
    make_queued(world.batch_a, "o-a4", T0, status=SubmissionStatus.VERIFYING)

    scope_a = reviews.school_scope(get_staff(world.reviewer_a))
    assert scope_a == {world.school_a}
    page = reviews.queue(db.session, school_ids=scope_a)
    assert [i.id for i in page.items] == [a_old, a_new]
    assert page.next_cursor is None
    assert page.items[0].school_name == "湖南师范大学"
    assert page.items[0].status_label == "未审核"

    admin_page = reviews.queue(db.session, school_ids=reviews.school_scope(get_staff(world.admin)))
    assert [i.id for i in admin_page.items] == [a_old, b_mid, a_new]
    assert reviews.queue(db.session, school_ids=set()).items == []
    assert [i.id for i in reviews.queue(db.session, school_ids=None, batch_id=world.batch_b).items] == [b_mid]


def test_queue_filters_by_state_and_dates(world: World) -> None:
    first = make_queued(world.batch_a, "o-1", T0)
    second = make_queued(world.batch_a, "o-2", T0 + timedelta(days=1))
    reviews.claim(db.session, get_staff(world.reviewer_a), second, T0 + timedelta(days=2))
    waiting = reviews.queue(db.session, school_ids=None, status=SubmissionStatus.PENDING_REVIEW)
    assert [i.id for i in waiting.items] == [first]
    claimed = reviews.queue(
        db.session, school_ids=None, status=SubmissionStatus.IN_REVIEW, now=T0 + timedelta(days=2)
    )
    assert [(i.id, i.status_label, i.claimed_by_id) for i in claimed.items] == [
        (second, "审核中", world.reviewer_a)
    ]
    dated = reviews.queue(
        db.session, school_ids=None, created_from=T0 + timedelta(hours=1), created_to=T0 + timedelta(days=3)
    )
    assert [i.id for i in dated.items] == [second]
    # An expired claim shows as waiting: anyone may take it.
    later = reviews.queue(db.session, school_ids=None, now=T0 + timedelta(days=3))
    assert [(i.id, i.status_label, i.claimed_by_id) for i in later.items] == [
        (first, "未审核", None),
        (second, "未审核", None),
    ]


def test_keyset_pages_have_no_gaps_or_duplicates_with_equal_timestamps(world: World) -> None:
    ids = []
    for n in range(23):
        # Groups of five share a timestamp; both states interleave.
        ids.append(
            make_queued(world.batch_a if n % 3 else world.batch_b, f"o-{n}", T0 + timedelta(seconds=n // 5))
        )
    for sid in ids[::4]:
        reviews.claim(db.session, get_staff(world.admin), sid, T0)
    expected = [
        s.id for s in db.session.scalars(select(Submission).order_by(Submission.created_at, Submission.id))
    ]
    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        page = reviews.queue(db.session, school_ids=None, after=cursor, limit=4)
        seen += [i.id for i in page.items]
        pages += 1
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == expected
    assert pages == 6  # 23 rows, 4 per page
    scoped = []
    cursor = None
    while True:
        page = reviews.queue(db.session, school_ids={world.school_a}, after=cursor, limit=3)
        scoped += [i.id for i in page.items]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert scoped == [i for n, i in enumerate(ids) if n % 3]


# --- claims ------------------------------------------------------------------------------------


def test_claim_marks_in_review_and_scopes_by_school(world: World) -> None:
    sid = make_queued(world.batch_a, "o-1")
    with pytest.raises(reviews.ReviewNotFoundError):
        reviews.claim(db.session, get_staff(world.reviewer_b), sid, T0)
    with pytest.raises(reviews.ReviewNotFoundError):
        reviews.get(db.session, get_staff(world.reviewer_b), sid)
    with pytest.raises(reviews.ReviewNotFoundError):
        reviews.claim(db.session, get_staff(world.reviewer_a), 999999, T0)
    assert status_of(sid) == SubmissionStatus.PENDING_REVIEW

    expires = reviews.claim(db.session, get_staff(world.reviewer_a), sid, T0)
    assert expires == T0 + timedelta(minutes=30)
    assert status_of(sid) == SubmissionStatus.IN_REVIEW
    with pytest.raises(reviews.ReviewClaimedError, match="已被其他审核员领取"):
        reviews.claim(db.session, get_staff(world.reviewer_a2), sid, T0 + timedelta(minutes=5))
    # Claiming again extends one's own claim.
    assert reviews.claim(
        db.session, get_staff(world.reviewer_a), sid, T0 + timedelta(minutes=10)
    ) == T0 + timedelta(minutes=40)
    actions = db.session.scalars(select(AuditEntry.action).where(AuditEntry.target_id == sid)).all()
    assert actions == ["claim", "claim"]


def test_expired_claim_counts_as_unclaimed(world: World) -> None:
    sid = make_queued(world.batch_a, "o-1")
    reviews.claim(db.session, get_staff(world.reviewer_a), sid, T0, minutes=30)
    with pytest.raises(reviews.ReviewClaimedError):
        reviews.claim(db.session, get_staff(world.reviewer_a2), sid, T0 + timedelta(minutes=29))
    reviews.claim(db.session, get_staff(world.reviewer_a2), sid, T0 + timedelta(minutes=31))
    found = db.session.get(Submission, sid, populate_existing=True)
    assert found is not None and found.claimed_by_id == world.reviewer_a2
    # The first reviewer's claim is gone: they cannot decide any more.
    with pytest.raises(reviews.ReviewClaimedError):
        reviews.decide(
            db.session,
            get_staff(world.reviewer_a),
            sid,
            "approve",
            None,
            T0 + timedelta(minutes=32),
            push=PUSH,
        )


def test_release_puts_it_back(world: World) -> None:
    sid = make_queued(world.batch_a, "o-1")
    with pytest.raises(reviews.ReviewClaimRequiredError):
        reviews.release(db.session, get_staff(world.reviewer_a), sid, T0)
    reviews.claim(db.session, get_staff(world.reviewer_a), sid, T0)
    with pytest.raises(reviews.ReviewClaimRequiredError):
        reviews.release(db.session, get_staff(world.reviewer_a2), sid, T0)
    with pytest.raises(reviews.ReviewNotFoundError):
        reviews.release(db.session, get_staff(world.reviewer_b), sid, T0)
    reviews.release(db.session, get_staff(world.reviewer_a), sid, T0)
    assert status_of(sid) == SubmissionStatus.PENDING_REVIEW
    reviews.claim(db.session, get_staff(world.reviewer_a2), sid, T0)


def race_claims(app: Flask, submission_id: int, staff_ids: list[int]) -> dict[int, str]:
    """Each staff member claims at once from their own thread and session; returns the outcomes."""
    barrier = threading.Barrier(len(staff_ids))
    outcomes: dict[int, str] = {}

    def attempt(staff_id: int) -> None:
        with app.app_context():
            me = get_staff(staff_id)
            barrier.wait()
            try:
                reviews.claim(db.session, me, submission_id, T0)
                outcomes[staff_id] = "won"
            except reviews.ReviewClaimedError as exc:
                outcomes[staff_id] = exc.message
            finally:
                db.session.remove()

    threads = [threading.Thread(target=attempt, args=(s,)) for s in staff_ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return outcomes


def test_two_reviewers_racing_for_one_claim_one_wins(app: Flask, world: World) -> None:
    for round_ in range(5):
        sid = make_queued(world.batch_a, f"o-race-{round_}")
        outcomes = race_claims(app, sid, [world.reviewer_a, world.reviewer_a2])
        assert sorted(outcomes.values()) == sorted(["已被其他审核员领取", "won"]), outcomes
        winner = next(s for s, o in outcomes.items() if o == "won")
        found = db.session.get(Submission, sid, populate_existing=True)
        assert found is not None and found.claimed_by_id == winner
        claims = db.session.scalar(
            select(func.count()).select_from(AuditEntry).where(AuditEntry.target_id == sid)
        )
        assert claims == 1


# --- decisions ---------------------------------------------------------------------------------


def test_decide_needs_a_live_claim_of_ones_own(world: World) -> None:
    sid = make_queued(world.batch_a, "o-1")
    with pytest.raises(reviews.ReviewClaimRequiredError):
        reviews.decide(db.session, get_staff(world.reviewer_a), sid, "approve", None, T0, push=PUSH)
    reviews.claim(db.session, get_staff(world.reviewer_a), sid, T0)
    with pytest.raises(reviews.ReviewClaimedError):
        reviews.decide(db.session, get_staff(world.reviewer_a2), sid, "approve", None, T0, push=PUSH)
    with pytest.raises(reviews.ReviewNotFoundError):
        reviews.decide(db.session, get_staff(world.reviewer_b), sid, "refuse", "身份核验失败", T0, push=PUSH)
    with pytest.raises(reviews.ReviewClaimRequiredError):  # the claim ran out
        reviews.decide(
            db.session, get_staff(world.reviewer_a), sid, "approve", None, T0 + timedelta(hours=1), push=PUSH
        )
    assert status_of(sid) == SubmissionStatus.IN_REVIEW
    assert db.session.scalar(select(func.count()).select_from(OutboxItem)) == 0

    reviews.claim(db.session, get_staff(world.reviewer_a), sid, T0 + timedelta(hours=1))
    reviews.decide(
        db.session, get_staff(world.reviewer_a), sid, "approve", None, T0 + timedelta(hours=1), push=PUSH
    )
    found = db.session.get(Submission, sid, populate_existing=True)
    assert found is not None
    assert (found.status, found.decided_by_id, found.decided_at) == (
        SubmissionStatus.APPROVED,
        world.reviewer_a,
        T0 + timedelta(hours=1),
    )
    with pytest.raises(reviews.ReviewStateError, match="已审核"):
        reviews.decide(db.session, get_staff(world.reviewer_a), sid, "refuse", "背景颜色不符", T0, push=PUSH)
    with pytest.raises(reviews.ReviewStateError):
        reviews.claim(db.session, get_staff(world.reviewer_a), sid, T0)


def test_admin_decides_without_a_claim(world: World) -> None:
    sid = make_queued(world.batch_b, "o-1")
    reviews.decide(db.session, get_staff(world.admin), sid, "refuse", "非本人近期照片", T0, push=PUSH)
    assert status_of(sid) == SubmissionStatus.REFUSED


@pytest.mark.parametrize("decision", ["return", "refuse"])
def test_return_and_refuse_need_a_reason(world: World, decision: str) -> None:
    sid = make_queued(world.batch_a, "o-1")
    reviews.claim(db.session, get_staff(world.reviewer_a), sid, T0)
    for bad in (None, "", "   "):
        with pytest.raises(reviews.ReviewReasonError, match="需要填写原因"):
            reviews.decide(db.session, get_staff(world.reviewer_a), sid, decision, bad, T0, push=PUSH)
    with pytest.raises(reviews.ReviewReasonError, match="200"):
        reviews.decide(db.session, get_staff(world.reviewer_a), sid, decision, "字" * 201, T0, push=PUSH)
    with pytest.raises(reviews.ReviewError, match="未知"):
        reviews.decide(db.session, get_staff(world.reviewer_a), sid, "maybe", "x", T0, push=PUSH)
    assert status_of(sid) == SubmissionStatus.IN_REVIEW

    reason = "背景颜色不符，请使用浅蓝色背景重新拍摄，注意不要有阴影"
    reviews.decide(db.session, get_staff(world.reviewer_a), sid, decision, f"  {reason} ", T0, push=PUSH)
    found = db.session.get(Submission, sid, populate_existing=True)
    assert found is not None
    assert found.status == reviews.DECISIONS[decision]
    assert found.status_reason == reason
    entry = db.session.scalars(select(AuditEntry).where(AuditEntry.action == decision)).one()
    assert (entry.staff_id, entry.target_id, entry.detail) == (world.reviewer_a, sid, {"reason": reason})
    item = db.session.scalars(select(OutboxItem)).one()
    assert item.idempotency_key == f"decision:{sid}"
    assert item.kind == "wechat.send_template"
    data = item.payload["data"]
    assert data["phrase1"]["value"] == wording.RESULT_PHRASE[reviews.DECISIONS[decision]]
    assert len(data["thing3"]["value"]) <= 20 and data["thing3"]["value"].endswith("…")
    assert item.payload["url"] == "http://example.test/h5/status"


def test_batch_approve_is_all_or_nothing_and_pushes_each_once(world: World) -> None:
    a1 = make_queued(world.batch_a, "o-1")
    a2 = make_queued(world.batch_a, "o-2")
    a3 = make_queued(world.batch_a, "o-3")
    b1 = make_queued(world.batch_b, "o-4")
    reviews.claim(db.session, get_staff(world.reviewer_a2), a3, T0)
    me = get_staff(world.reviewer_a)
    for held in (a1, a2):  # a reviewer batch-approves only what they hold
        reviews.claim(db.session, me, held, T0)
    with pytest.raises(reviews.ReviewNotFoundError):
        reviews.batch_approve(db.session, me, [a1, b1], T0, push=PUSH)
    with pytest.raises(reviews.ReviewClaimedError):
        reviews.batch_approve(db.session, me, [a1, a2, a3], T0, push=PUSH)
    assert [status_of(s) for s in (a1, a2)] == [SubmissionStatus.IN_REVIEW] * 2
    with pytest.raises(reviews.ReviewError, match="最多"):
        reviews.batch_approve(db.session, me, [a1, a2], T0, push=PUSH, max_items=1)
    assert reviews.batch_approve(db.session, me, [a1, a2, a1], T0, push=PUSH) == [a1, a2]
    assert [status_of(s) for s in (a1, a2)] == [SubmissionStatus.APPROVED] * 2
    keys = db.session.scalars(select(OutboxItem.idempotency_key).order_by(OutboxItem.id)).all()
    assert keys == [f"decision:{a1}", f"decision:{a2}"]
    approvals = db.session.scalars(
        select(AuditEntry.target_id).where(AuditEntry.action == "approve").order_by(AuditEntry.id)
    ).all()
    assert approvals == [a1, a2]


def test_reviewers_batch_approve_only_what_they_hold_and_admins_also_unclaimed(world: World) -> None:
    held = make_queued(world.batch_a, "o-held")
    unclaimed = make_queued(world.batch_a, "o-unclaimed")
    expired = make_queued(world.batch_a, "o-expired")
    theirs = make_queued(world.batch_a, "o-theirs")
    me, colleague = get_staff(world.reviewer_a), get_staff(world.reviewer_a2)
    reviews.claim(db.session, me, held, T0)
    reviews.claim(db.session, me, expired, T0 - timedelta(hours=1))
    reviews.claim(db.session, colleague, theirs, T0)
    for ids in ([held, unclaimed], [held, expired]):
        with pytest.raises(reviews.ReviewNotHeldError, match="只能批量通过自己已领取的提交"):
            reviews.batch_approve(db.session, me, ids, T0, push=PUSH)
    assert status_of(held) == SubmissionStatus.IN_REVIEW  # nothing half-approved
    with pytest.raises(reviews.ReviewClaimedError):
        reviews.batch_approve(db.session, me, [theirs], T0, push=PUSH)
    assert reviews.batch_approve(db.session, me, [held], T0, push=PUSH) == [held]

    admin = get_staff(world.admin)
    with pytest.raises(reviews.ReviewClaimedError):  # an admin does not take a live claim either
        reviews.batch_approve(db.session, admin, [unclaimed, theirs], T0, push=PUSH)
    assert reviews.batch_approve(db.session, admin, [unclaimed, expired], T0, push=PUSH) == [
        unclaimed,
        expired,
    ]
    assert [status_of(s) for s in (held, unclaimed, expired, theirs)] == [
        SubmissionStatus.APPROVED,
        SubmissionStatus.APPROVED,
        SubmissionStatus.APPROVED,
        SubmissionStatus.IN_REVIEW,
    ]


def test_clip_and_template_values_fit_wechats_limits() -> None:
    data = wording.result_template_data(
        SubmissionStatus.REFUSED,
        "新疆维吾尔自治区高等教育自学考试委员会办公室",
        "字" * 200,
        utcnow(),
        "下一步",
    )
    assert len(data["phrase1"]["value"]) <= 5
    assert len(data["thing2"]["value"]) == 20 and len(data["thing3"]["value"]) == 20
    approved = wording.result_template_data(
        SubmissionStatus.APPROVED,
        "湖南师范大学",
        None,
        T0,
        "照片已确认，可在「审核结果」页面打印回执单，无需再操作。",
    )
    assert approved["time4"]["value"] == "2026年11月01日 16:00"
    assert len(approved["thing3"]["value"]) <= 20
