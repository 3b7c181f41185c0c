"""A complete, valid set of production settings for tests that check what production refuses.

One place, so a setting production starts to require is added once (not in every test file)."""

from __future__ import annotations

PRODUCTION: dict[str, object] = {
    "APP_ENV": "production",
    "SECRET_KEY": "s" * 40,
    "WECHAT_APPID": "wx1234567890abcdef",
    "WECHAT_TOKEN": "real-token",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "PUBLIC_BASE_URL": "https://photo.example.com",
    "PII_ENCRYPTION_KEYS": "7S_4EOjcYB40dfyyFdyO2Phgbne35pjH9ZGDNK9DmOU=",
    "PII_HMAC_KEY": "p" * 32,
    "VERIFY_HTTP_URL": "https://verify.example.com/v1/verify",
    "VERIFY_HTTP_KEY_ID": "key-1",
    "VERIFY_HTTP_SECRET": "v" * 32,
    "WECHAT_PAY_MCHID": "1230000109",
    "WECHAT_PAY_MERCHANT_SERIAL": "444F4864EA9B34415ABC",
    "WECHAT_PAY_PRIVATE_KEY_PATH": "/etc/wechatpay/apiclient_key.pem",
    "WECHAT_PAY_APIV3_KEY": "a" * 32,
    "WECHAT_PAY_PUBLIC_KEY_ID": "PUB_KEY_ID_0112345678",
    "WECHAT_PAY_PUBLIC_KEY_PATH": "/etc/wechatpay/pub_key.pem",
}


def production_settings(**overrides: object) -> dict[str, object]:
    return {**PRODUCTION, **overrides}
