"""The batch's 承诺 and the signature drawn under it (湖南师范大学: 确认无误后学生电子签名; 新疆自考: 我担保
以上信息真实准确).

The signature arrives as a PNG drawn on a canvas in the phone's browser. It is checked the way an
upload is — a real PNG of sane size with some ink on it — because it is printed on the receipt and
a blank or forged file there would defeat its purpose. Stored in the media storage like photos.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime

from PIL import Image, UnidentifiedImageError

from app.services.errors import ServiceError
from media import decode
from media.storage import Storage
from models import Batch, Submission

# A phone-width canvas at device pixel ratio 3 is ~1200×600; anything far larger is not a signature.
MAX_SIGNATURE_BYTES = 300 * 1024
MAX_SIGNATURE_SIDE = 2000
MIN_SIGNATURE_SIDE = 100
# The share of pixels that must carry ink: a tap or an empty canvas is not a signature.
MIN_INK_SHARE = 0.002


class PledgeError(ServiceError):
    message = "请阅读并勾选承诺。"


class SignatureError(PledgeError):
    message = "请在签名框内手写签名后再提交。"


@dataclass(frozen=True)
class Pledge:
    """What the student sent with submission or confirmation: the tick and, maybe, the signature."""

    accepted: bool = False
    signature_png: bytes | None = None


def record(
    batch: Batch, pledge: Pledge | None, submission: Submission, storage: Storage | None, now: datetime
) -> None:
    """Check the pledge the batch asks for and keep it on the attempt (no commit). A batch without
    a pledge needs nothing; one with a signature needs a drawn signature too."""
    if not batch.pledge:
        return
    if pledge is None or not pledge.accepted:
        raise PledgeError(f"请阅读并勾选承诺：「{batch.pledge}」")
    if batch.signature:
        if not pledge.signature_png:
            raise SignatureError()
        check_signature(pledge.signature_png)
        if storage is None:
            raise ValueError("a batch asking for a signature needs the storage to keep it")
        submission.signature_key = storage.put(pledge.signature_png, "image/png")
    submission.pledged_at = now


def check_signature(data: bytes) -> None:
    """A PNG within size limits with some ink on it; raises SignatureError otherwise."""
    if len(data) > MAX_SIGNATURE_BYTES:
        raise SignatureError("签名图片过大，请清除后重新签名。")
    if decode.sniff(data) != "png":
        raise SignatureError("签名格式不正确，请清除后重新签名。")
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            if not (
                MIN_SIGNATURE_SIDE <= width <= MAX_SIGNATURE_SIDE
                and MIN_SIGNATURE_SIDE // 2 <= height <= MAX_SIGNATURE_SIDE
            ):
                raise SignatureError("签名图片尺寸不正确，请清除后重新签名。")
            # Ink: opaque pixels on a transparent canvas, or dark ones on a white one.
            rgba = image.convert("RGBA")
            alpha = rgba.getchannel("A")
            grey = rgba.convert("L")
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError):
        raise SignatureError("签名格式不正确，请清除后重新签名。") from None
    total = width * height
    opaque = sum(alpha.histogram()[128:])
    ink = opaque if opaque < total else sum(grey.histogram()[:128])
    if ink < total * MIN_INK_SHARE:
        raise SignatureError()
