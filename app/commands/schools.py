"""`flask schools ...`: import schools and batches from CSV, make per-school QR codes."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click
import requests
from flask import current_app
from flask.cli import AppGroup
from wechatpy.exceptions import WeChatClientException

from app.extensions import db
from app.integrations import wechat_client
from app.services import school_import, school_qrcodes, schools
from app.services.localtime import BEIJING

schools_cli = AppGroup("schools", help="Schools and batches: CSV import, per-school QR codes.")


@schools_cli.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--check", is_flag=True, help="Only check the file; write nothing.")
def import_command(file: Path, check: bool) -> None:
    """Import schools and batches from a CSV file.

    Columns: docs/schools-csv.md. All rows are imported or, if any row is wrong, none.
    """
    content = file.read_bytes()
    try:
        if check:
            rows = school_import.parse(content)
            click.echo(f"{file}: {len(rows)} 行，检查通过（未写入）")
            return
        result = school_import.import_csv(db.session, content)
    except school_import.ImportFileError as exc:
        for error in exc.errors:
            click.echo(str(error), err=True)
        raise click.ClickException(f"{file}: {len(exc.errors)} 处错误，未导入任何数据") from None
    click.echo(f"{file}: {school_import.summary(result)}")


@schools_cli.command("qrcode")
@click.argument("code")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the PNG (default: var/qrcodes/<CODE>.png, var being MEDIA_ROOT's parent).",
)
@click.option(
    "--days",
    type=click.IntRange(1, school_qrcodes.MAX_DAYS),
    default=school_qrcodes.MAX_DAYS,
    show_default=True,
    help="How long the code stays valid (WeChat's temporary codes: at most 30 days).",
)
def qrcode_command(code: str, out: Path | None, days: int) -> None:
    """Make a school's WeChat QR code (PNG).

    A temporary code with scene school:CODE: following or scanning through it pre-selects the school.
    """
    target = out or Path(current_app.config["MEDIA_ROOT"]).parent / "qrcodes" / f"{code}.png"
    try:
        made = school_qrcodes.create(db.session, wechat_client(), code, target, days, datetime.now(UTC))
    except schools.SchoolNotFoundError:
        raise click.ClickException(f"没有代码为 {code} 的学校（先用 flask schools import 导入）") from None
    except school_qrcodes.QRCodeError as exc:
        raise click.ClickException(exc.message) from None
    except WeChatClientException as exc:
        raise click.ClickException(f"WeChat refused: errcode {exc.errcode}: {exc.errmsg}") from None
    except requests.RequestException as exc:
        raise click.ClickException(f"WeChat unreachable: {exc}") from None
    expires = made.expires_at.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M")
    click.echo(f"{made.school_name}（{made.school_code}）的二维码：{made.path}")
    click.echo(f"场景值 {made.scene}，有效期至 {expires}（北京时间）")
    click.echo(f"二维码内容 {made.url}")
