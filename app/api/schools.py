"""关联学校 over JSON: regions → schools → batches for the cascade, and linking to a batch.

Every endpoint needs a signed-in student (401 JSON otherwise); the page that uses them is signed in.
"""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Response as FlaskResponse
from flask import jsonify
from pydantic import BaseModel, Field
from spectree import Response

from app.api import bp
from app.api.openapi import FieldError, ValidationErrors, spec
from app.auth.session import api_login_required, current_user
from app.extensions import db
from app.inputs import RowId
from app.services import enrollments, schools, wording
from app.services.enrollments import EnrollmentError
from media.spec import BACKGROUND_LABELS, PhotoSpec
from models import Batch, Enrollment, School

TAGS = ["关联学校"]


class ErrorBody(BaseModel):
    code: int
    message: str


class ErrorOut(BaseModel):
    error: ErrorBody


class RegionOut(BaseModel):
    province: str
    cities: list[str]


class RegionsOut(BaseModel):
    provinces: list[RegionOut]


class SchoolsQuery(BaseModel):
    province: str | None = Field(default=None, max_length=20)
    city: str | None = Field(default=None, max_length=30)
    q: str | None = Field(default=None, max_length=50, description="学校名称的一部分，不区分大小写")


class SchoolOut(BaseModel):
    code: str
    name: str
    province: str
    city: str


class SchoolsOut(BaseModel):
    schools: list[SchoolOut]
    truncated: bool = Field(description=f"匹配的学校超过 {schools.SEARCH_LIMIT} 所，只返回了前面的")


class PhotoSpecOut(BaseModel):
    width: int
    height: int
    size_mode: str
    formats: list[str]
    min_bytes: int
    max_bytes: int
    background: str
    background_label: str
    description: str = Field(description="按学校手册的说法描述的照片要求")


class ReviewDaysOut(BaseModel):
    min: int
    max: int
    label: str


class BatchOut(BaseModel):
    id: int
    name: str
    education: str
    opens_at: datetime
    closes_at: datetime
    open: bool = Field(description="现在是否开放关联")
    closed_message: str | None = Field(description="不开放时给学生看的说明（含日期）")
    fee_fen: int
    fee_label: str
    review_days: ReviewDaysOut
    photo_spec: PhotoSpecOut


class BatchesOut(BaseModel):
    school: SchoolOut
    batches: list[BatchOut]


class EnrollmentIn(BaseModel):
    batch_id: RowId


class EnrollmentOut(BaseModel):
    school: SchoolOut
    batch: BatchOut
    linked_at: datetime
    locked: bool = Field(description="已缴费提交核验，不能再更换学校或批次")


def review_days_label(low: int, high: int) -> str:
    return f"{low} 天" if low == high else f"{low}–{high} 天"


def school_out(school: School) -> SchoolOut:
    return SchoolOut(code=school.code, name=school.name, province=school.province, city=school.city)


def batch_out(batch: Batch, now: datetime) -> BatchOut:
    spec = PhotoSpec.model_validate(batch.photo_spec)
    is_open = batch.is_open(now)
    return BatchOut(
        id=batch.id,
        name=batch.name,
        education=batch.education,
        opens_at=batch.opens_at,
        closes_at=batch.closes_at,
        open=is_open,
        closed_message=None if is_open else enrollments.closed_message(batch, now),
        fee_fen=batch.fee_fen,
        fee_label=wording.yuan(batch.fee_fen),
        review_days=ReviewDaysOut(
            min=batch.review_days_min,
            max=batch.review_days_max,
            label=review_days_label(batch.review_days_min, batch.review_days_max),
        ),
        photo_spec=PhotoSpecOut(
            **spec.model_dump(mode="json"),
            background_label=BACKGROUND_LABELS[spec.background],
            description=spec.describe(),
        ),
    )


def enrollment_out(enrollment: Enrollment, now: datetime) -> EnrollmentOut:
    return EnrollmentOut(
        school=school_out(enrollment.batch.school),
        batch=batch_out(enrollment.batch, now),
        linked_at=enrollment.created_at,
        locked=enrollment.locked_at is not None,
    )


def _not_found(message: str) -> tuple[FlaskResponse, int]:
    return jsonify(error={"code": 404, "message": message}), 404


@bp.get("/regions")
@api_login_required
@spec.validate(resp=Response(HTTP_200=RegionsOut, HTTP_401=ErrorOut), tags=TAGS)
def list_regions() -> RegionsOut:
    """省份及其城市（只含有学校的），供「选择省 → 选择市」使用。"""
    found = schools.regions(db.session)
    return RegionsOut(provinces=[RegionOut(province=r.province, cities=r.cities) for r in found])


@bp.get("/schools")
@api_login_required
@spec.validate(resp=Response(HTTP_200=SchoolsOut, HTTP_401=ErrorOut, HTTP_422=ValidationErrors), tags=TAGS)
def list_schools(query: SchoolsQuery) -> SchoolsOut:
    """按省、市筛选学校，或按名称搜索（q，包含即可，不区分大小写）。"""
    result = schools.search(db.session, province=query.province, city=query.city, q=query.q)
    return SchoolsOut(schools=[school_out(s) for s in result.schools], truncated=result.truncated)


@bp.get("/schools/<code>/batches")
@api_login_required
@spec.validate(resp=Response(HTTP_200=BatchesOut, HTTP_401=ErrorOut, HTTP_404=ErrorOut), tags=TAGS)
def list_batches(code: str) -> BatchesOut | tuple[FlaskResponse, int]:
    """学校的批次（学历/级/届），含照片要求、费用、开放时间；未开放的批次也列出并注明原因。"""
    try:
        school, batches = schools.batches_of(db.session, code)
    except schools.SchoolNotFoundError:
        return _not_found(schools.SchoolNotFoundError.message)
    now = datetime.now(UTC)
    return BatchesOut(school=school_out(school), batches=[batch_out(b, now) for b in batches])


@bp.put("/me/enrollment")
@api_login_required
@spec.validate(
    json=EnrollmentIn,
    resp=Response(HTTP_200=EnrollmentOut, HTTP_401=ErrorOut, HTTP_422=ValidationErrors),
    tags=TAGS,
)
def put_enrollment(json: EnrollmentIn) -> EnrollmentOut | tuple[FlaskResponse, int]:
    """确定关联：把当前学生关联到一个开放中的批次（已缴费后不能更换）。"""
    user = current_user()
    assert user is not None  # api_login_required
    now = datetime.now(UTC)
    try:
        enrollment = enrollments.link(db.session, user.id, json.batch_id, now)
    except EnrollmentError as exc:
        body = ValidationErrors(errors=[FieldError(field="batch_id", message=exc.message)])
        return jsonify(body.model_dump()), 422
    return enrollment_out(enrollment, now)
