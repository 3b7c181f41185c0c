"""The emulated WeChat Pay (api.mch.weixin.qq.com, API v3) at WECHAT_PAY_API_BASE.

Paths mirror WeChat Pay's exactly (`/_sandbox/pay` + `/v3/pay/transactions/jsapi`), so the service's
client (wechatpayv3 behind app/pay/client.py) talks to it unchanged. Faithful to the wire:

- every request's `Authorization: WECHATPAY2-SHA256-RSA2048 mchid=…,nonce_str=…,signature=…,
  timestamp=…,serial_no=…` is verified with the merchant's public key (401 SIGN_ERROR otherwise);
- every answer is signed with the emulator's own "WeChat Pay" key (Wechatpay-Serial/Signature/
  Timestamp/Nonce over "timestamp\\nnonce\\nbody\\n"), in public-key mode (serial PUB_KEY_ID_…) or
  platform-certificate mode (GET /v3/certificates serves an encrypted self-signed certificate);
- errors are WeChat Pay's JSON `{"code", "message"}` with its HTTP statuses and codes;
- orders live in Redis: NOTPAY → SUCCESS (paid) / CLOSED (closed, or past time_expire) → REFUND;
- notifications are signed, AES-256-GCM encrypted with the APIv3 key and posted to the order's
  notify_url with WeChat Pay's retry schedule until a 2xx answer.

Notification delivery is a due-queue in Redis (`sandbox:pay:notify:due`, score = when). Whoever
calls `deliver_due_notifications(r, now)` delivers what is due at `now`: a daemon thread in the web
process does it on the real clock (WECHAT_PAY_SANDBOX_NOTIFY_THREAD, on by default); tests turn the
thread off and pass `now` themselves, or call POST /_sandbox/pay/_ctl/deliver {"now": …}.
Signatures always carry the real time, whatever `now` the schedule is driven with.

Sandbox-only controls (not WeChat Pay's) sit under /_sandbox/pay/_ctl/… and the two "user" actions:
POST /_sandbox/pay/<out_trade_no> {"action": "pay"|"cancel"} (the phone's pay sheet) and
POST /_sandbox/pay/scan {"code_url", "openid"} (scanning a Native QR code with the phone).
Faults for tests (POST /_sandbox/pay/_ctl/faults): drop_notifications, notify_delay_seconds,
wrong_key (answers and notifications signed with a key WeChat Pay does not have), fail_500 (the
next N API calls answer 500 SYSTEM_ERROR).

Reference: https://pay.weixin.qq.com/doc/v3/merchant/4012365342 (签名与验签), 4012791861 (支付通知)
"""

from __future__ import annotations

import base64
import contextlib
import csv
import datetime as dt
import gzip
import hashlib
import hmac
import io
import json
import logging
import os
import re
import secrets
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from pathlib import Path
from typing import Any

import requests
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.x509.oid import NameOID
from flask import Flask, Response, current_app, jsonify, render_template, request
from redis import Redis

from app.extensions import redis_client
from app.sandbox import bp, store

log = logging.getLogger(__name__)

BEIJING = dt.timezone(dt.timedelta(hours=8))
PREFIX = "sandbox:pay:"
DUE = PREFIX + "notify:due"  # zset notification id -> when it is due (epoch seconds)
DELIVERIES = PREFIX + "deliveries"  # list of JSON delivery attempts, oldest first (for tests/phone)
FAULTS = PREFIX + "faults"  # hash of fault switches
ORDERS = PREFIX + "orders"  # set of order keys (the trade bill scans it)
REFUNDS = PREFIX + "refunds"  # set of refund keys
# WeChat Pay retries an unanswered notification after these delays (15 retries, ~24 h 4 m in all).
# https://pay.weixin.qq.com/doc/v3/merchant/4012791861
RETRY_SCHEDULE = (15, 15, 30, 180, 600, 1200, 1800, 1800, 1800, 3600, 10800, 10800, 10800, 21600, 21600)
NOTIFY_TIMEOUT_SECONDS = 5.0
MAX_SKEW_SECONDS = 300
AUTH_SCHEME = "WECHATPAY2-SHA256-RSA2048"
OUT_TRADE_NO = re.compile(r"^[0-9A-Za-z_\-|*]{6,32}$")
OUT_REFUND_NO = re.compile(r"^[0-9A-Za-z_\-|*@]{1,64}$")
SANDBOX_MCHID = "1900000109"  # the example merchant number of WeChat Pay's docs


# -- key material ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class SandboxPayKeys:
    """The emulator's own "WeChat Pay" key pair and the merchant's test keys (never shipped)."""

    mchid: str
    apiv3_key: str
    merchant_private_pem: str
    merchant_serial: str
    platform_private_pem: str
    platform_public_pem: str
    public_key_id: str
    platform_cert_pem: str
    platform_cert_serial: str

    def platform_key(self) -> rsa.RSAPrivateKey:
        key = serialization.load_pem_private_key(self.platform_private_pem.encode(), password=None)
        assert isinstance(key, rsa.RSAPrivateKey)
        return key


_KEYS: dict[str, SandboxPayKeys] = {}
_KEYS_LOCK = threading.Lock()
_GENERATED: dict[str, str] = {}  # one process reuses its generated keys for every directory


def _new_private_pem(name: str) -> str:
    if name not in _GENERATED:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        _GENERATED[name] = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
    return _GENERATED[name]


def _write_once(path: Path, make: Callable[[], str]) -> str:
    """Create `path` atomically if missing (several processes may race); return its content."""
    if not path.exists():
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(make())
            os.chmod(tmp, 0o600)
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)  # fails if another process won the race: keep theirs
        finally:
            os.unlink(tmp)
    return path.read_text(encoding="utf-8")


def sandbox_keys(directory: Path) -> SandboxPayKeys:
    """Load the sandbox's pay keys from `directory`, generating them on first use."""
    directory = Path(directory)
    with _KEYS_LOCK:
        cached = _KEYS.get(str(directory))
        if cached:
            return cached
        directory.mkdir(parents=True, exist_ok=True)
        merchant_pem = _write_once(directory / "merchant_key.pem", lambda: _new_private_pem("merchant"))
        platform_pem = _write_once(directory / "platform_key.pem", lambda: _new_private_pem("platform"))
        apiv3_key = _write_once(directory / "apiv3_key.txt", lambda: secrets.token_hex(16)).strip()
        platform = serialization.load_pem_private_key(platform_pem.encode(), password=None)
        merchant = serialization.load_pem_private_key(merchant_pem.encode(), password=None)
        assert isinstance(platform, rsa.RSAPrivateKey) and isinstance(merchant, rsa.RSAPrivateKey)
        cert_pem = _write_once(directory / "platform_cert.pem", lambda: _self_signed(platform))
        cert = x509.load_pem_x509_certificate(cert_pem.encode())
        platform_public = platform.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        merchant_der = merchant.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        keys = SandboxPayKeys(
            mchid=SANDBOX_MCHID,
            apiv3_key=apiv3_key,
            merchant_private_pem=merchant_pem,
            # A merchant certificate serial is 40 hex digits; derive a stable one from the key.
            merchant_serial=hashlib.sha1(merchant_der, usedforsecurity=False).hexdigest().upper(),
            platform_private_pem=platform_pem,
            platform_public_pem=platform_public.decode(),
            public_key_id="PUB_KEY_ID_" + hashlib.sha256(platform_public).hexdigest()[:32].upper(),
            platform_cert_pem=cert_pem,
            platform_cert_serial=format(cert.serial_number, "X"),
        )
        _KEYS[str(directory)] = keys
        return keys


def _self_signed(key: rsa.RSAPrivateKey) -> str:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Tenpay.com Root CA (sandbox)")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


_WRONG_KEY: list[rsa.RSAPrivateKey] = []


def _wrong_key() -> rsa.RSAPrivateKey:
    if not _WRONG_KEY:
        _WRONG_KEY.append(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    return _WRONG_KEY[0]


# -- the merchant as WeChat Pay knows it ----------------------------------------------------------------
@dataclass(frozen=True)
class Merchant:
    mchid: str
    appid: str
    serial: str
    public_key: rsa.RSAPublicKey
    apiv3_key: str
    public_key_mode: bool


def _keys() -> SandboxPayKeys:
    return sandbox_keys(Path(current_app.config["MEDIA_ROOT"]).parent / "sandbox-pay")


def _merchant() -> Merchant:
    """The one merchant registered here: the service's, as if it uploaded its certificate."""
    from app.pay.client import pay_client

    cfg = pay_client().config
    public = cfg.private_key().public_key()
    return Merchant(cfg.mchid, cfg.appid, cfg.merchant_serial, public, cfg.apiv3_key, cfg.public_key_mode)


def _sign(text: bytes, key: rsa.RSAPrivateKey) -> str:
    return base64.b64encode(key.sign(text, padding.PKCS1v15(), hashes.SHA256())).decode()


def signature_headers(body: bytes, r: Redis, merchant: Merchant | None = None) -> dict[str, str]:
    """Wechatpay-* headers over "timestamp\\nnonce\\nbody\\n", with the key the faults select."""
    keys = _keys()
    merchant = merchant or _merchant()
    key = _wrong_key() if r.hget(FAULTS, "wrong_key") == "1" else keys.platform_key()
    timestamp, nonce = str(int(time.time())), secrets.token_hex(16)
    message = f"{timestamp}\n{nonce}\n".encode() + body + b"\n"
    return {
        "Wechatpay-Nonce": nonce,
        "Wechatpay-Timestamp": timestamp,
        "Wechatpay-Serial": keys.public_key_id if merchant.public_key_mode else keys.platform_cert_serial,
        "Wechatpay-Signature": _sign(message, key),
        "Wechatpay-Signature-Type": AUTH_SCHEME,
    }


def _answer(payload: dict[str, Any] | None, status: int = 200, merchant: Merchant | None = None) -> Response:
    body = b"" if payload is None else json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    response = Response(body, status=status)
    if payload is not None:
        response.headers["Content-Type"] = "application/json; charset=utf-8"
    response.headers["Request-ID"] = secrets.token_hex(16)
    response.headers.update(signature_headers(body, redis_client(), merchant))
    return response


def _error(status: int, code: str, message: str) -> Response:
    # WeChat Pay signs its error answers too.
    return _answer({"code": code, "message": message}, status)


AUTH_PARAM = re.compile(r'(\w+)="([^"]*)"')


def _verify_merchant_request(merchant: Merchant) -> Response | None:
    """Check the Authorization header as WeChat Pay does; None when it is good."""
    header = request.headers.get("Authorization", "")
    scheme, _, rest = header.partition(" ")
    params = dict(AUTH_PARAM.findall(rest))
    if scheme != AUTH_SCHEME or not {"mchid", "nonce_str", "signature", "timestamp", "serial_no"} <= set(
        params
    ):
        return _error(401, "SIGN_ERROR", "Authorization 头缺失或格式错误")
    if params["mchid"] != merchant.mchid:
        return _error(401, "SIGN_ERROR", "商户号不存在或与证书不匹配")
    if params["serial_no"].upper() != merchant.serial.upper():
        return _error(401, "SIGN_ERROR", "商户证书序列号有误")
    if not params["timestamp"].isdigit() or abs(time.time() - int(params["timestamp"])) > MAX_SKEW_SECONDS:
        return _error(401, "SIGN_ERROR", "时间戳与当前时间相差过大")
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
        return _error(401, "SIGN_ERROR", "签名错误")
    return None


def v3_api(view: Callable[..., Response]) -> Callable[..., Response]:
    """Faults, the merchant's signature, and a call record around each emulated API."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Response:
        r = redis_client()
        from app.sandbox import state

        state.record_call(
            r, request.method, request.full_path.rstrip("?"), {}, request.get_data(as_text=True)
        )
        if int(r.hget(FAULTS, "fail_500") or 0) > 0:
            r.hincrby(FAULTS, "fail_500", -1)
            return _error(500, "SYSTEM_ERROR", "系统错误")
        merchant = _merchant()
        refused = _verify_merchant_request(merchant)
        if refused is not None:
            return refused
        return view(merchant, *args, **kwargs)

    return wrapper


def _body() -> dict[str, Any] | None:
    try:
        data = json.loads(request.get_data(cache=True) or b"null")
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


# -- orders -------------------------------------------------------------------------------------------
def _order_key(mchid: str, out_trade_no: str) -> str:
    return f"{PREFIX}order:{mchid}:{out_trade_no}"


def _now_rfc3339(moment: float | None = None) -> str:
    return dt.datetime.fromtimestamp(moment if moment is not None else time.time(), BEIJING).isoformat(
        timespec="seconds"
    )


def get_order(r: Redis, mchid: str, out_trade_no: str, now: float | None = None) -> dict[str, Any] | None:
    """The order, with time_expire applied: an unpaid order past it is CLOSED from then on."""
    raw = r.get(_order_key(mchid, out_trade_no))
    if raw is None:
        return None
    order: dict[str, Any] = json.loads(raw)
    now = store.now(r) if now is None else now
    if order["trade_state"] == "NOTPAY" and order.get("time_expire") and now > order["time_expire"]:
        with r.lock(_order_key(mchid, out_trade_no) + ":lock", timeout=5, blocking_timeout=5):
            current = json.loads(r.get(_order_key(mchid, out_trade_no)) or raw)
            if current["trade_state"] == "NOTPAY":
                current.update(trade_state="CLOSED", trade_state_desc="订单已关闭", closed_by="expiry")
                r.set(_order_key(mchid, out_trade_no), json.dumps(current, ensure_ascii=False))
            order = current
    return order


def _save_order(r: Redis, order: dict[str, Any]) -> None:
    key = _order_key(order["mchid"], order["out_trade_no"])
    r.set(key, json.dumps(order, ensure_ascii=False))
    r.sadd(ORDERS, key)


def _public_order(order: dict[str, Any]) -> dict[str, Any]:
    """The 查询订单 answer's shape."""
    answer: dict[str, Any] = {
        "appid": order["appid"],
        "mchid": order["mchid"],
        "out_trade_no": order["out_trade_no"],
        "trade_type": order["trade_type"],
        "trade_state": order["trade_state"],
        "trade_state_desc": order["trade_state_desc"],
        "attach": order.get("attach", ""),
        "amount": {"total": order["amount"]["total"], "currency": order["amount"]["currency"]},
    }
    if order.get("transaction_id"):
        answer["transaction_id"] = order["transaction_id"]
        answer["bank_type"] = "OTHERS"
        answer["success_time"] = order["success_time"]
        answer["payer"] = {"openid": order["payer_openid"]}
        answer["amount"].update(payer_total=order["amount"]["total"], payer_currency="CNY")
    return answer


def _parse_rfc3339(value: Any) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment.timestamp() if moment.tzinfo else None


def _create(merchant: Merchant, trade_type: str) -> Response:
    data = _body()
    if data is None:
        return _error(400, "PARAM_ERROR", "请求体不是合法的 JSON")
    amount = data.get("amount") if isinstance(data.get("amount"), dict) else None
    total = amount.get("total") if amount else None
    problems = []
    if data.get("mchid") != merchant.mchid:
        return _error(400, "MCH_NOT_EXISTS", "商户号不存在")
    if data.get("appid") != merchant.appid:
        return _error(400, "APPID_MCHID_NOT_MATCH", "appid 和 mch_id 不匹配")
    if not isinstance(data.get("description"), str) or not 1 <= len(data["description"]) <= 127:
        problems.append("description")
    if not isinstance(data.get("out_trade_no"), str) or not OUT_TRADE_NO.match(data["out_trade_no"]):
        problems.append("out_trade_no")
    if not isinstance(data.get("notify_url"), str) or not re.match(
        r"^https?://[^?#\s]+$", data["notify_url"]
    ):
        problems.append("notify_url")
    if isinstance(total, bool) or not isinstance(total, int) or total < 1:
        problems.append("amount.total")
    if amount and amount.get("currency", "CNY") != "CNY":
        problems.append("amount.currency")
    payer = data.get("payer") if isinstance(data.get("payer"), dict) else {}
    if trade_type == "JSAPI" and not payer.get("openid"):
        problems.append("payer.openid")
    r = redis_client()
    expire = _parse_rfc3339(data["time_expire"]) if "time_expire" in data else store.now(r) + 7200
    if expire is None:
        problems.append("time_expire")
    if problems:
        return _error(400, "PARAM_ERROR", f"参数错误: {', '.join(problems)}")
    assert expire is not None
    if expire <= store.now(r) + 1:
        return _error(400, "PARAM_ERROR", "time_expire 时间过短")
    key = _order_key(merchant.mchid, data["out_trade_no"])
    with r.lock(key + ":lock", timeout=5, blocking_timeout=5):
        existing = get_order(r, merchant.mchid, data["out_trade_no"])
        request_fields = {
            "trade_type": trade_type,
            "description": data["description"],
            "total": total,
            "openid": payer.get("openid"),
        }
        if existing is not None:
            if existing["trade_state"] in ("SUCCESS", "REFUND"):
                return _error(403, "ORDERPAID", "该订单已支付")
            if existing["trade_state"] == "CLOSED":
                return _error(400, "ORDER_CLOSED", "订单已关闭")
            if existing["request_fields"] != request_fields:
                return _error(400, "INVALID_REQUEST", "201 商户订单号重复")
            order = existing  # the same request again gets the same prepay_id / code_url
        else:
            order = {
                "appid": merchant.appid,
                "mchid": merchant.mchid,
                "out_trade_no": data["out_trade_no"],
                "description": data["description"],
                "notify_url": data["notify_url"],
                "attach": data.get("attach", ""),
                "amount": {"total": total, "currency": "CNY"},
                "payer_openid": payer.get("openid"),
                "trade_type": trade_type,
                "trade_state": "NOTPAY",
                "trade_state_desc": "订单未支付",
                "time_expire": expire,
                "created_at": store.now(r),
                "request_fields": request_fields,
                "prepay_id": "wx" + dt.datetime.now(BEIJING).strftime("%d%H%M%S") + secrets.token_hex(12),
                "code_token": secrets.token_urlsafe(12),
            }
            _save_order(r, order)
            r.set(f"{PREFIX}prepay:{order['prepay_id']}", key, ex=7200)
            r.set(f"{PREFIX}code:{order['code_token']}", key, ex=7200)
    if trade_type == "JSAPI":
        return _answer({"prepay_id": order["prepay_id"]}, merchant=merchant)
    return _answer({"code_url": f"weixin://wxpay/bizpayurl?pr={order['code_token']}"}, merchant=merchant)


@bp.post("/pay/v3/pay/transactions/jsapi")
@v3_api
def pay_jsapi(merchant: Merchant) -> Response:
    return _create(merchant, "JSAPI")


@bp.post("/pay/v3/pay/transactions/native")
@v3_api
def pay_native(merchant: Merchant) -> Response:
    return _create(merchant, "NATIVE")


@bp.get("/pay/v3/pay/transactions/out-trade-no/<out_trade_no>")
@v3_api
def pay_query(merchant: Merchant, out_trade_no: str) -> Response:
    if request.args.get("mchid") != merchant.mchid:
        return _error(400, "PARAM_ERROR", "mchid 参数错误")
    order = get_order(redis_client(), merchant.mchid, out_trade_no)
    if order is None:
        return _error(404, "ORDER_NOT_EXIST", "订单不存在")
    return _answer(_public_order(order), merchant=merchant)


@bp.post("/pay/v3/pay/transactions/out-trade-no/<out_trade_no>/close")
@v3_api
def pay_close(merchant: Merchant, out_trade_no: str) -> Response:
    data = _body()
    if data is None or data.get("mchid") != merchant.mchid:
        return _error(400, "PARAM_ERROR", "mchid 参数错误")
    r = redis_client()
    key = _order_key(merchant.mchid, out_trade_no)
    with r.lock(key + ":lock", timeout=5, blocking_timeout=5):
        order = get_order(r, merchant.mchid, out_trade_no)
        if order is None:
            return _error(404, "ORDER_NOT_EXIST", "订单不存在")
        if order["trade_state"] in ("SUCCESS", "REFUND"):
            return _error(403, "ORDERPAID", "订单已支付")
        if order["trade_state"] == "NOTPAY":
            order.update(trade_state="CLOSED", trade_state_desc="订单已关闭", closed_by="merchant")
            _save_order(r, order)
    return _answer(None, 204, merchant=merchant)


def mark_paid(r: Redis, mchid: str, out_trade_no: str, openid: str | None) -> tuple[int, dict[str, Any]]:
    """The user confirmed payment: NOTPAY → SUCCESS, and the notification is queued."""
    key = _order_key(mchid, out_trade_no)
    with r.lock(key + ":lock", timeout=5, blocking_timeout=5):
        order = get_order(r, mchid, out_trade_no)
        if order is None:
            return 404, {"code": "ORDER_NOT_EXIST", "message": "订单不存在"}
        if order["trade_state"] in ("SUCCESS", "REFUND"):
            return 403, {"code": "ORDERPAID", "message": "该订单已支付"}
        if order["trade_state"] == "CLOSED":
            return 400, {"code": "ORDER_CLOSED", "message": "订单已关闭"}
        if order["trade_type"] == "JSAPI" and openid and openid != order["payer_openid"]:
            return 403, {"code": "PAYER_MISMATCH", "message": "支付验证失败：付款人与下单用户不一致"}
        payer = order["payer_openid"] or openid
        if not payer:
            return 400, {"code": "PARAM_ERROR", "message": "缺少付款用户 openid"}
        now = store.now(r)
        order.update(
            trade_state="SUCCESS",
            trade_state_desc="支付成功",
            payer_openid=payer,
            transaction_id="42000"
            + dt.datetime.now(BEIJING).strftime("%Y%m%d")
            + f"{secrets.randbelow(10**15):015d}",
            success_time=_now_rfc3339(now),
            paid_at=now,
        )
        _save_order(r, order)
    enqueue_notification(
        r,
        order["notify_url"],
        "TRANSACTION.SUCCESS",
        "transaction",
        "支付成功",
        {k: v for k, v in _public_order(order).items()},
    )
    return 200, {
        "trade_state": "SUCCESS",
        "out_trade_no": out_trade_no,
        "transaction_id": order["transaction_id"],
    }


# -- refunds -----------------------------------------------------------------------------------------
def _refund_key(mchid: str, out_refund_no: str) -> str:
    return f"{PREFIX}refund:{mchid}:{out_refund_no}"


def _public_refund(refund: dict[str, Any]) -> dict[str, Any]:
    answer = {k: refund[k] for k in ("refund_id", "out_refund_no", "transaction_id", "out_trade_no")}
    answer.update(
        channel="ORIGINAL",
        user_received_account="支付用户零钱",
        create_time=refund["create_time"],
        status=refund["status"],
        funds_account="AVAILABLE",
        amount={
            "total": refund["total"],
            "refund": refund["refund"],
            "payer_total": refund["total"],
            "payer_refund": refund["refund"],
            "settlement_refund": refund["refund"],
            "settlement_total": refund["total"],
            "discount_refund": 0,
            "currency": "CNY",
        },
    )
    if refund.get("success_time"):
        answer["success_time"] = refund["success_time"]
    return answer


@bp.post("/pay/v3/refund/domestic/refunds")
@v3_api
def refund_create(merchant: Merchant) -> Response:
    data = _body()
    if data is None:
        return _error(400, "PARAM_ERROR", "请求体不是合法的 JSON")
    amount = data.get("amount") if isinstance(data.get("amount"), dict) else {}
    refund_fen, total_fen = amount.get("refund"), amount.get("total")
    if not isinstance(data.get("out_refund_no"), str) or not OUT_REFUND_NO.match(data["out_refund_no"]):
        return _error(400, "PARAM_ERROR", "out_refund_no 参数错误")
    if any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in (refund_fen, total_fen)):
        return _error(400, "PARAM_ERROR", "amount 参数错误")
    r = redis_client()
    out_trade_no = data.get("out_trade_no")
    if not isinstance(out_trade_no, str):
        return _error(400, "PARAM_ERROR", "缺少 out_trade_no")
    order_key = _order_key(merchant.mchid, out_trade_no)
    with r.lock(order_key + ":lock", timeout=5, blocking_timeout=5):
        order = get_order(r, merchant.mchid, out_trade_no)
        if order is None:
            return _error(404, "RESOURCE_NOT_EXISTS", "订单不存在")
        if order["trade_state"] not in ("SUCCESS", "REFUND"):
            return _error(400, "INVALID_REQUEST", "订单未支付，不能退款")
        if total_fen != order["amount"]["total"]:
            return _error(400, "INVALID_REQUEST", "订单金额与原订单不一致")
        rkey = _refund_key(merchant.mchid, data["out_refund_no"])
        existing = r.get(rkey)
        if existing:
            refund = json.loads(existing)
            if refund["refund"] != refund_fen or refund["out_trade_no"] != out_trade_no:
                return _error(400, "INVALID_REQUEST", "退款单号重复，且金额或订单不一致")
            return _answer(_public_refund(refund), merchant=merchant)
        refunded = int(order.get("refunded", 0))
        if refund_fen > total_fen - refunded:
            return _error(403, "NOT_ENOUGH", "申请退款金额超过订单可退金额")
        now = store.now(r)
        refund = {
            "mchid": merchant.mchid,
            "refund_id": "50300" + f"{secrets.randbelow(10**24):024d}",
            "out_refund_no": data["out_refund_no"],
            "transaction_id": order["transaction_id"],
            "out_trade_no": out_trade_no,
            "reason": data.get("reason", ""),
            "create_time": _now_rfc3339(now),
            "status": "PROCESSING",
            "refund": refund_fen,
            "total": total_fen,
        }
        answer = _public_refund(refund)  # WeChat Pay answers PROCESSING; the money moves right after
        refund.update(status="SUCCESS", success_time=_now_rfc3339(now), succeeded_at=now)
        r.set(rkey, json.dumps(refund, ensure_ascii=False))
        r.sadd(REFUNDS, rkey)
        order.update(refunded=refunded + refund_fen, trade_state="REFUND", trade_state_desc="订单发生过退款")
        _save_order(r, order)
    notify_url = data.get("notify_url") or order["notify_url"]
    enqueue_notification(
        r,
        notify_url,
        "REFUND.SUCCESS",
        "refund",
        "退款成功",
        {
            "mchid": merchant.mchid,
            "out_trade_no": out_trade_no,
            "transaction_id": order["transaction_id"],
            "out_refund_no": refund["out_refund_no"],
            "refund_id": refund["refund_id"],
            "refund_status": "SUCCESS",
            "success_time": refund["success_time"],
            "user_received_account": "支付用户零钱",
            "amount": {
                "total": total_fen,
                "refund": refund_fen,
                "payer_total": total_fen,
                "payer_refund": refund_fen,
            },
        },
    )
    return _answer(answer, merchant=merchant)


@bp.get("/pay/v3/refund/domestic/refunds/<out_refund_no>")
@v3_api
def refund_query(merchant: Merchant, out_refund_no: str) -> Response:
    raw = redis_client().get(_refund_key(merchant.mchid, out_refund_no))
    if raw is None:
        return _error(404, "RESOURCE_NOT_EXISTS", "退款单不存在")
    return _answer(_public_refund(json.loads(raw)), merchant=merchant)


# -- certificates (platform-certificate mode) -----------------------------------------------------------
def _encrypt(apiv3_key: str, plaintext: str, associated_data: str) -> dict[str, str]:
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


@bp.get("/pay/v3/certificates")
@v3_api
def certificates(merchant: Merchant) -> Response:
    keys = _keys()
    cert = x509.load_pem_x509_certificate(keys.platform_cert_pem.encode())
    entry = {
        "serial_no": keys.platform_cert_serial,
        "effective_time": cert.not_valid_before_utc.astimezone(BEIJING).isoformat(timespec="seconds"),
        "expire_time": cert.not_valid_after_utc.astimezone(BEIJING).isoformat(timespec="seconds"),
        "encrypt_certificate": _encrypt(merchant.apiv3_key, keys.platform_cert_pem, "certificate"),
    }
    return _answer({"data": [entry]}, merchant=merchant)


# -- trade bill --------------------------------------------------------------------------------------------
def _yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


def build_trade_bill(r: Redis, mchid: str, day: dt.date) -> str | None:
    """The day's trade bill (bill_type=ALL) in WeChat Pay's CSV form, or None if nothing happened."""
    from app.pay.client import BILL_COLUMNS

    lines: list[list[str]] = []
    settled = refunded = 0
    for key in sorted(r.smembers(ORDERS)):
        raw = r.get(key)
        order = json.loads(raw) if raw else None
        if not order or order["mchid"] != mchid or not order.get("paid_at"):
            continue
        paid = dt.datetime.fromtimestamp(order["paid_at"], BEIJING)
        if paid.date() != day:
            continue
        total = order["amount"]["total"]
        settled += total
        lines.append(_bill_line(order, paid, "SUCCESS", total, "", "", 0, "", total, 0))
    for key in sorted(r.smembers(REFUNDS)):
        raw = r.get(key)
        refund = json.loads(raw) if raw else None
        if not refund or refund["mchid"] != mchid or not refund.get("succeeded_at"):
            continue
        when = dt.datetime.fromtimestamp(refund["succeeded_at"], BEIJING)
        if when.date() != day:
            continue
        order = json.loads(r.get(_order_key(mchid, refund["out_trade_no"])) or "{}")
        refunded += refund["refund"]
        lines.append(
            _bill_line(
                order, when, "REFUND", 0, refund["refund_id"], refund["out_refund_no"],
                refund["refund"], "SUCCESS", refund["total"], refund["refund"],
            )
        )  # fmt: skip
    if not lines:
        return None
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(BILL_COLUMNS)
    writer.writerows(lines)
    writer.writerow(
        [
            "总交易单数",
            "应结订单总金额",
            "退款总金额",
            "充值券退款总金额",
            "手续费总金额",
            "订单总金额",
            "申请退款总金额",
        ]
    )
    totals = (
        str(len(lines)),
        _yuan(settled),
        _yuan(refunded),
        "0.00",
        "0.00",
        _yuan(settled),
        _yuan(refunded),
    )
    writer.writerow(["`" + v for v in totals])
    return out.getvalue()


def _bill_line(
    order: dict[str, Any], when: dt.datetime, state: str, settle: int, refund_id: str, out_refund_no: str,
    refund: int, refund_status: str, order_fen: int, refund_applied: int,
) -> list[str]:  # fmt: skip
    values = [
        when.strftime("%Y-%m-%d %H:%M:%S"), order.get("appid", ""), order.get("mchid", ""), "0", "",
        order.get("transaction_id", ""), order.get("out_trade_no", ""), order.get("payer_openid") or "",
        order.get("trade_type", ""), state, "OTHERS", "CNY", _yuan(settle), "0.00", refund_id, out_refund_no,
        _yuan(refund), "0.00", "ORIGINAL" if refund_id else "", refund_status, order.get("description", ""),
        order.get("attach", ""), "0.00", "0.60%", _yuan(order_fen), _yuan(refund_applied), "",
    ]  # fmt: skip
    return ["`" + v for v in values]


@bp.get("/pay/v3/bill/tradebill")
@v3_api
def trade_bill(merchant: Merchant) -> Response:
    try:
        day = dt.date.fromisoformat(request.args.get("bill_date", ""))
    except ValueError:
        return _error(400, "PARAM_ERROR", "bill_date 格式应为 YYYY-MM-DD")
    if request.args.get("bill_type", "ALL") != "ALL":
        return _error(400, "PARAM_ERROR", "沙箱只提供 bill_type=ALL")
    # Unlike WeChat Pay (a day's bill is ready the next morning) the sandbox also serves today.
    r = redis_client()
    text = build_trade_bill(r, merchant.mchid, day)
    if text is None:
        return _error(400, "NO_STATEMENT_EXIST", "账单不存在")
    data = text.encode("utf-8")
    token = secrets.token_urlsafe(16)
    gz = request.args.get("tar_type") == "GZIP"
    r.set(f"{PREFIX}bill:{token}", json.dumps({"text": text, "gzip": gz}), ex=300)
    base = request.host_url.rstrip("/") + (bp.url_prefix or "") + "/pay"
    return _answer(
        {
            "hash_type": "SHA1",
            "hash_value": hashlib.sha1(data, usedforsecurity=False).hexdigest(),
            "download_url": f"{base}/v3/billdownload/file?token={token}",
        },
        merchant=merchant,
    )


@bp.get("/pay/v3/billdownload/file")
@v3_api
def bill_download(merchant: Merchant) -> Response:
    raw = redis_client().get(f"{PREFIX}bill:{request.args.get('token', '')}")
    if raw is None:
        return _error(400, "INVALID_REQUEST", "下载链接已过期")
    bill = json.loads(raw)
    data = bill["text"].encode("utf-8")
    # The file itself is not signed; the client checks it against hash_value.
    return Response(gzip.compress(data) if bill["gzip"] else data, mimetype="application/octet-stream")


# -- notifications ---------------------------------------------------------------------------------------
def build_notification(
    apiv3_key: str,
    event_type: str,
    original_type: str,
    summary: str,
    resource: dict[str, Any],
    nid: str | None = None,
) -> dict[str, Any]:
    """The notification envelope WeChat Pay posts, its resource encrypted with the APIv3 key."""
    return {
        "id": nid or str(uuid.uuid4()),
        "create_time": _now_rfc3339(),
        "resource_type": "encrypt-resource",
        "event_type": event_type,
        "summary": summary,
        "resource": {
            "original_type": original_type,
            **_encrypt(
                apiv3_key, json.dumps(resource, ensure_ascii=False, separators=(",", ":")), original_type
            ),
        },
    }


def signed_post(envelope: dict[str, Any] | bytes, r: Redis) -> tuple[dict[str, str], bytes]:
    """Headers and body of one delivery: signed now (every retry carries a fresh signature)."""
    body = (
        envelope
        if isinstance(envelope, bytes)
        else json.dumps(envelope, ensure_ascii=False, separators=(",", ":")).encode()
    )
    headers = {"Content-Type": "application/json", **signature_headers(body, r)}
    return headers, body


def enqueue_notification(
    r: Redis, url: str, event_type: str, original_type: str, summary: str, resource: dict[str, Any]
) -> str | None:
    """Queue a notification for immediate delivery (or as the faults say). Returns its id."""
    envelope = build_notification(_merchant().apiv3_key, event_type, original_type, summary, resource)
    nid = envelope["id"]
    if r.hget(FAULTS, "drop_notifications") == "1":
        _record_delivery(r, {"id": nid, "event_type": event_type, "url": url, "dropped": True})
        return None
    delay = float(r.hget(FAULTS, "notify_delay_seconds") or 0)
    record = {"id": nid, "url": url, "envelope": envelope, "attempts": 0, "created_at": store.now(r)}
    r.set(f"{PREFIX}notify:{nid}", json.dumps(record, ensure_ascii=False))
    r.zadd(DUE, {nid: store.now(r) + delay})
    _wake(current_app._get_current_object())  # type: ignore[attr-defined]
    return nid


def _record_delivery(r: Redis, entry: dict[str, Any]) -> None:
    r.rpush(DELIVERIES, json.dumps({"at": time.time(), **entry}, ensure_ascii=False))
    r.ltrim(DELIVERIES, -500, -1)


def deliveries(r: Redis) -> list[dict[str, Any]]:
    return [json.loads(v) for v in r.lrange(DELIVERIES, 0, -1)]


def deliver_due_notifications(r: Redis, now: float | None = None) -> list[dict[str, Any]]:
    """Post every notification due at `now` once; reschedule the unanswered ones. Needs an app context.

    Several deliverers (threads, processes, a test) may run at once: ZREM decides who owns an item.
    """
    now = store.now(r) if now is None else now
    done: list[dict[str, Any]] = []
    for nid in r.zrangebyscore(DUE, "-inf", now):
        if not r.zrem(DUE, nid):
            continue  # someone else took it
        raw = r.get(f"{PREFIX}notify:{nid}")
        if raw is None:
            continue
        record = json.loads(raw)
        headers, body = signed_post(record["envelope"], r)
        status: int | None
        try:
            response = requests.post(
                record["url"], data=body, headers=headers, timeout=NOTIFY_TIMEOUT_SECONDS
            )
            status, answer = response.status_code, response.text[:200]
        except requests.RequestException as exc:
            status, answer = None, type(exc).__name__
        record["attempts"] += 1
        entry = {
            "id": nid,
            "event_type": record["envelope"]["event_type"],
            "url": record["url"],
            "attempt": record["attempts"],
            "scheduled_at": now,
            "status": status,
            "answer": answer,
        }
        if status is not None and 200 <= status < 300:
            r.delete(f"{PREFIX}notify:{nid}")
            entry["final"] = "acknowledged"
        elif record["attempts"] > len(RETRY_SCHEDULE):
            r.delete(f"{PREFIX}notify:{nid}")
            entry["final"] = "gave_up"
        else:
            entry["next_at"] = now + RETRY_SCHEDULE[record["attempts"] - 1]
            r.set(f"{PREFIX}notify:{nid}", json.dumps(record, ensure_ascii=False))
            r.zadd(DUE, {nid: entry["next_at"]})
        _record_delivery(r, entry)
        done.append(entry)
    return done


# The embedded deliverer: one daemon thread per app, started when something is queued, gone when the
# queue is empty (so finished tests leave no thread behind).
_THREADS_LOCK = threading.Lock()


def _wake(app: Flask) -> None:
    if not app.config.get("WECHAT_PAY_SANDBOX_NOTIFY_THREAD", True):
        return
    with _THREADS_LOCK:
        slot = app.extensions.setdefault("sandbox_pay_notifier", {"thread": None, "event": threading.Event()})
        slot["event"].set()
        thread = slot["thread"]
        if thread is None or not thread.is_alive():
            slot["thread"] = threading.Thread(
                target=_notifier, args=(app, slot), name="sandbox-pay-notifier", daemon=True
            )
            slot["thread"].start()


def _notifier(app: Flask, slot: dict[str, Any]) -> None:
    event: threading.Event = slot["event"]
    while True:
        event.clear()
        try:
            with app.app_context():
                r = redis_client()
                deliver_due_notifications(r)
                with _THREADS_LOCK:
                    nxt = r.zrange(DUE, 0, 0, withscores=True)
                    if not nxt:
                        slot["thread"] = None
                        return
        except Exception:  # the emulator's thread must not die on a bad item; try again shortly
            log.exception("sandbox pay notifier")
            nxt = [("", time.time() + 1)]
        event.wait(timeout=max(0.05, min(1.0, nxt[0][1] - time.time())))


# -- the user's side: pay sheet and scanning -----------------------------------------------------------
def _user_json() -> dict[str, Any]:
    data = request.get_json(silent=True)
    return data if isinstance(data, dict) else {}


@bp.post("/pay/<out_trade_no>")
def pay_action(out_trade_no: str) -> tuple[Response, int]:
    """The phone's pay sheet: {"action": "pay"} pays as the order's payer; "cancel" closes the sheet."""
    data = _user_json()
    r = redis_client()
    mchid = _merchant().mchid
    action = data.get("action")
    openid = data.get("openid") or request.cookies.get("sandbox_phone_user")
    if action == "cancel":
        order = get_order(r, mchid, out_trade_no)
        if order is None:
            return jsonify(code="ORDER_NOT_EXIST", message="订单不存在"), 404
        return jsonify(trade_state=order["trade_state"], out_trade_no=out_trade_no, err_msg="cancel"), 200
    if action != "pay":
        return jsonify(code="PARAM_ERROR", message='action 应为 "pay" 或 "cancel"'), 400
    status, answer = mark_paid(r, mchid, out_trade_no, openid if isinstance(openid, str) else None)
    return jsonify(answer), status


@bp.post("/pay/scan")
def pay_scan() -> tuple[Response, int]:
    """Scan a Native code_url with the phone as `openid` and pay it."""
    data = _user_json()
    code_url, openid = data.get("code_url"), data.get("openid") or request.cookies.get("sandbox_phone_user")
    match = re.match(r"^weixin://wxpay/bizpayurl\?pr=([\w-]+)$", code_url or "")
    if not match or not isinstance(openid, str) or not openid:
        return jsonify(code="PARAM_ERROR", message="需要 code_url 与 openid"), 400
    r = redis_client()
    key = r.get(f"{PREFIX}code:{match.group(1)}")
    if key is None:
        return jsonify(code="ORDER_NOT_EXIST", message="二维码无效或已过期"), 404
    _, mchid, out_trade_no = key.rsplit(":", 2)
    status, answer = mark_paid(r, mchid, out_trade_no, openid)
    return jsonify(answer), status


@bp.get("/pay/_ctl/prepay/<prepay_id>")
def prepay_info(prepay_id: str) -> tuple[Response, int]:
    """What the pay sheet shows for a JSAPI invocation; checks paySign as WeChat's client does."""
    r = redis_client()
    key = r.get(f"{PREFIX}prepay:{prepay_id}")
    if key is None:
        return jsonify(code="ORDER_NOT_EXIST", message="prepay_id 无效或已过期"), 404
    merchant = _merchant()
    args = request.args
    if "paySign" in args:
        message = "".join(
            f"{args.get(k, '')}\n" for k in ("appId", "timeStamp", "nonceStr", "package")
        ).encode()
        try:
            merchant.public_key.verify(
                base64.b64decode(args["paySign"]), message, padding.PKCS1v15(), hashes.SHA256()
            )
            good = (
                hmac.compare_digest(args.get("package", ""), f"prepay_id={prepay_id}")
                and args.get("appId") == merchant.appid
            )
        except (InvalidSignature, ValueError):
            good = False
        if not good:
            return jsonify(code="SIGN_ERROR", message="支付验证签名失败"), 400
    _, mchid, out_trade_no = key.rsplit(":", 2)
    order = get_order(r, mchid, out_trade_no)
    assert order is not None
    return jsonify(
        out_trade_no=out_trade_no,
        amount_fen=order["amount"]["total"],
        description=order["description"],
        merchant_name=current_app.config["WECHAT_PAY_MERCHANT_NAME"],
        trade_state=order["trade_state"],
        payer_openid=order["payer_openid"],
    ), 200


@bp.get("/pay/_ctl/orders/<out_trade_no>")
def order_info(out_trade_no: str) -> tuple[Response, int]:
    order = get_order(redis_client(), _merchant().mchid, out_trade_no)
    if order is None:
        return jsonify(code="ORDER_NOT_EXIST", message="订单不存在"), 404
    return jsonify(order), 200


@bp.post("/pay/_ctl/faults")
def set_faults_view() -> tuple[Response, int]:
    data = _user_json()
    set_faults(redis_client(), **{k: v for k, v in data.items() if k in FAULT_NAMES})
    return jsonify(faults=redis_client().hgetall(FAULTS)), 200


FAULT_NAMES = ("drop_notifications", "notify_delay_seconds", "wrong_key", "fail_500")


def set_faults(r: Redis, **faults: Any) -> None:
    """drop_notifications / wrong_key (bool), notify_delay_seconds (float), fail_500 (int). None clears."""
    for name, value in faults.items():
        if name not in FAULT_NAMES:
            raise ValueError(f"unknown fault {name!r}")
        if value in (None, False, 0):
            r.hdel(FAULTS, name)
        else:
            r.hset(FAULTS, name, "1" if value is True else str(value))


@bp.post("/pay/_ctl/deliver")
def deliver_view() -> tuple[Response, int]:
    """Deliver what is due at `now` (default: the sandbox's clock) — drives the retry schedule."""
    now = _user_json().get("now")
    done = deliver_due_notifications(redis_client(), float(now) if now is not None else None)
    return jsonify(deliveries=done), 200


@bp.get("/pay/_ctl/deliveries")
def deliveries_view() -> tuple[Response, int]:
    r = redis_client()
    return jsonify(
        deliveries=deliveries(r), due=[{"id": n, "at": s} for n, s in r.zrange(DUE, 0, -1, withscores=True)]
    ), 200


@bp.get("/pay/sheet")
def sheet_page() -> str:
    """A bare page with the pay sheet, for trying it (and for its browser test): ?prepay_id=…"""
    return render_template("sandbox/paysheet_demo.html")
