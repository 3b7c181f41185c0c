"""`flask --app wsgi wechat add-operator OPENID` as the README writes it: beside `make run` it talks to
the same sandbox (var/run.env), and when WeChat, Redis or the database cannot be reached it says so in
one line instead of a traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import select

from app.extensions import db
from app.integrations import redis_client
from app.run_env import read_run_env
from app.sandbox import state
from config import SANDBOX_SECRET
from models import User

ROOT = Path(__file__).resolve().parent.parent


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _one_clear_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1, output
    assert "Traceback" not in output
    return lines[0]


def test_sandbox_not_running_is_one_line(app_factory: Any) -> None:
    base = f"http://127.0.0.1:{_closed_port()}"
    app: Flask = app_factory(WECHAT_API_BASE=f"{base}/_sandbox/api")
    result = app.test_cli_runner().invoke(args=["wechat", "add-operator", "o" + "x" * 27])
    assert result.exit_code == 1
    line = _one_clear_line(result.output)
    assert f"WeChat is unreachable at {base}/_sandbox/api (ConnectionError)" in line
    assert "start `make run`" in line
    for command in (["wechat", "push-menu"],):
        assert "start `make run`" in _one_clear_line(app.test_cli_runner().invoke(args=command).output)


def test_real_wechat_with_the_sandbox_appid_says_what_to_set(app_factory: Any) -> None:
    # Without SANDBOX the commands call WeChat itself, here an unreachable stand-in.
    app: Flask = app_factory(
        SANDBOX=False,
        WECHAT_API_BASE=f"http://127.0.0.1:{_closed_port()}",
        WECHAT_TOKEN="a-real-token-0123456789",
        VERIFY_PROVIDER="http",
        VERIFY_HTTP_URL="http://127.0.0.1:9/verify",
        VERIFY_HTTP_KEY_ID="k",
        VERIFY_HTTP_SECRET="s" * 32,
    )
    result = app.test_cli_runner().invoke(args=["wechat", "add-operator", "o" + "x" * 27])
    line = _one_clear_line(result.output)
    assert "no real AppID is set" in line and "SANDBOX=1 and PUBLIC_BASE_URL" in line
    assert SANDBOX_SECRET not in result.output  # the token URL carries the AppSecret


def test_redis_down_is_one_line(app: Flask) -> None:
    class Down:
        def __getattr__(self, name: str) -> Any:
            from redis.exceptions import ConnectionError as RedisConnectionError

            def fail(*args: Any, **kwargs: Any) -> Any:
                raise RedisConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

            return fail

    client = app.extensions["wechat_client"]
    client.session.redis = Down()
    result = app.test_cli_runner().invoke(args=["wechat", "add-operator", "o" + "x" * 27])
    assert "Redis is unreachable" in _one_clear_line(result.output)


def test_run_env_fills_only_what_the_environment_leaves_unset(tmp_path: Path) -> None:
    run_env = tmp_path / "run.env"
    run_env.write_text(
        "# written by make run\nSANDBOX=1\nPUBLIC_BASE_URL=http://127.0.0.1:5000\nEMPTY=\n", encoding="utf-8"
    )
    environ = {"PUBLIC_BASE_URL": "https://photo.example.edu.cn"}
    read_run_env(run_env, environ)
    assert environ == {"PUBLIC_BASE_URL": "https://photo.example.edu.cn", "SANDBOX": "1"}


def test_run_env_keeps_the_emulator_with_its_own_service(tmp_path: Path) -> None:
    run_env = tmp_path / "run.env"
    recorded = "SANDBOX=1\nPUBLIC_BASE_URL=http://127.0.0.1:5000\nSANDBOX_URL=http://127.0.0.1:5001\n"
    run_env.write_text(recorded, encoding="utf-8")
    beside_make_run: dict[str, str] = {}
    read_run_env(run_env, beside_make_run)
    assert beside_make_run["SANDBOX_URL"] == "http://127.0.0.1:5001"
    elsewhere = {"PUBLIC_BASE_URL": "http://127.0.0.1:8000"}
    read_run_env(run_env, elsewhere)
    assert elsewhere == {"PUBLIC_BASE_URL": "http://127.0.0.1:8000", "SANDBOX": "1"}


def test_make_run_records_its_settings_for_the_commands() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "var/run.env" in makefile and "SANDBOX=%s" in makefile and "PUBLIC_BASE_URL=%s" in makefile


def test_the_readme_command_against_the_running_sandbox(
    app: Flask, live_server: Any, database_url: str
) -> None:
    """The command as typed, in its own process (sharing the test's database), with the settings
    `make run` records."""
    with app.app_context():
        r = redis_client()
        user = state.create_user(r, "运营小李")
        user["subscribed"] = True
        state.save_user(r, user)
    openid = str(user["openid"])
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WECHAT_", "SANDBOX", "FLASK_"))}
    env.update(SANDBOX="1", PUBLIC_BASE_URL=live_server.url, DATABASE_URL=database_url, LOG_LEVEL="WARNING")
    env.pop("REDIS_URL", None)
    done = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "wechat", "add-operator", openid],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{openid} is an operator" in done.stdout
    with app.app_context():
        found = db.session.scalar(select(User).where(User.openid == openid))
        assert found is not None and found.is_operator
