"""/h5/photo (上传照片): the batch's photo rules in words, the upload with a progress bar, and the
automatic check's verdict line by line. The upload and the result talk to /api/v1/me/photos
(app/static/h5/photo.js); this view only says what applies and whether the student may upload.
"""

from __future__ import annotations

from datetime import UTC, datetime

from flask import current_app, render_template

from app.auth.session import current_user, login_required
from app.extensions import db
from app.h5 import bp
from app.services import enrollments, photos
from app.services.photos import PhotoError, PhotoIdentityRequiredError
from media.spec import PhotoSpec
from models import Batch

# 湖南师范大学's 照片要求, in its words: what no automatic check can fully judge, so people must be told.
REQUIREMENTS = (
    "本人近期免冠正面证件照，头部居中，表情自然",
    "露出眉毛、眼睛和双耳，面部无遮挡（头发、眼镜反光、饰品等）",
    "背景干净均匀，不得有其他人或物体",
    "不得美颜、修图或更换背景",
    "不得上传扫描件、翻拍的纸质照片或自拍照；请他人用手机后置摄像头在光线均匀处拍摄",
)


@bp.get("/photo")
@login_required
def photo() -> str:
    user = current_user()
    assert user is not None  # login_required
    now = datetime.now(UTC)
    blocked: PhotoError | None = None
    batch: Batch | None
    try:
        batch = photos.open_batch(db.session, user.id, now)
    except PhotoError as exc:
        blocked = exc
        enrollment = enrollments.active(db.session, user.id)
        batch = enrollment.batch if enrollment is not None else None
    if blocked is None:
        state = "ready"
    elif isinstance(blocked, PhotoIdentityRequiredError):
        state = "need-identity"
    elif batch is None:
        state = "need-school"
    else:
        state = "closed"
    spec = PhotoSpec.model_validate(batch.photo_spec) if batch is not None else None
    return render_template(
        "h5/photo.html",
        state=state,
        blocked_message=blocked.message if blocked else None,
        batch=batch,
        spec=spec,
        spec_text=spec.describe() if spec else None,
        requirements=REQUIREMENTS,
        max_mb=current_app.config["MEDIA_MAX_UPLOAD_BYTES"] // (1024 * 1024),
        # Known here, so the page does not ask the API for a verdict that cannot exist (a 404).
        has_photo=photos.latest(db.session, user.id) is not None,
    )
