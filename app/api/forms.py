"""The linked batch's sign-up form and documents: GET/PUT /api/v1/me/form, GET /api/v1/me/documents,
POST /api/v1/me/documents/<slot> (multipart field `file`) and DELETE /api/v1/me/documents/<id>.

Only the signed-in student's own data. Files are served by signed links (/media/documents/<token>,
app/links/documents.py) that carry neither a storage key nor personal data.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Response, current_app, jsonify, request
from pydantic import BaseModel, Field
from spectree import Response as SpecResponse
from spectree.model_adapter.pydantic_adapter import BaseFile

from app.api import bp
from app.api.me import REFUSALS
from app.api.openapi import ValidationErrors, spec
from app.api.schemas import ApiError
from app.auth.session import api_login_required, current_user
from app.errors import error_response
from app.extensions import db
from app.inputs import row_id
from app.integrations import photo_storage, pii_keyring, redis_client
from app.services import applications, batch_forms, idcard_fill
from app.services.applications import (
    AnswersInvalidError,
    ApplicationError,
    ApplicationLockedError,
    DocumentError,
    DocumentNotFoundError,
    FormState,
    NoFormError,
)
from app.services.batch_forms import Definition, Problem
from models import Batch, Document

DOCUMENT_UPLOAD_ENDPOINT = "api.upload_document"
# The largest file any slot may allow (batch_forms.SlotDef.max_bytes); the slot's own limit is
# checked by the service.
MAX_DOCUMENT_BYTES = 50 * 1024 * 1024


class MissingOut(BaseModel):
    field: str = Field(
        description="点分路径，如 family.1.phone（行号从 1 开始）", examples=["family.1.phone"]
    )
    message: str


class RejectedOut(BaseModel):
    reason: str = Field(description="审核老师退回这一项的原因")


class ItemOut(BaseModel):
    editable: bool = Field(description="现在能否修改这一项")
    rejected: RejectedOut | None = Field(description="被驳回退回修改时的原因；未被退回为 null")


class FormOut(BaseModel):
    definition: dict[str, Any] = Field(description="批次的表单定义（docs/batch-forms.md）")
    answers: dict[str, Any] = Field(description="已保存的填写内容（本人可见，含个人信息）")
    missing: list[MissingOut] = Field(description="还缺的必填项；为空表示已填写完整")
    complete: bool
    fields: dict[str, ItemOut] = Field(description="每个字段（重复组算一项）能否修改、是否被退回")
    notice: str | None = Field(
        description="不是所有项目都能修改时的说明（审核中，或驳回只退回了部分项目）；都能修改时为 null"
    )


class FormIn(BaseModel):
    answers: dict[str, Any] = Field(description="字段 key → 值；重复组为若干行（对象列表）")


class FilledOut(BaseModel):
    field: str = Field(description="报名信息字段的 key", examples=["xm"])
    label: str = Field(examples=["姓名"])


class CardWarningOut(BaseModel):
    code: str = Field(
        description="not_read check_digit number_invalid number_unread birth_mismatch sex_mismatch "
        "bound_mismatch expired validity_unread rate_limited"
    )
    field: str | None = Field(
        description="识别项：name id_number sex ethnicity birth_date address valid_until …"
    )
    message: str = Field(description="给学生的中文说明")


class CardReadingOut(BaseModel):
    """身份证自动识别（id_card_front / id_card_back 的图片）：填了哪些报名信息、有什么要核对。"""

    filled: list[FilledOut] = Field(description="本次由识别结果自动填写的报名信息（原来是空的项），请核对")
    warnings: list[CardWarningOut]


class DocumentOut(BaseModel):
    id: int
    slot: str
    kind: str = Field(description="文件的真实类型：jpg png pdf doc docx ppt pptx")
    bytes: int
    width: int | None
    height: int | None
    pages: int | None
    url: str = Field(description="文件（签名链接，约 10 分钟内有效，仅本人可用）")
    created_at: datetime
    reading: CardReadingOut | None = Field(
        default=None, description="身份证材料的自动识别结果；其他材料为 null"
    )


class SlotOut(BaseModel):
    key: str
    label: str
    kind: str = Field(description="id_card_front、id_card_back 或 other")
    formats: list[str]
    max_bytes: int
    min_files: int
    max_files: int
    required: bool = Field(description="按当前填写内容是否必须上传")
    shown: bool = Field(description="按当前填写内容是否需要（when 条件）")
    hint: str | None
    files: list[DocumentOut]
    editable: bool = Field(description="现在能否上传或删除这一项的文件")
    rejected: RejectedOut | None = Field(description="被驳回退回修改时的原因；未被退回为 null")


class DocumentsOut(BaseModel):
    slots: list[SlotOut]
    missing: list[MissingOut]
    complete: bool
    notice: str | None = Field(description="不是所有项目都能修改时的说明；都能修改时为 null")


class DocumentUploadIn(BaseModel):
    # Optional here for the same reason as the photo upload's: spectree cannot word its own
    # "missing" error for a multipart form; the view answers a missing file with our 422.
    file: BaseFile | None = Field(default=None, description="文件（必填）")


def _user_id() -> int:
    user = current_user()
    assert user is not None  # api_login_required ran first
    return user.id


def _now() -> datetime:
    return datetime.now(UTC)


def _missing(problems: list[Problem]) -> list[MissingOut]:
    return [MissingOut(field=p.field, message=p.message) for p in problems]


def _rejected(reason: str | None) -> RejectedOut | None:
    return RejectedOut(reason=reason) if reason is not None else None


def _form_out(state: FormState) -> FormOut:
    allowed = state.reopened
    return FormOut(
        definition=batch_forms.to_data(state.definition),
        answers=state.answers,
        missing=_missing(state.missing),
        complete=not state.missing,
        fields={
            f.key: ItemOut(
                editable=allowed.field_editable(f.key), rejected=_rejected(allowed.fields.get(f.key))
            )
            for f in state.definition.fields()
        },
        notice=allowed.message,
    )


def _errors(field: str, message: str, status: int = 422) -> tuple[Response, int]:
    return jsonify(errors=[{"field": field, "message": message}]), status


def _reading_out(definition: Definition | None, reading: dict[str, Any] | None) -> CardReadingOut | None:
    if reading is None or definition is None:
        return None
    return CardReadingOut(
        filled=[
            FilledOut(field=k, label=label) for k, label in idcard_fill.filled_fields(definition, reading)
        ],
        warnings=[CardWarningOut(**w) for w in reading.get("warnings", [])],
    )


def _document_out(document: Document, definition: Definition | None = None) -> DocumentOut:
    token = applications.file_token(current_app.config["SECRET_KEY"], document.id, document.user_id)
    return DocumentOut(
        id=document.id,
        slot=document.slot,
        kind=document.kind,
        bytes=document.bytes,
        width=document.width,
        height=document.height,
        pages=document.pages,
        url=f"/media/documents/{token}",
        created_at=document.created_at,
        reading=_reading_out(definition, document.reading),
    )


@bp.url_value_preprocessor
def _limit_document_size(endpoint: str | None, values: dict[str, Any] | None) -> None:
    # As for photos: in force before the CSRF check reads the multipart body.
    if endpoint == DOCUMENT_UPLOAD_ENDPOINT:
        request.max_content_length = MAX_DOCUMENT_BYTES


@bp.get("/me/form")
@api_login_required
@spec.validate(resp=SpecResponse(HTTP_200=FormOut, HTTP_401=ApiError, HTTP_404=ApiError), tags=["报名信息"])
def get_form() -> Any:
    """所关联批次的报名信息表单（定义）和已保存的填写内容。批次不需要填写时 404。"""
    try:
        return _form_out(applications.form(db.session, pii_keyring(), _user_id()))
    except NoFormError as exc:
        return error_response(404, exc.message)


@bp.put("/me/form")
@api_login_required
@spec.validate(
    json=FormIn,
    resp=SpecResponse(
        HTTP_200=FormOut, HTTP_404=ApiError, HTTP_409=ApiError, HTTP_422=ValidationErrors, **REFUSALS
    ),
    tags=["报名信息"],
)
def save_form(json: FormIn) -> Any:
    """保存报名信息（随时可存草稿；必填项在 missing 中列出）。格式错误时 422，不保存任何内容；
    按 when 条件隐藏的字段不保存。审核期间，或驳回只退回了部分项目时改动了未退回的项目：409，不保存。"""
    try:
        state = applications.save_answers(db.session, pii_keyring(), _user_id(), json.answers, _now())
    except NoFormError as exc:
        return error_response(404, exc.message)
    except ApplicationLockedError as exc:
        return error_response(409, exc.message)
    except AnswersInvalidError as exc:
        return jsonify(errors=[{"field": p.field, "message": p.message} for p in exc.problems]), 422
    except ApplicationError as exc:
        return _errors("_", exc.message)
    return _form_out(state)


@bp.get("/me/documents")
@api_login_required
@spec.validate(
    resp=SpecResponse(HTTP_200=DocumentsOut, HTTP_401=ApiError, HTTP_404=ApiError), tags=["上传材料"]
)
def list_documents() -> Any:
    """所关联批次要求的材料（每一项的要求和已上传的文件）。批次不需要上传材料时 404。"""
    user_id = _user_id()
    try:
        state = applications.documents(db.session, user_id)
    except NoFormError as exc:
        return error_response(404, exc.message)
    definition, documents, answers, allowed = state.definition, state.files, state.answers, state.reopened
    counts: dict[str, int] = {}
    for document in documents:
        counts[document.slot] = counts.get(document.slot, 0) + 1
    missing = batch_forms.missing_documents(definition, answers, counts)
    slots = []
    for slot in definition.documents:
        shown = batch_forms.visible(slot.when, answers)
        slots.append(
            SlotOut(
                key=slot.key,
                label=slot.label,
                kind=slot.kind,
                formats=list(slot.formats),
                max_bytes=slot.max_bytes,
                min_files=slot.min_files,
                max_files=slot.max_files,
                required=slot.required and shown,
                shown=shown,
                hint=slot.hint,
                files=[_document_out(d, definition) for d in documents if d.slot == slot.key],
                editable=allowed.slot_editable(slot.key),
                rejected=_rejected(allowed.slots.get(slot.key)),
            )
        )
    return DocumentsOut(slots=slots, missing=_missing(missing), complete=not missing, notice=allowed.message)


@bp.post("/me/documents/<slot>")
@api_login_required
@spec.validate(
    form=DocumentUploadIn,
    resp=SpecResponse(
        HTTP_201=DocumentOut, HTTP_404=ApiError, HTTP_409=ApiError, HTTP_422=ValidationErrors, **REFUSALS
    ),
    tags=["上传材料"],
)
def upload_document(slot: str) -> Any:
    """上传一个材料文件到某一项（如 id_card_front）。按真实内容检查类型、大小和安全性（含脚本的 PDF、
    可执行文件等会被拒绝，422，不保存）；图片会重新编码并去除元数据。身份证正反面的图片会自动识别：
    该项定义了 fills 时，把识别出的信息填入还空着的报名信息（不覆盖已填写的），reading 中列出填了哪些、
    有什么要核对。审核期间或这一项未被退回：409。"""
    upload = request.files.get("file")
    if upload is None:
        return _errors("file", "请选择要上传的文件。")
    data = upload.stream.read(MAX_DOCUMENT_BYTES + 1)
    try:
        document = applications.upload(
            db.session,
            photo_storage(),
            _user_id(),
            slot,
            data,
            upload.filename,
            _now(),
            keyring=pii_keyring(),
            cache=redis_client(),
        )
    except NoFormError as exc:
        return error_response(404, exc.message)
    except ApplicationLockedError as exc:
        return error_response(409, exc.message)
    except DocumentError as exc:
        return _errors(exc.field, exc.message)
    batch = db.session.get(Batch, document.batch_id)
    return _document_out(document, applications.definition_of(batch) if batch else None), 201


# A plain segment, not <int:…>: the app's row-id converter refuses "-1", and the upload route on the
# same path would then answer 405; any id that is not one of the student's documents is a 404.
@bp.delete("/me/documents/<document_id>")
@api_login_required
@spec.validate(
    resp=SpecResponse(
        HTTP_204=None, HTTP_404=ApiError, HTTP_409=ApiError, HTTP_422=ValidationErrors, **REFUSALS
    ),
    tags=["上传材料"],
)
def delete_document(document_id: str) -> Any:
    """删除自己上传的一个材料文件。"""
    row = row_id(document_id)
    if row is None:
        return error_response(404, DocumentNotFoundError.message)
    try:
        applications.delete(db.session, _user_id(), row, _now())
    except (NoFormError, DocumentNotFoundError) as exc:
        return error_response(404, exc.message)
    except ApplicationLockedError as exc:
        return error_response(409, exc.message)
    except ApplicationError as exc:
        return _errors("_", exc.message)
    return Response(status=204)
