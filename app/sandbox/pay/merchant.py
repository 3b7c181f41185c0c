"""The one merchant registered with the emulated WeChat Pay.

WeChat Pay knows a merchant from its registration (the certificate it uploaded, its APIv3 key); the
app factory registers the service's merchant here, so the emulator never reads the service's client.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask, current_app

EXTENSION = "sandbox_pay_merchant"


@dataclass(frozen=True)
class Merchant:
    mchid: str
    appid: str
    serial: str
    public_key: rsa.RSAPublicKey
    apiv3_key: str
    public_key_mode: bool


def register_merchant(app: Flask, source: Callable[[], Merchant]) -> None:
    """`source` is called per request: the merchant's keys may be generated on first use."""
    app.extensions[EXTENSION] = source


def current_merchant() -> Merchant:
    source: Callable[[], Merchant] = current_app.extensions[EXTENSION]
    return source()
