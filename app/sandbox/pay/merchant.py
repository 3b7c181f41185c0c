"""The one merchant registered with the emulated WeChat Pay.

WeChat Pay knows a merchant from its registration (the certificate it uploaded, its APIv3 key); the
app factory registers the service's merchant here, so the emulator never reads the service's client.

Mounted in the service, the registration is a callable the factory hands in. When the emulator runs
as its own process, the service writes the registration to a file beside the sandbox's pay keys
(`merchant.json`, public key only) and the emulator's process reads it: a file the two share, as the
keys already are.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask, current_app

EXTENSION = "sandbox_pay_merchant"
REGISTRATION = "merchant.json"


@dataclass(frozen=True)
class Merchant:
    mchid: str
    appid: str
    serial: str
    public_key: rsa.RSAPublicKey
    apiv3_key: str
    public_key_mode: bool


class MerchantNotRegisteredError(LookupError):
    """The emulator's process found no registration: the service has not started yet."""


def register_merchant(app: Flask, source: Callable[[], Merchant]) -> None:
    """`source` is called per request: the merchant's keys may be generated on first use."""
    app.extensions[EXTENSION] = source


def current_merchant() -> Merchant:
    source: Callable[[], Merchant] = current_app.extensions[EXTENSION]
    return source()


def write_registration(directory: Path, merchant: Merchant) -> None:
    """Register `merchant` for an emulator in another process (atomically: it may be reading)."""
    public_pem = merchant.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    record = {
        "mchid": merchant.mchid,
        "appid": merchant.appid,
        "serial": merchant.serial,
        "public_key_pem": public_pem,
        "apiv3_key": merchant.apiv3_key,
        "public_key_mode": merchant.public_key_mode,
    }
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(record, fh)
        os.chmod(tmp, 0o600)  # the APIv3 key is a secret
        os.replace(tmp, directory / REGISTRATION)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def registration_reader(directory: Path) -> Callable[[], Merchant]:
    """A merchant source over the registration file, read again whenever the service rewrites it."""
    path = directory / REGISTRATION
    cache: dict[str, tuple[float, Merchant]] = {}

    def read() -> Merchant:
        try:
            mtime = path.stat().st_mtime
        except FileNotFoundError:
            raise MerchantNotRegisteredError(str(path)) from None
        cached = cache.get("merchant")
        if cached and cached[0] == mtime:
            return cached[1]
        record = json.loads(path.read_text(encoding="utf-8"))
        key = serialization.load_pem_public_key(record.pop("public_key_pem").encode())
        assert isinstance(key, rsa.RSAPublicKey)
        merchant = Merchant(public_key=key, **record)
        cache["merchant"] = (mtime, merchant)
        return merchant

    return read
