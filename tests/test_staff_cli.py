"""`flask staff create|list|set-password|deactivate`, and that what they make can sign in."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import func, select

from app.extensions import db
from app.integrations import redis_client
from app.services import schools
from app.services import staff as staff_service
from models import AuditEntry, Staff

PASSWORD = "a long enough password"
CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def with_schools(app: Flask) -> None:
    with app.app_context():
        schools.upsert_school(db.session, "10542", "湖南师范大学", "湖南省", "长沙市")
        schools.upsert_school(db.session, "10699", "西北工业大学", "陕西省", "西安市")
        db.session.commit()


def _login_status(app: Flask, username: str, password: str) -> int:
    client = app.test_client()
    page = client.get("/review/login").get_data(as_text=True)
    token = CSRF_INPUT.search(page)
    assert token
    data = {"username": username, "password": password, "csrf_token": token.group(1)}
    return client.post("/review/login", data=data).status_code


def _staff(app: Flask, username: str) -> Staff | None:
    with app.app_context():
        found = db.session.scalar(select(Staff).where(Staff.username == username))
        if found is not None:
            _ = [s.code for s in found.schools]
            db.session.expunge(found)
        return found


def _count(app: Flask) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Staff)) or 0


def test_create_reviewer_with_prompted_password(
    app: Flask, runner: FlaskCliRunner, with_schools: None
) -> None:
    result = runner.invoke(
        args=["staff", "create", "rev1", "--role", "reviewer", "--school", "10542", "--school", "10699"],
        input=f"{PASSWORD}\n{PASSWORD}\n",
    )
    assert result.exit_code == 0, result.output
    assert "已创建 rev1" in result.output
    assert PASSWORD not in result.output  # the prompt hides it
    staff = _staff(app, "rev1")
    assert staff is not None and staff.role == "reviewer" and staff.is_active
    assert staff.password_hash.startswith("$argon2id$") and PASSWORD not in staff.password_hash
    assert sorted(s.code for s in staff.schools) == ["10542", "10699"]
    assert _login_status(app, "rev1", PASSWORD) == 303


def test_create_with_password_on_stdin(app: Flask, runner: FlaskCliRunner, with_schools: None) -> None:
    result = runner.invoke(
        args=["staff", "create", "boss", "--role", "admin", "--password-stdin"], input=PASSWORD + "\n"
    )
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output and "全部学校" in result.output
    assert _login_status(app, "boss", PASSWORD) == 303


def test_mismatched_prompts_create_nothing(app: Flask, runner: FlaskCliRunner, with_schools: None) -> None:
    result = runner.invoke(
        args=["staff", "create", "rev1", "--role", "reviewer", "--school", "10542"],
        input=f"{PASSWORD}\n{PASSWORD}x\n",
    )
    assert result.exit_code != 0
    assert "do not match" in result.output
    assert _count(app) == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["rev1", "--role", "reviewer", "--school", "10542", "--school", "99999"], "学校代码不存在：99999"),
        (["rev1", "--role", "reviewer"], "审核员必须至少指定一所学校"),
        (["boss", "--role", "admin", "--school", "10542"], "管理员可查看全部学校"),
        (["Bad User", "--role", "admin"], "用户名只能使用小写字母"),
        (["rev1", "--role", "chief", "--school", "10542"], "Invalid value for '--role'"),
    ],
)
def test_create_refusals(
    app: Flask, runner: FlaskCliRunner, with_schools: None, args: list[str], message: str
) -> None:
    result = runner.invoke(args=["staff", "create", *args, "--password-stdin"], input=PASSWORD + "\n")
    assert result.exit_code != 0
    assert message in result.output
    assert PASSWORD not in result.output
    assert _count(app) == 0


def test_create_refuses_short_password_and_duplicates(
    app: Flask, runner: FlaskCliRunner, with_schools: None
) -> None:
    short = runner.invoke(
        args=["staff", "create", "boss", "--role", "admin", "--password-stdin"], input="short\n"
    )
    assert short.exit_code != 0 and "too short" in short.output
    assert _count(app) == 0
    ok = runner.invoke(
        args=["staff", "create", "boss", "--role", "admin", "--password-stdin"], input=PASSWORD + "\n"
    )
    assert ok.exit_code == 0
    again = runner.invoke(
        args=["staff", "create", "boss", "--role", "admin", "--password-stdin"], input="other password 1\n"
    )
    assert again.exit_code != 0 and "已存在" in again.output
    assert _login_status(app, "boss", PASSWORD) == 303  # untouched


def test_list(app: Flask, runner: FlaskCliRunner, with_schools: None) -> None:
    assert "没有员工账号" in runner.invoke(args=["staff", "list"]).output
    stdin: dict[str, Any] = {"input": PASSWORD + "\n"}
    runner.invoke(args=["staff", "create", "boss", "--role", "admin", "--password-stdin"], **stdin)
    runner.invoke(
        args=["staff", "create", "rev1", "--role", "reviewer", "--school", "10699", "--password-stdin"],
        **stdin,
    )
    runner.invoke(args=["staff", "deactivate", "rev1"])
    lines = runner.invoke(args=["staff", "list"]).output.splitlines()
    assert [line.split() for line in lines] == [
        ["boss", "admin", "active", "*"],
        ["rev1", "reviewer", "inactive", "10699"],
    ]


def test_set_password(app: Flask, runner: FlaskCliRunner, with_schools: None) -> None:
    runner.invoke(
        args=["staff", "create", "boss", "--role", "admin", "--password-stdin"], input=PASSWORD + "\n"
    )
    for _ in range(app.config["STAFF_LOCKOUT_THRESHOLD"]):
        assert _login_status(app, "boss", "a wrong password") == 401
    assert _login_status(app, "boss", PASSWORD) == 429

    new = "the new password 42"
    result = runner.invoke(args=["staff", "set-password", "boss"], input=f"{new}\n{new}\n")
    assert result.exit_code == 0, result.output
    assert new not in result.output
    with app.app_context():  # the name's lockout is lifted; the address's remains
        user_key, _ = staff_service.lockout_keys("boss", "127.0.0.1")
        assert not redis_client().exists(user_key)
    assert _login_status(app, "boss", PASSWORD) == 401
    assert _login_status(app, "boss", new) == 303

    missing = runner.invoke(args=["staff", "set-password", "ghost", "--password-stdin"], input=new + "\n")
    assert missing.exit_code != 0 and "没有员工账号 ghost" in missing.output


def test_deactivate(app: Flask, runner: FlaskCliRunner, with_schools: None) -> None:
    runner.invoke(
        args=["staff", "create", "boss", "--role", "admin", "--password-stdin"], input=PASSWORD + "\n"
    )
    result = runner.invoke(args=["staff", "deactivate", "boss"])
    assert result.exit_code == 0 and "已停用 boss" in result.output
    assert _login_status(app, "boss", PASSWORD) == 403
    assert runner.invoke(args=["staff", "deactivate", "ghost"]).exit_code != 0
    with app.app_context():
        actions = list(db.session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))
    assert actions[:2] == ["staff_create", "staff_deactivate"]
