from __future__ import annotations

import pytest
from settings_support import production_settings

from config import DEV_SECRET_KEY, SettingsError, load_settings

REAL_LOOKING_APPID = "wx1234567890abcdef"
STRONG_SECRET = "s" * 40


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """CI exports DATABASE_URL and REDIS_URL; these tests are about the defaults."""
    for name in ("DATABASE_URL", "REDIS_URL", "SANDBOX", "SANDBOX_URL", "APP_ENV", "WECHAT_API_BASE"):
        monkeypatch.delenv(name, raising=False)


def test_embedded_defaults_need_no_configuration() -> None:
    settings = load_settings()
    assert settings.DATABASE_URL.startswith("sqlite:///")
    assert settings.REDIS_URL == "memory://"
    assert settings.redis_in_process


def test_sandbox_points_wechat_apis_at_the_emulator() -> None:
    settings = load_settings(SANDBOX=True, PUBLIC_BASE_URL="http://127.0.0.1:8000/")
    assert settings.WECHAT_API_BASE == "http://127.0.0.1:8000/_sandbox/api"
    assert settings.WECHAT_OAUTH_BASE == "http://127.0.0.1:8000/_sandbox/oauth"


def test_a_sandbox_in_its_own_process_gets_the_wechat_calls() -> None:
    settings = load_settings(
        SANDBOX=True, PUBLIC_BASE_URL="http://127.0.0.1:8000", SANDBOX_URL="http://127.0.0.1:8001/"
    )
    assert settings.sandbox_separate
    assert settings.WECHAT_API_BASE == "http://127.0.0.1:8001/_sandbox/api"
    assert settings.WECHAT_OAUTH_BASE == "http://127.0.0.1:8001/_sandbox/oauth"
    assert settings.WECHAT_PAY_API_BASE == "http://127.0.0.1:8001/_sandbox/pay"
    # The service's own addresses stay the service's.
    assert settings.WECHAT_PAY_NOTIFY_URL == "http://127.0.0.1:8000/pay/notify"
    assert not load_settings(SANDBOX=False, SANDBOX_URL="http://127.0.0.1:8001").sandbox_separate


def test_without_sandbox_the_real_wechat_hosts_are_used() -> None:
    settings = load_settings(SANDBOX=False)
    assert settings.WECHAT_API_BASE == "https://api.weixin.qq.com"
    assert settings.WECHAT_OAUTH_BASE == "https://open.weixin.qq.com"


def test_bare_postgresql_url_uses_psycopg3() -> None:
    assert load_settings(DATABASE_URL="postgresql://u@h/db").DATABASE_URL == "postgresql+psycopg://u@h/db"


def test_postgresql_pools_are_bounded_and_sqlite_has_none(monkeypatch: pytest.MonkeyPatch) -> None:
    options = load_settings(DATABASE_URL="postgresql://u@h/db").as_flask_config()["SQLALCHEMY_ENGINE_OPTIONS"]
    assert (options["pool_size"], options["max_overflow"]) == (5, 2)  # 7 a process, not SQLAlchemy's 15
    monkeypatch.setenv("DATABASE_POOL_SIZE", "3")
    monkeypatch.setenv("DATABASE_MAX_OVERFLOW", "0")
    options = load_settings(DATABASE_URL="postgresql://u@h/db").engine_options()
    assert (options["pool_size"], options["max_overflow"]) == (3, 0)
    assert load_settings().engine_options() == {}  # the embedded SQLite


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"DATABASE_URL": "mysql://x"}, "DATABASE_URL"),
        ({"DATABASE_POOL_SIZE": "0"}, "DATABASE_POOL_SIZE"),
        ({"REDIS_URL": "http://localhost"}, "REDIS_URL"),
        ({"WECHAT_AES_KEY": "short"}, "43 characters"),
        ({"WECHAT_ENCRYPT_MODE": "safe"}, "needs WECHAT_AES_KEY"),
        ({"WECHAT_ENCRYPT_MODE": "loud"}, "WECHAT_ENCRYPT_MODE"),
        ({"PUBLIC_BASE_URL": "example.com"}, "PUBLIC_BASE_URL"),
        ({"WECHAT_MAX_BODY_BYTES": "12"}, "WECHAT_MAX_BODY_BYTES"),
        ({"SANDBOX": "maybe"}, "SANDBOX"),
        ({"WECHAT_DEDUPE_TTL_SECONDS": "60"}, "must exceed WECHAT_MAX_CLOCK_SKEW_SECONDS"),
    ],
)
def test_a_wrong_value_names_the_setting(overrides: dict[str, str], fragment: str) -> None:
    with pytest.raises(SettingsError, match=fragment):
        load_settings(**overrides)


def test_values_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WECHAT_TOKEN", "from-env")
    monkeypatch.setenv("WECHAT_MAX_CLOCK_SKEW_SECONDS", "120")
    settings = load_settings()
    assert settings.WECHAT_TOKEN == "from-env"
    assert settings.WECHAT_MAX_CLOCK_SKEW_SECONDS == 120


def _production(**overrides: object) -> dict[str, object]:
    return production_settings(
        **{"SECRET_KEY": STRONG_SECRET, "WECHAT_APPID": REAL_LOOKING_APPID, **overrides}
    )


def test_production_with_real_settings_starts() -> None:
    settings = load_settings(**_production())
    assert settings.as_flask_config()["SESSION_COOKIE_SECURE"] is True


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"SECRET_KEY": DEV_SECRET_KEY}, "SECRET_KEY"),
        ({"SECRET_KEY": "short"}, "SECRET_KEY"),
        ({"SANDBOX": True}, "SANDBOX=1 with a real AppID"),
        ({"WECHAT_TOKEN": "sandbox-token"}, "WECHAT_TOKEN"),
        ({"REDIS_URL": "memory://"}, "real Redis"),
        ({"PII_ENCRYPTION_KEYS": ""}, "PII_ENCRYPTION_KEYS"),
        ({"PII_HMAC_KEY": "short"}, "PII_HMAC_KEY"),
        ({"PII_ENCRYPTION_KEYS": "not-a-fernet-key"}, "Fernet key"),
    ],
)
def test_production_refuses_unsafe_settings(overrides: dict[str, object], fragment: str) -> None:
    with pytest.raises(SettingsError, match=fragment):
        load_settings(**_production(**overrides))
