"""`flask wechat ...`: push the menus, make operators."""

from __future__ import annotations

from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup
from wechatpy.exceptions import WeChatClientException

from app.extensions import db
from app.integrations import wechat_client
from app.services import menus, operators

wechat_cli = AppGroup("wechat", help="The WeChat account: menus and operators.")


def _refused(exc: WeChatClientException) -> click.ClickException:
    return click.ClickException(f"WeChat refused: errcode {exc.errcode}: {exc.errmsg}")


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
    try:
        report = menus.push(wechat_client(), loaded, force=force)
    except WeChatClientException as exc:
        raise _refused(exc) from None
    click.echo(f"menu file version {report.version}")
    for action in report.actions:
        click.echo(f"  {action}")


@wechat_cli.command("add-operator")
@click.argument("openid")
def add_operator(openid: str) -> None:
    """Tag OPENID as an operator at WeChat (conditional menu) and mark the user here."""
    try:
        added = operators.add_operator(db.session, wechat_client(), openid)
    except WeChatClientException as exc:
        raise _refused(exc) from None
    tag_note = "created" if added.tag_created else "exists"
    user_note = "new user row" if added.user_created else "existing user"
    tag = f"{operators.OPERATOR_TAG!r} (id {added.tag_id}, {tag_note})"
    click.echo(f"{openid} is an operator: tagged {tag}, {user_note}")
    click.echo("WeChat refreshes menus lazily: the operator menu may take a few minutes to appear.")
