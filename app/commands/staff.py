"""`flask staff ...`: staff accounts (reviewers see their schools, admins all). Passwords are
typed twice at a hidden prompt, or read from stdin with --password-stdin for scripts; never echoed
and never taken as an argument (it would land in the shell history and the process list)."""

from __future__ import annotations

import sys

import click
from flask.cli import AppGroup

from app.extensions import db
from app.integrations import redis_client
from app.services import staff as staff_service
from app.services.errors import ServiceError
from models import StaffRole

staff_cli = AppGroup("staff", help="Staff accounts for the review pages.")

STDIN_HELP = "Read the password from the first line of stdin (for scripts)."


def _password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise click.ClickException("no password on stdin")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt="Repeat password")
    if len(password) < staff_service.MIN_PASSWORD_LENGTH:
        raise click.ClickException(
            f"password too short: at least {staff_service.MIN_PASSWORD_LENGTH} characters"
        )
    if len(password) > staff_service.MAX_PASSWORD_LENGTH:
        raise click.ClickException(
            f"password too long: at most {staff_service.MAX_PASSWORD_LENGTH} characters"
        )
    return password


@staff_cli.command("create")
@click.argument("username")
@click.option("--role", type=click.Choice([r.value for r in StaffRole]), required=True)
@click.option("--school", "schools", multiple=True, metavar="CODE", help="A school code (repeat for more).")
@click.option("--password-stdin", is_flag=True, help=STDIN_HELP)
def create_command(username: str, role: str, schools: tuple[str, ...], password_stdin: bool) -> None:
    """Create a staff account; reviewers need at least one --school."""
    password = _password(password_stdin)
    try:
        staff = staff_service.create(db.session, username, password, StaffRole(role), schools)
    except ServiceError as exc:
        raise click.ClickException(exc.message) from None
    where = "、".join(schools) if schools else "全部学校"
    click.echo(f"已创建 {staff.username}（{role}，{where}）")


@staff_cli.command("list")
def list_command() -> None:
    """List the accounts with their role, state and schools."""
    accounts = staff_service.list_all(db.session)
    if not accounts:
        click.echo("（没有员工账号）")
        return
    for staff in accounts:
        state = "active" if staff.is_active else "inactive"
        schools = ",".join(sorted(s.code for s in staff.schools)) or ("*" if staff.role == "admin" else "-")
        click.echo(f"{staff.username:<24} {staff.role:<9} {state:<9} {schools}")


@staff_cli.command("set-password")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help=STDIN_HELP)
def set_password_command(username: str, password_stdin: bool) -> None:
    """Set a new password (signs the account out everywhere and lifts its lockout)."""
    try:
        staff_service.get_by_username(db.session, username)
        password = _password(password_stdin)
        staff = staff_service.change_password(db.session, redis_client(), username, password)
    except ServiceError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"已更新 {staff.username} 的密码")


@staff_cli.command("deactivate")
@click.argument("username")
def deactivate_command(username: str) -> None:
    """Stop an account from signing in (its open sessions end at their next request)."""
    try:
        staff = staff_service.deactivate(db.session, username)
    except ServiceError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"已停用 {staff.username}")
