"""`flask pay ...`: reconcile a day against WeChat Pay's trade bill; an admin's manual refund."""

from __future__ import annotations

import unicodedata
from datetime import date

import click
from flask.cli import AppGroup

from app.extensions import db
from app.integrations import pay_client
from app.integrations.wechat_pay import PayError
from app.services import payments, reconciliation

pay_cli = AppGroup("pay", help="WeChat Pay: reconciliation and manual refunds.")


def _width(text: str) -> int:
    # Chinese characters take two columns in a terminal.
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    widths = [max(_width(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = []
    for row in [header, *rows]:
        lines.append(
            "  ".join(cell + " " * (widths[i] - _width(cell)) for i, cell in enumerate(row)).rstrip()
        )
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


@pay_cli.command("reconcile")
@click.argument("day", metavar="DATE")
def reconcile_command(day: str) -> None:
    """Compare DATE's (YYYY-MM-DD, Beijing time) orders and refunds with WeChat Pay's trade bill.

    Exits 1 when anything differs, 0 when both sides agree.
    """
    try:
        bill_day = date.fromisoformat(day)
    except ValueError:
        raise click.BadParameter("应为 YYYY-MM-DD，例如 2026-11-23", param_hint="DATE") from None
    try:
        bill = pay_client().trade_bill(bill_day)
    except PayError as exc:
        raise click.ClickException(f"下载交易账单失败：{exc.code} {exc.message}") from None
    differences = reconciliation.reconcile(db.session, bill_day, bill)
    paid = sum(1 for row in bill if row.trade_state == "SUCCESS")
    refunded = sum(1 for row in bill if row.trade_state == "REFUND")
    click.echo(f"{bill_day} 交易账单：支付 {paid} 笔，退款 {refunded} 笔")
    if not differences:
        click.echo("对账结果：无差异")
        return
    rows = [(d.kind, d.number, d.ours, d.theirs, d.problem) for d in differences]
    click.echo(_table(("类型", "单号", "我方", "微信支付", "差异"), rows))
    click.echo(f"对账结果：{len(differences)} 处差异")
    raise SystemExit(1)


@pay_cli.command("refund")
@click.argument("out_trade_no")
@click.option("--reason", required=True, help="退款原因（学生会看到）")
def refund_command(out_trade_no: str, reason: str) -> None:
    """Refund a paid order in full (the worker sends it to WeChat Pay)."""
    try:
        done = payments.request_refund(db.session, out_trade_no, reason, requested_by="staff:cli")
    except payments.UnknownOrderError:
        raise click.ClickException(f"订单 {out_trade_no} 不存在") from None
    except payments.RefundRefusedError as exc:
        raise click.ClickException(f"订单 {out_trade_no} 不能退款：{exc.message}") from None
    click.echo(
        f"已创建退款单 {done.out_refund_no}：订单 {done.out_trade_no}，"
        f"金额 {done.amount_fen / 100:.2f} 元，提交 #{done.submission_id} 已标记为已退款；"
        "后台任务将向微信支付发起退款。"
    )
