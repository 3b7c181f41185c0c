"""报考 over JSON: a batch's exam catalogue (GET /api/v1/batches/<id>/catalog) and the signed-in student's
choice of site, major and courses (GET/PUT /api/v1/me/registration). The rules are in
app/services/exam_registrations.py; docs/exams.md describes both.

The catalogue is public (the exam office publishes it) and the same for everyone: it changes only on
import, on a course's cancellation and as seats are taken, so it carries an ETag and a short max-age.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Response, jsonify, request
from pydantic import BaseModel, Field
from spectree import Response as SpecResponse

from app.api import bp
from app.api.me import REFUSALS
from app.api.openapi import ValidationErrors, spec
from app.api.schemas import ApiError
from app.auth.session import api_login_required, current_user
from app.errors import error_response
from app.extensions import db
from app.services import exam_catalog, exam_registrations, wording
from app.services.exam_registrations import (
    RegistrationError,
    RegistrationInvalidError,
    RegistrationLockedError,
    RegistrationNotOpenError,
    RegistrationView,
)
from models import Batch

TAGS = ["报考"]
# Seats left move as candidates register: a browser may reuse the catalogue this long, then revalidate.
CATALOG_MAX_AGE = 30


class SiteOut(BaseModel):
    code: str
    name: str
    address: str
    capacity: int
    seats_left: int


class CountyOut(BaseModel):
    name: str = Field(description="县市")
    sites: list[SiteOut]


class DistrictOut(BaseModel):
    name: str = Field(description="地州（考区）")
    counties: list[CountyOut]


class MajorOut(BaseModel):
    code: str
    name: str
    standard: str | None = Field(description="毕业标准")
    special: bool = Field(description="特殊专业：须上传材料并审核通过后方可报考")


class CatalogCourseOut(BaseModel):
    code: str
    name: str
    major_code: str | None = Field(description="所属专业；公共课为 null，所有专业均可报考")
    starts_at: datetime
    ends_at: datetime
    exam_time: str = Field(examples=["2021年04月01日 上午"])
    exam_time_range: str = Field(examples=["2021-04-01 09:00–11:30"])
    fee_fen: int = Field(description="考试费，单位：分")
    cancelled: bool


class CatalogOut(BaseModel):
    batch_id: int
    batch_name: str
    selection: bool = Field(description="考生是否自选考点、专业和课程（报考）")
    districts: list[DistrictOut]
    majors: list[MajorOut]
    courses: list[CatalogCourseOut]


class ChosenCourseOut(BaseModel):
    code: str
    name: str
    exam_time: str
    exam_time_range: str
    fee_fen: int
    cancelled: bool


class RegistrationOut(BaseModel):
    batch_id: int
    catalog_url: str
    submission_id: int
    site_code: str | None
    major_code: str | None
    course_codes: list[str]
    courses: list[ChosenCourseOut]
    total_fen: int
    total_label: str = Field(examples=["140 元"])
    editable: bool = Field(description="false：缴费订单已生成，不能再增、减或修改课程")
    locked_message: str | None
    pay_url: str


class RegistrationIn(BaseModel):
    site_code: str | None = Field(default=None, max_length=20, description="考点代码")
    major_code: str | None = Field(default=None, max_length=20)
    course_codes: list[str] = Field(default_factory=list, max_length=50)
    pledge: bool = Field(default=False, description="本人担保以上信息真实准确：须为 true，与选择一同记录")


def _out(view: RegistrationView) -> RegistrationOut:
    registration = view.registration
    return RegistrationOut(
        batch_id=view.batch.id,
        catalog_url=f"/api/v1/batches/{view.batch.id}/catalog",
        submission_id=view.submission.id,
        site_code=registration.site.code if registration is not None else None,
        major_code=registration.major.code if registration is not None and registration.major else None,
        course_codes=[line.code for line in view.courses],
        courses=[ChosenCourseOut(**line.__dict__) for line in view.courses],
        total_fen=view.total_fen,
        total_label=wording.yuan(view.total_fen),
        editable=view.editable,
        locked_message=None if view.editable else RegistrationLockedError.message,
        pay_url=f"/h5/pay/{view.submission.id}",
    )


def _user_id() -> int:
    user = current_user()
    assert user is not None  # api_login_required ran first
    return user.id


def _errors(status: int, *pairs: tuple[str, str]) -> tuple[Response, int]:
    return jsonify(errors=[{"field": f, "message": m} for f, m in pairs]), status


@bp.get("/batches/<int:batch_id>/catalog")
# Documented, not validated per request: checking a 2,000-course body against CatalogOut took two
# thirds of the request (bench/exam_catalog.py); the API schema test checks its answers instead.
@spec.validate(
    resp=SpecResponse(HTTP_200=CatalogOut, HTTP_304=None, HTTP_404=ApiError), tags=TAGS, skip_validation=True
)
def batch_catalog(batch_id: int) -> Any:
    """批次的考试目录：地州 → 县市 → 考点（剩余名额）、专业（毕业标准）、课程（考试时间、考试费）。

    带 ETag；`If-None-Match` 相同时 304。"""
    batch = db.session.get(Batch, batch_id)
    if batch is None:
        return error_response(404, "找不到这个批次。")
    served = exam_catalog.catalog(db.session, batch)
    cache_control = f"public, max-age={CATALOG_MAX_AGE}, must-revalidate"
    if request.if_none_match.contains(served.etag):
        # Unchanged: the body is not even made.
        response = Response(status=304)
    else:
        response = Response(served.body(), mimetype="application/json")
    response.set_etag(served.etag)
    response.headers["Cache-Control"] = cache_control
    return response


@bp.get("/me/registration")
@api_login_required
@spec.validate(
    resp=SpecResponse(HTTP_200=RegistrationOut, HTTP_401=ApiError, HTTP_409=ValidationErrors), tags=TAGS
)
def get_registration() -> Any:
    """本人的报考信息（考点、专业、课程和合计金额）；注册审核通过前 409。"""
    try:
        return _out(exam_registrations.view(db.session, _user_id()))
    except RegistrationNotOpenError as exc:
        return _errors(409, ("_", exc.message))


@bp.put("/me/registration")
@api_login_required
@spec.validate(
    json=RegistrationIn,
    resp=SpecResponse(
        HTTP_200=RegistrationOut, HTTP_409=ValidationErrors, HTTP_422=ValidationErrors, **REFUSALS
    ),
    tags=TAGS,
)
def put_registration(json: RegistrationIn) -> Any:
    """报考：选择考点、专业和课程（至少一门；考试时间不能冲突）。缴费订单生成后 409，不能再修改。"""
    try:
        view = exam_registrations.choose(
            db.session,
            _user_id(),
            json.site_code,
            json.major_code,
            json.course_codes,
            datetime.now(UTC),
            pledged=json.pledge,
        )
    except RegistrationInvalidError as exc:
        return _errors(422, *exc.problems)
    except RegistrationError as exc:
        # Locked by the order, nothing to choose yet, or a concurrent submission.
        return _errors(409, ("_", exc.message))
    return _out(view)
