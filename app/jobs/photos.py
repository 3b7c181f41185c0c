"""Photos sent in the chat: download through the media API, check like an upload, answer in chat.

Safe to run twice: the photo is keyed by the WeChat message (`source_ref`), so a second run finds
the first run's photo instead of making another, and the verdict is queued under the message's key,
so it is sent once. A download WeChat refuses for good (media expired after 3 days, unknown media)
is answered with a "please send it again" instead of being retried.
"""

from __future__ import annotations

import logging
from typing import Any

import requests
from flask import current_app
from wechatpy.exceptions import WeChatClientException

from app.extensions import db
from app.integrations import photo_storage, wechat_client
from app.jobs import PermanentJobError, job
from app.jobs.wechat import PERMANENT_ERRCODES
from app.services import photos, users, wording
from app.services.job_kinds import JobKind
from app.services.photos import PhotoError, PhotoIdentityRequiredError, PhotoUnreadableError
from models import Photo, utcnow

log = logging.getLogger(__name__)


def _download(media_id: str, max_bytes: int) -> bytes:
    """The picture's bytes from WeChat's media API (the sandbox serves what the phone sent)."""
    try:
        response = wechat_client().media.download(media_id)
    except WeChatClientException as exc:
        if exc.errcode in PERMANENT_ERRCODES:
            raise PhotoUnreadableError(wording.MEDIA_EXPIRED) from exc
        raise  # network, 5xx, busy: the worker retries
    if not isinstance(response, requests.Response):
        # A JSON answer without an error code (video media): not a picture.
        raise PhotoUnreadableError(wording.MEDIA_EXPIRED)
    # WeChat's own limit for images is 10 MB; read no more than ours plus one byte.
    return response.content[: max_bytes + 1]


def verdict_text(base_url: str, photo: Photo) -> str:
    if photo.passed:
        return wording.photo_passed(
            base_url, photo.width, photo.height, photo.normalized_bytes, photo.normalized_format
        )
    failures = [
        f"{photos.check_label(c['name'])}：{c['message']}"
        for c in photo.checks
        if not c["ok"] and c.get("blocking", True)
    ]
    return wording.photo_failed(base_url, failures)


@job(JobKind.CHECK_CHAT_IMAGE)
def check_chat_image(payload: dict[str, Any]) -> None:
    """{"openid", "media_id", "pic_url", "msg_id"}: check the picture and queue the verdict."""
    openid, media_id, msg_id = payload.get("openid"), payload.get("media_id"), payload.get("msg_id")
    if not openid or not media_id or not msg_id:
        raise PermanentJobError("payload lacks openid, media_id or msg_id")
    session = db.session()
    base_url: str = current_app.config["PUBLIC_BASE_URL"]
    max_bytes: int = current_app.config["MEDIA_MAX_UPLOAD_BYTES"]
    user = users.get(session, openid)
    if user is None:
        raise PermanentJobError("no such user")
    ref = f"wechat-msg:{msg_id}"
    photo = photos.by_source_ref(session, user.id, ref)
    if photo is None:
        now = utcnow()
        try:
            photos.open_batch(session, user.id, now)  # before downloading anything
            data = _download(str(media_id), max_bytes)
            photo = photos.upload(
                session,
                photo_storage(),
                user.id,
                data,
                f"{media_id}.jpg",
                None,
                now,
                "chat",
                source_ref=ref,
                max_bytes=max_bytes,
            )
        except PhotoError as exc:
            session.rollback()
            text = _refusal(base_url, exc)
            photos.queue_verdict(session, openid, text, str(msg_id))
            log.info("chat photo refused", extra={"user_id": user.id, "reason": type(exc).__name__})
            return
    photos.queue_verdict(session, openid, verdict_text(base_url, photo), str(msg_id))


def _refusal(base_url: str, exc: PhotoError) -> str:
    if isinstance(exc, PhotoIdentityRequiredError):
        return wording.photo_cannot_upload(base_url, exc.message, "/h5/bind")
    if exc.field == "_":
        return wording.photo_cannot_upload(base_url, exc.message, "/h5/school")
    return wording.photo_refused(base_url, exc.message)
