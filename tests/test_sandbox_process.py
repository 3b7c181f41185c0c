"""The WeChat emulator as its own process, as `make run` starts it: the service's gunicorn (one gthread
worker, eight threads, embedded defaults) and the emulator's gunicorn on another port, for real.

Mounted inside the service, ten students following at the same moment held every request thread,
each waiting for its subscribe event to be served by a thread of the same pool (WeChat's three
tries, then 该公众号暂时无法提供服务). In its own process the emulator never waits on the pool that
serves the calls it triggers. The emulator keeps its state in its own memory here (memory://): the
service reaches its roster over HTTP and its WeChat Pay through the merchant registration file.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from flask_migrate import upgrade

from app import create_app
from app.extensions import db
from models import Photo
from tests.photo_students import Student, open_batch_id, prepare

ROOT = Path(__file__).resolve().parents[1]
SECRET_KEY = "test-secret-key-0123456789abcdef0123456789"
FOLLOWERS = 10


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


@pytest.fixture(scope="module")
def processes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Processes]:
    tmp_path = tmp_path_factory.mktemp("two-processes")
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


def test_the_service_no_longer_serves_the_emulator(processes: Processes) -> None:
    assert requests.get(f"{processes.service}/_sandbox/", timeout=5).status_code == 404
    phone = requests.get(f"{processes.sandbox}/_sandbox/", timeout=5)
    assert phone.status_code == 200 and "证件照核验" in phone.text
    assert requests.get(f"{processes.sandbox}/review/login", timeout=5).status_code == 404


def test_ten_students_follow_at_the_same_moment(processes: Processes) -> None:
    phone = f"{processes.sandbox}/_sandbox/phone"
    openids = [
        requests.post(f"{phone}/users", json={"nickname": f"学生{i}"}, timeout=10).json()["user"]["openid"]
        for i in range(FOLLOWERS)
    ]
    start = threading.Barrier(FOLLOWERS)
    answers: dict[str, tuple[float, dict[str, Any]]] = {}

    def follow(openid: str) -> None:
        start.wait()
        began = time.monotonic()
        response = requests.post(f"{phone}/follow", json={"openid": openid}, timeout=30)
        answers[openid] = (time.monotonic() - began, response.json())

    threads = [threading.Thread(target=follow, args=(openid,)) for openid in openids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(answers) == FOLLOWERS
    for seconds, body in answers.values():
        assert (body["failed"], body["tries"]) == (False, 1), body
        replies = [e["text"] for e in body["entries"] if e["direction"] == "out"]
        assert replies and replies[0].startswith("欢迎关注"), body
        # WeChat's first try alone would give up after 5 s; a hang would have hit its 15 s.
        assert seconds < 4, seconds


def _ready_to_pay(processes: Processes, openid: str) -> tuple[Student, int]:
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


def test_an_order_at_the_separate_wechat_pay_is_paid_and_its_notification_applied(
    processes: Processes,
) -> None:
    student, photo_id = _ready_to_pay(processes, "o-two-processes-payer")
    created = student.http.post(
        f"{processes.service}/api/v1/me/submissions",
        json={"photo_id": photo_id, "channel": "native"},
        headers={"X-CSRFToken": student.token},
        timeout=20,
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["status"] == "awaiting_payment" and body["order"]["code_url"].startswith("weixin://wxpay/")

    paid = requests.post(
        f"{processes.sandbox}/_sandbox/pay/scan",
        json={"code_url": body["order"]["code_url"], "openid": student.openid},
        timeout=10,
    )
    assert paid.status_code == 200, paid.text
    # The emulator's own notifier posts the notification to the service; the service's in-process
    # worker then asks the emulator's roster over HTTP (a number not on it matches).
    deadline = time.monotonic() + 20
    status = body["status"]
    while time.monotonic() < deadline and status != "pending_review":
        time.sleep(0.3)
        status = student.get(f"/api/v1/me/submissions/{body['id']}").json()["status"]
    assert status == "pending_review"
    deliveries = requests.get(f"{processes.sandbox}/_sandbox/pay/_ctl/deliveries", timeout=5).json()
    assert [d["status"] for d in deliveries["deliveries"]] == [204]
    checks = requests.get(f"{processes.sandbox}/_sandbox/roster", timeout=5).json()["checks"]
    assert [c["answer"] for c in checks] == ["match"]
