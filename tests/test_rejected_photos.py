"""A photo a reviewer rejected (驳回/不通过) is never submitted again, the same picture uploaded again
says which photo it matches and why that one was refused, and reviewers are warned of a resubmission
that looks like a rejected photo."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from pay_students import student
from sqlalchemy import func, select

from app.extensions import db
from app.services import photos, submissions
from models import Photo, Submission, SubmissionStatus, utcnow
from tests.factories import add_photo, add_user

REASON = "背景颜色不符：请换成浅蓝色背景"
PHASH = "f0f0f0f0f0f0f0f0"
# Three bits off: the same picture re-saved; twelve bits off: a lightly edited copy.
NEAR = "f0f0f0f0f0f0f0f7"
EDITED = "f0f0f0f0f0f0f00f"
OTHER = "0123456789abcdef"


@pytest.fixture
def ctx(app: Flask) -> Any:
    with app.app_context():
        yield
        db.session.remove()


def _returned(user_id: int, photo_id: int, reason: str = REASON) -> Submission:
    attempt = submissions.create(db.session, user_id, photo_id, utcnow())
    attempt.status = SubmissionStatus.RETURNED
    attempt.status_reason = reason
    attempt.decided_at = utcnow()
    db.session.commit()
    return attempt


def _photo(user_id: int, like: int, phash: str | None, **fields: Any) -> Photo:
    batch_id = db.session.get(Photo, like).batch_id  # type: ignore[union-attr]
    photo = add_photo(user_id, batch_id, phash=phash, **fields)
    db.session.commit()
    return photo


def test_a_returned_photo_cannot_be_submitted_again(ctx: Any) -> None:
    user_id, photo_id = student()
    db.session.get(Photo, photo_id).phash = PHASH  # type: ignore[union-attr]
    _returned(user_id, photo_id)

    with pytest.raises(submissions.PhotoRejectedError) as refused:
        submissions.create(db.session, user_id, photo_id, utcnow())
    assert "已被审核老师驳回" in refused.value.message and REASON in refused.value.message
    assert isinstance(refused.value, submissions.PhotoNotUsableError)  # 422 naming photo_id

    # The same picture uploaded again (re-saved: a few bits off) is refused as well.
    copy = _photo(user_id, photo_id, NEAR)
    with pytest.raises(submissions.PhotoRejectedError, match="驳回"):
        submissions.create(db.session, user_id, copy.id, utcnow())
    assert db.session.scalar(select(func.count()).select_from(Submission)) == 1

    # A new picture goes through.
    fresh = _photo(user_id, photo_id, OTHER)
    attempt = submissions.create(db.session, user_id, fresh.id, utcnow())
    assert attempt.status == SubmissionStatus.AWAITING_PAYMENT


def test_the_photo_page_learns_the_latest_rejection_only(ctx: Any) -> None:
    user_id, photo_id = student()
    assert photos.last_rejection(db.session, user_id) is None
    attempt = _returned(user_id, photo_id)
    rejection = photos.last_rejection(db.session, user_id)
    assert rejection is not None
    assert (rejection.submission_id, rejection.photo_id, rejection.reason) == (attempt.id, photo_id, REASON)
    assert rejection.status_label == "驳回"
    assert photos.rejection_of(db.session, user_id, photo_id) == rejection

    # Once a new attempt exists, the old rejection is no longer the page's news.
    fresh = _photo(user_id, photo_id, OTHER)
    submissions.create(db.session, user_id, fresh.id, utcnow())
    assert photos.last_rejection(db.session, user_id) is None
    assert photos.rejection_of(db.session, user_id, fresh.id) is None


def test_reviewers_are_warned_of_a_resubmission_like_a_rejected_photo(ctx: Any) -> None:
    user_id, photo_id = student()
    db.session.get(Photo, photo_id).phash = PHASH  # type: ignore[union-attr]
    first = _returned(user_id, photo_id)

    # An edited copy, too far off to be refused as the same picture, close enough to be looked at.
    edited = _photo(user_id, photo_id, EDITED)
    assert photos.phash_distance(PHASH, EDITED) == 8
    second = submissions.create(db.session, user_id, edited.id, utcnow())
    [(rejection, distance)] = photos.similar_rejections(db.session, second)
    assert rejection.submission_id == first.id and rejection.reason == REASON
    assert photos.DUPLICATE_MAX_DISTANCE < distance <= photos.SIMILAR_WARN_DISTANCE

    # A different picture gets no warning.
    second.status = SubmissionStatus.CANCELLED
    db.session.commit()
    other = _photo(user_id, photo_id, OTHER)
    third = submissions.create(db.session, user_id, other.id, utcnow())
    assert photos.similar_rejections(db.session, third) == []


def test_the_duplicate_refusal_names_the_photo_and_who_refused_it(ctx: Any) -> None:
    user_id, photo_id = student()
    db.session.get(Photo, photo_id).phash = PHASH  # type: ignore[union-attr]
    when = datetime(2026, 11, 23, 1, 5, tzinfo=UTC)  # 09:05 in Beijing
    db.session.get(Photo, photo_id).created_at = when  # type: ignore[union-attr]
    db.session.commit()

    # Not rejected by anyone yet: a passed photo is no reason to refuse.
    assert photos._duplicate_of_rejected(db.session, user_id, NEAR) is None

    # Returned by a reviewer: the message says which photo, 驳回, the reason and what to do.
    _returned(user_id, photo_id)
    check = photos._duplicate_of_rejected(db.session, user_id, NEAR)
    assert check is not None and check["ok"] is False and check["blocking"] is True
    message = check["message"]
    assert "11月23日 09:05 上传的照片" in message
    assert "审核老师驳回" in message and REASON in message
    assert "重新拍摄一张新照片" in message
    assert "未通过检查" not in message

    # An earlier photo that failed the automatic checks: the checks refused it, and which ones.
    other_user = add_user("o-pay-2").id
    _photo(
        other_user,
        photo_id,
        OTHER,
        passed=False,
        created_at=when + timedelta(hours=1),
        checks=[
            dict(name="background_color", ok=False, value=30, limit="", message="x", blocking=True),
            {"name": "face_count", "ok": True, "value": 1, "limit": "1", "message": "", "blocking": True},
        ],
    )
    check = photos._duplicate_of_rejected(db.session, other_user, OTHER)
    assert check is not None
    assert "10:05 上传的照片" in check["message"]
    assert "没有通过自动检查（背景颜色）" in check["message"]
    assert "审核老师" not in check["message"]


def test_student_advice_leaves_the_measured_values_to_staff() -> None:
    size = {
        "name": "pixel_size",
        "ok": False,
        "message": "照片尺寸应为 480×640 像素（宽×高），当前为 1200×900",
    }
    assert photos.student_advice(size) == "照片尺寸应为 480×640 像素（宽×高）。"
    small = {
        "name": "file_size",
        "ok": False,
        "message": "文件太小（12 KB），应在 100 KB–200 KB 之间：请上传原图",
    }
    assert photos.student_advice(small) == "文件太小，应在 100 KB–200 KB 之间：请上传原图。"
    assert photos.student_advice({"name": "face_count", "ok": True, "message": "符合要求"}) is None
