"""The WeChat Pay API v3 client: a thin adapter over `wechatpayv3` (2.0.4).

What the adapter adds to the library:

- **Where calls go.** wechatpayv3 hard-codes https://api.mch.weixin.qq.com; the only way to move it
  is the private `_core._gate_way`. That is set in one place (`_library`) and tested against the
  sandbox, so a library upgrade that renames it fails loudly there.
- **Typed results and errors.** Amounts are integer fen in and out; answers become `OrderState` /
  `RefundState`; failures become `PayError` with WeChat Pay's code and message, and `retryable`
  tells network trouble, 5xx and rate limits (try again) from 4xx (do not).
- **Response signatures.** wechatpayv3 verifies the Wechatpay-Signature of every 2xx answer and
  raises a bare Exception when it does not match; that becomes `PayResponseUnverified` and the
  answer is never used. (Error answers are not verified by the library; they never carry a
  payment state, so nothing is decided from them except "not done".)
- **Keys for notifications.** `platform_key(serial)` finds the WeChat Pay key a notification names,
  in public-key mode or (downloading certificates when needed) in platform-certificate mode.

API reference: https://pay.weixin.qq.com/doc/v3/merchant/4012791856 (JSAPI 下单) and its siblings.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import logging
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from flask import Flask, current_app

from app.services.localtime import BEIJING
from config import Settings, SettingsError

log = logging.getLogger(__name__)

REAL_API_BASE = "https://api.mch.weixin.qq.com"
# WeChat Pay: out_trade_no is 6–32 characters of digits, letters, _-|*; out_refund_no 1-64 of _-|*@.
OUT_TRADE_NO = re.compile(r"^[0-9A-Za-z_\-|*]{6,32}$")
OUT_REFUND_NO = re.compile(r"^[0-9A-Za-z_\-|*@]{1,64}$")
# Error codes that mean "the same call may succeed later" even though the status is 4xx.
RETRYABLE_CODES = frozenset({"SYSTEM_ERROR", "FREQUENCY_LIMITED", "BANK_ERROR", "ACCOUNT_ERROR"})


class PayError(Exception):
    """A WeChat Pay call failed. `code`/`message` are WeChat Pay's (or ours for transport trouble)."""

    def __init__(
        self, op: str, code: str, message: str, *, status: int | None = None, retryable: bool = False
    ) -> None:
        super().__init__(f"{op}: {code} {message}" + (f" (HTTP {status})" if status else ""))
        self.op = op
        self.code = code
        self.message = message
        self.status = status
        self.retryable = retryable


class PayResponseUnverified(PayError):
    """A 2xx answer whose Wechatpay-Signature did not verify: not from WeChat Pay, never used."""


class PayNotConfiguredError(RuntimeError):
    """No merchant credentials and no sandbox: WeChat Pay cannot be used."""


@dataclass(frozen=True)
class PayConfig:
    """The resolved merchant settings: key material loaded, sandbox defaults filled in."""

    mchid: str
    appid: str
    merchant_serial: str
    private_key_pem: str
    apiv3_key: str
    public_key_id: str | None
    public_key_pem: str | None
    cert_dir: str | None
    api_base: str
    notify_url: str
    timeout: float
    max_notify_age: int
    max_notify_bytes: int
    merchant_name: str

    @property
    def public_key_mode(self) -> bool:
        return self.public_key_id is not None

    def private_key(self) -> RSAPrivateKey:
        key = serialization.load_pem_private_key(self.private_key_pem.encode(), password=None)
        assert isinstance(key, RSAPrivateKey)
        return key


@dataclass(frozen=True)
class OrderState:
    """A payment order as WeChat Pay reports it (查询订单). Amounts in fen."""

    out_trade_no: str
    trade_state: str  # SUCCESS, NOTPAY, CLOSED, REFUND, USERPAYING, PAYERROR, REVOKED
    trade_state_desc: str
    appid: str
    mchid: str
    trade_type: str | None
    transaction_id: str | None
    amount_total: int | None
    payer_total: int | None
    currency: str | None
    payer_openid: str | None
    success_time: datetime | None
    raw: dict[str, Any] = field(repr=False)

    @classmethod
    def from_wechat(cls, data: dict[str, Any]) -> OrderState:
        amount = data.get("amount") or {}
        return cls(
            out_trade_no=data["out_trade_no"],
            trade_state=data["trade_state"],
            trade_state_desc=data.get("trade_state_desc", ""),
            appid=data.get("appid", ""),
            mchid=data.get("mchid", ""),
            trade_type=data.get("trade_type") or None,
            transaction_id=data.get("transaction_id") or None,
            amount_total=_int_or_none(amount.get("total")),
            payer_total=_int_or_none(amount.get("payer_total")),
            currency=amount.get("currency"),
            payer_openid=(data.get("payer") or {}).get("openid") or None,
            success_time=parse_time(data.get("success_time")),
            raw=data,
        )


@dataclass(frozen=True)
class RefundState:
    """A refund as WeChat Pay reports it (申请退款 / 查询单笔退款). Amounts in fen."""

    out_refund_no: str
    refund_id: str
    out_trade_no: str
    transaction_id: str
    status: str  # SUCCESS, CLOSED, PROCESSING, ABNORMAL
    refund_fen: int
    total_fen: int
    currency: str
    create_time: datetime | None
    success_time: datetime | None
    raw: dict[str, Any] = field(repr=False)

    @classmethod
    def from_wechat(cls, data: dict[str, Any]) -> RefundState:
        amount = data.get("amount") or {}
        return cls(
            out_refund_no=data["out_refund_no"],
            refund_id=data["refund_id"],
            out_trade_no=data.get("out_trade_no", ""),
            transaction_id=data.get("transaction_id", ""),
            status=data["status"],
            refund_fen=int(amount["refund"]),
            total_fen=int(amount["total"]),
            currency=amount.get("currency", "CNY"),
            create_time=parse_time(data.get("create_time")),
            success_time=parse_time(data.get("success_time")),
            raw=data,
        )


@dataclass(frozen=True)
class BillRow:
    """One line of the trade bill (交易账单, bill_type=ALL). Amounts in fen."""

    trade_time: datetime
    appid: str
    mchid: str
    transaction_id: str
    out_trade_no: str
    openid: str
    trade_type: str
    trade_state: str  # SUCCESS or REFUND (a refund line)
    currency: str
    settlement_fen: int  # 应结订单金额
    refund_id: str
    out_refund_no: str
    refund_fen: int
    refund_status: str
    description: str
    fee_fen_text: str  # 手续费 as printed (fractions of a fen are possible there)
    order_fen: int  # 订单金额


def parse_time(value: str | None) -> datetime | None:
    """WeChat Pay's RFC 3339 times ("2018-06-08T10:34:56+08:00") as aware datetimes."""
    return datetime.fromisoformat(value) if value else None


def format_time(moment: datetime) -> str:
    """An aware datetime in WeChat Pay's RFC 3339 form, Beijing time as in its docs."""
    if moment.tzinfo is None:
        raise ValueError("time_expire must be timezone-aware")
    return moment.astimezone(BEIJING).isoformat(timespec="seconds")


def yuan_to_fen(text: str) -> int:
    """Bills print yuan with two decimals ("0.02"); money stays exact as integer fen."""
    fen = Decimal(text.strip() or "0") * 100
    if fen != fen.to_integral_value():
        raise ValueError(f"not a whole number of fen: {text!r}")
    return int(fen)


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


def _check_fen(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive integer number of fen, got {value!r}")


def _check_out_trade_no(value: str) -> None:
    if not OUT_TRADE_NO.match(value):
        raise ValueError(f"out_trade_no must be 6-32 of [0-9A-Za-z_-|*], got {value!r}")


class PayClient:
    """The operations the payments service calls. Thread-safe; one per app."""

    def __init__(self, config: PayConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._wxpay: Any = None

    # -- the library, built lazily: platform-certificate mode downloads certificates on construction
    def _library(self) -> Any:
        with self._lock:
            if self._wxpay is None:
                from wechatpayv3 import WeChatPay, WeChatPayType

                cfg = self.config
                wxpay = _without_gateway(
                    lambda: WeChatPay(
                        wechatpay_type=WeChatPayType.JSAPI,
                        mchid=cfg.mchid,
                        private_key=cfg.private_key_pem,
                        cert_serial_no=cfg.merchant_serial,
                        appid=cfg.appid,
                        apiv3_key=cfg.apiv3_key,
                        notify_url=cfg.notify_url,
                        cert_dir=cfg.cert_dir,
                        logger=None,
                        timeout=(min(cfg.timeout, 5.0), cfg.timeout),
                        public_key=cfg.public_key_pem,
                        public_key_id=cfg.public_key_id,
                    ),
                    cfg.api_base,
                )
                self._wxpay = wxpay
            return self._wxpay

    def _call(self, op: str, func: Callable[[Any], tuple[int, Any]]) -> tuple[int, Any]:
        try:
            status, body = func(self._library())
        except requests.RequestException as exc:
            raise PayError(op, "NETWORK_ERROR", type(exc).__name__, retryable=True) from exc
        except PayError:
            raise
        except Exception as exc:  # wechatpayv3 signals a bad response signature with a bare Exception
            log.warning("wechat pay %s: response refused: %s", op, exc)
            raise PayResponseUnverified(
                op, "RESPONSE_SIGNATURE_INVALID", f"answer not verified: {exc}", retryable=False
            ) from exc
        if 200 <= status < 300:
            return status, body
        code, message = "UNKNOWN", ""
        try:
            parsed = json.loads(body)
            code, message = str(parsed.get("code", code)), str(parsed.get("message", ""))
        except (TypeError, ValueError, AttributeError):
            message = str(body)[:200]
        retryable = status >= 500 or status == 429 or code in RETRYABLE_CODES
        raise PayError(op, code, message, status=status, retryable=retryable)

    @staticmethod
    def _json(op: str, body: Any) -> dict[str, Any]:
        try:
            data = json.loads(body)
        except (TypeError, ValueError) as exc:
            raise PayError(op, "INVALID_RESPONSE", "answer is not JSON") from exc
        if not isinstance(data, dict):
            raise PayError(op, "INVALID_RESPONSE", "answer is not a JSON object")
        return data

    # -- payments
    def create_jsapi(
        self, out_trade_no: str, description: str, amount_fen: int, payer_openid: str, time_expire: datetime
    ) -> dict[str, str]:
        """JSAPI 下单, then the signed parameters for `WeixinJSBridge.invoke('getBrandWCPayRequest')`.

        https://pay.weixin.qq.com/doc/v3/merchant/4012791857 (JSAPI 调起支付)
        """
        _check_out_trade_no(out_trade_no)
        _check_fen("amount_fen", amount_fen)
        expire = format_time(time_expire)  # outside the call: its errors are ours, not WeChat Pay's
        from wechatpayv3 import WeChatPayType

        _, body = self._call(
            "jsapi",
            lambda w: w.pay(
                description=description,
                out_trade_no=out_trade_no,
                amount={"total": amount_fen, "currency": "CNY"},
                payer={"openid": payer_openid},
                time_expire=expire,
                pay_type=WeChatPayType.JSAPI,
            ),
        )
        prepay_id = self._json("jsapi", body).get("prepay_id")
        if not prepay_id:
            raise PayError("jsapi", "INVALID_RESPONSE", "no prepay_id in the answer")
        return self.jsapi_params(prepay_id)

    def jsapi_params(self, prepay_id: str) -> dict[str, str]:
        """Sign the JSAPI invocation again (e.g. the page reloaded); prepay_id lives two hours."""
        params = {
            "appId": self.config.appid,
            "timeStamp": str(int(time.time())),
            "nonceStr": secrets.token_hex(16),
            "package": f"prepay_id={prepay_id}",
            "signType": "RSA",
        }
        params["paySign"] = self._library().sign(
            [params["appId"], params["timeStamp"], params["nonceStr"], params["package"]]
        )
        return params

    def create_native(
        self, out_trade_no: str, description: str, amount_fen: int, time_expire: datetime
    ) -> str:
        """Native 下单: the `weixin://wxpay/bizpayurl?pr=...` link to render as a QR code."""
        _check_out_trade_no(out_trade_no)
        _check_fen("amount_fen", amount_fen)
        expire = format_time(time_expire)  # outside the call: its errors are ours, not WeChat Pay's
        from wechatpayv3 import WeChatPayType

        _, body = self._call(
            "native",
            lambda w: w.pay(
                description=description,
                out_trade_no=out_trade_no,
                amount={"total": amount_fen, "currency": "CNY"},
                time_expire=expire,
                pay_type=WeChatPayType.NATIVE,
            ),
        )
        code_url = self._json("native", body).get("code_url")
        if not code_url:
            raise PayError("native", "INVALID_RESPONSE", "no code_url in the answer")
        return str(code_url)

    def query(self, out_trade_no: str) -> OrderState:
        """查询订单 by out_trade_no. An unknown order raises PayError with code ORDER_NOT_EXIST."""
        _check_out_trade_no(out_trade_no)
        _, body = self._call("query", lambda w: w.query(out_trade_no=out_trade_no))
        state = OrderState.from_wechat(self._json("query", body))
        if state.out_trade_no != out_trade_no or state.mchid != self.config.mchid:
            raise PayError("query", "INVALID_RESPONSE", "the answer is about another order")
        return state

    def close(self, out_trade_no: str) -> None:
        """关闭订单 (HTTP 204). Closing a paid order raises PayError ORDERPAID."""
        _check_out_trade_no(out_trade_no)
        self._call("close", lambda w: w.close(out_trade_no=out_trade_no))

    def refund(
        self, out_trade_no: str, out_refund_no: str, refund_fen: int, total_fen: int, reason: str
    ) -> RefundState:
        """申请退款; the result usually is PROCESSING, then a REFUND.SUCCESS notification follows."""
        _check_out_trade_no(out_trade_no)
        if not OUT_REFUND_NO.match(out_refund_no):
            raise ValueError(f"bad out_refund_no {out_refund_no!r}")
        _check_fen("refund_fen", refund_fen)
        _check_fen("total_fen", total_fen)
        if refund_fen > total_fen:
            raise ValueError("refund_fen exceeds total_fen")
        _, body = self._call(
            "refund",
            lambda w: w.refund(
                out_refund_no=out_refund_no,
                amount={"refund": refund_fen, "total": total_fen, "currency": "CNY"},
                out_trade_no=out_trade_no,
                reason=reason[:80] or None,
            ),
        )
        return RefundState.from_wechat(self._json("refund", body))

    def query_refund(self, out_refund_no: str) -> RefundState:
        if not OUT_REFUND_NO.match(out_refund_no):
            raise ValueError(f"bad out_refund_no {out_refund_no!r}")
        _, body = self._call("query_refund", lambda w: w.query_refund(out_refund_no=out_refund_no))
        return RefundState.from_wechat(self._json("query_refund", body))

    def trade_bill(self, day: date) -> list[BillRow]:
        """申请交易账单 for a Beijing day, download it, check its SHA1, parse it. No trades → []."""
        try:
            _, body = self._call("tradebill", lambda w: w.trade_bill(bill_date=day.isoformat()))
        except PayError as exc:
            if exc.code == "NO_STATEMENT_EXIST":
                return []
            raise
        info = self._json("tradebill", body)
        url = str(info.get("download_url", ""))
        _, content = self._call("billdownload", lambda w: w.download_bill(url))
        raw = content if isinstance(content, bytes) else str(content).encode()
        text_bytes = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
        digest = hashlib.sha1(text_bytes, usedforsecurity=False).hexdigest()
        if info.get("hash_type", "SHA1") != "SHA1" or digest != str(info.get("hash_value", "")).lower():
            raise PayError("billdownload", "HASH_MISMATCH", "the bill file does not match its hash")
        return parse_trade_bill(text_bytes.decode("utf-8-sig"))

    # -- keys for notifications
    def platform_key(self, serial: str) -> RSAPublicKey | None:
        """The WeChat Pay public key named by a Wechatpay-Serial header, or None if unknown."""
        if self.config.public_key_id is not None:
            if serial != self.config.public_key_id:
                return None
            key = serialization.load_pem_public_key(_pem(self.config.public_key_pem or "", "PUBLIC KEY"))
            assert isinstance(key, RSAPublicKey)
            return key
        try:
            wanted = int(serial, 16)  # a certificate serial is hex
        except ValueError:
            return None
        core = self._library()._core
        for attempt in range(2):
            for cert in list(core._certificates):
                if cert.serial_number == wanted:
                    key = cert.public_key()
                    return key if isinstance(key, RSAPublicKey) else None
            if attempt == 0:
                # A new platform certificate (WeChat Pay rotates them): download once and look again.
                with self._lock:
                    try:
                        core._update_certificates()
                    except requests.RequestException:
                        return None
        return None


def _without_gateway(build: Callable[[], Any], api_base: str) -> Any:
    """Build a WeChatPay whose calls go to `api_base` (the only place `_gate_way` is touched).

    Platform-certificate mode downloads certificates inside the constructor, before the gateway
    could be changed; the class attribute default is patched around construction for that.
    """
    from wechatpayv3 import core as wxcore

    original_init = wxcore.Core.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        # Core sets _gate_way first thing in __init__; a property-free subclass trick would be
        # fragile, so wrap __init__'s certificate step instead.
        init_certificates = self._init_certificates

        def deferred() -> None:
            self._gate_way = api_base
            init_certificates()

        self._init_certificates = deferred
        original_init(self, *args, **kwargs)
        self._gate_way = api_base

    with _GATEWAY_LOCK:
        wxcore.Core.__init__ = init
        try:
            wxpay = build()
        finally:
            wxcore.Core.__init__ = original_init
    if wxpay._core._gate_way != api_base:
        raise RuntimeError("wechatpayv3 changed: its base URL can no longer be set")
    return wxpay


_GATEWAY_LOCK = threading.Lock()


def _pem(text: str, kind: str) -> bytes:
    text = text.strip()
    if not text.startswith("-----BEGIN"):
        text = f"-----BEGIN {kind}-----\n{text}\n-----END {kind}-----"
    return text.encode()


# -- the trade bill (交易账单) -----------------------------------------------------------------------
BILL_COLUMNS = (
    "交易时间",
    "公众账号ID",
    "商户号",
    "特约商户号",
    "设备号",
    "微信订单号",
    "商户订单号",
    "用户标识",
    "交易类型",
    "交易状态",
    "付款银行",
    "货币种类",
    "应结订单金额",
    "代金券金额",
    "微信退款单号",
    "商户退款单号",
    "退款金额",
    "充值券退款金额",
    "退款类型",
    "退款状态",
    "商品名称",
    "商户数据包",
    "手续费",
    "费率",
    "订单金额",
    "申请退款金额",
    "费率备注",
)


def parse_trade_bill(text: str) -> list[BillRow]:
    """Rows of a bill_type=ALL trade bill. Every value is prefixed with "`"; totals follow the rows.

    https://pay.weixin.qq.com/doc/v3/merchant/4012085994 (交易账单格式)
    """
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return []
    header = next(csv.reader([lines[0]]))
    index = {name.strip(): i for i, name in enumerate(header)}
    missing = [
        c for c in ("交易时间", "微信订单号", "商户订单号", "交易状态", "应结订单金额") if c not in index
    ]
    if missing:
        raise ValueError(f"not a trade bill: missing columns {missing}")
    rows: list[BillRow] = []
    for line in lines[1:]:
        if line.startswith("总交易单数"):
            break  # the totals section
        values = [v.strip().lstrip("`") for v in next(csv.reader([line]))]

        def col(name: str, values: list[str] = values) -> str:
            i = index.get(name)
            return values[i] if i is not None and i < len(values) else ""

        rows.append(
            BillRow(
                trade_time=datetime.strptime(col("交易时间"), "%Y-%m-%d %H:%M:%S").replace(tzinfo=BEIJING),
                appid=col("公众账号ID"),
                mchid=col("商户号"),
                transaction_id=col("微信订单号"),
                out_trade_no=col("商户订单号"),
                openid=col("用户标识"),
                trade_type=col("交易类型"),
                trade_state=col("交易状态"),
                currency=col("货币种类"),
                settlement_fen=yuan_to_fen(col("应结订单金额")),
                refund_id=col("微信退款单号"),
                out_refund_no=col("商户退款单号"),
                refund_fen=yuan_to_fen(col("退款金额")),
                refund_status=col("退款状态"),
                description=col("商品名称"),
                fee_fen_text=col("手续费"),
                order_fen=yuan_to_fen(col("订单金额")),
            )
        )
    return rows


# -- configuration -----------------------------------------------------------------------------------
def _read(path: str, what: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise SettingsError(f"invalid settings: {what}: cannot read {path!r} ({exc.strerror})") from None


def load_pay_config(settings: Settings, sandbox_dir: Path | None = None) -> PayConfig | None:
    """Resolve the WECHAT_PAY_* settings; None when there is neither a merchant nor the sandbox.

    With SANDBOX=1, every empty merchant setting is filled from the emulator's test keys (generated
    once under `sandbox_dir`), and the WeChat Pay public key is the emulator's.
    """
    values: dict[str, Any] = {
        "mchid": settings.WECHAT_PAY_MCHID,
        "appid": settings.WECHAT_PAY_APPID,
        "merchant_serial": settings.WECHAT_PAY_MERCHANT_SERIAL.upper(),
        "private_key_pem": "",
        "apiv3_key": settings.WECHAT_PAY_APIV3_KEY,
        "public_key_id": settings.WECHAT_PAY_PUBLIC_KEY_ID or None,
        "public_key_pem": None,
        "cert_dir": settings.WECHAT_PAY_CERT_DIR or None,
        "api_base": settings.WECHAT_PAY_API_BASE,
        "notify_url": settings.WECHAT_PAY_NOTIFY_URL,
        "timeout": settings.WECHAT_PAY_TIMEOUT_SECONDS,
        "max_notify_age": settings.WECHAT_PAY_MAX_NOTIFY_AGE_SECONDS,
        "max_notify_bytes": settings.WECHAT_PAY_MAX_NOTIFY_BYTES,
        "merchant_name": settings.WECHAT_PAY_MERCHANT_NAME,
    }
    if settings.WECHAT_PAY_PRIVATE_KEY_PATH:
        values["private_key_pem"] = _read(settings.WECHAT_PAY_PRIVATE_KEY_PATH, "WECHAT_PAY_PRIVATE_KEY_PATH")
    if settings.WECHAT_PAY_PUBLIC_KEY_PATH:
        values["public_key_pem"] = _read(settings.WECHAT_PAY_PUBLIC_KEY_PATH, "WECHAT_PAY_PUBLIC_KEY_PATH")
    if not settings.pay_configured:
        if not settings.SANDBOX:
            return None
        from app.sandbox.pay import sandbox_keys

        keys = sandbox_keys(sandbox_dir or settings.MEDIA_ROOT.parent / "sandbox-pay")
        values["mchid"] = values["mchid"] or keys.mchid
        values["apiv3_key"] = values["apiv3_key"] or keys.apiv3_key
        if not values["private_key_pem"]:
            values["private_key_pem"] = keys.merchant_private_pem
            values["merchant_serial"] = keys.merchant_serial
        if not values["cert_dir"] and not values["public_key_id"]:
            values["public_key_id"] = keys.public_key_id
            values["public_key_pem"] = keys.platform_public_pem
    config = PayConfig(**values)
    _check_keys(config)
    return config


def _check_keys(config: PayConfig) -> None:
    try:
        config.private_key()
    except (ValueError, TypeError, AssertionError):
        raise SettingsError(
            "invalid settings: WECHAT_PAY_PRIVATE_KEY_PATH: not a PEM RSA private key (apiclient_key.pem)"
        ) from None
    if config.public_key_pem is not None:
        try:
            serialization.load_pem_public_key(_pem(config.public_key_pem, "PUBLIC KEY"))
        except ValueError:
            raise SettingsError(
                "invalid settings: WECHAT_PAY_PUBLIC_KEY_PATH: not a PEM public key (pub_key.pem)"
            ) from None
    if not config.merchant_serial:
        raise SettingsError("invalid settings: WECHAT_PAY_MERCHANT_SERIAL is empty")


def init_pay_client(app: Flask) -> None:
    """Check the merchant settings now (production refuses to start without them, see config.py);
    build the client on first use. The sandbox's keys are generated on first use too."""
    settings: Settings = app.config["SETTINGS"]
    app.extensions["pay_client"] = None
    if settings.pay_configured:
        app.extensions["pay_client"] = PayClient(load_pay_config(settings))  # type: ignore[arg-type]
    app.extensions.setdefault("pay_notification_handler", log_notification)
    app.extensions["pay_client_lock"] = threading.Lock()


def pay_client() -> PayClient:
    """The app's WeChat Pay client (needs an app context)."""
    app = current_app
    client: PayClient | None = app.extensions.get("pay_client")
    if client is None:
        with app.extensions["pay_client_lock"]:
            client = app.extensions.get("pay_client")
            if client is None:
                config = load_pay_config(app.config["SETTINGS"])
                if config is None:
                    raise PayNotConfiguredError("WeChat Pay is not configured (WECHAT_PAY_*, docs/pay.md)")
                client = app.extensions["pay_client"] = PayClient(config)
    return client


def log_notification(notification: Any) -> None:
    """The default notification handler until the payments service registers its own."""
    log.info(
        "pay notification %s %s for %s (no handler registered)",
        notification.id,
        notification.event_type,
        notification.out_trade_no,
    )
