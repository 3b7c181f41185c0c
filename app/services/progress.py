"""Where a student stands in the process, and what to do next — one answer for every surface
(the 进度 keyword, the 审核结果 menu item, the 我的 page, GET /api/v1/me)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, Select, bindparam, exists, select
from sqlalchemy.orm import Session

from app.services import enrollments, single_statement
from models import Batch, Enrollment, Identity, Photo, User
from models.submission import STATUS_LABELS, Submission, SubmissionStatus


@dataclass(frozen=True)
class Progress:
    step: str  # bind | school | photo | pay | verify | review | result
    title: str
    message: str
    path: str  # the H5 page for the next step


def of(session: Session, user_id: int, now: datetime) -> Progress:
    return _progress(session.execute(_state().where(User.id == user_id)).first(), now)


def of_sender(session: Session, openid: str, now: datetime) -> Progress:
    """The progress of whoever sent a WeChat message, in one query and one round trip (the 进度
    keyword on the /wechat hot path). Only reads: someone the service does not know yet has not
    bound an identity, and a user marked unfollowed has the progress of their row — the same
    answers as after recording them as a follower, which the endpoint does, not this."""
    row = single_statement.first_row(session, _SENDER_STATE, {"openid": openid})
    return _progress(row, now)


def _state() -> Select[*tuple[Any, ...]]:
    """One row: the user, whether an identity is bound, the linked batch's name, window and review
    time, whether a photo passed its checks for that batch (an EXISTS on the user's photos index),
    and the latest attempt in that batch (a correlated subquery on the submissions' user index)."""
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
    return (
        select(
            User.id,
            Identity.id.label("identity_id"),
            Batch.name,
            Batch.opens_at,
            Batch.closes_at,
            Batch.review_days_min,
            Batch.review_days_max,
            photo_passed,
            Submission.id.label("submission_id"),
            Submission.status.label("submission_status"),
            Submission.status_reason,
        )
        .outerjoin(Identity, (Identity.user_id == User.id) & Identity.active)
        .outerjoin(Enrollment, (Enrollment.user_id == User.id) & Enrollment.active)
        .outerjoin(Batch, Batch.id == Enrollment.batch_id)
        .outerjoin(Submission, Submission.id == latest)
    )


# Built once: constructing this select costs more CPU than PostgreSQL spends running it.
_SENDER_STATE = _state().where(User.openid == bindparam("openid"))


def _attempt(row: Row[Any], is_open: bool) -> Progress | None:
    """What the latest attempt says, when it decides the next step (the states are in
    models/submission.py)."""
    status = row.submission_status
    reason = (row.status_reason or "").rstrip("。")
    if status == SubmissionStatus.AWAITING_PAYMENT:
        return Progress(
            "pay",
            "缴费核验",
            "请完成缴费（核验服务费）。缴费后将自动核验身份信息；二维码过期可在页面重新获取。",
            f"/h5/pay/{row.submission_id}",
        )
    if status == SubmissionStatus.VERIFYING:
        return Progress(
            "verify",
            "身份核验",
            "已缴费，正在核验身份信息，一般几秒钟内完成，请稍后刷新查看。",
            f"/h5/pay/{row.submission_id}",
        )
    if status in (SubmissionStatus.PENDING_REVIEW, SubmissionStatus.IN_REVIEW):
        days = f"{row.review_days_min}–{row.review_days_max}"
        state = "正在审核" if status == SubmissionStatus.IN_REVIEW else "等待审核"
        return Progress(
            "review",
            STATUS_LABELS[status],
            f"身份核验已通过，照片已提交审核，一般需要 {days} 天（当前：{state}）。"
            "审核结果会通过公众号通知你。",
            "/h5/status",
        )
    if status == SubmissionStatus.VERIFY_FAILED:
        return Progress(
            "bind",
            "身份核验失败",
            f"身份核验未通过：{reason or '姓名与证件号码不一致'}。"
            "请修改实名信息后重新提交（需重新缴费核验）。",
            "/h5/bind",
        )
    if status == SubmissionStatus.APPROVED:
        return Progress(
            "result",
            "审核通过",
            "审核通过，你的照片已确认，无需再操作。可在「审核结果」页面打印回执单。",
            "/h5/status",
        )
    if status == SubmissionStatus.REFUSED:
        because = f"：{reason}" if reason else ""
        return Progress(
            "result",
            "审核不通过",
            f"审核结果为「不通过」{because}。这是最终结果，不能再次提交。",
            "/h5/status",
        )
    if not is_open:
        return None  # a new attempt is impossible: the closed-batch message says why
    if status == SubmissionStatus.RETURNED:
        because = f"：{reason}" if reason else ""
        return Progress(
            "photo",
            "审核驳回",
            f"照片被驳回{because}。请按要求重新上传照片，在批次截止前重新提交（需重新缴费核验）。",
            "/h5/photo",
        )
    if status == SubmissionStatus.REFUNDED:
        because = f"（{reason}）" if reason else ""
        return Progress(
            "photo", "已退款", f"上次提交已退款{because}。如需继续，请重新提交核验。", "/h5/photo"
        )
    if status == SubmissionStatus.CANCELLED:
        return Progress("photo", "已取消", "上次提交因未缴费已取消。如需继续，请重新提交核验。", "/h5/photo")
    return None


def _progress(row: Row[Any] | None, now: datetime) -> Progress:
    # The identity, batch and attempt columns come through outer joins: None when nothing is linked.
    if row is None or row.identity_id is None:
        if row is not None and row.submission_status == SubmissionStatus.VERIFY_FAILED:
            return _attempt(row, True) or _bind()
        return _bind()
    if row.name is None:
        return Progress("school", "关联学校", "第二步：请关联你的学校和批次。", "/h5/school")
    is_open = row.opens_at <= now < row.closes_at
    if row.submission_status is not None:
        found = _attempt(row, is_open)
        if found is not None:
            return found
    if not is_open:
        return Progress(
            "school",
            "关联学校",
            enrollments.closed_message(row, now) + " 如有新的批次，请重新关联。",
            "/h5/school",
        )
    if row.photo_passed:
        return Progress(
            "photo",
            "缴费核验",
            "照片已通过检查。下一步：在照片页面点击「开始核验」，缴费后核验身份信息；"
            "如有更满意的照片，也可以重新上传。",
            "/h5/photo",
        )
    return Progress("photo", "上传照片", f"第三步：请按「{row.name}」的要求上传证件照。", "/h5/photo")


def _bind() -> Progress:
    return Progress("bind", "实名绑定", "第一步：请先完成实名绑定（姓名和证件号码）。", "/h5/bind")
