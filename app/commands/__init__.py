"""Command-line entry points (`flask worker`, `flask demo load`, `flask wechat ...`): one module per group.

Commands parse their arguments, call a service and print; the rules live in app/services.
"""

from __future__ import annotations

from flask import Flask


def register_cli(app: Flask) -> None:
    from app.commands.batches import batches_cli
    from app.commands.demo import demo_cli
    from app.commands.exams import exams_cli
    from app.commands.pay import pay_cli
    from app.commands.pii import pii_cli
    from app.commands.schools import schools_cli
    from app.commands.staff import staff_cli
    from app.commands.wechat import wechat_cli
    from app.commands.worker import worker_command

    app.cli.add_command(worker_command)
    app.cli.add_command(demo_cli)
    app.cli.add_command(pii_cli)
    app.cli.add_command(wechat_cli)
    app.cli.add_command(schools_cli)
    app.cli.add_command(pay_cli)
    app.cli.add_command(staff_cli)
    app.cli.add_command(batches_cli)
    app.cli.add_command(exams_cli)
