"""Per-school QR codes: a student who follows or scans through one gets that school pre-selected.

A temporary parametric QR code (带参数二维码) with scene_str "school:<code>"; WeChat then sends
`subscribe` with EventKey "qrscene_school:<code>" (new follower) or `SCAN` with "school:<code>".
Temporary codes live at most 30 days: print a new one for each enrolment season.
https://developers.weixin.qq.com/doc/offiaccount/Account_Management/Generating_a_Parametric_QR_Code.html
"""

from __future__ import annotations

import io
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from PIL import Image
from sqlalchemy.orm import Session

from app.services import schools

MAX_DAYS = 30  # WeChat's limit for temporary codes (2,592,000 s)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class QRCodeError(Exception):
    """The code could not be made; `message` says why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class QRCodeApi(Protocol):
    """What we need of the WeChat client (app.integrations.wechat.ApiClient)."""

    @property
    def qrcode(self) -> Any: ...

    def show_qrcode(self, ticket: str) -> bytes: ...


@dataclass(frozen=True)
class SchoolQRCode:
    school_code: str
    school_name: str
    scene: str
    path: Path
    expires_at: datetime
    # What the square encodes (a weixin.qq.com/q/... link) and its ticket.
    url: str
    ticket: str


def scene_of(code: str) -> str:
    return schools.SCENE_PREFIX + code


def create(session: Session, api: QRCodeApi, code: str, out: Path, days: int, now: datetime) -> SchoolQRCode:
    """Create the school's code at WeChat, download its image and write it to `out` (atomically).

    Raises SchoolNotFoundError, QRCodeError; WeChat's own refusals come as WeChatClientException.
    """
    if not 1 <= days <= MAX_DAYS:
        raise QRCodeError(f"有效天数应在 1–{MAX_DAYS} 天之间（微信临时二维码最长 30 天）")
    school = schools.get_by_code(session, code)
    if school is None:
        raise schools.SchoolNotFoundError(code)
    scene = scene_of(code)
    result = api.qrcode.create(
        {
            "expire_seconds": days * 24 * 3600,
            "action_name": "QR_STR_SCENE",
            "action_info": {"scene": {"scene_str": scene}},
        }
    )
    ticket = str(result["ticket"])
    # WeChat may shorten the lifetime; trust what it answers.
    expires_at = now + timedelta(seconds=int(result.get("expire_seconds", days * 24 * 3600)))
    _write_atomically(out, as_png(api.show_qrcode(ticket)))
    return SchoolQRCode(code, school.name, scene, out, expires_at, str(result.get("url", "")), ticket)


def as_png(content: bytes) -> bytes:
    """The image as PNG. WeChat's showqrcode answers with a JPEG; the sandbox with a PNG."""
    if content.startswith(PNG_SIGNATURE):
        return content
    try:
        with Image.open(io.BytesIO(content)) as image:
            image.load()
            out = io.BytesIO()
            image.save(out, format="PNG")
    except (OSError, Image.DecompressionBombError):
        # An error page instead of an image: nothing to print.
        raise QRCodeError("微信返回的不是二维码图片") from None
    return out.getvalue()


def _write_atomically(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(content)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
