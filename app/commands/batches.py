"""`flask batches import FILE…`: attach sign-up forms and document slots to batches."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click
from flask.cli import AppGroup

from app.extensions import db
from app.services import applications
from app.services.batch_forms import Definition, DefinitionError
from models import Batch

batches_cli = AppGroup("batches", help="Batches: sign-up forms and document slots.")


@batches_cli.command("import")
@click.argument(
    "files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option("--check", is_flag=True, help="Only check the files; write nothing.")
def import_command(files: tuple[Path, ...], check: bool) -> None:
    """Attach each FILE's form and document slots (YAML or JSON, docs/batch-forms.md) to the batch it
    names. All files are imported or, if any is wrong, none."""
    pairs: list[tuple[Batch, Definition]] = []
    failed = 0
    for file in files:
        try:
            pairs.append(applications.prepare(db.session, file.read_bytes()))
        except DefinitionError as exc:
            failed += 1
            for problem in exc.problems:
                click.echo(f"{file}: {problem}", err=True)
    if failed:
        db.session.rollback()
        raise click.ClickException(f"{failed} 个文件有错误，未导入任何定义（nothing imported）")
    for file, (batch, definition) in zip(files, pairs, strict=True):
        sizes = f"{len(definition.fields())} 个字段，{len(definition.documents)} 项材料"
        click.echo(f"{file}: {definition.school}「{batch.name}」：{sizes}")
    if check:
        click.echo("检查通过（未写入）")
        return
    applications.apply(db.session, pairs, datetime.now(UTC))
    click.echo(f"已导入 {len(pairs)} 个批次的定义")
