"""POST /api/v1/me/idcard/read (multipart field `file`): 拍身份证自动填写 on the bind page.

The photo of the card's portrait side is read and answered with what it says, for the student to check
and correct before binding as usual; the image is not stored. Unlike the rest of the API this answer
carries a whole name and ID number: the student's own card, which they just photographed.
"""

from __future__ import annotations

from datetime import datetime
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
from app.integrations import redis_client
from app.services import idcard_fill
from app.services.idcard_fill import IdcardReadError, IdcardReadLimitError
from app.services.localtime import BEIJING

READ_ENDPOINT = "api.read_idcard"


class IdcardReadIn(BaseModel):
    # Optional for the same reason as the photo upload's: the view answers a missing file with our 422.
    file: BaseFile | None = Field(default=None, description="身份证人像面的照片（必填；JPG/PNG）")


class IdcardWarningOut(BaseModel):
    code: str = Field(description="check_digit number_invalid number_unread birth_mismatch sex_mismatch")
    field: str | None = Field(description="相关的识别项，如 id_number")
    message: str = Field(description="给学生的中文说明", examples=["未能识别身份证号码，请手动填写"])


class IdcardReadOut(BaseModel):
    """识别出的信息（没识别出的为 null）。号码只在校验位正确时给出。"""

    name: str | None = Field(description="姓名")
    id_number: str | None = Field(description="公民身份号码（校验位正确时）")
    sex: str | None = Field(description="男 / 女")
    ethnicity: str | None = Field(description="民族，如 汉、维吾尔（不含「族」）")
    birth_date: str | None = Field(description="出生日期 YYYY-MM-DD")
    address: str | None = Field(description="住址")
    uncertain: list[str] = Field(description="识别把握不大的项，请特别核对")
    warnings: list[IdcardWarningOut]


@bp.url_value_preprocessor
def _limit_read_size(endpoint: str | None, values: dict[str, Any] | None) -> None:
    # As for photos: in force before the CSRF check reads the multipart body.
    if endpoint == READ_ENDPOINT:
        request.max_content_length = current_app.config["MEDIA_MAX_UPLOAD_BYTES"]


@bp.post("/me/idcard/read")
@api_login_required
@spec.validate(
    form=IdcardReadIn,
    resp=SpecResponse(
        HTTP_200=IdcardReadOut,
        HTTP_413=ValidationErrors,
        HTTP_422=ValidationErrors,
        HTTP_429=ApiError,
        **REFUSALS,
    ),
    tags=["实名绑定"],
)
def read_idcard() -> Any:
    """拍身份证自动填写：识别身份证人像面，返回姓名、号码、性别、民族、出生日期和住址，供学生核对后绑定。
    不保存照片。不是图片或没识别出信息时 422；识别太频繁时 429。"""
    user = current_user()
    assert user is not None  # api_login_required ran first
    upload = request.files.get("file")
    if upload is None:
        return jsonify(errors=[{"field": "file", "message": "请选择身份证人像面的照片。"}]), 422
    limit: int = current_app.config["MEDIA_MAX_UPLOAD_BYTES"]
    data = upload.stream.read(limit + 1)
    if not data:
        return jsonify(errors=[{"field": "file", "message": "文件是空的，请重新选择照片。"}]), 422
    if len(data) > limit:
        return jsonify(
            errors=[{"field": "file", "message": f"照片太大，请不超过 {limit // 1048576} MB。"}]
        ), 413
    try:
        read = idcard_fill.read_for_bind(redis_client(), user.id, data, datetime.now(BEIJING).date())
    except IdcardReadLimitError as exc:
        response, status = error_response(429, exc.message)
        if isinstance(response, Response):
            response.headers["Retry-After"] = str(exc.retry_after)
        return response, status
    except IdcardReadError as exc:
        return jsonify(errors=[{"field": "file", "message": exc.message}]), 422
    v = read.values
    return IdcardReadOut(
        name=v.get("name"),
        id_number=v.get("id_number"),
        sex=v.get("sex"),
        ethnicity=v.get("ethnicity"),
        birth_date=v.get("birth_date"),
        address=v.get("address"),
        uncertain=list(read.uncertain),
        warnings=[IdcardWarningOut(code=w.code, field=w.field, message=w.message) for w in read.warnings],
    )
