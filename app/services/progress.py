"""Where a student stands in the process, and what to do next — one answer for every surface
(the 进度 keyword, the 审核结果 menu item, the 我的 page, GET /api/v1/me)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from app.services import enrollments, identities


@dataclass(frozen=True)
class Progress:
    step: str  # bind | school | photo (later issues add pay, review, result)
    title: str
    message: str
    path: str  # the H5 page for the next step


def of(session: Session, user_id: int, now: datetime) -> Progress:
    if identities.active(session, user_id) is None:
        return Progress("bind", "实名绑定", "第一步：请先完成实名绑定（姓名和证件号码）。", "/h5/bind")
    enrollment = enrollments.active(session, user_id)
    if enrollment is None:
        return Progress("school", "关联学校", "第二步：请关联你的学校和批次。", "/h5/school")
    if not enrollment.batch.is_open(now):
        return Progress(
            "school",
            "关联学校",
            enrollments.closed_message(enrollment.batch, now) + " 如有新的批次，请重新关联。",
            "/h5/school",
        )
    return Progress(
        "photo",
        "上传照片",
        f"第三步：请按「{enrollment.batch.name}」的要求上传证件照。",
        "/h5/photo",
    )
