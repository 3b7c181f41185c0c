"""The linked batch's 须知: GET /api/v1/me/notice (its text and whether it was acknowledged) and
POST /api/v1/me/notice (我已阅读, once per link)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import jsonify
from pydantic import BaseModel, Field
from spectree import Response as SpecResponse

from app.api import bp
from app.api.me import REFUSALS
from app.api.openapi import ValidationErrors, spec
from app.api.schemas import ApiError
from app.auth.session import api_login_required, current_user
from app.errors import error_response
from app.extensions import db
from app.services import enrollments
from app.services.enrollments import EnrollmentError
from models import Enrollment


class NoticeOut(BaseModel):
    batch: str = Field(description="批次名称")
    text: str | None = Field(description="须知全文；批次没有须知时为 null")
    acknowledged_at: datetime | None = Field(description="点击「我已阅读」的时间；未确认为 null")


def _user_id() -> int:
    user = current_user()
    assert user is not None  # api_login_required ran first
    return user.id


def _out(enrollment: Enrollment) -> NoticeOut:
    return NoticeOut(
        batch=enrollment.batch.name, text=enrollment.batch.notice, acknowledged_at=enrollment.notice_acked_at
    )


@bp.get("/me/notice")
@api_login_required
@spec.validate(resp=SpecResponse(HTTP_200=NoticeOut, HTTP_401=ApiError, HTTP_404=ApiError), tags=["须知"])
def get_notice() -> Any:
    """所关联批次的须知，以及是否已确认阅读。未关联批次时 404。"""
    enrollment = enrollments.active(db.session, _user_id())
    if enrollment is None:
        return error_response(404, "请先关联学校和批次。")
    return _out(enrollment)


@bp.post("/me/notice")
@api_login_required
@spec.validate(resp=SpecResponse(HTTP_200=NoticeOut, HTTP_422=ValidationErrors, **REFUSALS), tags=["须知"])
def acknowledge_notice() -> Any:
    """我已阅读：确认已阅读所关联批次的须知（每次关联确认一次；重复确认不改变时间）。"""
    try:
        enrollment = enrollments.acknowledge_notice(db.session, _user_id(), datetime.now(UTC))
    except EnrollmentError as exc:
        return jsonify(errors=[{"field": "_", "message": exc.message}]), 422
    return _out(enrollment)
