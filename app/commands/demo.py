"""`flask demo load`: demo schools, batches and admin (app/services/demo_data.py), then where to go."""

from __future__ import annotations

import secrets
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup

from app.extensions import db
from app.services import demo_data

demo_cli = AppGroup("demo", help="Demo data for trying the service out.")

PAGES = [
    ("WeChat sandbox phone", "/_sandbox/"),
    ("Student H5 pages", "/h5/"),
    ("Staff review", "/review/"),
    ("API (OpenAPI)", "/api/v1/openapi.json"),
    ("Health", "/healthz"),
    ("Readiness", "/readyz"),
]


def _demo_password() -> tuple[str, str]:
    """The configured password, else the one generated earlier (var/), else a new one."""
    configured: str = current_app.config["DEMO_STAFF_PASSWORD"]
    if configured:
        return configured, "DEMO_STAFF_PASSWORD"
    path = Path(current_app.config["MEDIA_ROOT"]).parent / "demo-admin-password"
    if path.exists():
        return path.read_text().strip(), str(path)
    password = secrets.token_urlsafe(12)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(password + "\n")
    return password, f"generated, saved in {path}"


@demo_cli.command("load")
@click.option(
    "--without-forms",
    is_flag=True,
    help="Make the demo batches photo-only: no example sign-up forms and document slots (taken off "
    "again after a load with them).",
)
def load(without_forms: bool) -> None:
    """Load the demo schools, batches (with their example forms) and staff admin (idempotent), then print
    where to go."""
    password, source = _demo_password()
    push_menu = current_app.config["SANDBOX"]
    lines = demo_data.load(db.session, password, push_menu=push_menu, forms=not without_forms)
    base: str = current_app.config["PUBLIC_BASE_URL"]
    served = {rule.rule for rule in current_app.url_map.iter_rules()}
    click.echo("\n".join(["", "演示数据已载入（学校与批次）：", *lines, "", "Open:"]))
    settings = current_app.config["SETTINGS"]
    if settings.sandbox_separate:  # the emulator's own process, on its own port
        click.echo(f"  {'WeChat sandbox phone':<22}{settings.sandbox_base}/   (the emulator, SANDBOX_URL)")
    for label, path in PAGES:
        if path in served:  # list only what this build serves
            click.echo(f"  {label:<22}{base}{path}")
    click.echo(f"Demo staff login: {demo_data.ADMIN_USERNAME} / {password}   ({source})\n")
