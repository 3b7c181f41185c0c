"""/h5/photo (上传照片): the batch's photo rules in words, the upload with a progress bar, and the
automatic check's verdict line by line. The upload and the result talk to /api/v1/me/photos
(app/static/h5/photo.js); this view only says what applies and whether the student may upload.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from flask import current_app, render_template

from app.auth.session import current_user, login_required
from app.extensions import db
from app.h5 import bp
from app.services import enrollments, flow_pages, photos, returns
from app.services.photos import PhotoError, PhotoIdentityRequiredError, Rejection
from media.spec import BACKGROUND_LABELS, PhotoSpec
from models import Batch

# 湖南师范大学's 照片要求, in its words: what no automatic check can fully judge, so people must be told.
REQUIREMENTS = (
    "本人近期免冠正面证件照，头部居中，表情自然",
    "露出眉毛、眼睛和双耳，面部无遮挡（头发、眼镜反光、饰品等）",
    "背景干净均匀，不得有其他人或物体",
    "不得美颜、修图或更换背景",
    "不得上传扫描件、翻拍的纸质照片或自拍照；请他人用手机后置摄像头在光线均匀处拍摄",
)


@dataclass(frozen=True)
class Sample:
    """A drawing of a good photo for the batch's spec (no real person): the canvas in the spec's
    pixels, the background colour, the head where the spec wants it and the eye band."""

    width: int
    height: int
    background: str  # "#64c5ff"
    background_label: str
    head_cx: float
    head_cy: float
    head_rx: float
    head_ry: float
    crown_y: float
    chin_y: float
    eye_y: float
    eye_dx: float
    eye_band_top: float
    eye_band_bottom: float
    crown_band_top: float
    crown_band_bottom: float
    shoulders: str  # an SVG path


def sample_of(spec: PhotoSpec) -> Sample:
    w, h = spec.width, spec.height
    crown = (spec.crown_margin_min + spec.crown_margin_max) / 2 * h
    eye = (spec.eye_line_min + spec.eye_line_max) / 2 * h
    face_w = (spec.face_width_min + spec.face_width_max) / 2 * w
    # The head from crown to chin fills head_ratio of the height (what auto-fix aims for), but the
    # chin never sits above the eyes' band.
    chin = max(crown + spec.head_ratio * h, eye + 0.12 * h)
    chin = min(chin, 0.9 * h)
    cx = w / 2
    neck = face_w * 0.22
    shoulder_y = min(h, chin + 0.06 * h)
    shoulders = (
        f"M{cx - neck:.1f},{chin - 0.02 * h:.1f} L{cx - neck:.1f},{shoulder_y:.1f} "
        f"Q{cx - w * 0.42:.1f},{shoulder_y + 0.02 * h:.1f} {cx - w * 0.5:.1f},{h:.1f} "
        f"L{cx + w * 0.5:.1f},{h:.1f} Q{cx + w * 0.42:.1f},{shoulder_y + 0.02 * h:.1f} "
        f"{cx + neck:.1f},{shoulder_y:.1f} L{cx + neck:.1f},{chin - 0.02 * h:.1f} Z"
    )
    return Sample(
        width=w,
        height=h,
        background="#{:02x}{:02x}{:02x}".format(*spec.background_rgb),
        background_label=BACKGROUND_LABELS[spec.background],
        head_cx=cx,
        head_cy=(crown + chin) / 2,
        head_rx=face_w / 2,
        head_ry=(chin - crown) / 2,
        crown_y=crown,
        chin_y=chin,
        eye_y=eye,
        eye_dx=face_w * 0.2,
        eye_band_top=spec.eye_line_min * h,
        eye_band_bottom=spec.eye_line_max * h,
        crown_band_top=spec.crown_margin_min * h,
        crown_band_bottom=spec.crown_margin_max * h,
        shoulders=shoulders,
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
    notice = flow_pages.notice_of(db.session, user.id)
    if blocked is None and notice is not None and notice.pending:
        # The 须知 comes first (acknowledged before uploading and submitting): read it, then come back.
        state = "need-notice"
    elif blocked is None:
        state = "ready"
    elif isinstance(blocked, PhotoIdentityRequiredError):
        state = "need-identity"
    elif batch is None:
        state = "need-school"
    else:
        state = "closed"
    spec = PhotoSpec.model_validate(batch.photo_spec) if batch is not None else None
    rejection: Rejection | None = photos.last_rejection(db.session, user.id)
    return render_template(
        "h5/photo.html",
        state=state,
        blocked_message=blocked.message if blocked else None,
        terms=flow_pages.submit_terms(batch) if batch is not None else None,
        batch=batch,
        spec=spec,
        spec_text=spec.describe() if spec else None,
        sample=sample_of(spec) if spec else None,
        rejection=rejection,
        kept_photo=returns.kept_photo(db.session, user.id),
        requirements=REQUIREMENTS,
        max_mb=current_app.config["MEDIA_MAX_UPLOAD_BYTES"] // (1024 * 1024),
        # Known here, so the page does not ask the API for a verdict that cannot exist (a 404).
        has_photo=photos.latest(db.session, user.id) is not None,
    )
