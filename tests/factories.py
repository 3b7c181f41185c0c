"""Rows for tests, built the way the service leaves them.

`add_*` adds one row to the session and flushes (so it has an id); the caller commits. `make_*`
builds a whole scene a group of tests shares and commits: the review desk (two schools, their
staff, attempts waiting with real photo files), the review world (the same without files or
passwords, for service tests), students with one attempt in a given state, a dead outbox row.
Call them inside an app context unless they take `app`.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from flask import Flask
from flask.testing import FlaskClient
from flask_wtf.csrf import generate_csrf
from PIL import Image, ImageDraw

from app.extensions import db
from app.integrations import photo_storage, pii_keyring
from app.services import identities, schools
from app.services import staff as staff_service
from media import storage as media_storage
from models import (
    Batch,
    Enrollment,
    Flow,
    Identity,
    OutboxItem,
    OutboxStatus,
    Photo,
    School,
    Staff,
    StaffRole,
    Submission,
    SubmissionStatus,
    User,
)

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)  # the review tests' clock
NOW = datetime.now(UTC)  # for pages that compare with the real clock (open batches, "decided an hour ago")
ID_NUMBER = "11010519491231002X"  # a valid resident ID (checksum X)
STUDENT_NAME = "张三丰"
STAFF_PASSWORD = "review pages password"
# States a decision leaves an attempt in (make_student dates them an hour ago).
DECIDED_STATES = (
    SubmissionStatus.APPROVED,
    SubmissionStatus.APPROVED_UNPAID,
    SubmissionStatus.RETURNED,
    SubmissionStatus.REFUSED,
    SubmissionStatus.VOID,
)


# --- one row each ------------------------------------------------------------------------------


_Row = TypeVar("_Row")


def _add(row: _Row) -> _Row:
    db.session.add(row)
    db.session.flush()  # ids for the rows that point at this one
    return row


def add_school(code: str, name: str, province: str = "湖南省", city: str = "长沙市") -> School:
    return _add(School(code=code, name=name, province=province, city=city))


def add_batch(school_id: int, name: str, *, opens_at: datetime, closes_at: datetime, **fields: Any) -> Batch:
    """An adult-education batch with a 2 yuan fee and the default photo spec; `fields` override."""
    values: dict[str, Any] = {"education": "成人教育", "fee_fen": 200, "photo_spec": {}, **fields}
    return _add(Batch(school_id=school_id, name=name, opens_at=opens_at, closes_at=closes_at, **values))


def add_user(openid: str) -> User:
    return _add(User(openid=openid))


def add_identity(
    user_id: int, *, number_hash: str, number_enc: str, name_enc: str, **fields: Any
) -> Identity:
    """An identity row as stored; `sealed_identity` encrypts real values."""
    sealed = {"number_hash": number_hash, "number_enc": number_enc, "name_enc": name_enc}
    return _add(Identity(user_id=user_id, doc_type="resident_id", **sealed, **fields))


def sealed_identity(
    user_id: int, id_number: str, name: str, *, number_hash: str | None = None, **fields: Any
) -> Identity:
    """An identity encrypted under the app's PII keys (the lookup hash is the number's by default;
    the name's is the one binding stores, so a search by name finds it)."""
    keyring = pii_keyring()
    values: dict[str, Any] = {"name_hash": identities.name_lookup_hash(keyring, name), **fields}
    return add_identity(
        user_id,
        number_hash=number_hash or keyring.lookup_hash(id_number),
        number_enc=keyring.encrypt(id_number),
        name_enc=keyring.encrypt(name),
        **values,
    )


def add_photo(user_id: int, batch_id: int, **fields: Any) -> Photo:
    """A photo that passed its checks; `fields` override (keys, sizes, checks, face …)."""
    values: dict[str, Any] = {
        "source": "h5",
        "original_key": "k" * 64,
        "original_sha256": "s" * 64,
        "original_bytes": 1000,
        "passed": True,
        "checks": [],
        "fixes": [],
        **fields,
    }
    return _add(Photo(user_id=user_id, batch_id=batch_id, **values))


def stored_photo(user_id: int, batch_id: int, data: bytes, **fields: Any) -> Photo:
    """A passed photo whose file is really in the photo storage (pages and receipts show it)."""
    key = photo_storage().put(data, "image/jpeg")
    stored: dict[str, Any] = {
        "original_key": key,
        "original_sha256": media_storage.sha256_hex(data),
        "original_bytes": len(data),
        "normalized_key": key,
        "normalized_bytes": len(data),
        "normalized_format": "jpeg",
    }
    return add_photo(user_id, batch_id, **{**stored, **fields})


def add_enrollment(user_id: int, batch_id: int) -> Enrollment:
    return _add(Enrollment(user_id=user_id, batch_id=batch_id))


def add_submission(
    user_id: int,
    batch_id: int,
    photo_id: int,
    identity_id: int,
    status: SubmissionStatus = SubmissionStatus.PENDING_REVIEW,
    **fields: Any,
) -> Submission:
    rows = {"user_id": user_id, "batch_id": batch_id, "photo_id": photo_id, "identity_id": identity_id}
    return _add(Submission(**rows, status=status, **fields))


def add_staff(username: str, role: StaffRole, school_ids: list[int]) -> Staff:
    """An account that cannot sign in (no password): for service tests."""
    staff = Staff(username=username, password_hash="x", role=role)
    staff.schools = [s for s in (db.session.get(School, i) for i in school_ids) if s is not None]
    return _add(staff)


def jpeg(color: tuple[int, int, int] = (200, 220, 255)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (48, 64), color).save(out, "JPEG")
    return out.getvalue()


# --- the review desk: staff pages through HTTP -------------------------------------------------


@dataclass
class Desk:
    school_a: int
    school_b: int
    batch_a: int
    batch_b: int


def make_desk(app: Flask) -> Desk:
    """Two schools with an open batch each; reviewers rev-a (school A), rev-a2 (A), rev-b (B), admin,
    all with STAFF_PASSWORD."""
    with app.app_context():
        schools.upsert_school(db.session, "10542", "湖南师范大学", "湖南省", "长沙市")
        schools.upsert_school(db.session, "10699", "西北工业大学", "陕西省", "西安市")
        db.session.commit()
        ids = {}
        for code in ("10542", "10699"):
            school = db.session.query(School).filter_by(code=code).one()
            batch = add_batch(
                school.id,
                f"成人教育 {code} 批次",
                opens_at=T0 - timedelta(days=30),
                closes_at=datetime.now(UTC) + timedelta(days=300),
            )
            db.session.commit()
            ids[code] = (school.id, batch.id)
        staff_service.create(db.session, "rev-a", STAFF_PASSWORD, StaffRole.REVIEWER, ["10542"])
        staff_service.create(db.session, "rev-a2", STAFF_PASSWORD, StaffRole.REVIEWER, ["10542"])
        staff_service.create(db.session, "rev-b", STAFF_PASSWORD, StaffRole.REVIEWER, ["10699"])
        staff_service.create(db.session, "admin", STAFF_PASSWORD, StaffRole.ADMIN, [])
        return Desk(ids["10542"][0], ids["10699"][0], ids["10542"][1], ids["10699"][1])


def make_waiting(
    app: Flask,
    batch_id: int,
    openid: str,
    created_at: datetime,
    *,
    name: str = "张三",
    id_number: str | None = None,
) -> int:
    """A paid, verified attempt waiting for review, with real photo files and an encrypted identity.

    Without `id_number` every student carries ID_NUMBER, its lookup hash made unique per student;
    with one, the hash is the one binding stores (what a search by number finds)."""
    with app.app_context():
        storage = photo_storage()
        user = add_user(openid)
        keyring = pii_keyring()
        identity = sealed_identity(
            user.id,
            id_number or ID_NUMBER,
            name,
            number_hash=keyring.lookup_hash(
                f"resident_id:{id_number}" if id_number else f"resident_id:{ID_NUMBER}-{openid}"
            ),
        )
        original = jpeg((120, 130, 140))
        normalized = jpeg()
        photo = add_photo(
            user.id,
            batch_id,
            original_key=storage.put(original, "image/jpeg"),
            original_bytes=len(original),
            normalized_key=storage.put(normalized, "image/jpeg"),
            normalized_bytes=len(normalized),
            normalized_format="jpeg",
            width=480,
            height=640,
            checks=[
                {"name": "face_count", "ok": True, "value": 1, "limit": "1", "message": "符合要求"},
                {"name": "sharpness", "ok": False, "value": 12.5, "limit": "≥ 40", "message": "照片模糊"},
            ],
            face={"x": 120.0, "y": 160.0, "w": 240.0, "h": 300.0, "score": 0.99},
        )
        sub = add_submission(
            user.id,
            batch_id,
            photo.id,
            identity.id,
            verification={"result": "match", "reason": None, "provider": "sandbox", "reference": "r1"},
            created_at=created_at,
        )
        db.session.commit()
        return sub.id


def status_and_reason(app: Flask, submission_id: int) -> tuple[SubmissionStatus, str | None]:
    with app.app_context():
        found = db.session.get(Submission, submission_id)
        assert found is not None
        return SubmissionStatus(found.status), found.status_reason


# --- the review world: the reviews service -----------------------------------------------------


@dataclass
class World:
    school_a: int
    school_b: int
    batch_a: int
    batch_b: int
    reviewer_a: int
    reviewer_a2: int
    reviewer_b: int
    admin: int


def _school_with_batch(code: str, name: str) -> tuple[int, int]:
    school = add_school(code, name)
    batch = add_batch(
        school.id,
        f"成人教育 {code} 批次",
        opens_at=T0 - timedelta(days=30),
        closes_at=T0 + timedelta(days=300),
    )
    db.session.commit()
    return school.id, batch.id


def make_world() -> World:
    """Two schools with a batch each; reviewers rev-a, rev-a2 (school A), rev-b (B), and an admin."""
    school_a, batch_a = _school_with_batch("10542", "湖南师范大学")
    school_b, batch_b = _school_with_batch("10699", "西北工业大学")
    staff = [
        add_staff("rev-a", StaffRole.REVIEWER, [school_a]),
        add_staff("rev-a2", StaffRole.REVIEWER, [school_a]),
        add_staff("rev-b", StaffRole.REVIEWER, [school_b]),
        add_staff("admin", StaffRole.ADMIN, []),
    ]
    db.session.commit()
    return World(school_a, school_b, batch_a, batch_b, *(s.id for s in staff))


def make_queued(
    batch_id: int,
    openid: str,
    created_at: datetime = T0,
    status: SubmissionStatus = SubmissionStatus.PENDING_REVIEW,
) -> int:
    """An attempt in `status` (no files, placeholder identity): what the queue and decisions need."""
    user = add_user(openid)
    identity = add_identity(user.id, number_hash=f"h-{openid}", number_enc="x", name_enc="x")
    photo = add_photo(user.id, batch_id)
    sub = add_submission(user.id, batch_id, photo.id, identity.id, status, created_at=created_at)
    db.session.commit()
    return sub.id


def get_staff(staff_id: int) -> Staff:
    found = db.session.get(Staff, staff_id)
    assert found is not None
    return found


def status_of(submission_id: int) -> SubmissionStatus:
    db.session.expire_all()
    found = db.session.get(Submission, submission_id)
    assert found is not None
    return SubmissionStatus(found.status)


# --- students with one attempt: status page, receipt, export -----------------------------------


@dataclass
class Attempt:
    user_id: int
    submission_id: int
    batch_id: int


def make_batch(
    code: str = "10542", school_name: str = "湖南师范大学", *, open_: bool = True, **fields: Any
) -> int:
    """A batch open now (or closed since yesterday) of the school `code`, made when missing;
    `fields` set its workflow (flow, lock_on, pledge, signature, after_approval, pay window …)."""
    school = db.session.query(School).filter_by(code=code).one_or_none()
    if school is None:
        school = add_school(code, school_name)
    batch = add_batch(
        school.id,
        fields.pop("name", None) or f"成人教育 {code} 批次{'' if open_ else '（已截止）'}",
        opens_at=NOW - timedelta(days=60),
        closes_at=NOW + timedelta(days=30) if open_ else NOW - timedelta(days=1),
        **fields,
    )
    db.session.commit()
    return batch.id


def make_student(
    batch_id: int,
    status: SubmissionStatus,
    *,
    openid: str = "o-student",
    id_number: str = ID_NUMBER,
    name: str = STUDENT_NAME,
    reason: str | None = None,
    photo_bytes: bytes | None = None,
    pledged: bool = False,
    signed: bool = False,
    confirmed: bool = False,
) -> Attempt:
    """A bound, linked student with one attempt in `status` (decided ones an hour ago). Paid nine
    days ago, except 审核通过，待缴费 and 逾期未缴费 (review_first: never paid). `pledged` ticks the
    batch's 承诺 at submission, `signed` also stores a signature PNG (signature_png()) in the photo
    storage, `confirmed` gives the final confirmation half an hour ago."""
    user = add_user(openid)
    identity = sealed_identity(user.id, id_number, name, locked_at=NOW)
    data = photo_bytes if photo_bytes is not None else b"\xff\xd8\xff\xe0 jpeg of " + openid.encode()
    photo = stored_photo(user.id, batch_id, data)
    add_enrollment(user.id, batch_id)
    decided = status in DECIDED_STATES
    unpaid = status in (SubmissionStatus.APPROVED_UNPAID, SubmissionStatus.VOID)
    sub = add_submission(
        user.id,
        batch_id,
        photo.id,
        identity.id,
        status,
        status_reason=reason,
        paid_at=None if unpaid else NOW - timedelta(days=9),
        created_at=NOW - timedelta(days=9),
        decided_at=NOW - timedelta(hours=1) if decided else None,
        pledged_at=NOW - timedelta(days=9) if pledged or signed else None,
        signature_key=photo_storage().put(signature_png(), "image/png") if signed else None,
        confirmed_at=NOW - timedelta(minutes=30) if confirmed else None,
    )
    db.session.commit()
    return Attempt(user.id, sub.id, batch_id)


# --- the batch workflows: free, review_first, pledge, signature, confirmation ---------------------

# A pledge as the schools word it (新疆自考: 我担保以上信息真实准确).
PLEDGE = "我承诺以上信息真实准确，照片为本人近期免冠正面证件照，如有不实，责任自负。"
NOTICE = "一、照片须为本人近期免冠正面证件照。\n二、提交后请留意公众号通知。"


def make_flow_batch(
    flow: Flow,
    *,
    code: str = "10488",
    school_name: str = "武汉轻工大学",
    pay_open: bool = True,
    **fields: Any,
) -> int:
    """A batch open now running `flow` (a free batch has fee 0; review_first's pay window is open
    now, or opens in a week with pay_open=False); `fields` override (notice, pledge, signature,
    lock_on, after_approval, verify_identity …)."""
    school = db.session.query(School).filter_by(code=code).one_or_none()
    if school is None:
        school = add_school(code, school_name, "湖北省", "武汉市")
    values: dict[str, Any] = {"flow": flow, "verify_identity": False}
    if flow == Flow.FREE:
        values["fee_fen"] = 0
    if flow == Flow.REVIEW_FIRST:
        opens = NOW - timedelta(days=1) if pay_open else NOW + timedelta(days=7)
        values |= {"pay_opens_at": opens, "pay_closes_at": opens + timedelta(days=5)}
    values |= fields
    batch = add_batch(
        school.id,
        f"成人教育 {code} {flow.value} 批次",
        opens_at=NOW - timedelta(days=60),
        closes_at=NOW + timedelta(days=30),
        **values,
    )
    db.session.commit()
    return batch.id


def make_linked_student(
    batch_id: int, openid: str, *, id_number: str = ID_NUMBER, name: str = STUDENT_NAME
) -> tuple[int, int]:
    """A bound student linked to the batch with a photo that passed its checks (a real file, so
    pages show it); returns (user id, photo id)."""
    user = add_user(openid)
    sealed_identity(user.id, id_number, name)
    add_enrollment(user.id, batch_id)
    data = jpeg((180, 200, 230))
    photo = stored_photo(
        user.id,
        batch_id,
        data,
        width=48,
        height=64,
        checks=[{"name": "face_count", "ok": True, "value": 1, "limit": "1", "message": "符合要求"}],
    )
    db.session.commit()
    return user.id, photo.id


def signature_png(*, ink: bool = True, size: tuple[int, int] = (300, 120)) -> bytes:
    """A signature as the pad sends it: dark strokes on a transparent canvas (or none)."""
    image = Image.new("RGBA", size, (0, 0, 0, 0))
    if ink:
        draw = ImageDraw.Draw(image)
        draw.line([(20, 80), (80, 30), (140, 90), (200, 35), (270, 85)], fill=(17, 17, 17, 255), width=4)
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def signature_data_url(*, ink: bool = True) -> str:
    return "data:image/png;base64," + base64.b64encode(signature_png(ink=ink)).decode()


# --- the outbox ----------------------------------------------------------------------------------


def make_dead(app: Flask, openid: str, kind: str = "test.deliver") -> int:
    """A job that went dead after its retries (a result push the student never got)."""
    with app.app_context():
        item = OutboxItem(
            kind=kind,
            payload={"submission_id": 7, "openid": openid, "name": "张三"},
            status=OutboxStatus.DEAD,
            attempts=8,
            last_error="WeChatClientException: 43004 require subscribe",
        )
        db.session.add(item)
        db.session.commit()
        return item.id


def sign_in_student(app: Flask, client: FlaskClient, user_id: int) -> str:
    """`client` signed in as the student (as the OAuth callback leaves the session); the CSRF token the
    pages send in X-CSRFToken."""
    with app.test_request_context():
        from flask import session

        token = generate_csrf()
        raw = session["csrf_token"]
    with client.session_transaction() as sess:
        sess["user_id"] = user_id
        sess["csrf_token"] = raw
    return token
