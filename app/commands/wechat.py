"""`flask wechat ...`: push the menus, make operators."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
import requests
from flask import current_app
from flask.cli import AppGroup
from redis.exceptions import RedisError
from sqlalchemy.exc import OperationalError
from wechatpy.exceptions import WeChatClientException

from app.extensions import db
from app.integrations import wechat_client
from app.services import menus, operators
from config import SANDBOX_APPID

wechat_cli = AppGroup("wechat", help="The WeChat account: menus and operators.")


NO_APPID = (
    "no real AppID is set: for the sandbox, start `make run` (commands beside it read var/run.env) "
    "or set SANDBOX=1 and PUBLIC_BASE_URL; for the real account set WECHAT_APPID and WECHAT_SECRET"
)


def _unreachable(reason: object) -> click.ClickException:
    config = current_app.config
    where = config["WECHAT_API_BASE"]
    if config.get("SANDBOX"):
        hint = (
            "start `make run`, which serves the sandbox (or set SANDBOX_URL to the emulator's process, "
            "or PUBLIC_BASE_URL to a service it is mounted in)"
        )
    elif config["WECHAT_APPID"] == SANDBOX_APPID:
        hint = NO_APPID
    else:
        hint = "check the network and WECHAT_API_BASE"
    return click.ClickException(f"WeChat is unreachable at {where} ({_first_line(reason)}): {hint}")


def _first_line(reason: object) -> str:
    # An exception's text can carry the request's URL, and the token URL carries the AppSecret.
    if isinstance(reason, requests.RequestException):
        return type(reason).__name__
    text = str(reason).strip().splitlines()
    return text[0][:160] if text else type(reason).__name__


@contextmanager
def _calling_wechat() -> Iterator[None]:
    """One clear line instead of a traceback when WeChat, Redis or the database cannot be reached."""
    try:
        yield
    except WeChatClientException as exc:
        if exc.errcode is None:  # no answer at all: the network, not WeChat
            raise _unreachable(exc.__cause__ or exc.errmsg or "no answer") from None
        refused = f"WeChat refused: errcode {exc.errcode}: {exc.errmsg}"
        if not current_app.config.get("SANDBOX") and current_app.config["WECHAT_APPID"] == SANDBOX_APPID:
            refused += f": {NO_APPID}"
        raise click.ClickException(refused) from None
    except requests.RequestException as exc:
        raise _unreachable(exc) from None
    except RedisError as exc:
        raise click.ClickException(f"Redis is unreachable ({_first_line(exc)}): check REDIS_URL") from None
    except OperationalError as exc:
        raise click.ClickException(
            f"the database is unreachable ({_first_line(exc.orig)}): check DATABASE_URL, "
            "then `flask --app wsgi db upgrade`"
        ) from None


def _load(path: str | None) -> menus.MenuFile:
    try:
        return menus.load(current_app.config["PUBLIC_BASE_URL"], Path(path) if path else menus.MENU_FILE)
    except menus.MenuInvalidError as exc:
        raise click.ClickException("invalid menu file:\n  " + "\n  ".join(exc.problems)) from None


@wechat_cli.command("check-menu")
@click.option("--file", "path", type=click.Path(dir_okay=False), help="Another menu file to check.")
def check_menu(path: str | None) -> None:
    """Validate the menu file against WeChat's limits (sends nothing)."""
    loaded = _load(path)
    click.echo(f"menu file version {loaded.version}: valid ({1 + len(loaded.conditional)} menus)")


@wechat_cli.command("push-menu")
@click.option("--force", is_flag=True, help="Push even what WeChat already shows.")
@click.option("--file", "path", type=click.Path(dir_okay=False), help="Another menu file to push.")
def push_menu(force: bool, path: str | None) -> None:
    """Push the default (student) menu, then the operators' conditional menu."""
    loaded = _load(path)
    with _calling_wechat():
        report = menus.push(wechat_client(), loaded, force=force)
    click.echo(f"menu file version {report.version}")
    for action in report.actions:
        click.echo(f"  {action}")


@wechat_cli.command("add-operator")
@click.argument("openid")
def add_operator(openid: str) -> None:
    """Tag OPENID as an operator at WeChat (conditional menu) and mark the user here."""
    with _calling_wechat():
        added = operators.add_operator(db.session, wechat_client(), openid)
    tag_note = "created" if added.tag_created else "exists"
    user_note = "new user row" if added.user_created else "existing user"
    tag = f"{operators.OPERATOR_TAG!r} (id {added.tag_id}, {tag_note})"
    click.echo(f"{openid} is an operator: tagged {tag}, {user_note}")
    click.echo("WeChat refreshes menus lazily: the operator menu may take a few minutes to appear.")
