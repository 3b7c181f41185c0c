"""Clients of everything outside the service, built once per app by `init_app` and read through the
accessors below (each needs an app context). docs/integrations.md is the newcomer's page.

- `redis_client()`: Redis (memory:// is an in-process fakeredis, the embedded mode);
- `pii_keyring()`: the keys that encrypt and index personal data;
- `wechat_client()` / `wechat_oauth()`: the WeChat server API and web OAuth2 (wechat.py);
- `pay_client()`: WeChat Pay API v3 (wechat_pay*.py), built on first use; `pay_notification_handler()`
  what a verified notification is handed to (the factory passes a service function);
- `identity_verifier()`: the population-register check (identity.py);
- `photo_storage()`: where photo files live (storage.py over media/storage.py), built on first use.

Which implementation stands behind an accessor is decided by the app factory alone: with SANDBOX=1 it
passes the emulator's stand-ins in `StandIns`; nothing here imports the sandbox.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from flask import Flask, current_app
from redis import Redis
from wechatpy.oauth import WeChatOAuth

from app.integrations.identity import HttpVerifier, IdentityVerifier
from app.integrations.storage import build_photo_storage
from app.integrations.wechat import ApiClient, build_oauth
from app.integrations.wechat_pay import PayClient, PayNotConfiguredError
from app.integrations.wechat_pay_config import FallbackKeys, load_pay_config
from app.integrations.wechat_pay_notifications import PaymentNotification
from app.services.pii import Keyring
from config import Settings
from media.storage import Storage

__all__ = [
    "StandIns",
    "identity_verifier",
    "init_app",
    "pay_client",
    "pay_notification_handler",
    "photo_storage",
    "pii_keyring",
    "redis_client",
    "wechat_client",
    "wechat_oauth",
]


@dataclass(frozen=True)
class StandIns:
    """What the app factory hands in, with SANDBOX=1, in place of a real outside service."""

    # Merchant keys used when no WECHAT_PAY_* merchant is configured (generated on first use).
    pay_keys: Callable[[], FallbackKeys] | None = None
    # The identity verifier for VERIFY_PROVIDER=sandbox, given the app's Redis.
    identity_verifier: Callable[[Redis], IdentityVerifier] | None = None


def init_app(
    app: Flask,
    settings: Settings,
    *,
    pay_notification_handler: Callable[[PaymentNotification], None],
    stand_ins: StandIns | None = None,
) -> None:
    """Build every client into `app.extensions`. No network: tokens, certificates and sandbox keys
    are fetched or generated on first use."""
    stand_ins = stand_ins or StandIns()
    config = app.config
    redis = _build_redis(config["REDIS_URL"])
    app.extensions["redis"] = redis
    app.extensions["pii"] = Keyring.from_settings(
        config["PII_ENCRYPTION_KEYS"], config["PII_HMAC_KEY"], config["SECRET_KEY"]
    )
    app.extensions["wechat_client"] = ApiClient(
        config["WECHAT_APPID"],
        config["WECHAT_SECRET"],
        redis=redis,
        api_base=config["WECHAT_API_BASE"],
        timeout=config["WECHAT_HTTP_TIMEOUT_SECONDS"],
    )
    app.extensions["verifier"] = _build_verifier(app, redis, stand_ins)
    # A configured merchant is checked now (production refuses to start without one, see config.py);
    # otherwise the client is built on first use, from the stand-in keys if there are any.
    app.extensions["pay_client"] = None
    if settings.pay_configured:
        app.extensions["pay_client"] = PayClient(load_pay_config(settings))  # type: ignore[arg-type]
    app.extensions["pay_fallback_keys"] = stand_ins.pay_keys
    app.extensions["pay_client_lock"] = threading.Lock()
    # What a verified notification does is a business rule (services); POST /pay/notify calls it.
    app.extensions["pay_notification_handler"] = pay_notification_handler
    # Built on first use: a boto3 client is costly, and many processes (CLI commands) never need one.
    app.extensions["media_storage"] = None


def _build_redis(url: str) -> Redis:
    if url.startswith("memory://"):
        import fakeredis

        client: Redis = fakeredis.FakeRedis(server=fakeredis.FakeServer(), decode_responses=True)
        return client
    return Redis.from_url(url, decode_responses=True, health_check_interval=30)


def _build_verifier(app: Flask, redis: Redis, stand_ins: StandIns) -> IdentityVerifier:
    config = app.config
    if config["VERIFY_PROVIDER"] == "sandbox":
        # config.py allows the sandbox provider only with SANDBOX=1 and never in production.
        if stand_ins.identity_verifier is None:
            raise RuntimeError("VERIFY_PROVIDER=sandbox but the app factory gave no sandbox verifier")
        return stand_ins.identity_verifier(redis)
    return HttpVerifier(
        config["VERIFY_HTTP_URL"],
        config["VERIFY_HTTP_KEY_ID"],
        config["VERIFY_HTTP_SECRET"],
        config["VERIFY_TIMEOUT_SECONDS"],
    )


def redis_client() -> Redis:
    client: Redis = current_app.extensions["redis"]
    return client


def pii_keyring() -> Keyring:
    """The app's personal-data keyring."""
    keyring: Keyring = current_app.extensions["pii"]
    return keyring


def wechat_client() -> ApiClient:
    client: ApiClient = current_app.extensions["wechat_client"]
    return client


def wechat_oauth(redirect_uri: str, state: str = "") -> WeChatOAuth:
    """A web OAuth2 helper for one redirect (snsapi_base); cheap, so one per login."""
    return build_oauth(current_app.config, redirect_uri, state)


def identity_verifier() -> IdentityVerifier:
    provider: IdentityVerifier = current_app.extensions["verifier"]
    return provider


def pay_client() -> PayClient:
    """The app's WeChat Pay client; PayNotConfiguredError without a merchant or the sandbox."""
    app = current_app
    client: PayClient | None = app.extensions.get("pay_client")
    if client is None:
        with app.extensions["pay_client_lock"]:
            client = app.extensions.get("pay_client")
            if client is None:
                config = load_pay_config(app.config["SETTINGS"], app.extensions["pay_fallback_keys"])
                if config is None:
                    raise PayNotConfiguredError("WeChat Pay is not configured (WECHAT_PAY_*, docs/pay.md)")
                client = app.extensions["pay_client"] = PayClient(config)
    return client


def pay_notification_handler() -> Callable[[PaymentNotification], None]:
    """What a verified WeChat Pay notification is handed to (tests may replace it)."""
    handler: Callable[[PaymentNotification], None] = current_app.extensions["pay_notification_handler"]
    return handler


def photo_storage() -> Storage:
    """The app's photo store."""
    app = current_app
    storage: Storage | None = app.extensions.get("media_storage")
    if storage is None:
        storage = app.extensions["media_storage"] = build_photo_storage(app.config)
    return storage
