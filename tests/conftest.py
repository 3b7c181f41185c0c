"""Shared fixtures.

- `live_server`: one real threaded HTTP server for the session. It serves whichever app the current
  test created, so the service, the sandbox emulator (WeChat's side) and the browser all talk over
  real HTTP, the way they do in production.
- `app`: a fresh app per test on the session's database (migrated once, emptied per test) and
  Redis (flushed per test). `DATABASE_URL`/`REDIS_URL` from the environment select PostgreSQL and a
  real Redis (CI); otherwise SQLite in a temporary folder and in-process fakeredis.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import create_engine, text
from werkzeug.serving import BaseWSGIServer, make_server

from app import create_app
from app.extensions import db
from app.integrations import redis_client
from models import Base

TEST_SECRET_KEY = "test-secret-key-0123456789abcdef0123456789"


@dataclass
class LiveServer:
    url: str
    server: BaseWSGIServer
    target: dict[str, Any] = field(default_factory=dict)


def _dispatch(target: dict[str, Any]):  # type: ignore[no-untyped-def]
    def wsgi(environ: dict[str, Any], start_response: Any) -> Any:
        app = target.get("app")
        if app is None:
            start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
            return [b"no app for this test"]
        return app(environ, start_response)

    return wsgi


@pytest.fixture(scope="session")
def live_server() -> Iterator[LiveServer]:
    target: dict[str, Any] = {}
    server = make_server("127.0.0.1", 0, _dispatch(target), threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    yield LiveServer(url=f"http://127.0.0.1:{server.port}", server=server, target=target)
    server.shutdown()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Migrate an empty database once per session with the real migrations (not create_all)."""
    url = os.environ.get("DATABASE_URL") or f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
    if url.startswith("postgres"):
        engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()
    app = create_app(APP_ENV="testing", DATABASE_URL=url, SECRET_KEY=TEST_SECRET_KEY)
    with app.app_context():
        from flask_migrate import upgrade

        upgrade()
        db.engine.dispose()
    return url


def _empty_tables() -> None:
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    if db.engine.dialect.name == "postgresql":
        db.session.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
    else:
        # Rows may point at rows of their own table (a resubmission at the attempt whose fee covers
        # it): check the foreign keys once all is deleted, at commit.
        db.session.execute(text("PRAGMA defer_foreign_keys = ON"))
        for name in tables:
            db.session.execute(text(f"DELETE FROM {name}"))  # noqa: S608 (our own table names)
    db.session.commit()


def make_app(live_server: LiveServer, database_url: str, tmp_path: Path, **overrides: Any) -> Flask:
    settings: dict[str, Any] = {
        "APP_ENV": "testing",
        "SANDBOX": True,
        "SECRET_KEY": TEST_SECRET_KEY,
        "DATABASE_URL": database_url,
        "REDIS_URL": os.environ.get("REDIS_URL", "memory://"),
        "PUBLIC_BASE_URL": live_server.url,
        # The emulator mounted in the live server, whatever a `make run`'s var/run.env (read when a
        # test imports wsgi) says about a sandbox process of its own.
        "SANDBOX_URL": "",
        "MEDIA_ROOT": tmp_path / "media",
        "LOG_FORMAT": "text",
        "WORKER_POLL_SECONDS": 0.05,
    }
    settings.update(overrides)
    return create_app(**settings)


@pytest.fixture
def app_factory(live_server: LiveServer, database_url: str, tmp_path: Path) -> Iterator[Any]:
    """Build the test's app with extra settings: `app_factory(WECHAT_ENCRYPT_MODE="safe", ...)`."""
    made: list[Flask] = []

    def factory(**overrides: Any) -> Flask:
        app = make_app(live_server, database_url, tmp_path, **overrides)
        with app.app_context():
            _empty_tables()
            redis_client().flushdb()
        live_server.target["app"] = app
        made.append(app)
        return app

    yield factory
    live_server.target.pop("app", None)
    for app in made:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.fixture
def same_database_app(live_server: LiveServer, database_url: str, tmp_path: Path) -> Iterator[Any]:
    """Another app on the test's database with other settings, emptying nothing (e.g. new keys)."""
    made: list[Flask] = []

    def factory(**overrides: Any) -> Flask:
        made.append(make_app(live_server, database_url, tmp_path, **overrides))
        return made[-1]

    yield factory
    for other in made:
        with other.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.fixture
def app(app_factory: Any) -> Flask:
    app: Flask = app_factory()
    return app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


@pytest.fixture
def app_ctx(app: Flask) -> Iterator[None]:
    with app.app_context():
        yield
        db.session.remove()
