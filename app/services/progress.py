"""Where a student stands in the process, and what to do next — one answer for every surface
(the 进度 keyword, the 审核结果 menu item, the 我的 page, GET /api/v1/me)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Row, Select, exists, select
from sqlalchemy.orm import Session

from app.services import enrollments
from models import Batch, Enrollment, Identity, Photo, User


@dataclass(frozen=True)
class Progress:
    step: str  # bind | school | photo (later issues add pay, review, result)
    title: str
    message: str
    path: str  # the H5 page for the next step


def of(session: Session, user_id: int, now: datetime) -> Progress:
    return _progress(session.execute(_state().where(User.id == user_id)).first(), now)


def of_follower(session: Session, openid: str, now: datetime) -> Progress | None:
    """The progress of a known, following user in one query (the 进度 keyword on the /wechat hot
    path); None when the user is unknown or marked unfollowed, for the caller's slower path."""
    row = session.execute(_state().where(User.openid == openid, User.subscribed)).first()
    return None if row is None else _progress(row, now)


def _state() -> Select[int, int, str, datetime, datetime, bool]:
    """One row: the user, whether an identity is bound, the linked batch's name and window, and
    whether a photo passed its checks for that batch (an EXISTS on the user's photos index)."""
    photo_passed = (
        exists()
        .where(Photo.user_id == User.id, Photo.batch_id == Enrollment.batch_id, Photo.passed)
        .label("photo_passed")
    )
    return (
        select(
            User.id,
            Identity.id.label("identity_id"),
            Batch.name,
            Batch.opens_at,
            Batch.closes_at,
            photo_passed,
        )
        .outerjoin(Identity, (Identity.user_id == User.id) & Identity.active)
        .outerjoin(Enrollment, (Enrollment.user_id == User.id) & Enrollment.active)
        .outerjoin(Batch, Batch.id == Enrollment.batch_id)
    )


def _progress(row: Row[int, int, str, datetime, datetime, bool] | None, now: datetime) -> Progress:
    # The identity and batch columns come through outer joins: None when nothing is linked.
    if row is None or row.identity_id is None:
        return Progress("bind", "实名绑定", "第一步：请先完成实名绑定（姓名和证件号码）。", "/h5/bind")
    if row.name is None:
        return Progress("school", "关联学校", "第二步：请关联你的学校和批次。", "/h5/school")
    if not row.opens_at <= now < row.closes_at:
        return Progress(
            "school",
            "关联学校",
            enrollments.closed_message(row, now) + " 如有新的批次，请重新关联。",
            "/h5/school",
        )
    if row.photo_passed:
        # Issue 5 turns this into the 缴费核验 step; until then the photo page is where to go.
        return Progress(
            "photo",
            "上传照片",
            "照片已通过检查。缴费核验即将开放；如有更满意的照片，也可以重新上传。",
            "/h5/photo",
        )
    return Progress("photo", "上传照片", f"第三步：请按「{row.name}」的要求上传证件照。", "/h5/photo")
