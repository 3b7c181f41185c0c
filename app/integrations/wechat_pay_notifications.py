"""WeChat Pay notifications (支付通知 / 退款结果通知): verify, decrypt, type, hand over.

Order of checks, each refusing with nothing changed:
1. body size (before reading it all), the Wechatpay-* headers;
2. `Wechatpay-Timestamp` within WECHAT_PAY_MAX_NOTIFY_AGE_SECONDS of now — wechatpayv3 does not do
   this, and without it a captured, correctly signed notification could be replayed for ever;
3. the RSA-SHA256 signature over "timestamp\\nnonce\\nbody\\n" on the RAW body bytes (never a
   re-serialised JSON), with the WeChat Pay key the Wechatpay-Serial names;
4. the envelope's JSON, then AES-256-GCM decryption of `resource` with the APIv3 key
   (associated_data and nonce from the envelope);
5. the resource's mchid (and appid, which refund resources do not carry) against our settings.

Amount and order checks need the order: they belong to the payments service behind the hook.
https://pay.weixin.qq.com/doc/v3/merchant/4012791861 (支付成功回调通知)
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from app.inputs import ascii_int
from app.integrations.wechat_pay import parse_time
from app.integrations.wechat_pay_config import PayConfig

log = logging.getLogger(__name__)

SIGNATURE_TYPE = "WECHATPAY2-SHA256-RSA2048"

# Flask's case-insensitive request.headers, or a plain dict.
HeadersLike = Any


class NotificationInvalid(Exception):
    """The post is not a genuine, fresh notification for this merchant. `reason` is for the log."""

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class NotificationRejected(Exception):
    """Raised by the handler hook: not acknowledged, so WeChat Pay sends it again later.

    `status` 5xx for "could not handle it now" (e.g. database down, order not committed yet),
    4xx for "this is wrong" (e.g. amount differs from the order). WeChat Pay retries either way.
    """

    def __init__(self, reason: str, status: int = 500) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


@dataclass(frozen=True)
class PaymentNotification:
    """A verified, decrypted notification. Amounts in fen; refund fields only for REFUND.* events."""

    id: str
    event_type: str  # TRANSACTION.SUCCESS, REFUND.SUCCESS, REFUND.ABNORMAL, REFUND.CLOSED
    summary: str
    create_time: datetime | None
    original_type: str  # "transaction" or "refund"
    mchid: str
    out_trade_no: str
    transaction_id: str | None
    appid: str | None
    trade_state: str | None
    trade_type: str | None
    amount_total: int | None
    amount_payer_total: int | None
    currency: str | None
    payer_openid: str | None
    success_time: datetime | None
    attach: str | None
    out_refund_no: str | None = None
    refund_id: str | None = None
    refund_status: str | None = None
    refund_fen: int | None = None
    # The decrypted resource as WeChat Pay sent it: keep it for reconciliation.
    resource: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def is_refund(self) -> bool:
        return self.original_type == "refund"


def _header(headers: HeadersLike, name: str) -> str:
    value = headers.get(name)
    if not value or not isinstance(value, str):
        raise NotificationInvalid(f"missing {name} header", 401)
    return value


def _int(value: Any, name: str, required: bool = False) -> int | None:
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise NotificationInvalid(f"{name} is not an integer")
    return value


def _str(value: Any, name: str, required: bool = False) -> str | None:
    if value is None or value == "":
        if required:
            raise NotificationInvalid(f"missing {name}")
        return None
    if not isinstance(value, str):
        raise NotificationInvalid(f"{name} is not a string")
    return value


def verify_notification(
    headers: HeadersLike,
    body: bytes,
    config: PayConfig,
    key_for: Callable[[str], RSAPublicKey | None],
    now: float,
) -> PaymentNotification:
    """Check one posted notification; raise NotificationInvalid (with an HTTP status) if it is not good."""
    signature = _header(headers, "Wechatpay-Signature")
    timestamp = _header(headers, "Wechatpay-Timestamp")
    nonce = _header(headers, "Wechatpay-Nonce")
    serial = _header(headers, "Wechatpay-Serial")
    if headers.get("Wechatpay-Signature-Type", SIGNATURE_TYPE) != SIGNATURE_TYPE:
        raise NotificationInvalid("unsupported Wechatpay-Signature-Type", 401)
    seconds = ascii_int(timestamp)
    if seconds is None or abs(now - seconds) > config.max_notify_age:
        raise NotificationInvalid("Wechatpay-Timestamp too far from now (replayed or clock skew)", 401)
    key = key_for(serial)
    if key is None:
        raise NotificationInvalid("unknown Wechatpay-Serial", 401)
    message = f"{timestamp}\n{nonce}\n".encode() + body + b"\n"
    try:
        key.verify(base64.b64decode(signature, validate=True), message, padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError, binascii.Error):
        raise NotificationInvalid("bad signature", 401) from None

    try:
        envelope = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise NotificationInvalid("body is not JSON") from None
    if not isinstance(envelope, dict) or not isinstance(envelope.get("resource"), dict):
        raise NotificationInvalid("not a notification envelope")
    resource_box = envelope["resource"]
    if (
        envelope.get("resource_type") != "encrypt-resource"
        or resource_box.get("algorithm") != "AEAD_AES_256_GCM"
    ):
        raise NotificationInvalid("unsupported resource_type or algorithm")
    try:
        plaintext = AESGCM(config.apiv3_key.encode()).decrypt(
            str(resource_box["nonce"]).encode(),
            base64.b64decode(resource_box["ciphertext"], validate=True),
            str(resource_box.get("associated_data") or "").encode(),
        )
        resource = json.loads(plaintext)
    except KeyError:
        raise NotificationInvalid("resource lacks nonce or ciphertext") from None
    except (InvalidTag, ValueError, binascii.Error):
        # Signed by WeChat Pay yet undecryptable: our APIv3 key is wrong. 500 so that it comes back.
        raise NotificationInvalid("cannot decrypt the resource (check WECHAT_PAY_APIV3_KEY)", 500) from None
    if not isinstance(resource, dict):
        raise NotificationInvalid("resource is not a JSON object")

    mchid = _str(resource.get("mchid"), "mchid", required=True)
    if not hmac.compare_digest(mchid or "", config.mchid):
        raise NotificationInvalid("notification for another merchant (mchid)")
    appid = _str(resource.get("appid"), "appid")
    original_type = _str(resource_box.get("original_type"), "original_type") or "transaction"
    if original_type == "transaction" and not hmac.compare_digest(appid or "", config.appid):
        raise NotificationInvalid("notification for another app (appid)")
    amount = resource.get("amount") or {}
    payer = resource.get("payer") or {}
    if not isinstance(amount, dict) or not isinstance(payer, dict):
        raise NotificationInvalid("amount or payer is not an object")
    try:
        success_time = parse_time(_str(resource.get("success_time"), "success_time"))
        create_time = parse_time(_str(envelope.get("create_time"), "create_time"))
    except ValueError:
        raise NotificationInvalid("bad time format") from None
    is_refund = original_type == "refund"
    return PaymentNotification(
        id=_str(envelope.get("id"), "id", required=True) or "",
        event_type=_str(envelope.get("event_type"), "event_type", required=True) or "",
        summary=_str(envelope.get("summary"), "summary") or "",
        create_time=create_time,
        original_type=original_type,
        mchid=mchid or "",
        out_trade_no=_str(resource.get("out_trade_no"), "out_trade_no", required=True) or "",
        transaction_id=_str(resource.get("transaction_id"), "transaction_id"),
        appid=appid,
        trade_state=_str(resource.get("trade_state"), "trade_state"),
        trade_type=_str(resource.get("trade_type"), "trade_type"),
        amount_total=_int(amount.get("total"), "amount.total", required=True),
        amount_payer_total=_int(amount.get("payer_total"), "amount.payer_total"),
        currency=_str(amount.get("currency"), "amount.currency") or (None if is_refund else "CNY"),
        payer_openid=_str(payer.get("openid"), "payer.openid"),
        success_time=success_time,
        attach=_str(resource.get("attach"), "attach"),
        out_refund_no=_str(resource.get("out_refund_no"), "out_refund_no", required=is_refund),
        refund_id=_str(resource.get("refund_id"), "refund_id", required=is_refund),
        refund_status=_str(resource.get("refund_status"), "refund_status", required=is_refund),
        refund_fen=_int(amount.get("refund"), "amount.refund", required=is_refund),
        resource=resource,
    )
