"""WeChat Pay's wire, restated from its documentation: the merchant's request signature checked,
answers signed with the emulator's key, resources encrypted with the APIv3 key.

https://pay.weixin.qq.com/doc/v3/merchant/4012365342 (签名与验签)
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import secrets
import time
from collections.abc import Callable
from functools import wraps
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from flask import Response, request
from redis import Redis

from app.integrations import redis_client
from app.sandbox import bp, state
from app.sandbox.pay.faults import FAULTS
from app.sandbox.pay.keys import app_keys, wrong_key
from app.sandbox.pay.merchant import Merchant, current_merchant
from app.services.localtime import BEIJING

AUTH_SCHEME = "WECHATPAY2-SHA256-RSA2048"
MAX_SKEW_SECONDS = 300


def sign(text: bytes, key: rsa.RSAPrivateKey) -> str:
    return base64.b64encode(key.sign(text, padding.PKCS1v15(), hashes.SHA256())).decode()


def signature_headers(body: bytes, r: Redis, merchant: Merchant | None = None) -> dict[str, str]:
    """Wechatpay-* headers over "timestamp\\nnonce\\nbody\\n", with the key the faults select."""
    keys = app_keys()
    merchant = merchant or current_merchant()
    key = wrong_key() if r.hget(FAULTS, "wrong_key") == "1" else keys.platform_key()
    timestamp, nonce = str(int(time.time())), secrets.token_hex(16)
    message = f"{timestamp}\n{nonce}\n".encode() + body + b"\n"
    return {
        "Wechatpay-Nonce": nonce,
        "Wechatpay-Timestamp": timestamp,
        "Wechatpay-Serial": keys.public_key_id if merchant.public_key_mode else keys.platform_cert_serial,
        "Wechatpay-Signature": sign(message, key),
        "Wechatpay-Signature-Type": AUTH_SCHEME,
    }


def answer(payload: dict[str, Any] | None, status: int = 200, merchant: Merchant | None = None) -> Response:
    body = b"" if payload is None else json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    response = Response(body, status=status)
    if payload is not None:
        response.headers["Content-Type"] = "application/json; charset=utf-8"
    response.headers["Request-ID"] = secrets.token_hex(16)
    response.headers.update(signature_headers(body, redis_client(), merchant))
    return response


def error(status: int, code: str, message: str) -> Response:
    # WeChat Pay signs its error answers too.
    return answer({"code": code, "message": message}, status)


AUTH_PARAM = re.compile(r'(\w+)="([^"]*)"')


def verify_merchant_request(merchant: Merchant) -> Response | None:
    """Check the Authorization header as WeChat Pay does; None when it is good."""
    header = request.headers.get("Authorization", "")
    scheme, _, rest = header.partition(" ")
    params = dict(AUTH_PARAM.findall(rest))
    if scheme != AUTH_SCHEME or not {"mchid", "nonce_str", "signature", "timestamp", "serial_no"} <= set(
        params
    ):
        return error(401, "SIGN_ERROR", "Authorization 头缺失或格式错误")
    if params["mchid"] != merchant.mchid:
        return error(401, "SIGN_ERROR", "商户号不存在或与证书不匹配")
    if params["serial_no"].upper() != merchant.serial.upper():
        return error(401, "SIGN_ERROR", "商户证书序列号有误")
    if not params["timestamp"].isdigit() or abs(time.time() - int(params["timestamp"])) > MAX_SKEW_SECONDS:
        return error(401, "SIGN_ERROR", "时间戳与当前时间相差过大")
    # The signed URL is the one the merchant requested: WeChat Pay's path plus the raw query.
    path = request.path[len(bp.url_prefix or "") + len("/pay") :]
    query = request.query_string.decode("latin-1")
    url = path + (f"?{query}" if query else "")
    body = request.get_data(cache=True)
    message = (
        f"{request.method}\n{url}\n{params['timestamp']}\n{params['nonce_str']}\n".encode() + body + b"\n"
    )
    try:
        merchant.public_key.verify(
            base64.b64decode(params["signature"]), message, padding.PKCS1v15(), hashes.SHA256()
        )
    except (InvalidSignature, ValueError):
        return error(401, "SIGN_ERROR", "签名错误")
    return None


def v3_api(view: Callable[..., Response]) -> Callable[..., Response]:
    """Faults, the merchant's signature, and a call record around each emulated API."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Response:
        r = redis_client()
        state.record_call(
            r, request.method, request.full_path.rstrip("?"), {}, request.get_data(as_text=True)
        )
        if int(r.hget(FAULTS, "fail_500") or 0) > 0:
            r.hincrby(FAULTS, "fail_500", -1)
            return error(500, "SYSTEM_ERROR", "系统错误")
        merchant = current_merchant()
        refused = verify_merchant_request(merchant)
        if refused is not None:
            return refused
        return view(merchant, *args, **kwargs)

    return wrapper


def json_body() -> dict[str, Any] | None:
    try:
        data = json.loads(request.get_data(cache=True) or b"null")
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def now_rfc3339(moment: float | None = None) -> str:
    return dt.datetime.fromtimestamp(moment if moment is not None else time.time(), BEIJING).isoformat(
        timespec="seconds"
    )


def encrypt(apiv3_key: str, plaintext: str, associated_data: str) -> dict[str, str]:
    """A resource as WeChat Pay encrypts it (AEAD_AES_256_GCM under the APIv3 key)."""
    nonce = secrets.token_urlsafe(9)[:12]  # WeChat Pay's nonces are 12 printable characters
    ciphertext = AESGCM(apiv3_key.encode()).encrypt(
        nonce.encode(), plaintext.encode(), associated_data.encode()
    )
    return {
        "algorithm": "AEAD_AES_256_GCM",
        "associated_data": associated_data,
        "nonce": nonce,
        "ciphertext": base64.b64encode(ciphertext).decode(),
    }
