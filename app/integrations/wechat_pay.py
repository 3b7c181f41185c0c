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
from typing import Any

import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from app.integrations.wechat_pay_bills import BillRow, parse_trade_bill
from app.integrations.wechat_pay_config import PayConfig, pem
from app.services.localtime import BEIJING

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


def parse_time(value: str | None) -> datetime | None:
    """WeChat Pay's RFC 3339 times ("2018-06-08T10:34:56+08:00") as aware datetimes."""
    return datetime.fromisoformat(value) if value else None


def format_time(moment: datetime) -> str:
    """An aware datetime in WeChat Pay's RFC 3339 form, Beijing time as in its docs."""
    if moment.tzinfo is None:
        raise ValueError("time_expire must be timezone-aware")
    return moment.astimezone(BEIJING).isoformat(timespec="seconds")


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
            key = serialization.load_pem_public_key(pem(self.config.public_key_pem or "", "PUBLIC KEY"))
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
