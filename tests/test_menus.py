"""The menu file (validation against WeChat's limits), `flask wechat push-menu` and `add-operator`,
against the sandbox over HTTP."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import select

from app.extensions import db
from app.integrations import redis_client
from app.sandbox import state, store
from app.services import menus
from models import User

RAW = json.loads(menus.MENU_FILE.read_text(encoding="utf-8"))
BASE = "https://id.example.edu.cn"


def _calls(app: Flask, path: str = "/cgi-bin/") -> list[str]:
    """WeChat paths the service called, oldest first."""
    with app.app_context():
        return [c["path"] for c in reversed(state.calls(redis_client(), path))]


def _follower(app: Flask, nickname: str = "运营小王") -> str:
    with app.app_context():
        r = redis_client()
        user = state.create_user(r, nickname)
        user["subscribed"] = True
        state.save_user(r, user)
        return str(user["openid"])


def _menu_for(app: Flask, openid: str) -> dict[str, Any] | None:
    with app.app_context():
        return store.current_menu_for(redis_client(), openid)


def _names(menu: dict[str, Any] | None) -> list[str]:
    assert menu is not None
    return [b["name"] for b in menu["button"]]


# --- the file --------------------------------------------------------------------------------


def test_the_shipped_menu_file_is_valid_and_complete() -> None:
    loaded = menus.load(BASE)
    assert loaded.version >= 1
    assert [b["name"] for b in loaded.default] == ["办理", "我的", "帮助"]
    [operator] = loaded.conditional
    assert operator.tag == "operator"
    assert [b["name"] for b in operator.button] == ["办理", "我的", "运营"]
    urls = [s["url"] for b in loaded.default for s in b["sub_button"] if s.get("url")]
    assert urls == [f"{BASE}/h5/bind", f"{BASE}/h5/school", f"{BASE}/h5/photo", f"{BASE}/h5/me"]
    keys = {s.get("key") for b in operator.button for s in b["sub_button"]}
    assert {"STATUS", "HELP", "CONTACT", "TODAY_STATS"} <= keys
    assert {"type": "view", "name": "待审核", "url": f"{BASE}/review/"} in operator.button[2]["sub_button"]
    # Everything a student can reach, an operator can reach too.
    student_leaves = {json.dumps(s, sort_keys=True) for b in loaded.default for s in b["sub_button"]}
    operator_leaves = {json.dumps(s, sort_keys=True) for b in operator.button for s in b["sub_button"]}
    assert student_leaves <= operator_leaves
    assert "comment" not in json.dumps(loaded.default)


def _broken(path: list[Any], value: Any) -> dict[str, Any]:
    raw = copy.deepcopy(RAW)
    target = raw
    for step in path[:-1]:
        target = target[step]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return raw


_DELETE = object()
LEAF = ["default", "button", 0, "sub_button", 0]


@pytest.mark.parametrize(
    ("path", "value", "problem"),
    [
        (["version"], _DELETE, "version"),
        (["version"], 0, "version"),
        (["default", "button"], RAW["default"]["button"] * 2, "1 to 3 top-level buttons"),
        (["default", "button"], [], "1 to 3 top-level buttons"),
        (["default", "button", 0, "name"], "办理业务啊", "15 bytes"),  # 5 characters = 15 bytes: fits
        (["default", "button", 0, "name"], "办理全部业务", "18 bytes, WeChat allows 16"),
        (
            ["default", "button", 0, "sub_button"],
            [{"type": "click", "name": "x", "key": "K"}] * 6,
            "at most 5",
        ),
        ([*LEAF, "name"], "长" * 21, "63 bytes, WeChat allows 60"),
        ([*LEAF, "type"], "shake", "not a WeChat button type"),
        ([*LEAF, "url"], "{base}/" + "a" * 1024, "longer than 1024 bytes"),
        ([*LEAF, "url"], "javascript:alert(1)", "http(s) URL"),
        (["default", "button", 1, "sub_button", 1, "key"], "k" * 129, "longer than 128 bytes"),
        (["default", "button", 1, "sub_button", 1, "key"], _DELETE, "required for type click"),
        (["conditional", 0, "tag"], "", "tag name"),
        (["conditional"], RAW["conditional"] * 2, "has two menus"),
    ],
)
def test_invalid_menu_files_are_refused_with_the_reason(path: list[Any], value: Any, problem: str) -> None:
    raw = _broken(path, value)
    if problem == "15 bytes":  # the control case: 5 Chinese characters fit in 16 bytes
        menus.parse(raw, BASE)
        return
    with pytest.raises(menus.MenuInvalidError) as caught:
        menus.parse(raw, BASE)
    assert any(problem in p for p in caught.value.problems), caught.value.problems


def test_all_problems_are_listed_at_once() -> None:
    raw = _broken(["version"], _DELETE)
    raw["default"]["button"][0]["name"] = "办理全部业务"
    with pytest.raises(menus.MenuInvalidError) as caught:
        menus.parse(raw, BASE)
    assert len(caught.value.problems) == 2


def test_check_menu_command(runner: FlaskCliRunner, tmp_path: Path) -> None:
    result = runner.invoke(args=["wechat", "check-menu"])
    assert result.exit_code == 0 and "valid" in result.output
    bad = tmp_path / "menus.json"
    bad.write_text(json.dumps(_broken(["version"], _DELETE)), encoding="utf-8")
    result = runner.invoke(args=["wechat", "check-menu", "--file", str(bad)])
    assert result.exit_code != 0 and "version" in result.output
    bad.write_text("{ not json", encoding="utf-8")
    assert runner.invoke(args=["wechat", "check-menu", "--file", str(bad)]).exit_code != 0


# --- pushing ---------------------------------------------------------------------------------


def test_push_menu_creates_the_tag_then_default_then_conditional(app: Flask, runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["wechat", "push-menu"])
    assert result.exit_code == 0, result.output
    assert "tag 'operator': created (id 100)" in result.output
    assert "default menu: created" in result.output
    assert "conditional menu for 'operator': added menuid" in result.output
    called = [p for p in _calls(app) if p != "/cgi-bin/token"]
    assert called == [
        "/cgi-bin/tags/get",
        "/cgi-bin/tags/create",
        "/cgi-bin/menu/get",
        "/cgi-bin/menu/create",
        "/cgi-bin/menu/addconditional",
    ]
    base = app.config["PUBLIC_BASE_URL"]
    with app.app_context():
        r = redis_client()
        default = store.default_menu(r)
        assert default is not None
        assert default["button"][0]["sub_button"][0] == {
            "type": "view",
            "name": "实名绑定",
            "url": f"{base}/h5/bind",
        }
        [conditional] = store.conditional_menus(r)
        assert conditional["matchrule"] == {"tag_id": "100"}


def test_push_menu_again_changes_nothing(app: Flask, runner: FlaskCliRunner) -> None:
    runner.invoke(args=["wechat", "push-menu"])
    first = _calls(app)
    result = runner.invoke(args=["wechat", "push-menu"])
    assert result.exit_code == 0, result.output
    assert "tag 'operator': exists (id 100)" in result.output
    assert "default menu: unchanged" in result.output
    assert "conditional menu for 'operator': unchanged" in result.output
    again = _calls(app)[len(first) :]
    assert again == ["/cgi-bin/tags/get", "/cgi-bin/menu/get"]
    assert _calls(app).count("/cgi-bin/tags/create") == 1


def test_a_changed_file_replaces_the_conditional_menu(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path
) -> None:
    runner.invoke(args=["wechat", "push-menu"])
    changed = copy.deepcopy(RAW)
    changed["version"] += 1
    changed["conditional"][0]["button"][2]["sub_button"].append(
        {"type": "click", "name": "本周统计", "key": "WEEK_STATS"}
    )
    path = tmp_path / "menus.json"
    path.write_text(json.dumps(changed, ensure_ascii=False), encoding="utf-8")
    result = runner.invoke(args=["wechat", "push-menu", "--file", str(path)])
    assert result.exit_code == 0, result.output
    assert "default menu: unchanged" in result.output
    assert "replaced 1" in result.output
    with app.app_context():
        [conditional] = store.conditional_menus(redis_client())
    assert conditional["button"][2]["sub_button"][-1]["key"] == "WEEK_STATS"


def test_force_pushes_everything_again(app: Flask, runner: FlaskCliRunner) -> None:
    runner.invoke(args=["wechat", "push-menu"])
    result = runner.invoke(args=["wechat", "push-menu", "--force"])
    assert "default menu: updated" in result.output and "replaced 1" in result.output
    with app.app_context():
        assert len(store.conditional_menus(redis_client())) == 1


def test_push_menu_reports_wechat_refusals(app: Flask, runner: FlaskCliRunner, live_server: Any) -> None:
    import requests

    requests.post(
        f"{live_server.url}/_sandbox/api/_faults",
        json={"path": "/cgi-bin/menu/create", "errcode": 40018},
        timeout=5,
    )
    result = runner.invoke(args=["wechat", "push-menu"])
    assert result.exit_code != 0 and "40018" in result.output
    assert "/cgi-bin/menu/addconditional" not in _calls(app)


# --- operators -------------------------------------------------------------------------------


def test_add_operator_tags_the_user_and_they_see_the_operator_menu(
    app: Flask, runner: FlaskCliRunner
) -> None:
    student, operator = _follower(app, "学生"), _follower(app)
    assert runner.invoke(args=["wechat", "push-menu"]).exit_code == 0
    result = runner.invoke(args=["wechat", "add-operator", operator])
    assert result.exit_code == 0, result.output
    assert "tagged 'operator' (id 100, exists)" in result.output and "new user row" in result.output
    with app.app_context():
        user = db.session.scalar(select(User).where(User.openid == operator))
        assert user is not None and user.is_operator
        assert store.user_tags(redis_client(), operator) == [100]
    assert _names(_menu_for(app, operator)) == ["办理", "我的", "运营"]
    assert _names(_menu_for(app, student)) == ["办理", "我的", "帮助"]
    assert _calls(app).count("/cgi-bin/tags/create") == 1


def test_add_operator_before_any_menu_creates_the_tag_and_marks_an_existing_user(
    app: Flask, runner: FlaskCliRunner
) -> None:
    openid = _follower(app)
    with app.app_context():
        db.session.add(User(openid=openid))
        db.session.commit()
    result = runner.invoke(args=["wechat", "add-operator", openid])
    assert result.exit_code == 0, result.output
    assert "(id 100, created)" in result.output and "existing user" in result.output
    assert runner.invoke(args=["wechat", "add-operator", openid]).exit_code == 0  # idempotent
    with app.app_context():
        users = db.session.scalars(select(User).where(User.openid == openid)).all()
        assert len(users) == 1 and users[0].is_operator


def test_add_operator_with_an_unknown_openid_changes_nothing(app: Flask, runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["wechat", "add-operator", "o" + "n" * 27])
    assert result.exit_code != 0 and "40003" in result.output
    with app.app_context():
        assert db.session.scalars(select(User)).all() == []
