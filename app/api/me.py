"""The signed-in student's own data: GET /api/v1/me, PUT/DELETE /api/v1/me/identity, and the live
check of an ID number while it is typed (POST /api/v1/identity/check).

Every route works on the session's user only — there is no user id in any URL, so one student can
never name another's data. Errors are `422 {"errors": [{"field", "message"}]}`, the message in
Chinese; "_" is the field of an error that belongs to no single field.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from flask import Response, jsonify
from flask_wtf.csrf import CSRFError
from spectree import Response as SpecResponse

from app.api import bp
from app.api.openapi import ValidationErrors, spec
from app.api.schemas import (
    ApiError,
    BatchOut,
    EnrollmentOut,
    IdentityCheckIn,
    IdentityCheckOut,
    IdentityIn,
    IdentityOut,
    MeOut,
    ProgressOut,
    SchoolOut,
    StepOut,
)
from app.auth.session import api_login_required, current_user
from app.extensions import db
from app.integrations import pii_keyring
from app.services import enrollments, identities, progress, wording
from app.services.id_documents import DOCUMENT_LABELS, FieldError, normalise_name, parse_document
from app.services.identities import IdentityError, IdentityInput, IdentityTakenError
from app.services.localtime import BEIJING
from app.services.pii import mask_id_number
from media.spec import PhotoSpec

CSRF_MESSAGE = "页面已过期或来源不明，请刷新页面后再试。"
# Documented for state-changing calls: 400 = CSRF token missing or wrong, 401 = not signed in.
REFUSALS = {"HTTP_400": ApiError, "HTTP_401": ApiError}


def _now() -> datetime:
    return datetime.now(UTC)


def _today() -> date:
    # Birth dates on Chinese documents are Beijing dates; "not in the future" is judged there too.
    return datetime.now(BEIJING).date()


def _user_id() -> int:
    user = current_user()
    assert user is not None  # api_login_required ran first
    return user.id


def summary(user_id: int, now: datetime) -> MeOut:
    """Everything the 我的 page and GET /api/v1/me show, masked."""
    session = db.session
    identity_out = None
    identity = identities.active(session, user_id)
    if identity is not None:
        shown = identities.view(pii_keyring(), identity, now.astimezone(BEIJING).date())
        identity_out = IdentityOut(
            id_type=shown.doc_type,
            id_type_label=shown.doc_label,
            number_masked=shown.number_masked,
            name_masked=shown.name_masked,
            birth_date=shown.birth_date,
            sex=shown.sex,
            locked=shown.locked,
            locked_message=identities.IdentityLockedError.message if shown.locked else None,
            bound_at=shown.bound_at,
        )
    enrollment_out = None
    enrollment = enrollments.active(session, user_id)
    if enrollment is not None:
        batch, school = enrollment.batch, enrollment.batch.school
        enrollment_out = EnrollmentOut(
            school=SchoolOut(code=school.code, name=school.name, province=school.province, city=school.city),
            batch=BatchOut(
                id=batch.id,
                name=batch.name,
                education=batch.education,
                opens_at=batch.opens_at,
                closes_at=batch.closes_at,
                is_open=batch.is_open(now),
                fee_fen=batch.fee_fen,
                fee_label=wording.yuan(batch.fee_fen),
                review_days=f"{batch.review_days_min}–{batch.review_days_max} 天",
                photo_spec=PhotoSpec.model_validate(batch.photo_spec).describe(),
            ),
            locked=enrollment.locked_at is not None,
            linked_at=enrollment.created_at,
        )
    step = progress.of(session, user_id, now)
    return MeOut(
        identity=identity_out,
        enrollment=enrollment_out,
        progress=ProgressOut(step=step.step, title=step.title, message=step.message, path=step.path),
        steps=[
            StepOut(key=s.key, label=s.label, status=s.status, url=s.url, hint=s.hint) for s in step.checklist
        ],
    )


def _errors(*errors: tuple[str, str]) -> tuple[Response, int]:
    return jsonify(errors=[{"field": field, "message": message} for field, message in errors]), 422


def _identity_error(exc: IdentityError) -> tuple[Response, int]:
    # A taken document is about the number the student typed; the others concern the whole binding.
    return _errors(("id_number" if isinstance(exc, IdentityTakenError) else "_", exc.message))


@bp.get("/me")
@api_login_required
@spec.validate(resp=SpecResponse(HTTP_200=MeOut, HTTP_401=ApiError), tags=["我的"])
def me() -> MeOut:
    """我的：实名信息（脱敏）、学校与批次、下一步。"""
    return summary(_user_id(), _now())


@bp.put("/me/identity")
@api_login_required
@spec.validate(
    json=IdentityIn,
    resp=SpecResponse(HTTP_200=MeOut, HTTP_422=ValidationErrors, **REFUSALS),
    tags=["实名绑定"],
)
def bind_identity(json: IdentityIn) -> MeOut | tuple[Response, int]:
    """实名绑定；已绑定时为修改（缴费提交核验后不能再修改）。"""
    data = IdentityInput(json.id_type.value, json.id_number, json.name)
    try:
        identities.bind(db.session, pii_keyring(), _user_id(), data, _today())
    except FieldError as exc:
        return _errors((exc.field, exc.message))
    except IdentityError as exc:
        return _identity_error(exc)
    return summary(_user_id(), _now())


@bp.delete("/me/identity")
@api_login_required
@spec.validate(resp=SpecResponse(HTTP_200=MeOut, HTTP_422=ValidationErrors, **REFUSALS), tags=["实名绑定"])
def unbind_identity() -> MeOut | tuple[Response, int]:
    """取消微信绑定：解除实名信息和学校关联（记录保留备查）。"""
    try:
        identities.unbind(db.session, _user_id())
    except IdentityError as exc:
        return _identity_error(exc)
    return summary(_user_id(), _now())


@bp.post("/identity/check")
@api_login_required
@spec.validate(
    json=IdentityCheckIn,
    resp=SpecResponse(HTTP_200=IdentityCheckOut, HTTP_422=ValidationErrors, **REFUSALS),
    tags=["实名绑定"],
)
def check_identity(json: IdentityCheckIn) -> IdentityCheckOut | tuple[Response, int]:
    """边输入边核对：规范化并脱敏证件号码，推出出生日期和性别；不保存任何内容。

    It never says whether a document is bound already: that would tell anyone holding a list of
    numbers whose they are.
    """
    errors: list[tuple[str, str]] = []
    document = None
    if json.id_number.strip() or not json.name.strip():
        try:
            document = parse_document(json.id_type, json.id_number, _today())
        except FieldError as exc:
            errors.append((exc.field, exc.message))
    if json.name.strip():
        try:
            normalise_name(json.name, json.id_type)
        except FieldError as exc:
            errors.append((exc.field, exc.message))
    if errors:
        return _errors(*errors)
    confirm = None
    if document is not None and document.birth_date is not None and document.sex is not None:
        born = document.birth_date
        confirm = f"请核对：{born.year}年{born.month}月{born.day}日出生，{document.sex}"
    elif document is not None:
        confirm = "号码格式正确，请与证件逐位核对" + (f"（{document.region}）" if document.region else "")
    return IdentityCheckOut(
        id_type=json.id_type,
        id_type_label=DOCUMENT_LABELS[json.id_type],
        number_masked=mask_id_number(document.number) if document else None,
        birth_date=document.birth_date if document else None,
        sex=document.sex if document else None,
        region=document.region if document else None,
        confirm=confirm,
    )


@bp.errorhandler(CSRFError)
def csrf_refused(exc: CSRFError) -> tuple[Response, int]:
    # CSRFProtect runs before any API view; answer in the API's JSON, not the HTML error page.
    return jsonify(error={"code": 400, "message": CSRF_MESSAGE}), 400
