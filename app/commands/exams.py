"""`flask exams ...`: a batch's exam catalogue (import-catalog), the exam office's cancellation of a
course with its partial refunds (cancel-course), and the candidates' seats and ticket numbers
(assign-seats, import-seats). docs/exams.md."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click
from flask.cli import AppGroup
from sqlalchemy import select

from app.extensions import db
from app.integrations import pii_keyring
from app.services import exam_catalog, exam_registrations, seating, wording
from app.services.errors import ServiceError
from app.services.seating import SeatImportError, SeatingError
from models import Batch, School

exams_cli = AppGroup(
    "exams", help="Exam sign-up: catalogue import, course cancellation, seats and admission tickets."
)

CSV = click.Path(exists=True, dir_okay=False, path_type=Path)


@exams_cli.command("import-catalog")
@click.argument("school_code")
@click.argument("batch_name")
@click.argument("directory", required=False, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--sites", type=CSV, help="sites.csv (instead of DIRECTORY)")
@click.option("--majors", type=CSV, help="majors.csv (instead of DIRECTORY; optional)")
@click.option("--courses", type=CSV, help="courses.csv (instead of DIRECTORY)")
@click.option("--check", is_flag=True, help="Only check the files; write nothing.")
def import_catalog(
    school_code: str,
    batch_name: str,
    directory: Path | None,
    sites: Path | None,
    majors: Path | None,
    courses: Path | None,
    check: bool,
) -> None:
    """Replace a batch's catalogue with sites.csv, majors.csv and courses.csv (from DIRECTORY or one
    option per file). All files are imported or, if any row is wrong, none; refused once candidates
    have registered against the current catalogue."""
    files = exam_catalog.read_dir(directory) if directory is not None else {}
    for kind, path in (
        (exam_catalog.SITES, sites),
        (exam_catalog.MAJORS, majors),
        (exam_catalog.COURSES, courses),
    ):
        if path is not None:
            files[kind] = path.read_bytes()
    if not files:
        raise click.UsageError("give DIRECTORY or --sites and --courses")
    try:
        if check:
            catalog = exam_catalog.parse(files)
            click.echo(
                f"检查通过（未写入）：考点 {len(catalog.sites)} 个，专业 {len(catalog.majors)} 个，"
                f"课程 {len(catalog.courses)} 门"
            )
            return
        result = exam_catalog.import_files(db.session, school_code, batch_name, files)
    except exam_catalog.CatalogFileError as exc:
        for error in exc.errors:
            click.echo(str(error), err=True)
        raise click.ClickException(f"{len(exc.errors)} 处错误，未导入任何数据") from None
    except ServiceError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"{school_code}「{batch_name}」{exam_catalog.summary(result)}")


def _batch(ref: str) -> Batch:
    """A batch by id, or by SCHOOL_CODE:BATCH_NAME."""
    if ref.isdigit():
        batch = db.session.get(Batch, int(ref))
    else:
        code, _, name = ref.partition(":")
        batch = db.session.scalar(select(Batch).join(School).where(School.code == code, Batch.name == name))
    if batch is None:
        raise click.ClickException(f"找不到批次 {ref}（批次 id，或 学校代码:批次名称）")
    return batch


@exams_cli.command("cancel-course")
@click.argument("batch")
@click.argument("course_code")
@click.option("--reason", default="", help="Why, as the candidates read it (80 characters at most).")
def cancel_course(batch: str, course_code: str, reason: str) -> None:
    """Cancel a course of BATCH (its id, or SCHOOL_CODE:BATCH_NAME) and refund its fee to every paid
    candidate holding it (WeChat Pay's partial refund of their order). Running it again refunds nothing
    more."""
    found = _batch(batch)
    try:
        result = exam_registrations.cancel_course(
            db.session, found, course_code, reason, "exam-office", datetime.now(UTC)
        )
    except ServiceError as exc:
        raise click.ClickException(exc.message) from None
    state = "此前已取消" if result.already else "已取消"
    click.echo(f"课程 {result.course_code}「{result.course_name}」{state}")
    click.echo(
        f"退款 {result.refunds} 笔，共 {wording.yuan(result.refunded_fen)}；"
        f"未下单的报考 {result.unpaid} 份已去掉该课程"
    )
    if result.awaiting:
        click.echo(f"已下单未缴费 {result.awaiting} 份：缴费后请再运行本命令退费")


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
