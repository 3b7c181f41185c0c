"""Flask extension objects, created without an app and bound in `create_app`.

Clients of outside services (Redis, WeChat, WeChat Pay, ...) live in app/integrations/."""

from __future__ import annotations

from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import event
from sqlalchemy.engine import Engine

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
