"""Helpers for the WeChat Pay tests: an app whose notifications are driven by hand, a recording
notification handler, and a way to post hand-made (forged, stale, foreign) notifications."""

from __future__ import annotations

import base64
import json
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from flask import Flask

from app.integrations import pay_client
from app.integrations.wechat_pay_notifications import NotificationRejected, PaymentNotification
from app.sandbox.pay import keys as sandbox_pay_keys
from app.sandbox.pay import notifications as sandbox_notify


@dataclass
class Recorder:
    """A pay_notification_handler that records calls; `reject` makes the next N calls raise."""

    calls: list[PaymentNotification] = field(default_factory=list)
    reject: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, notification: PaymentNotification) -> None:
        with self.lock:
            self.calls.append(notification)
            if self.reject > 0:
                self.reject -= 1
                raise NotificationRejected("order not committed yet")


def pay_app(app_factory: Any, **overrides: Any) -> tuple[Flask, Recorder]:
    overrides.setdefault("WECHAT_PAY_SANDBOX_NOTIFY_THREAD", False)
    app: Flask = app_factory(**overrides)
    recorder = Recorder()
    app.extensions["pay_notification_handler"] = recorder
    return app, recorder


def expires(minutes: float = 3) -> datetime:
    return datetime.now(UTC) + timedelta(minutes=minutes)


def platform_key(app: Flask) -> rsa.RSAPrivateKey:
    with app.app_context():
        return sandbox_pay_keys.app_keys().platform_key()


def serial(app: Flask) -> str:
    with app.app_context():
        cfg = pay_client().config
        keys = sandbox_pay_keys.app_keys()
        return cfg.public_key_id or keys.platform_cert_serial


def resource_for(app: Flask, **changes: Any) -> dict[str, Any]:
    """A TRANSACTION.SUCCESS resource for this app's merchant."""
    with app.app_context():
        cfg = pay_client().config
    resource: dict[str, Any] = {
        "mchid": cfg.mchid,
        "appid": cfg.appid,
        "out_trade_no": "T202611230001",
        "transaction_id": "4200002026112312345678901234",
        "trade_type": "JSAPI",
        "trade_state": "SUCCESS",
        "trade_state_desc": "支付成功",
        "bank_type": "OTHERS",
        "attach": "",
        "success_time": "2026-11-23T12:00:00+08:00",
        "payer": {"openid": "oStudentOpenid000000000000001"},
        "amount": {"total": 200, "payer_total": 200, "currency": "CNY", "payer_currency": "CNY"},
    }
    resource.update(changes)
    return resource


def envelope_bytes(app: Flask, resource: dict[str, Any], apiv3_key: str | None = None, **env: Any) -> bytes:
    with app.app_context():
        key = apiv3_key or pay_client().config.apiv3_key
    envelope = sandbox_notify.build_notification(
        key,
        env.get("event_type", "TRANSACTION.SUCCESS"),
        env.get("original_type", "transaction"),
        "支付成功",
        resource,
    )
    return json.dumps(envelope, ensure_ascii=False, separators=(",", ":")).encode()


def signed_headers(
    app: Flask,
    body: bytes,
    *,
    key: rsa.RSAPrivateKey | None = None,
    timestamp: int | None = None,
    serial_no: str | None = None,
) -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    nonce = "a" * 32
    signature = (key or platform_key(app)).sign(
        f"{ts}\n{nonce}\n".encode() + body + b"\n", padding.PKCS1v15(), hashes.SHA256()
    )
    return {
        "Content-Type": "application/json",
        "Wechatpay-Timestamp": ts,
        "Wechatpay-Nonce": nonce,
        "Wechatpay-Serial": serial_no or serial(app),
        "Wechatpay-Signature": base64.b64encode(signature).decode(),
        "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
    }


def post_notify(base_url: str, body: bytes, headers: dict[str, str]) -> requests.Response:
    return requests.post(f"{base_url}/pay/notify", data=body, headers=headers, timeout=10)
