"""`flask exams assign-seats SCHOOL_CODE BATCH_NAME` and `flask exams import-seats SCHOOL_CODE BATCH_NAME
FILE.csv`: seats and ticket numbers for a batch's candidates (docs/exams.md)."""

from __future__ import annotations

from pathlib import Path

import click
from flask.cli import AppGroup

from app.extensions import db
from app.integrations import pii_keyring
from app.services import seating
from app.services.seating import SeatImportError, SeatingError

exams_cli = AppGroup("exams", help="Exams: seats, rooms and admission tickets.")


@exams_cli.command("assign-seats")
@click.argument("school_code")
@click.argument("batch_name")
def assign_seats_command(school_code: str, batch_name: str) -> None:
    """Seat every candidate of the batch who has no seat yet (a second run keeps every seat)."""
    try:
        batch = seating.find_batch(db.session, school_code, batch_name)
        result = seating.assign(db.session, batch)
    except SeatingError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"「{batch.name}」：新安排 {result.seated} 人，已有座位 {result.kept} 人")
    for code, users in result.over_capacity.items():
        click.echo(
            f"考点 {code} 已满，未安排 {len(users)} 人（用户 id：{', '.join(map(str, users[:20]))}…）",
            err=True,
        )
    if result.unregistered:
        click.echo(f"未报考（没有选择考点）{len(result.unregistered)} 人，未安排", err=True)


@exams_cli.command("import-seats")
@click.argument("school_code")
@click.argument("batch_name")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_seats_command(school_code: str, batch_name: str, file: Path) -> None:
    """Seats the school assigned itself: CSV with id_number, site_code, room, seat; all or nothing."""
    try:
        batch = seating.find_batch(db.session, school_code, batch_name)
        result = seating.import_plan(db.session, pii_keyring(), batch, file.read_bytes())
    except SeatImportError as exc:
        for problem in exc.problems:
            click.echo(f"{file}: {problem}", err=True)
        raise click.ClickException(
            f"{len(exc.problems)} 处错误，未导入任何座位（nothing imported）"
        ) from None
    except SeatingError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"「{batch.name}」：导入 {result.seated} 个座位，{result.unchanged} 个未变")
