"""Photos (上传照片): check an upload against the batch's spec, keep both files, report what to fix.

- A student must have bound an identity and linked a batch that is open now.
- media.pipeline decodes safely, checks, and auto-fixes (crop, resize, compress); a file that is not
  an image at all is refused and nothing is stored. A photo that fails a check is still stored and
  reported — the report is the point.
- The same picture as one already rejected for this student (perceptual hash within a few bits of an
  earlier photo that failed its checks, or of one a reviewer returned or refused) gets an extra failed
  check, `duplicate_of_rejected`, whose message names that photo, who refused it and why.
- A photo a reviewer returned or refused (驳回/不通过), or the same picture again, is never submitted
  again (`review_rejection`, enforced by submissions.create); staff see a resubmission that looks
  like a rejected photo (`similar_rejections`). A 驳回 that named other items only (returns.py) did
  not reject the photo: it is submitted again as it is.
- Files are shown only through short-lived signed links bound to the photo, the file and the viewer
  (`file_token` / `read_file_token`); a link never carries a storage key or anything personal.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Literal

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.services import enrollments, identities, outbox, returns, wording
from app.services.job_kinds import JobKind
from app.services.localtime import stored_utc
from media import decode
from media.spec import PhotoSpec
from media.storage import MediaNotFoundError, Storage, sha256_hex
from models import Batch, Photo, Staff, StaffRole
from models.submission import STATUS_LABELS, Submission, SubmissionStatus

log = logging.getLogger(__name__)

SOURCES = ("h5", "chat")
# Hamming distance between 64-bit perceptual hashes at or below which two photos are "the same
# picture" (re-encoded, resized or lightly cropped copies land within a few bits; different shots
# of the same person differ by far more).
DUPLICATE_MAX_DISTANCE = 6
# How many of the student's earlier failed photos are compared (the newest ones).
DUPLICATE_LOOKBACK = 50
# A reviewer's decision that rejects the photo: it may not be submitted again.
REJECTED_BY_REVIEW = (SubmissionStatus.RETURNED, SubmissionStatus.REFUSED)
# Staff are warned when a resubmitted photo is this close to a rejected one: wider than the "same
# picture" line above, so a lightly edited copy of a rejected photo (background swapped, brightness
# changed) gets a second look. A warning only: nothing is refused at this distance.
SIMILAR_WARN_DISTANCE = 12
DEFAULT_MAX_BYTES = 20 * 1024 * 1024
FILE_LINK_SALT = "media-photo-file"
FileKind = Literal["normalized", "original"]
_FILE_CODES: dict[str, FileKind] = {"n": "normalized", "o": "original"}


# What each check is called on the page and in chat (media/ names them; people read these).
CHECK_LABELS: dict[str, str] = {
    "format": "文件格式",
    "pixel_size": "像素尺寸",
    "file_size": "文件大小",
    "color_mode": "色彩模式",
    "face_count": "人脸",
    "eye_height": "眼睛位置",
    "face_width": "脸部大小",
    "crown_margin": "头顶留白",
    "centering": "左右居中",
    "roll": "头部倾斜",
    "yaw": "正脸朝向",
    "background_color": "背景颜色",
    "background_uniformity": "背景均匀",
    "exposure": "曝光",
    "sharpness": "清晰度",
    "border": "黑边",
    "scan": "翻拍/扫描",
    "duplicate_of_rejected": "重复照片",
}


def check_label(name: str) -> str:
    return CHECK_LABELS.get(name, name)


# Measured values quoted inside a message ("（1200×900）", "（520 KB）"): staff read them on the
# decision page; a student needs only what to do.
_QUOTED_FIGURES = re.compile(r"（[^（）]*\d[^（）]*）")
_CURRENT_FIGURES = re.compile(r"[，,]\s*当前为[^，。；]*")


def student_advice(check: Mapping[str, Any]) -> str | None:
    """What a student should do about a failed check, in one plain sentence without measured values;
    None for a check that passed."""
    if check.get("ok"):
        return None
    text = _QUOTED_FIGURES.sub("", str(check.get("message") or ""))
    text = _CURRENT_FIGURES.sub("", text).strip()
    text = text.rstrip("。；;") + "。" if text else "请按上面的照片要求重新拍摄。"
    return text


class PhotoError(Exception):
    """Base of the refusals; `message` is shown to the student as it is, `field` says where."""

    message = "照片上传失败"
    field = "_"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.message)
        if message:
            self.message = message


class PhotoIdentityRequiredError(PhotoError):
    message = "请先完成实名绑定，再上传照片。"


class PhotoEnrollmentRequiredError(PhotoError):
    message = "请先关联学校和批次，再上传照片（照片要求由所选批次决定）。"


class PhotoBatchClosedError(PhotoError):
    message = "你关联的批次不在开放时间内，不能上传照片。"


class PhotoUnreadableError(PhotoError):
    message = "无法识别这个文件，请上传 JPG 或 PNG 格式的照片。"
    field = "file"


class PhotoTooLargeError(PhotoError):
    message = "照片文件太大，请上传 20 MB 以内的照片。"
    field = "file"


class PhotoNotFoundError(PhotoError):
    message = "照片不存在或链接已失效。"


class PhotoLinkExpiredError(PhotoError):
    message = "照片链接已过期，请刷新页面。"


class PhotoForbiddenError(PhotoError):
    message = "没有权限查看这张照片。"


def too_large_message(max_bytes: int) -> str:
    return f"照片文件太大，请上传 {max_bytes // (1024 * 1024)} MB 以内的照片。"


def open_batch(session: Session, user_id: int, now: datetime) -> Batch:
    """The batch whose spec applies to this student's upload now; raises what is missing."""
    if identities.active(session, user_id) is None:
        raise PhotoIdentityRequiredError()
    enrollment = enrollments.active(session, user_id)
    if enrollment is None:
        raise PhotoEnrollmentRequiredError()
    batch = enrollment.batch
    if not batch.is_open(now):
        if now < batch.opens_at:
            raise PhotoBatchClosedError(
                enrollments.closed_message(batch, now).replace("再来关联", "再上传照片")
            )
        raise PhotoBatchClosedError(f"「{batch.name}」已截止，不能再上传照片。如有新的批次，请重新关联学校。")
    return batch


def by_source_ref(session: Session, user_id: int, source_ref: str) -> Photo | None:
    return session.scalar(select(Photo).where(Photo.user_id == user_id, Photo.source_ref == source_ref))


def upload(
    session: Session,
    storage: Storage,
    user_id: int,
    data: bytes,
    filename: str | None,
    content_type: str | None,
    now: datetime,
    source: str,
    *,
    source_ref: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    detector: Any = None,
) -> Photo:
    """Check, auto-fix and keep one uploaded photo; commits. With `source_ref` (e.g. a WeChat
    message id) a repeat returns the photo made the first time instead of a second one."""
    if source not in SOURCES:
        raise ValueError(f"unknown photo source {source!r}")
    if source_ref is not None:
        earlier = by_source_ref(session, user_id, source_ref)
        if earlier is not None:
            return earlier
    batch = open_batch(session, user_id, now)
    if len(data) > max_bytes:
        raise PhotoTooLargeError(too_large_message(max_bytes))
    if not data:
        raise PhotoUnreadableError("文件是空的，请重新选择照片。")
    spec = PhotoSpec.model_validate(batch.photo_spec)
    # Imported here: OpenCV and the face detector load on the first upload, not at every start.
    from media import pipeline

    try:
        result = pipeline.process(data, spec, detector=detector)
    except pipeline.UnreadableImageError as exc:
        raise PhotoUnreadableError(exc.message) from None

    checks = [_check_dict(check) for check in result.checks]
    passed = result.passed
    duplicate = _duplicate_of_rejected(session, user_id, result.phash)
    if duplicate is not None:
        checks.append(duplicate)
        passed = False

    # Files first, row second: a crash between them leaves an unreferenced file (harmless, the key
    # is its content), never a row that points at nothing.
    original_key = storage.put(data, decode.image_mime_type(data) or "application/octet-stream")
    normalized_key = None
    if result.normalized is not None:
        normalized_key = storage.put(result.normalized, _format_type(result.format))
    photo = Photo(
        user_id=user_id,
        batch_id=batch.id,
        source=source,
        source_ref=source_ref,
        original_key=original_key,
        original_sha256=sha256_hex(data),
        original_bytes=len(data),
        declared_type=(content_type or "")[:100] or None,
        original_filename=(filename or "")[-255:] or None,
        normalized_key=normalized_key,
        normalized_bytes=len(result.normalized) if result.normalized is not None else None,
        normalized_format=result.format if result.normalized is not None else None,
        width=result.width,
        height=result.height,
        passed=passed,
        checks=checks,
        fixes=list(result.fixes),
        face=asdict(result.face) if result.face is not None else None,
        phash=result.phash,
        created_at=now,
    )
    session.add(photo)
    try:
        session.commit()
    except IntegrityError:
        # The same message handled twice at once: the other run's photo is the answer.
        session.rollback()
        if source_ref is None:
            raise
        winner = by_source_ref(session, user_id, source_ref)
        if winner is None:
            raise
        return winner
    log.info(
        "photo uploaded",
        extra={
            "user_id": user_id,
            "photo_id": photo.id,
            "passed": passed,
            "source": source,
            "failed": [c["name"] for c in checks if not c["ok"] and c.get("blocking", True)],
        },
    )
    return photo


def _check_dict(check: Any) -> dict[str, Any]:
    value = check.value
    if isinstance(value, float):
        value = round(value, 3)
    return {
        "name": check.name,
        "ok": bool(check.ok),
        "value": value,
        "limit": check.limit,
        "message": check.message,
        "blocking": bool(getattr(check, "blocking", True)),
    }


def phash_distance(a: str | None, b: str | None) -> int | None:
    """Bits that differ between two 64-bit perceptual hashes (as media.pipeline.hamming, without
    loading OpenCV); None when either is missing or they are not comparable."""
    if not a or not b or len(a) != len(b):
        return None
    try:
        return (int(a, 16) ^ int(b, 16)).bit_count()
    except ValueError:
        return None


@dataclass(frozen=True)
class Rejection:
    """A reviewer's 驳回 or 不通过 of one attempt, and the photo it was about."""

    submission_id: int
    photo_id: int
    status: SubmissionStatus
    reason: str | None
    decided_at: datetime | None
    photo_uploaded_at: datetime
    phash: str | None

    @property
    def status_label(self) -> str:
        return STATUS_LABELS[self.status]


def _rejections(session: Session, *conditions: Any, limit: int = DUPLICATE_LOOKBACK) -> list[Rejection]:
    rows = session.execute(
        select(
            Submission.id,
            Submission.photo_id,
            Submission.status,
            Submission.status_reason,
            Submission.decided_at,
            Photo.created_at,
            Photo.phash,
            Submission.rejected_items,
        )
        .join(Photo, Photo.id == Submission.photo_id)
        .where(Submission.status.in_(REJECTED_BY_REVIEW), *conditions)
        .order_by(Submission.created_at.desc(), Submission.id.desc())
        .limit(limit)
    ).all()
    # A 驳回 naming other items only did not reject the photo: it may be submitted again as it is.
    rows = [row for row in rows if returns.photo_goes_back(row[2], row[7])]
    return [
        Rejection(
            submission_id=row[0],
            photo_id=row[1],
            status=SubmissionStatus(row[2]),
            reason=row[3],
            decided_at=stored_utc(row[4]) if row[4] is not None else None,
            photo_uploaded_at=stored_utc(row[5]),
            phash=row[6],
        )
        for row in rows
    ]


def rejection_of(session: Session, user_id: int, photo_id: int) -> Rejection | None:
    """The latest 驳回/不通过 of an attempt that used this very photo (read through the student's
    attempts: the user's index, not a scan of every attempt for a photo id)."""
    found = _rejections(session, Submission.user_id == user_id, Submission.photo_id == photo_id, limit=1)
    return found[0] if found else None


def last_rejection(session: Session, user_id: int) -> Rejection | None:
    """The student's latest attempt, when a reviewer rejected it (what the photo page explains);
    None once a later attempt exists or there was none."""
    latest_id = session.scalar(
        select(Submission.id)
        .where(Submission.user_id == user_id)
        .order_by(Submission.created_at.desc(), Submission.id.desc())
        .limit(1)
    )
    if latest_id is None:
        return None
    found = _rejections(session, Submission.id == latest_id, limit=1)
    return found[0] if found else None


def review_rejection(session: Session, photo: Photo) -> Rejection | None:
    """Why this photo may not be submitted: a reviewer rejected it, or the same picture (perceptual
    hash within DUPLICATE_MAX_DISTANCE) in an earlier attempt of this student."""
    own = rejection_of(session, photo.user_id, photo.id)
    if own is not None:
        return own
    nearest = _nearest(photo.phash, _rejections(session, Submission.user_id == photo.user_id))
    return nearest[0] if nearest is not None and nearest[1] <= DUPLICATE_MAX_DISTANCE else None


def similar_rejections(session: Session, submission: Submission) -> list[tuple[Rejection, int]]:
    """The student's rejected attempts whose photo is this attempt's photo or looks like it (within
    SIMILAR_WARN_DISTANCE bits), with the distance, nearest first: a warning for the reviewer."""
    found: list[tuple[Rejection, int]] = []
    earlier = _rejections(session, Submission.user_id == submission.user_id, Submission.id != submission.id)
    for rejection in earlier:
        if rejection.photo_id == submission.photo_id:
            found.append((rejection, 0))
            continue
        distance = phash_distance(submission.photo.phash, rejection.phash)
        if distance is not None and distance <= SIMILAR_WARN_DISTANCE:
            found.append((rejection, distance))
    return sorted(found, key=lambda pair: pair[1])


def _nearest(phash: str | None, rejections: list[Rejection]) -> tuple[Rejection, int] | None:
    best: tuple[Rejection, int] | None = None
    for rejection in rejections:
        distance = phash_distance(phash, rejection.phash)
        if distance is not None and (best is None or distance < best[1]):
            best = (rejection, distance)
    return best


def _duplicate_of_rejected(session: Session, user_id: int, phash: str | None) -> dict[str, Any] | None:
    """The failed check for the same picture as an earlier photo of this student that failed its
    checks or that a reviewer rejected; its message says which photo, who refused it and why."""
    if not phash:
        return None
    failed = session.execute(
        select(Photo.phash, Photo.created_at, Photo.checks)
        .where(Photo.user_id == user_id, Photo.passed.is_(False), Photo.phash.is_not(None))
        .order_by(Photo.created_at.desc(), Photo.id.desc())
        .limit(DUPLICATE_LOOKBACK)
    ).all()
    best_failed: tuple[int, datetime, list[str]] | None = None
    for other_hash, created_at, checks in failed:
        distance = phash_distance(phash, other_hash)
        if (
            distance is not None
            and distance <= DUPLICATE_MAX_DISTANCE
            and (best_failed is None or distance < best_failed[0])
        ):
            labels = [
                check_label(c["name"]) for c in checks or [] if not c.get("ok") and c.get("blocking", True)
            ]
            best_failed = (distance, stored_utc(created_at), labels)
    reviewed = _nearest(phash, _rejections(session, Submission.user_id == user_id))
    if reviewed is not None and reviewed[1] <= DUPLICATE_MAX_DISTANCE:
        # A reviewer's refusal says more than the checks': it wins when both match.
        rejection, distance = reviewed
        message = wording.duplicate_of_reviewed(
            rejection.photo_uploaded_at, rejection.status_label, rejection.reason
        )
    elif best_failed is not None:
        distance, uploaded_at, labels = best_failed
        message = wording.duplicate_of_failed(uploaded_at, labels)
    else:
        return None
    return {
        "name": "duplicate_of_rejected",
        "ok": False,
        "value": distance,
        "limit": f"≤ {DUPLICATE_MAX_DISTANCE}",
        "message": message,
        "blocking": True,
    }


def latest(session: Session, user_id: int) -> Photo | None:
    return session.scalar(
        select(Photo)
        .where(Photo.user_id == user_id)
        .order_by(Photo.created_at.desc(), Photo.id.desc())
        .limit(1)
    )


def get_own(session: Session, user_id: int, photo_id: int) -> Photo:
    photo = session.get(Photo, photo_id)
    if photo is None or photo.user_id != user_id:
        raise PhotoNotFoundError()
    return photo


# --- files and signed links -----------------------------------------------------------------


def _format_type(fmt: str | None) -> str:
    return "image/png" if fmt == "png" else "image/jpeg"


@dataclass(frozen=True)
class FileLink:
    """What a signed link grants: one file of one photo, to one signed-in user."""

    photo_id: int
    kind: FileKind
    user_id: int


class _ClockSigner(TimestampSigner):
    """itsdangerous' signer on a given clock, so links can be made and judged at a known moment."""

    def __init__(self, *args: Any, clock: float | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clock = clock

    def get_timestamp(self) -> int:
        return int(self._clock) if self._clock is not None else super().get_timestamp()


def _serializer(secret_key: str, clock: float | None) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(
        secret_key, salt=FILE_LINK_SALT, signer=_ClockSigner, signer_kwargs={"clock": clock}
    )


def file_token(secret_key: str, photo_id: int, kind: FileKind, user_id: int, now: float) -> str:
    code = next(c for c, k in _FILE_CODES.items() if k == kind)
    return str(_serializer(secret_key, now).dumps([photo_id, code, user_id]))


def read_file_token(secret_key: str, token: str, now: float, max_age: int) -> FileLink:
    """Raises PhotoLinkExpiredError (signed by us, too old) or PhotoNotFoundError (anything else)."""
    try:
        value = _serializer(secret_key, now).loads(token, max_age=max_age)
    except SignatureExpired:
        raise PhotoLinkExpiredError() from None
    except BadSignature:
        raise PhotoNotFoundError() from None
    if (
        not isinstance(value, list)
        or len(value) != 3
        or not isinstance(value[0], int)
        or value[1] not in _FILE_CODES
        or not isinstance(value[2], int)
    ):
        raise PhotoNotFoundError()
    return FileLink(photo_id=value[0], kind=_FILE_CODES[value[1]], user_id=value[2])


def open_file(session: Session, storage: Storage, link: FileLink) -> tuple[bytes, str]:
    """The bytes and MIME type a valid link points at (the caller has checked who is asking)."""
    photo = session.get(Photo, link.photo_id)
    if photo is None or photo.user_id != link.user_id:
        raise PhotoNotFoundError()
    if link.kind == "normalized":
        if photo.normalized_key is None:
            raise PhotoNotFoundError()
        return storage.get(photo.normalized_key), _format_type(photo.normalized_format)
    data = storage.get(photo.original_key)
    return data, decode.image_mime_type(data) or "application/octet-stream"


def open_link(
    session: Session,
    storage: Storage,
    secret_key: str,
    token: str,
    now: float,
    max_age: int,
    *,
    viewer_id: int | None,
    staff: Callable[[], Staff | None],
) -> tuple[bytes, str]:
    """The bytes and MIME type behind a signed link, for the user it was made for or signed-in staff
    who cover the photo's school (admins: any photo).

    `staff` is asked only when the viewer is not the link's user: looking up a staff sign-in may end
    an idle one. Raises PhotoLinkExpiredError, PhotoForbiddenError or PhotoNotFoundError.
    """
    link = read_file_token(secret_key, token, now, max_age)
    if viewer_id != link.user_id and not _staff_may_view(session, staff(), link.photo_id):
        raise PhotoForbiddenError()
    try:
        return open_file(session, storage, link)
    except MediaNotFoundError:
        raise PhotoNotFoundError() from None


def _staff_may_view(session: Session, staff: Staff | None, photo_id: int) -> bool:
    if staff is None:
        return False
    if staff.role == StaffRole.ADMIN:
        return True
    school_id = session.scalar(
        select(Batch.school_id).join(Photo, Photo.batch_id == Batch.id).where(Photo.id == photo_id)
    )
    return school_id is not None and school_id in {school.id for school in staff.schools}


# --- photos sent in the chat -------------------------------------------------------------------


def queue_chat_image(session: Session, openid: str, media_id: str, pic_url: str | None, msg_id: str) -> bool:
    """Queue the check of a picture sent to the account (the worker downloads it); commits. False
    when this message was queued already (WeChat retried it)."""
    item = outbox.enqueue(
        session,
        JobKind.CHECK_CHAT_IMAGE,
        {"openid": openid, "media_id": media_id, "pic_url": pic_url, "msg_id": msg_id},
        key=f"wechat-image:{msg_id}",
    )
    session.commit()
    return item is not None


def queue_verdict(session: Session, openid: str, text: str, msg_id: str) -> bool:
    """Queue the chat answer to a picture, once per message however often the check runs; commits."""
    item = outbox.enqueue(
        session, JobKind.SEND_TEXT, {"openid": openid, "text": text}, key=f"photo-verdict:{msg_id}"
    )
    session.commit()
    return item is not None
