"""Where a student stands in the process, and what to do next — one answer for every surface
(the 进度 keyword, the 审核结果 menu item, the 我的 page, GET /api/v1/me)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, bindparam
from sqlalchemy.orm import Session

from app.services import enrollments, single_statement, steps, wording
from app.services.steps import Step
from models import User
from models.submission import STATUS_LABELS, SubmissionStatus


@dataclass(frozen=True)
class Progress:
    # The checklist's current step (app/services/steps.py), or where the student is held (the first
    # locked step), or "result" once nothing is left: bind | school | notice | photo | submit | pay |
    # verify | review | confirm | ticket | result
    step: str
    title: str
    message: str
    path: str  # the H5 page for the next step
    checklist: tuple[Step, ...] = ()


def of(session: Session, user_id: int, now: datetime) -> Progress:
    return _progress(session.execute(steps.BY_USER, {"user_id": user_id}).first(), now)


def of_sender(session: Session, openid: str, now: datetime) -> Progress:
    """The progress of whoever sent a WeChat message, in one query and one round trip (the 进度
    keyword on the /wechat hot path). Only reads: someone the service does not know yet has not
    bound an identity, and a user marked unfollowed has the progress of their row — the same
    answers as after recording them as a follower, which the endpoint does, not this."""
    row = single_statement.first_row(session, _SENDER_STATE, {"openid": openid})
    return _progress(row, now)


# Built once: constructing this select costs more CPU than PostgreSQL spends running it.
_SENDER_STATE = steps.state().where(User.openid == bindparam("openid"))


def _focus(checklist: list[Step], status: SubmissionStatus | None) -> Step | None:
    """The step the student is at: the current one, else (held by a window) the first locked one; None
    once a final result leaves nothing to do."""
    found = steps.current(checklist)
    if found is not None or status in (SubmissionStatus.REFUSED, SubmissionStatus.VOID):
        return found
    if status == SubmissionStatus.APPROVED:
        return None
    return next((step for step in checklist if step.status == "locked"), None)


def _words(row: Row[Any] | None, focus: Step | None, now: datetime) -> tuple[str, str]:
    """The title and message of the focus step, in the words each state has always had."""
    if row is None or focus is None:
        status = None if row is None else row.submission_status
        if status == SubmissionStatus.REFUSED:
            reason = (row.status_reason or "").rstrip("。") if row is not None else ""
            because = f"：{reason}" if reason else ""
            return "审核不通过", f"审核结果为「不通过」{because}。这是最终结果，不能再次提交。"
        if status == SubmissionStatus.VOID:
            return STATUS_LABELS[SubmissionStatus.VOID], "缴费时间已截止，未缴费，本次报名无效。"
        if status == SubmissionStatus.APPROVED:
            return "审核通过", "审核通过，你的照片已确认，无需再操作。可在「审核结果」页面打印回执单。"
        return "实名绑定", "第一步：请先完成实名绑定（姓名和证件号码）。"
    status = row.submission_status
    reason = (row.status_reason or "").rstrip("。")
    key = focus.key
    if key == "bind":
        if status == SubmissionStatus.VERIFY_FAILED and row.identity_id in (None, row.submission_identity_id):
            return (
                "身份核验失败",
                f"身份核验未通过：{reason or '姓名与证件号码不一致'}。"
                f"请修改实名信息后重新提交{wording.pays_again(row.flow, row.fee_per_attempt)}。",
            )
        return "实名绑定", "第一步：请先完成实名绑定（姓名和证件号码）。"
    if key == "school":
        if row.name is None:
            return "关联学校", "第二步：请关联你的学校和批次。"
        if focus.status == "locked":
            return "关联学校", enrollments.closed_message(row, now) + " " + focus.hint
        return "关联学校", enrollments.closed_message(row, now) + " 如有新的批次，请重新关联。"
    if key == "photo" and status == SubmissionStatus.RETURNED:
        because = f"：{reason}" if reason else ""
        return (
            "审核驳回",
            f"照片被驳回{because}。请按要求重新上传照片，在批次截止前重新提交"
            f"{wording.pays_again(row.flow, row.fee_per_attempt)}。",
        )
    if key == "photo":
        return "上传照片", f"第三步：请按「{row.name}」的要求上传证件照。"
    if key in ("pay", "submit") and status == SubmissionStatus.REFUNDED:
        because = f"（{reason}）" if reason else ""
        return "已退款", f"上次提交已退款{because}。如需继续，请重新提交核验。"
    if key in ("pay", "submit") and status == SubmissionStatus.CANCELLED:
        return "已取消", "上次提交因未缴费已取消。如需继续，请重新提交核验。"
    if key == "pay" and status == SubmissionStatus.AWAITING_PAYMENT:
        return (
            "缴费核验",
            "请完成缴费（核验服务费）。缴费后将自动核验身份信息；二维码过期可在页面重新获取。",
        )
    if key == "pay" and status == SubmissionStatus.APPROVED_UNPAID:
        due = f"审核已通过。{focus.hint}请按时缴费，逾期报名无效。"
        return STATUS_LABELS[SubmissionStatus.APPROVED_UNPAID], due
    if key == "pay":
        return (
            "缴费核验",
            "照片已通过检查。下一步：在照片页面点击「开始核验」，缴费后核验身份信息；"
            "如有更满意的照片，也可以重新上传。",
        )
    if key == "review":
        days = f"{row.review_days_min}–{row.review_days_max}"
        state = "正在审核" if status == SubmissionStatus.IN_REVIEW else "等待审核"
        label = STATUS_LABELS[SubmissionStatus(status)] if status is not None else focus.label
        checked = "身份核验已通过，" if row.verify_identity else ""
        return (
            label,
            f"{checked}照片已提交审核，一般需要 {days} 天（当前：{state}）。审核结果会通过公众号通知你。",
        )
    if key == "verify":
        paid = "已缴费，" if status == SubmissionStatus.VERIFYING and row.paid_at is not None else ""
        return "身份核验", f"{paid}正在核验身份信息，一般几秒钟内完成，请稍后刷新查看。"
    if key == "after":
        return "审核通过", f"审核通过。{focus.hint}"
    if key == "ticket":
        return "打印准考证", f"审核通过，报名已完成。{focus.hint}"
    return focus.label, focus.hint


def _progress(row: Row[Any] | None, now: datetime) -> Progress:
    checklist = steps.from_row(row, now)
    status = None if row is None or row.submission_status is None else SubmissionStatus(row.submission_status)
    focus = _focus(checklist, status)
    title, message = _words(row, focus, now)
    if focus is None or focus.key == "after":
        return Progress("result", title, message, "/h5/status", tuple(checklist))
    return Progress(focus.key, title, message, focus.url, tuple(checklist))
