"""Extension objects, created without an app and bound in `create_app`."""

from __future__ import annotations

from flask import Flask, current_app
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from redis import Redis
from sqlalchemy import event
from sqlalchemy.engine import Engine

from app.services.pii import Keyring
from models.base import Base

# Models subclass models.base.Base (no Flask import in models/); the extension only needs its metadata.
db = SQLAlchemy(metadata=Base.metadata)
migrate = Migrate(directory="migrations", render_as_batch=True, compare_type=True)
csrf = CSRFProtect()


def init_redis(app: Flask) -> Redis:
    """One client per app; memory:// is fakeredis, private to this process (the embedded mode)."""
    url: str = app.config["REDIS_URL"]
    client: Redis
    if url.startswith("memory://"):
        import fakeredis

        client = fakeredis.FakeRedis(server=fakeredis.FakeServer(), decode_responses=True)
    else:
        client = Redis.from_url(url, decode_responses=True, health_check_interval=30)
    app.extensions["redis"] = client
    return client


def init_pii(app: Flask) -> None:
    app.extensions["pii"] = Keyring.from_settings(
        app.config["PII_ENCRYPTION_KEYS"], app.config["PII_HMAC_KEY"], app.config["SECRET_KEY"]
    )


def pii_keyring() -> Keyring:
    """The app's personal-data keyring."""
    keyring: Keyring = current_app.extensions["pii"]
    return keyring


def redis_client() -> Redis:
    client: Redis = current_app.extensions["redis"]
    return client


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, connection_record) -> None:  # type: ignore[no-untyped-def]
    # SQLite is the embedded mode only: WAL lets the worker thread read while a request writes,
    # and foreign keys are off by default there.
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.close()
