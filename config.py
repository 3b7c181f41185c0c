"""All settings, read from the environment here and nowhere else.

`load_settings()` validates them once at start-up; a wrong value stops the process with a message
that names the variable. The defaults are the *embedded mode* (SQLite under var/, in-process Redis,
the WeChat sandbox), so a fresh clone runs with no configuration at all. Production refuses the
insecure defaults (see `Settings._refuse_unsafe_production`).
"""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parent
VAR = ROOT / "var"

DEV_SECRET_KEY = "dev-only-secret-key-change-me"  # noqa: S105 (refused in production)
SANDBOX_APPID = "wx-sandbox-app"
SANDBOX_SECRET = "sandbox-app-secret"  # noqa: S105 (the emulator's, not a real one)
SANDBOX_TOKEN = "sandbox-token"  # noqa: S105
# A real AppID is "wx" + 16 hex digits; the sandbox's deliberately is not.
REAL_APPID = re.compile(r"^wx[0-9a-f]{16}$")


class AppEnv(StrEnum):
    DEVELOPMENT = "development"
    TESTING = "testing"
    PRODUCTION = "production"


class EncryptMode(StrEnum):
    """The 消息加解密方式 chosen on the WeChat admin page.

    plain: 明文模式; compatible: 兼容模式 (WeChat sends both, we accept both);
    safe: 安全模式 (only encrypted messages are accepted, replies are encrypted).
    """

    PLAIN = "plain"
    COMPATIBLE = "compatible"
    SAFE = "safe"


class SettingsError(RuntimeError):
    """A setting is missing or wrong; the message says which and why."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, case_sensitive=True, extra="ignore")

    APP_ENV: AppEnv = AppEnv.DEVELOPMENT
    SECRET_KEY: str = DEV_SECRET_KEY
    DATABASE_URL: str = f"sqlite:///{VAR / 'app.db'}"
    # PostgreSQL connections per process: a web worker needs one per thread (GUNICORN_THREADS, 4) and
    # the outbox worker two (its jobs and the lease heartbeat). Every host's processes together must
    # stay under the server's max_connections (100 by default): docs/stack.md has the sum.
    DATABASE_POOL_SIZE: int = Field(default=5, ge=1, le=100)
    DATABASE_MAX_OVERFLOW: int = Field(default=2, ge=0, le=100)
    REDIS_URL: str = "memory://"
    MEDIA_ROOT: Path = VAR / "media"
    # Where people and WeChat reach this service: links in messages, OAuth2 redirect_uri.
    PUBLIC_BASE_URL: str = "http://127.0.0.1:5000"
    # Reverse proxies (nginx, a load balancer) in front of gunicorn: how many to trust for the
    # client address and scheme (X-Forwarded-For/-Proto/-Host). 0 = none, the socket's peer is the
    # client. Staff lockout counts per client address, so behind a proxy this must be set.
    PROXY_HOPS: int = Field(default=0, ge=0, le=5)
    LOG_LEVEL: str = "INFO"
    LOG_FORMAT: str = Field(default="json", pattern="^(json|text)$")

    SANDBOX: bool = False
    # SANDBOX=1: where the emulator runs as its own process (`make run` starts it beside the service),
    # e.g. http://127.0.0.1:5001; empty = mounted inside this process at PUBLIC_BASE_URL/_sandbox (the
    # tests). The service's WeChat, OAuth2 and Pay bases point at it; the emulator's own process reads
    # it too, as its address, and PUBLIC_BASE_URL as the service's.
    SANDBOX_URL: str = ""

    # Personal data (ID numbers, names): Fernet keys, comma-separated, the first one encrypts and
    # all of them decrypt (rotation: put the new key first, run `flask pii rotate`, drop the old).
    # PII_HMAC_KEY keys the lookup hashes of ID numbers and names. Empty = derived from SECRET_KEY,
    # which only development and testing allow.
    PII_ENCRYPTION_KEYS: str = ""
    PII_HMAC_KEY: str = ""
    # `flask demo load`: the demo admin's password; empty = generate one (kept in var/).
    DEMO_STAFF_PASSWORD: str = ""

    # Staff sign-in at /review/login. Each attempt counts against the username and the client IP in
    # Redis for STAFF_LOCKOUT_WINDOW_SECONDS from the first failure; past the threshold no password
    # is checked until the window ends. The IP threshold is higher: an office shares one address.
    STAFF_LOCKOUT_THRESHOLD: int = Field(default=5, ge=1, le=100)
    STAFF_LOCKOUT_IP_THRESHOLD: int = Field(default=20, ge=1, le=1000)
    STAFF_LOCKOUT_WINDOW_SECONDS: int = Field(default=900, ge=10, le=86400)
    # A staff session ends after this long without a request (a shared office computer).
    STAFF_SESSION_IDLE_SECONDS: int = Field(default=8 * 3600, ge=60, le=7 * 86400)

    WECHAT_APPID: str = SANDBOX_APPID
    WECHAT_SECRET: str = SANDBOX_SECRET
    WECHAT_TOKEN: str = SANDBOX_TOKEN
    WECHAT_AES_KEY: str = ""
    WECHAT_ENCRYPT_MODE: EncryptMode = EncryptMode.PLAIN
    # Base of api.weixin.qq.com and of open.weixin.qq.com (OAuth2 authorize page); empty = WeChat's
    # own hosts, or the sandbox's when SANDBOX=1.
    WECHAT_API_BASE: str = ""
    WECHAT_OAUTH_BASE: str = ""
    # WeChat refuses bodies far larger than any message; ours is generous but bounded.
    WECHAT_MAX_BODY_BYTES: int = Field(default=64 * 1024, ge=1024)
    # Signatures older or newer than this are refused (replayed or forged posts).
    WECHAT_MAX_CLOCK_SKEW_SECONDS: int = Field(default=300, ge=30)
    # WeChat retries a message for about 15 s (3 tries x 5 s). Dedupe keys outlive the clock-skew
    # window too, so a captured signed post replayed while its timestamp is still accepted finds
    # its message id taken and runs nothing.
    WECHAT_DEDUPE_TTL_SECONDS: int = Field(default=330, ge=20)
    WECHAT_HTTP_TIMEOUT_SECONDS: float = Field(default=5.0, gt=0)
    # A request body that sends nothing for this long is answered 408 (under gunicorn): a stalled
    # upload must not hold one of the worker's few threads. nginx's client_body_timeout is 60 s; ours
    # is shorter because each held thread is a tenth of a worker.
    REQUEST_BODY_TIMEOUT_SECONDS: float = Field(default=15.0, gt=0, le=300)

    # The outbox worker. In the embedded mode (REDIS_URL=memory://) it must run inside the web
    # process, because the in-process Redis is not shared with other processes.
    WORKER_POLL_SECONDS: float = Field(default=0.5, gt=0)
    WORKER_MAX_ATTEMPTS: int = Field(default=10, ge=1)
    # Identity checks the provider could not answer are retried this many times (backoff 5 s, 10 s,
    # 20 s ... ≈ 21 minutes for 8) before the attempt is refunded; below WORKER_MAX_ATTEMPTS.
    VERIFY_MAX_ATTEMPTS: int = Field(default=8, ge=1)
    # Orders whose payment notification has not come are queried at WeChat Pay (查询订单) every
    # this many seconds while valid, and once after they expire; expired orders are closed there.
    PAY_QUERY_AFTER_SECONDS: int = Field(default=30, ge=5)
    # Refunds still "processing" this long are queried (查询单笔退款): their notification is late.
    PAY_REFUND_QUERY_AFTER_SECONDS: int = Field(default=600, ge=30)
    # A 待缴费 attempt whose last order expired this long ago is cancelled (已取消).
    SUBMISSION_UNPAID_CANCEL_HOURS: float = Field(default=24, gt=0)

    # Review. A claim marks an attempt 审核中 for one reviewer this long; an expired claim
    # counts as unclaimed. The result push uses the 审核结果通知 template (fields phrase1, thing2,
    # thing3, time4) named here; unset = the sandbox's built-in one with SANDBOX=1, none otherwise;
    # empty = no template: a custom message instead (which WeChat only delivers within 48 h of the
    # student's last message, so production should set a template).
    REVIEW_CLAIM_MINUTES: int = Field(default=30, ge=1, le=24 * 60)
    REVIEW_BATCH_APPROVE_MAX: int = Field(default=200, ge=1, le=1000)
    # An admin may withdraw a decision (back to 未审核, the student told) this long after it was made.
    REVIEW_REOPEN_HOURS: int = Field(default=72, ge=1, le=30 * 24)
    WECHAT_TEMPLATE_REVIEW_RESULT: str | None = None
    # Reminders 24 h before a batch's sign-up or pay window closes (app/services/reminders.py): a
    # 办理提醒 template (fields thing1 事项, time2 截止时间, thing3 说明) named here; empty = a custom
    # text message instead (delivered only within 48 h of the student's last message).
    WECHAT_TEMPLATE_REMINDER: str = ""

    # Identity verification (人口库核验), run by the worker after payment. "sandbox": the emulator's
    # roster (SANDBOX=1 only; the default there); "http": a provider reached at VERIFY_HTTP_URL with
    # HMAC-signed JSON (the contract is in app/integrations/identity.py; the default otherwise).
    VERIFY_PROVIDER: str = Field(default="", pattern="^(|sandbox|http)$")
    VERIFY_HTTP_URL: str = ""
    VERIFY_HTTP_KEY_ID: str = ""
    VERIFY_HTTP_SECRET: str = ""
    # Applies to connecting and to each read; a timeout is retried by the worker, never a mismatch.
    VERIFY_TIMEOUT_SECONDS: float = Field(default=5.0, gt=0, le=60)

    # Photo files. MEDIA_URL empty = content-addressed files under MEDIA_ROOT; "s3://bucket/prefix" =
    # an S3-compatible object store (endpoint and keys below; empty keys = boto3's usual sources).
    MEDIA_URL: str = Field(default="", pattern=r"^(|s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9](/.*)?)$")
    MEDIA_S3_ENDPOINT_URL: str = ""
    MEDIA_S3_REGION: str = "us-east-1"
    MEDIA_S3_ACCESS_KEY_ID: str = ""
    MEDIA_S3_SECRET_ACCESS_KEY: str = ""
    # Uploads larger than this are refused before they are read (WeChat's own image limit is 10 MB).
    MEDIA_MAX_UPLOAD_BYTES: int = Field(default=20 * 1024 * 1024, ge=64 * 1024)
    # Photos are served only through signed links bound to the viewer; they stop working after this.
    MEDIA_URL_TTL_SECONDS: int = Field(default=600, ge=30, le=3600)

    # WeChat Pay API v3 (docs/pay.md). Public-key mode (微信支付公钥, what new merchants get): set
    # WECHAT_PAY_PUBLIC_KEY_ID + WECHAT_PAY_PUBLIC_KEY_PATH; platform-certificate mode instead: set
    # WECHAT_PAY_CERT_DIR (certificates are downloaded into it). With SANDBOX=1 everything may stay
    # empty: the emulator's keys and the merchant's test keys are generated under var/sandbox-pay/.
    WECHAT_PAY_MCHID: str = Field(default="", pattern=r"^\d{0,32}$")
    WECHAT_PAY_APPID: str = ""  # empty = WECHAT_APPID
    WECHAT_PAY_MERCHANT_SERIAL: str = Field(default="", pattern=r"^[0-9A-Fa-f]{0,64}$")
    WECHAT_PAY_PRIVATE_KEY_PATH: str = ""
    WECHAT_PAY_APIV3_KEY: str = ""
    WECHAT_PAY_PUBLIC_KEY_ID: str = ""
    WECHAT_PAY_PUBLIC_KEY_PATH: str = ""
    WECHAT_PAY_CERT_DIR: str = ""
    # Base of api.mch.weixin.qq.com; empty = WeChat Pay's, or the sandbox's when SANDBOX=1.
    WECHAT_PAY_API_BASE: str = ""
    # Where WeChat Pay posts notifications; empty = PUBLIC_BASE_URL + "/pay/notify".
    WECHAT_PAY_NOTIFY_URL: str = ""
    # Notifications whose signed Wechatpay-Timestamp is further than this from now are refused.
    WECHAT_PAY_MAX_NOTIFY_AGE_SECONDS: int = Field(default=300, ge=30, le=3600)
    WECHAT_PAY_MAX_NOTIFY_BYTES: int = Field(default=16 * 1024, ge=1024, le=1024 * 1024)
    WECHAT_PAY_TIMEOUT_SECONDS: float = Field(default=10.0, gt=0, le=60)
    # Shown on the sandbox pay sheet (the real sheet shows the merchant's registered name).
    WECHAT_PAY_MERCHANT_NAME: str = "证件照核验服务"
    # SANDBOX=1 only: a thread in the process serving the emulator delivers its pay notifications on
    # WeChat Pay's schedule. Tests turn it off and drive `deliver_due_notifications(now)` instead.
    WECHAT_PAY_SANDBOX_NOTIFY_THREAD: bool = True

    @field_validator("WECHAT_AES_KEY")
    @classmethod
    def _aes_key_shape(cls, value: str) -> str:
        if value and len(value) != 43:
            raise ValueError("WECHAT_AES_KEY (EncodingAESKey) must be exactly 43 characters")
        return value

    @field_validator("PII_ENCRYPTION_KEYS")
    @classmethod
    def _fernet_keys(cls, value: str) -> str:
        from cryptography.fernet import Fernet

        for key in filter(None, (k.strip() for k in value.split(","))):
            try:
                Fernet(key)
            except ValueError:
                raise ValueError("each key must be a Fernet key (Fernet.generate_key())") from None
        return value

    @field_validator("WECHAT_PAY_APIV3_KEY")
    @classmethod
    def _apiv3_key_shape(cls, value: str) -> str:
        # AES-256-GCM key: WeChat Pay's admin page takes exactly 32 ASCII characters.
        if value and len(value.encode()) != 32:
            raise ValueError("WECHAT_PAY_APIV3_KEY (APIv3 密钥) must be exactly 32 bytes")
        return value

    @field_validator(
        "PUBLIC_BASE_URL", "SANDBOX_URL", "WECHAT_API_BASE", "WECHAT_OAUTH_BASE", "WECHAT_PAY_API_BASE"
    )
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        if value and not re.match(r"^https?://", value):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("WECHAT_PAY_NOTIFY_URL")
    @classmethod
    def _notify_url(cls, value: str) -> str:
        # WeChat Pay refuses a notify_url with a query string.
        if value and not re.match(r"^https?://[^/\s?#]+[^\s?#]*$", value):
            raise ValueError("must be an http:// or https:// URL without ?query or #fragment")
        return value

    @field_validator("VERIFY_HTTP_URL")
    @classmethod
    def _verify_url(cls, value: str) -> str:
        # Kept as given: its path is part of what each request signs.
        if value and not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @field_validator("DATABASE_URL")
    @classmethod
    def _database_driver(cls, value: str) -> str:
        # SQLAlchemy picks psycopg2 for a bare postgresql:// URL; we ship psycopg 3.
        if value.startswith(("postgres://", "postgresql://")):
            value = "postgresql+psycopg://" + value.split("://", 1)[1]
        if not value.startswith(("sqlite://", "postgresql+psycopg://")):
            raise ValueError("only sqlite:// and postgresql:// databases are supported")
        return value

    @field_validator("REDIS_URL")
    @classmethod
    def _redis_scheme(cls, value: str) -> str:
        if not value.startswith(("memory://", "redis://", "rediss://", "unix://")):
            raise ValueError("must be memory:// (in-process) or a redis:// URL")
        return value

    @model_validator(mode="after")
    def _derived_and_safety(self) -> Settings:
        if self.WECHAT_DEDUPE_TTL_SECONDS <= self.WECHAT_MAX_CLOCK_SKEW_SECONDS:
            raise ValueError(
                "WECHAT_DEDUPE_TTL_SECONDS must exceed WECHAT_MAX_CLOCK_SKEW_SECONDS, or a signed post "
                "replayed inside the skew window would be handled again"
            )
        if self.VERIFY_MAX_ATTEMPTS >= self.WORKER_MAX_ATTEMPTS:
            raise ValueError(
                "VERIFY_MAX_ATTEMPTS must be below WORKER_MAX_ATTEMPTS (refund before the job dies)"
            )
        if self.WECHAT_ENCRYPT_MODE != EncryptMode.PLAIN and not self.WECHAT_AES_KEY:
            raise ValueError("WECHAT_ENCRYPT_MODE=compatible/safe needs WECHAT_AES_KEY")
        if not self.WECHAT_API_BASE:
            self.WECHAT_API_BASE = f"{self.sandbox_base}/api" if self.SANDBOX else "https://api.weixin.qq.com"
        if not self.WECHAT_OAUTH_BASE:
            self.WECHAT_OAUTH_BASE = (
                f"{self.sandbox_base}/oauth" if self.SANDBOX else "https://open.weixin.qq.com"
            )
        self._derive_pay()
        if not self.VERIFY_PROVIDER:
            self.VERIFY_PROVIDER = "sandbox" if self.SANDBOX else "http"
        if self.VERIFY_PROVIDER == "sandbox" and not self.SANDBOX:
            raise ValueError("VERIFY_PROVIDER=sandbox needs SANDBOX=1 (the roster is part of the emulator)")
        if self.APP_ENV == AppEnv.PRODUCTION:
            self._refuse_unsafe_production()
            self._refuse_unsafe_verification()
            self._refuse_unsafe_pay()
        return self

    def _derive_pay(self) -> None:
        if not self.WECHAT_PAY_APPID:
            self.WECHAT_PAY_APPID = self.WECHAT_APPID
        if not self.WECHAT_PAY_API_BASE:
            self.WECHAT_PAY_API_BASE = (
                f"{self.sandbox_base}/pay" if self.SANDBOX else "https://api.mch.weixin.qq.com"
            )
        if not self.WECHAT_PAY_NOTIFY_URL:
            self.WECHAT_PAY_NOTIFY_URL = f"{self.PUBLIC_BASE_URL}/pay/notify"
        if bool(self.WECHAT_PAY_PUBLIC_KEY_ID) != bool(self.WECHAT_PAY_PUBLIC_KEY_PATH):
            raise ValueError("WECHAT_PAY_PUBLIC_KEY_ID and WECHAT_PAY_PUBLIC_KEY_PATH go together")

    @property
    def sandbox_base(self) -> str:
        """Where the emulator's routes are: its own process, or mounted in this one."""
        return f"{self.SANDBOX_URL or self.PUBLIC_BASE_URL}/_sandbox"

    @property
    def sandbox_separate(self) -> bool:
        """The emulator runs as its own process (SANDBOX_URL), not inside the service."""
        return self.SANDBOX and bool(self.SANDBOX_URL)

    @property
    def pay_configured(self) -> bool:
        """Real merchant credentials are set (otherwise only the sandbox can stand in)."""
        return bool(
            self.WECHAT_PAY_MCHID
            and self.WECHAT_PAY_MERCHANT_SERIAL
            and self.WECHAT_PAY_PRIVATE_KEY_PATH
            and self.WECHAT_PAY_APIV3_KEY
            and (self.WECHAT_PAY_PUBLIC_KEY_PATH or self.WECHAT_PAY_CERT_DIR)
        )

    def _refuse_unsafe_pay(self) -> None:
        # Key files are read (and so checked) when the pay client is built at start-up.
        if not self.pay_configured:
            raise ValueError(
                "production needs WeChat Pay: WECHAT_PAY_MCHID, WECHAT_PAY_MERCHANT_SERIAL, "
                "WECHAT_PAY_PRIVATE_KEY_PATH, WECHAT_PAY_APIV3_KEY and either WECHAT_PAY_PUBLIC_KEY_ID + "
                "WECHAT_PAY_PUBLIC_KEY_PATH or WECHAT_PAY_CERT_DIR (docs/pay.md)"
            )
        if not self.WECHAT_PAY_API_BASE.startswith("https://") or "/_sandbox" in self.WECHAT_PAY_API_BASE:
            raise ValueError("production needs WECHAT_PAY_API_BASE on https://, never the sandbox's")
        if not self.WECHAT_PAY_NOTIFY_URL.startswith("https://"):
            raise ValueError("production needs an https:// WECHAT_PAY_NOTIFY_URL (WeChat Pay requires it)")

    def _refuse_unsafe_production(self) -> None:
        if self.SECRET_KEY == DEV_SECRET_KEY or len(self.SECRET_KEY) < 32:
            raise ValueError("production needs its own SECRET_KEY (32+ random characters)")
        if self.SANDBOX and REAL_APPID.match(self.WECHAT_APPID):
            raise ValueError(
                "SANDBOX=1 with a real AppID: the emulator would stand in for WeChat in front of a "
                "real official account; unset SANDBOX in production"
            )
        if self.WECHAT_TOKEN == SANDBOX_TOKEN and not self.SANDBOX:
            raise ValueError("production needs the real WECHAT_TOKEN from the WeChat admin page")
        if self.REDIS_URL.startswith("memory://"):
            raise ValueError("production needs a real Redis (REDIS_URL=redis://...)")
        if not self.PII_ENCRYPTION_KEYS or len(self.PII_HMAC_KEY) < 32:
            raise ValueError(
                "production needs PII_ENCRYPTION_KEYS (Fernet keys) and PII_HMAC_KEY (32+ characters)"
            )

    def _refuse_unsafe_verification(self) -> None:
        if self.VERIFY_PROVIDER != "http":
            raise ValueError(
                "production must not use VERIFY_PROVIDER=sandbox (every identity not on the roster "
                "would pass); set VERIFY_PROVIDER=http and VERIFY_HTTP_*"
            )
        if not self.VERIFY_HTTP_URL.startswith("https://"):
            raise ValueError("production needs VERIFY_HTTP_URL, an https:// URL of the verification provider")
        if not self.VERIFY_HTTP_KEY_ID or len(self.VERIFY_HTTP_SECRET) < 16:
            raise ValueError("production needs VERIFY_HTTP_KEY_ID and VERIFY_HTTP_SECRET (16+ characters)")

    @property
    def redis_in_process(self) -> bool:
        return self.REDIS_URL.startswith("memory://")

    def engine_options(self) -> dict[str, Any]:
        if self.DATABASE_URL.startswith("sqlite"):
            return {}
        # After a PostgreSQL restart every pooled connection is dead; without a check the next request
        # on each one failed (a 503 from /readyz, a 500, a failed sign-in 48 s later). Connections idle
        # in the pool are pinged before use (app/extensions.py); recycling bounds a connection's age for
        # proxies and firewalls that drop idle ones silently.
        return {
            "pool_recycle": 1800,
            "pool_size": self.DATABASE_POOL_SIZE,
            "max_overflow": self.DATABASE_MAX_OVERFLOW,
        }

    def as_flask_config(self) -> dict[str, Any]:
        values = self.model_dump()
        values.update(
            SQLALCHEMY_DATABASE_URI=self.DATABASE_URL,
            SQLALCHEMY_ENGINE_OPTIONS=self.engine_options(),
            TESTING=self.APP_ENV == AppEnv.TESTING,
            SESSION_COOKIE_HTTPONLY=True,
            SESSION_COOKIE_SAMESITE="Lax",
            SESSION_COOKIE_SECURE=not self.SANDBOX and self.APP_ENV == AppEnv.PRODUCTION,
            SETTINGS=self,
        )
        return values


def load_settings(**overrides: Any) -> Settings:
    """Read and validate the environment; `overrides` win (tests and CLI use them)."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}" for err in exc.errors()
        )
        raise SettingsError(f"invalid settings: {problems}") from None
