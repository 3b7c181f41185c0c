"""The signed-in student's photos: POST /api/v1/me/photos (multipart field `file`) and GET
/api/v1/me/photos/latest.

Files are never reachable by id or storage key: each answer carries links signed for this photo,
this file and this user, valid for MEDIA_URL_TTL_SECONDS, served by /media/photos/<token>
(app/links/photos.py), which also checks that the signed-in user is the one a link was made for,
or signed-in staff who cover the photo's school.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from flask import Response, current_app, jsonify, request
from pydantic import BaseModel, Field
from spectree import Response as SpecResponse
from spectree.model_adapter.pydantic_adapter import BaseFile
from werkzeug.exceptions import RequestEntityTooLarge

from app.api import bp
from app.api.me import REFUSALS
from app.api.openapi import ValidationErrors, spec
from app.api.schemas import ApiError
from app.auth.session import api_login_required, current_user
from app.errors import error_response
from app.extensions import db
from app.integrations import photo_storage
from app.services import photos
from app.services.photos import FileKind, PhotoError, PhotoTooLargeError
from media.storage import Storage
from models import Photo

UPLOAD_ENDPOINT = "api.upload_photo"


class PhotoUploadIn(BaseModel):
    # Required in fact; optional here because spectree cannot serialise its own "missing" error
    # when the form holds files. The view answers a missing file with our 422.
    file: BaseFile | None = Field(
        default=None, description="照片文件（必填；JPG/PNG，手机直接拍摄的原图即可，会自动裁剪压缩）"
    )


class CheckOut(BaseModel):
    name: str = Field(examples=["face_count"])
    label: str = Field(description="检查项的中文名称", examples=["人脸"])
    ok: bool
    value: float | str | None
    limit: str | None
    message: str = Field(description="给学生的说明：符合要求，或该怎么改")
    blocking: bool = Field(default=True, description="false：仅作提示，不影响是否通过")
    advice: str | None = Field(
        default=None, description="未通过时：一句给学生的修改建议（不含检测数值）；通过时为 null"
    )


class PhotoRejectionOut(BaseModel):
    status_label: str = Field(description="驳回 或 不通过", examples=["驳回"])
    reason: str | None = Field(description="审核老师填写的原因")
    decided_at: datetime | None


class NormalizedOut(BaseModel):
    width: int | None
    height: int | None
    bytes: int
    format: str | None
    url: str = Field(description="自动处理后的照片（签名链接，约 10 分钟内有效，仅本人可用）")


class PhotoOut(BaseModel):
    id: int
    passed: bool
    checks: list[CheckOut]
    fixes: list[str] = Field(description="自动处理做了什么，如「已裁剪为 480×640」")
    normalized: NormalizedOut | None = Field(description="自动处理后的照片；无法处理时为 null")
    original_url: str = Field(description="上传的原图（签名链接）")
    source: str = Field(description="h5（页面上传）或 chat（聊天中发送）")
    created_at: datetime
    rejected: PhotoRejectionOut | None = Field(
        default=None, description="这张照片已被审核驳回或不通过时：原因；这样的照片不能再次提交"
    )


def _user_id() -> int:
    user = current_user()
    assert user is not None  # api_login_required ran first
    return user.id


def _storage() -> Storage:
    return photo_storage()


def file_url(photo_id: int, kind: FileKind, user_id: int) -> str:
    token = photos.file_token(current_app.config["SECRET_KEY"], photo_id, kind, user_id, time.time())
    return f"/media/photos/{token}"


def photo_out(photo: Photo) -> PhotoOut:
    rejection = photos.rejection_of(db.session, photo.user_id, photo.id)
    normalized = None
    if photo.normalized_key is not None and photo.normalized_bytes is not None:
        normalized = NormalizedOut(
            width=photo.width,
            height=photo.height,
            bytes=photo.normalized_bytes,
            format=photo.normalized_format,
            url=file_url(photo.id, "normalized", photo.user_id),
        )
    return PhotoOut(
        id=photo.id,
        passed=photo.passed,
        checks=[
            CheckOut(**check, label=photos.check_label(check["name"]), advice=photos.student_advice(check))
            for check in photo.checks
        ],
        fixes=photo.fixes,
        normalized=normalized,
        original_url=file_url(photo.id, "original", photo.user_id),
        source=photo.source,
        created_at=photo.created_at,
        rejected=PhotoRejectionOut(
            status_label=rejection.status_label, reason=rejection.reason, decided_at=rejection.decided_at
        )
        if rejection is not None
        else None,
    )


def _photo_error(exc: PhotoError) -> tuple[Response, int]:
    status = 413 if isinstance(exc, PhotoTooLargeError) else 422
    return jsonify(errors=[{"field": exc.field, "message": exc.message}]), status


@bp.url_value_preprocessor
def _limit_upload_size(endpoint: str | None, values: dict[str, Any] | None) -> None:
    # URL value preprocessors run before every before_request hook, including the CSRF check that
    # reads the multipart form: so the size limit is in force before any byte of the body is read.
    if endpoint == UPLOAD_ENDPOINT:
        request.max_content_length = current_app.config["MEDIA_MAX_UPLOAD_BYTES"]


@bp.errorhandler(RequestEntityTooLarge)
def _too_large(exc: RequestEntityTooLarge) -> tuple[Response | str, int]:
    if request.endpoint != UPLOAD_ENDPOINT:
        return error_response(413)
    message = photos.too_large_message(current_app.config["MEDIA_MAX_UPLOAD_BYTES"])
    return jsonify(errors=[{"field": "file", "message": message}]), 413


@bp.post("/me/photos")
@api_login_required
@spec.validate(
    form=PhotoUploadIn,
    resp=SpecResponse(HTTP_201=PhotoOut, HTTP_413=ValidationErrors, HTTP_422=ValidationErrors, **REFUSALS),
    tags=["上传照片"],
)
def upload_photo() -> tuple[PhotoOut, int] | tuple[Response, int]:
    """上传证件照：自动检查（尺寸、格式、人像、背景、曝光、清晰度）并自动裁剪压缩。

    未通过检查的照片也会保存并返回检查结果；不是图片的文件返回 422。需先实名绑定并关联开放中的批次。
    """
    upload = request.files.get("file")
    if upload is None:
        return jsonify(errors=[{"field": "file", "message": "请选择一张照片。"}]), 422
    limit: int = current_app.config["MEDIA_MAX_UPLOAD_BYTES"]
    data = upload.stream.read(limit + 1)
    try:
        photo = photos.upload(
            db.session,
            _storage(),
            _user_id(),
            data,
            upload.filename,
            upload.mimetype,
            datetime.now(UTC),
            "h5",
            max_bytes=limit,
        )
    except PhotoError as exc:
        return _photo_error(exc)
    return photo_out(photo), 201


@bp.get("/me/photos/latest")
@api_login_required
@spec.validate(resp=SpecResponse(HTTP_200=PhotoOut, HTTP_401=ApiError, HTTP_404=ApiError), tags=["上传照片"])
def latest_photo() -> PhotoOut | tuple[Response | str, int]:
    """最近一次上传的照片和检查结果（链接每次重新签发）。"""
    photo = photos.latest(db.session, _user_id())
    if photo is None:
        return error_response(404, "还没有上传照片。")
    return photo_out(photo)
