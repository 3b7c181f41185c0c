"""WeChat Pay's merchant settings: WECHAT_PAY_* resolved into a `PayConfig`, key material loaded
and checked at start (a wrong key file fails the start, not the first payment)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from config import Settings, SettingsError


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
class FallbackKeys:
    """Merchant keys for every WECHAT_PAY_* setting left empty (the sandbox's test merchant)."""

    mchid: str
    apiv3_key: str
    merchant_private_pem: str
    merchant_serial: str
    public_key_id: str  # the WeChat Pay public key the answers are checked with
    public_key_pem: str


def pem(text: str, kind: str) -> bytes:
    """PEM bytes; WeChat Pay's console also hands out bare base64 keys without the armour."""
    text = text.strip()
    if not text.startswith("-----BEGIN"):
        text = f"-----BEGIN {kind}-----\n{text}\n-----END {kind}-----"
    return text.encode()


def _read(path: str, what: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise SettingsError(f"invalid settings: {what}: cannot read {path!r} ({exc.strerror})") from None


def load_pay_config(
    settings: Settings, fallback: Callable[[], FallbackKeys] | None = None
) -> PayConfig | None:
    """Resolve the WECHAT_PAY_* settings; None when there is neither a merchant nor a fallback.

    The app factory passes the sandbox's test keys as `fallback` when SANDBOX=1: every empty
    merchant setting is then filled from them, and the WeChat Pay public key is the emulator's.
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
        if fallback is None:
            return None
        keys = fallback()
        values["mchid"] = values["mchid"] or keys.mchid
        values["apiv3_key"] = values["apiv3_key"] or keys.apiv3_key
        if not values["private_key_pem"]:
            values["private_key_pem"] = keys.merchant_private_pem
            values["merchant_serial"] = keys.merchant_serial
        if not values["cert_dir"] and not values["public_key_id"]:
            values["public_key_id"] = keys.public_key_id
            values["public_key_pem"] = keys.public_key_pem
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
            serialization.load_pem_public_key(pem(config.public_key_pem, "PUBLIC KEY"))
        except ValueError:
            raise SettingsError(
                "invalid settings: WECHAT_PAY_PUBLIC_KEY_PATH: not a PEM public key (pub_key.pem)"
            ) from None
    if not config.merchant_serial:
        raise SettingsError("invalid settings: WECHAT_PAY_MERCHANT_SERIAL is empty")
