"""The service and the WeChat emulator as two real gunicorn processes, as `make run` starts them (free
ports, embedded defaults in a temporary folder), and a student ready to pay in their database.

    with two_processes(tmp_path) as both:
        requests.post(f"{both.sandbox}/_sandbox/phone/users", ...)
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests
from flask_migrate import upgrade

from app import create_app
from app.extensions import db
from models import Photo
from tests.photo_students import Student, open_batch_id, prepare

ROOT = Path(__file__).resolve().parents[1]
SECRET_KEY = "test-secret-key-0123456789abcdef0123456789"


@dataclass
class Processes:
    service: str
    sandbox: str
    env: dict[str, str]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "gunicorn", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _wait_healthy(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            if requests.get(url + "/healthz", timeout=1).ok:
                return
        except requests.RequestException:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"{url} did not start: {proc.stderr.read().decode() if proc.stderr else ''}")
        time.sleep(0.1)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    # SIGINT: gunicorn's quick stop (SIGTERM may wait out graceful_timeout for a half-open connection).
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextmanager
def two_processes(tmp_path: Path) -> Iterator[Processes]:
    """Both started (the emulator first, as `make run` does), stopped on leaving."""
    service = f"http://127.0.0.1:{_free_port()}"
    sandbox = f"http://127.0.0.1:{_free_port()}"
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")},
        "APP_ENV": "testing",
        "SECRET_KEY": SECRET_KEY,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'app.db'}",
        "MEDIA_ROOT": str(tmp_path / "media"),
        "SANDBOX": "1",
        "PUBLIC_BASE_URL": service,
        "SANDBOX_URL": sandbox,
        "LOG_LEVEL": "WARNING",
    }
    app = create_app(**{k: env[k] for k in ("APP_ENV", "SECRET_KEY", "DATABASE_URL", "MEDIA_ROOT")})
    with app.app_context():
        upgrade()
        db.engine.dispose()
    started = [
        _start(
            ["-c", "gunicorn_sandbox.conf.py", "--bind", sandbox[7:], "app.sandbox.server:create_app()"], env
        )
    ]
    try:
        _wait_healthy(sandbox, started[0])
        started.append(_start(["-c", "gunicorn.conf.py", "--bind", service[7:], "wsgi:app"], env))
        _wait_healthy(service, started[1])
        yield Processes(service, sandbox, env)
    finally:
        for proc in reversed(started):
            _stop(proc)


def ready_to_pay(processes: Processes, openid: str) -> tuple[Student, int]:
    """A bound, linked student with a passing photo (the database directly); signed in through the
    emulator's OAuth2 on its own port. Returns the student and the photo id."""
    app = create_app(**{k: processes.env[k] for k in ("APP_ENV", "SECRET_KEY", "DATABASE_URL", "MEDIA_ROOT")})
    user_id = prepare(app, openid)
    with app.app_context():
        photo = Photo(
            user_id=user_id,
            batch_id=open_batch_id(app),
            source="h5",
            original_key="k" * 64,
            original_sha256="s" * 64,
            original_bytes=150_000,
            passed=True,
            checks=[],
            fixes=[],
        )
        db.session.add(photo)
        db.session.commit()
        photo_id = photo.id
        db.session.remove()
        db.engine.dispose()
    # Signed in through the emulator's OAuth2 on its own port: login-as → the service → authorize → back.
    return Student(processes.service, openid, user_id, sandbox=processes.sandbox), photo_id
