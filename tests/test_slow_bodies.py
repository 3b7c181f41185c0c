"""A stalled request body is answered 408 and frees its thread: the service keeps answering.

Runs the real gunicorn (gthread, two threads, so that a few stalled clients would take every thread)
on the embedded defaults, as a separate process.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def gunicorn_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp_path = tmp_path_factory.mktemp("gunicorn")
    port = _free_port()
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")},
        "APP_ENV": "testing",
        "SECRET_KEY": "test-secret-key-0123456789abcdef0123456789",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'app.db'}",
        "MEDIA_ROOT": str(tmp_path / "media"),
        "REQUEST_BODY_TIMEOUT_SECONDS": "1",
        "GUNICORN_THREADS": "2",
        "LOG_LEVEL": "WARNING",
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            "gunicorn.conf.py",
            "--bind",
            f"127.0.0.1:{port}",
            "wsgi:app",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(url + "/healthz", timeout=1).ok:
                    break
            except requests.RequestException:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"gunicorn did not start: {proc.stderr.read().decode() if proc.stderr else ''}"
                )
            time.sleep(0.1)
        yield url
    finally:
        # SIGTERM would be gunicorn's graceful stop, which may wait out graceful_timeout (20 s) for a
        # connection a test left half-open; this test is not about shutdown, so stop it quickly.
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _stall(port: int) -> socket.socket:
    """A client that announces a 60,000-byte form and sends five bytes of it."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(
        b"POST /review/login HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 60000\r\n\r\nuser="
    )
    return sock


def _read_until_closed(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_stalled_bodies_get_408_and_the_service_keeps_answering(gunicorn_url: str) -> None:
    port = int(gunicorn_url.rsplit(":", 1)[1])
    stalled = [_stall(port) for _ in range(6)]
    try:
        started = time.monotonic()
        # With two threads per worker and six stalled clients, this waited forever before.
        assert requests.get(gunicorn_url + "/healthz", timeout=10).status_code == 200
        for sock in stalled:
            sock.settimeout(10)
            answer = _read_until_closed(sock)  # the server closes it: the rest of the body is on it
            assert answer.startswith(b"HTTP/1.1 408"), answer[:80]
            assert "请求内容发送超时".encode() in answer
        assert time.monotonic() - started < 10
    finally:
        for sock in stalled:
            sock.close()


def test_a_body_that_keeps_moving_is_not_cut_off(gunicorn_url: str) -> None:
    # Slower than the timeout in total, but never silent that long: a slow phone upload.
    port = int(gunicorn_url.rsplit(":", 1)[1])
    body = b"username=nobody&password=wrong-password"
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(
            b"POST /review/login HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
        )
        for i in range(0, len(body), 10):
            sock.sendall(body[i : i + 10])
            time.sleep(0.4)
        sock.settimeout(10)
        answer = sock.recv(4096)
    assert not answer.startswith(b"HTTP/1.1 408"), answer[:80]
    assert answer.startswith(b"HTTP/1.1 "), answer[:80]
