"""Flask extension objects, created without an app and bound in `create_app`.

Clients of outside services (Redis, WeChat, WeChat Pay, ...) live in app/integrations/."""

from __future__ import annotations

import time

from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.pool import Pool

from models.base import Base

# Models subclass models.base.Base (no Flask import in models/); the extension only needs its metadata.
db = SQLAlchemy(metadata=Base.metadata)
migrate = Migrate(directory="migrations", render_as_batch=True, compare_type=True)
csrf = CSRFProtect()


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


# A connection that sat in the pool this long may have been closed under it (a PostgreSQL restart, an idle
# timeout): it is pinged before use, and replaced if the ping fails. One that was in use a moment ago is
# not: under load connections come back within milliseconds, and a ping on every checkout was a second
# round trip for every query (/wechat's 进度 reply paid it on each message). A restart faster than this
# window would cost one request: its disconnect error invalidates the whole pool.
PING_AFTER_IDLE_SECONDS = 0.2
_IDLE_SINCE = "idle_since"


@event.listens_for(Pool, "connect")
def _fresh(dbapi_connection, connection_record) -> None:  # type: ignore[no-untyped-def]
    connection_record.info[_IDLE_SINCE] = time.monotonic()


@event.listens_for(Pool, "checkin")
def _checked_in(dbapi_connection, connection_record) -> None:  # type: ignore[no-untyped-def]
    connection_record.info[_IDLE_SINCE] = time.monotonic()


@event.listens_for(Pool, "checkout")
def _ping_if_idle(dbapi_connection, connection_record, connection_proxy) -> None:  # type: ignore[no-untyped-def]
    # SQLAlchemy's pessimistic-disconnect recipe, with an idle threshold (pool_pre_ping has none).
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        return
    if time.monotonic() - connection_record.info.get(_IDLE_SINCE, 0.0) < PING_AFTER_IDLE_SECONDS:
        return
    try:
        # In autocommit, as SQLAlchemy's own psycopg ping does: the ping must not leave a transaction
        # open, or the next user could not switch the connection to autocommit (progress.of_sender does).
        manual = not dbapi_connection.autocommit
        if manual:
            dbapi_connection.autocommit = True
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("SELECT 1")
        finally:
            cursor.close()
            if manual and not dbapi_connection.closed:
                dbapi_connection.autocommit = False
    except Exception as exc:
        # The pool retries the checkout with a new connection.
        raise DisconnectionError(f"stale connection: {type(exc).__name__}") from exc
