"""Searching the queue by ID number or whole name (by their keyed hashes, nothing decrypted), listing
decided attempts, and an admin reopening a decision within the window: audited, and the student told."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app.extensions import db
from app.integrations import pii_keyring
from app.services import identities, review_details, reviews, wording
from app.services.id_documents import check_character
from app.services.pii import Keyring
from app.services.reviews import ResultPush, ReviewReasonError, ReviewReopenError
from models import AuditEntry, Identity, OutboxItem, Staff, Submission, SubmissionStatus, utcnow
from tests.factories import (
    T0,
    World,
    add_identity,
    add_photo,
    add_submission,
    add_user,
    get_staff,
    make_desk,
    make_waiting,
    make_world,
    status_of,
)
from tests.staff_pages import csrf_of, sign_in

TEXT_PUSH = ResultPush(base_url="http://example.test", template_id="")
TEMPLATE_PUSH = ResultPush(base_url="http://example.test", template_id="sandbox-review-result")
HOURS = 72


def id_number(serial: int) -> str:
    first17 = f"43010219900101{serial:03d}"
    return first17 + check_character(first17)


@pytest.fixture
def world(app: Flask) -> Any:
    with app.app_context():
        yield make_world()
        db.session.remove()


def student(
    batch_id: int,
    openid: str,
    number: str,
    name: str = "李四",
    status: SubmissionStatus = SubmissionStatus.PENDING_REVIEW,
) -> int:
    """An attempt whose identity is sealed and hashed exactly as binding does it."""
    keyring = pii_keyring()
    user = add_user(openid)
    identity = add_identity(
        user.id,
        number_hash=keyring.lookup_hash(f"resident_id:{number}"),
        number_enc=keyring.encrypt(number),
        name_enc=keyring.encrypt(name),
        name_hash=identities.name_lookup_hash(keyring, name),
    )
    photo = add_photo(user.id, batch_id)
    sub = add_submission(user.id, batch_id, photo.id, identity.id, status, created_at=T0)
    db.session.commit()
    return sub.id


def decided(world: World, batch_id: int, openid: str, number: str, decision: str = "approve") -> int:
    sub = student(batch_id, openid, number)
    admin = get_staff(world.admin)
    reason = None if decision == "approve" else "背景颜色不符"
    reviews.decide(db.session, admin, sub, decision, reason, T0 + timedelta(hours=1), push=TEXT_PUSH)
    return sub


# --- search -----------------------------------------------------------------------------------


def test_search_by_id_number_finds_its_attempts_without_decrypting(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    wanted = student(world.batch_a, "o-1", id_number(1))
    student(world.batch_a, "o-2", id_number(2))
    other_school = student(world.batch_b, "o-3", id_number(3))
    keyring = pii_keyring()

    # Typed with spaces, a lower-case x or full-width digits, it is the same number.
    typed = " ".join(id_number(1)[i : i + 6] for i in range(0, 18, 6)).lower()
    hashes = reviews.number_search_hashes(keyring, typed)
    assert hashes is not None and len(hashes) == 5  # one per document type

    def no_decrypt(*args: Any) -> str:
        raise AssertionError("the search decrypted a row")

    monkeypatch.setattr(type(keyring), "decrypt", no_decrypt)
    found = reviews.queue(db.session, school_ids=None, number_hashes=hashes)
    assert [i.id for i in found.items] == [wanted]
    # Scoping still applies: another school's reviewer finds nothing.
    scope_b = reviews.school_scope(get_staff(world.reviewer_b))
    assert reviews.queue(db.session, school_ids=scope_b, number_hashes=hashes).items == []
    hashes_3 = reviews.number_search_hashes(keyring, id_number(3))
    assert [i.id for i in reviews.queue(db.session, school_ids=scope_b, number_hashes=hashes_3).items] == [
        other_school
    ]
    # A part of a number, or a name, is no number: nothing to hash.
    assert reviews.number_search_hashes(keyring, "0011") is None
    assert reviews.number_search_hashes(keyring, "李四") is None


def test_search_by_whole_name_finds_every_student_of_that_name_without_decrypting(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = student(world.batch_a, "o-1", id_number(1), name="欧阳娜娜")
    namesake = student(world.batch_a, "o-2", id_number(2), name="欧阳娜娜")  # another student, same name
    student(world.batch_a, "o-3", id_number(3), name="欧阳小明")
    minority = student(world.batch_a, "o-4", id_number(4), name="阿依古丽·买买提")
    keyring = pii_keyring()
    looked_up: list[str] = []
    real_hash = keyring.lookup_hash

    def no_decrypt(*args: Any) -> str:
        raise AssertionError("the search decrypted a row")

    def spy(self: Any, value: str) -> str:
        looked_up.append(value)
        return real_hash(value)

    monkeypatch.setattr(type(keyring), "decrypt", no_decrypt)
    monkeypatch.setattr(type(keyring), "lookup_hash", spy)

    def found(text: str) -> list[int]:
        keys = reviews.search_keys(keyring, text)
        assert keys is not None and keys.kind == "name" and keys.number_hashes is None
        return [i.id for i in reviews.queue(db.session, school_ids=None, name_hashes=keys.name_hashes).items]

    # Typed with spaces or another middle dot, it is the same name.
    assert found(" 欧阳 娜娜 ") == [first, namesake]
    assert found("阿依古丽•买买提") == [minority]
    # A hash matches the whole name only: a part (or a longer name) finds nothing.
    assert found("欧阳") == [] and found("娜娜") == [] and found("欧阳娜娜娜") == []
    # The name was hashed under its own domain, never compared in clear; it can equal no number hash.
    assert looked_up and all(v.startswith("name:") for v in looked_up)
    stored = {row.name_hash for row in db.session.scalars(select(Identity))}
    assert "欧阳娜娜" not in stored and identities.name_lookup_hash(keyring, "欧阳娜娜") in stored
    # Scoping still applies.
    scope_b = reviews.school_scope(get_staff(world.reviewer_b))
    keys = reviews.search_keys(keyring, "欧阳娜娜")
    assert keys is not None
    assert reviews.queue(db.session, school_ids=scope_b, name_hashes=keys.name_hashes).items == []


def test_the_search_box_reads_a_number_or_a_name() -> None:
    keyring = Keyring.from_settings("", "", "secret")
    number = reviews.search_keys(keyring, id_number(1).lower())
    assert number is not None and number.kind == "number" and number.name_hashes is None
    assert number.number_hashes == reviews.number_search_hashes(keyring, id_number(1))
    name = reviews.search_keys(keyring, "john  smith")
    assert name is not None and name.kind == "name"
    # A Latin name may have the shape of a passport number; with no digit it is read as a name.
    assert reviews.search_keys(keyring, "JOHNSMITH") == reviews.search_keys(keyring, "johnsmith")
    assert reviews.search_keys(keyring, "JOHNSMITH").kind == "name"  # type: ignore[union-attr]
    assert name.name_hashes == [identities.name_lookup_hash(keyring, "JOHN SMITH")]
    # Digits that make no whole number (a part of one), or nothing at all: no search.
    assert reviews.search_keys(keyring, "0011") is None
    assert reviews.search_keys(keyring, "李四0011") is None
    assert reviews.search_keys(keyring, "   ") is None
    # A name's hash can never equal a number's: the domains differ.
    assert set(name.hashes).isdisjoint(number.hashes)


def test_decided_attempts_are_listed_with_their_decider_and_time(world: World) -> None:
    approved = decided(world, world.batch_a, "o-1", id_number(1))
    returned = decided(world, world.batch_a, "o-2", id_number(2), "return")
    student(world.batch_a, "o-3", id_number(3))
    done = reviews.queue(db.session, school_ids=None, status=tuple(reviews.DECIDED))
    assert {i.id for i in done.items} == {approved, returned}
    for item in done.items:
        assert item.decided_by_id == world.admin and item.decided_at is not None
    # Newest first, on keyset pages too.
    later = decided(world, world.batch_a, "o-4", id_number(4))
    with_later = reviews.queue(db.session, school_ids=None, status=tuple(reviews.DECIDED), newest_first=True)
    assert with_later.items[0].id == later and len(with_later.items) == 3
    first = reviews.queue(
        db.session, school_ids=None, status=tuple(reviews.DECIDED), newest_first=True, limit=1
    )
    assert first.next_cursor is not None
    rest = reviews.queue(
        db.session,
        school_ids=None,
        status=tuple(reviews.DECIDED),
        newest_first=True,
        after=first.next_cursor,
    )
    assert [i.id for i in first.items + rest.items] == [i.id for i in with_later.items]
    only_returned = reviews.queue(db.session, school_ids=None, status=SubmissionStatus.RETURNED)
    assert [(i.id, i.status_label) for i in only_returned.items] == [(returned, "驳回")]


def test_people_shows_the_full_name_and_the_id_tail(world: World) -> None:
    sub = student(world.batch_a, "o-1", id_number(1), name="欧阳小明")
    found = db.session.get(Submission, sub)
    assert found is not None
    person = review_details.people(db.session, pii_keyring(), {found.identity_id})[found.identity_id]
    assert person.name == "欧阳小明"
    assert person.number_tail == "*" * 14 + id_number(1)[-4:]


# --- reopen -----------------------------------------------------------------------------------


def test_admin_reopens_a_decision_audited_and_the_student_is_told(world: World) -> None:
    sub = decided(world, world.batch_a, "o-1", id_number(1), "return")
    admin = get_staff(world.admin)
    now = T0 + timedelta(hours=5)
    reviews.reopen(db.session, admin, sub, "误驳回，照片符合要求", now, hours=HOURS, push=TEXT_PUSH)

    found = db.session.get(Submission, sub, populate_existing=True)
    assert found is not None
    assert found.status == SubmissionStatus.PENDING_REVIEW
    assert found.decided_by_id is None and found.decided_at is None and found.status_reason is None
    entry = db.session.scalars(
        select(AuditEntry).where(AuditEntry.action == "reopen", AuditEntry.target_id == sub)
    ).one()
    assert entry.staff_id == world.admin
    assert entry.detail["previous"] == "returned" and entry.detail["decided_by"] == world.admin
    assert (
        entry.detail["previous_reason"] == "背景颜色不符" and entry.detail["reason"] == "误驳回，照片符合要求"
    )

    pushes = list(db.session.scalars(select(OutboxItem).order_by(OutboxItem.id)))
    told = [p for p in pushes if p.idempotency_key == f"reopen:{sub}-1"]
    assert len(told) == 1 and "已由管理员撤回" in told[0].payload["text"]
    assert "审核驳回" in told[0].payload["text"]

    # Back in the queue: the next decision is announced again (a new key, not swallowed).
    reviews.decide(db.session, admin, sub, "approve", None, now + timedelta(minutes=5), push=TEXT_PUSH)
    keys = [p.idempotency_key for p in db.session.scalars(select(OutboxItem).order_by(OutboxItem.id))]
    assert keys == [f"decision:{sub}", f"reopen:{sub}-1", f"decision:{sub}-1"]


def test_reopen_pushes_the_template_when_one_is_configured(world: World) -> None:
    sub = decided(world, world.batch_a, "o-1", id_number(1))
    reviews.reopen(
        db.session,
        get_staff(world.admin),
        sub,
        "核对有误",
        T0 + timedelta(hours=2),
        hours=HOURS,
        push=TEMPLATE_PUSH,
    )
    item = db.session.scalars(select(OutboxItem).where(OutboxItem.idempotency_key == f"reopen:{sub}-1")).one()
    assert item.payload["data"]["phrase1"]["value"] == wording.REOPENED_PHRASE
    assert item.payload["url"] == "http://example.test/h5/status"


def test_reopen_is_refused_outside_its_rules(world: World) -> None:
    sub = decided(world, world.batch_a, "o-1", id_number(1))
    admin, reviewer = get_staff(world.admin), get_staff(world.reviewer_a)
    soon = T0 + timedelta(hours=2)
    with pytest.raises(ReviewReopenError, match="只有管理员"):
        reviews.reopen(db.session, reviewer, sub, "x", soon, hours=HOURS, push=TEXT_PUSH)
    with pytest.raises(ReviewReasonError):
        reviews.reopen(db.session, admin, sub, "  ", soon, hours=HOURS, push=TEXT_PUSH)
    # The window runs from the decision (T0 + 1 h).
    late = T0 + timedelta(hours=1 + HOURS, seconds=1)
    with pytest.raises(ReviewReopenError, match=f"{HOURS} 小时内"):
        reviews.reopen(db.session, admin, sub, "太晚了", late, hours=HOURS, push=TEXT_PUSH)
    waiting = student(world.batch_a, "o-2", id_number(2))
    with pytest.raises(ReviewReopenError, match="没有可撤回"):
        reviews.reopen(db.session, admin, waiting, "x", soon, hours=HOURS, push=TEXT_PUSH)
    assert status_of(sub) == SubmissionStatus.APPROVED
    assert db.session.scalar(select(AuditEntry.id).where(AuditEntry.action == "reopen")) is None


def test_reopen_is_refused_once_the_student_started_again(world: World) -> None:
    sub = decided(world, world.batch_a, "o-1", id_number(1), "return")
    found = db.session.get(Submission, sub)
    assert found is not None
    photo = add_photo(found.user_id, world.batch_a)
    again = add_submission(
        found.user_id, world.batch_a, photo.id, found.identity_id, SubmissionStatus.AWAITING_PAYMENT
    )
    db.session.commit()
    with pytest.raises(ReviewReopenError, match=f"#{again.id}"):
        reviews.reopen(
            db.session,
            get_staff(world.admin),
            sub,
            "误驳回",
            T0 + timedelta(hours=2),
            hours=HOURS,
            push=TEXT_PUSH,
        )
    assert status_of(sub) == SubmissionStatus.RETURNED


# --- the pages through HTTP -------------------------------------------------------------------


def row_ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'<tr data-id="(\d+)"', html)]


def _html(client: FlaskClient, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200, path
    return response.get_data(as_text=True)


def test_queue_rows_show_name_id_tail_and_photo_and_search_by_number_or_name(
    app: Flask, client: FlaskClient
) -> None:
    desk = make_desk(app)
    number = id_number(7)
    wanted = make_waiting(app, desk.batch_a, "o-s1", T0, name="王小明", id_number=number)
    make_waiting(app, desk.batch_a, "o-s2", T0 + timedelta(minutes=1), name="赵六", id_number=id_number(8))
    sign_in(client, "rev-a")

    html = _html(client, "/review/")
    assert "王小明" in html and "赵六" in html  # in full: staff match faces to people
    assert "*" * 14 + number[-4:] in html and number not in html
    thumbs = re.findall(r'<td class="rv-thumb"><img src="(/media/photos/[^"]+)"', html)
    assert len(thumbs) == 2
    served = client.get(thumbs[0])
    assert served.status_code == 200 and served.mimetype == "image/jpeg"

    found = _html(client, "/review/?q=" + number[:6] + "+" + number[6:].lower())
    assert row_ids(found) == [wanted]
    assert row_ids(_html(client, "/review/?q=" + id_number(9))) == []
    by_name = _html(client, "/review/?q=%E7%8E%8B+%E5%B0%8F%E6%98%8E")  # 王 小明
    assert row_ids(by_name) == [wanted] and 'id="search-error"' not in by_name
    assert "输入完整姓名或证件号码" in by_name  # the box says a part will not do
    assert row_ids(_html(client, "/review/?q=%E5%B0%8F%E6%98%8E")) == []  # 小明: a part finds nothing
    refused = _html(client, "/review/?q=" + number[-4:])  # a part of a number: no search
    assert 'id="search-error"' in refused and row_ids(refused) == []


def test_decided_attempts_show_decider_and_an_admin_reopens_one(app: Flask, client: FlaskClient) -> None:
    desk = make_desk(app)
    sub = make_waiting(app, desk.batch_a, "o-d1", T0, name="王小明", id_number=id_number(7))
    with app.app_context():
        admin = db.session.scalars(select(Staff).where(Staff.username == "admin")).one()
        reviews.decide(db.session, admin, sub, "return", "背景颜色不符", utcnow(), push=TEXT_PUSH)

    sign_in(client, "rev-a")
    assert row_ids(_html(client, "/review/")) == []  # no longer waiting
    listed = _html(client, "/review/?state=returned")
    assert row_ids(listed) == [sub] and "admin" in listed and 'class="rv-decided-at"' in listed
    assert row_ids(_html(client, "/review/?state=decided")) == [sub]
    page = _html(client, f"/review/submissions/{sub}")
    assert 'id="decider">admin<' in page and 'id="decided-at"' in page
    assert 'id="reopen-form"' not in page  # reviewers cannot reopen
    token = csrf_of(client, f"/review/submissions/{sub}")
    refused = client.post(
        f"/review/submissions/{sub}/reopen", data={"csrf_token": token, "reopen_reason": "x"}
    )
    assert refused.status_code == 403

    boss = app.test_client()
    sign_in(boss, "admin")
    page = _html(boss, f"/review/submissions/{sub}")
    assert 'id="reopen-form"' in page
    token = csrf_of(boss, f"/review/submissions/{sub}")
    empty = boss.post(f"/review/submissions/{sub}/reopen", data={"csrf_token": token, "reopen_reason": ""})
    assert empty.status_code == 422 and "撤回审核结果需要填写原因" in empty.get_data(as_text=True)
    done = boss.post(
        f"/review/submissions/{sub}/reopen", data={"csrf_token": token, "reopen_reason": "误驳回"}
    )
    assert done.status_code == 303
    after = _html(boss, f"/review/submissions/{sub}")
    assert "已撤回" in after and 'id="sub-state">未审核<' in after
    with app.app_context():
        assert db.session.scalar(select(AuditEntry.id).where(AuditEntry.action == "reopen")) is not None
        keys = list(db.session.scalars(select(OutboxItem.idempotency_key).order_by(OutboxItem.id)))
        assert keys == [f"decision:{sub}", f"reopen:{sub}-1"]


def test_export_is_linked_with_its_count_and_has_a_chooser(app: Flask, client: FlaskClient) -> None:
    desk = make_desk(app)
    approved = make_waiting(app, desk.batch_a, "o-e1", T0, id_number=id_number(7))
    make_waiting(app, desk.batch_a, "o-e2", T0, id_number=id_number(8))
    with app.app_context():
        admin = db.session.scalars(select(Staff).where(Staff.username == "admin")).one()
        reviews.decide(db.session, admin, approved, "approve", None, utcnow(), push=TEXT_PUSH)
    sign_in(client, "admin")
    board = _html(client, "/review/dashboard")
    assert f'href="/review/export?batch={desk.batch_a}" data-count="1">导出 1 张</a>' in board
    queue = _html(client, f"/review/?batch={desk.batch_a}")
    assert f'href="/review/export?batch={desk.batch_a}"' in queue and "导出本批次通过照片（1 张）" in queue
    chooser = _html(client, "/review/export")
    assert f'<tr data-batch="{desk.batch_a}">' in chooser and "1 张" in chooser and "0 张" in chooser
    zipped = client.get(f"/review/export?batch={desk.batch_a}")
    assert zipped.status_code == 200 and zipped.get_data()[:2] == b"PK"
    zipped.close()

    reviewer = app.test_client()
    sign_in(reviewer, "rev-a")
    assert "/review/export" not in _html(reviewer, f"/review/?batch={desk.batch_a}")


def test_staff_pages_may_be_framed_by_the_sandbox_phone_only(app_factory: Any) -> None:
    sandbox = app_factory()
    headers = sandbox.test_client().get("/review/login").headers
    assert headers["X-Frame-Options"] == "SAMEORIGIN"
    origin = sandbox.config["PUBLIC_BASE_URL"].rstrip("/")
    assert headers["Content-Security-Policy"] == f"frame-ancestors 'self' {origin}"
    production_like = app_factory(SANDBOX=False, VERIFY_PROVIDER="http", VERIFY_HTTP_URL="http://verify.test")
    headers = production_like.test_client().get("/review/login").headers
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Content-Security-Policy"] == "frame-ancestors 'none'"
