"""WeChat Pay's trade bill (交易账单): its columns and a parser into typed rows.

https://pay.weixin.qq.com/doc/v3/merchant/4012085994 (交易账单格式)
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from app.services.localtime import BEIJING


@dataclass(frozen=True)
class BillRow:
    """One line of the trade bill (交易账单, bill_type=ALL). Amounts in fen."""

    trade_time: datetime
    appid: str
    mchid: str
    transaction_id: str
    out_trade_no: str
    openid: str
    trade_type: str
    trade_state: str  # SUCCESS or REFUND (a refund line)
    currency: str
    settlement_fen: int  # 应结订单金额
    refund_id: str
    out_refund_no: str
    refund_fen: int
    refund_status: str
    description: str
    fee_fen_text: str  # 手续费 as printed (fractions of a fen are possible there)
    order_fen: int  # 订单金额


def yuan_to_fen(text: str) -> int:
    """Bills print yuan with two decimals ("0.02"); money stays exact as integer fen."""
    fen = Decimal(text.strip() or "0") * 100
    if fen != fen.to_integral_value():
        raise ValueError(f"not a whole number of fen: {text!r}")
    return int(fen)


def parse_trade_bill(text: str) -> list[BillRow]:
    """Rows of a bill_type=ALL trade bill. Every value is prefixed with "`"; totals follow the rows.

    https://pay.weixin.qq.com/doc/v3/merchant/4012085994 (交易账单格式)
    """
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return []
    header = next(csv.reader([lines[0]]))
    index = {name.strip(): i for i, name in enumerate(header)}
    missing = [
        c for c in ("交易时间", "微信订单号", "商户订单号", "交易状态", "应结订单金额") if c not in index
    ]
    if missing:
        raise ValueError(f"not a trade bill: missing columns {missing}")
    rows: list[BillRow] = []
    for line in lines[1:]:
        if line.startswith("总交易单数"):
            break  # the totals section
        values = [v.strip().lstrip("`") for v in next(csv.reader([line]))]

        def col(name: str, values: list[str] = values) -> str:
            i = index.get(name)
            return values[i] if i is not None and i < len(values) else ""

        rows.append(
            BillRow(
                trade_time=datetime.strptime(col("交易时间"), "%Y-%m-%d %H:%M:%S").replace(tzinfo=BEIJING),
                appid=col("公众账号ID"),
                mchid=col("商户号"),
                transaction_id=col("微信订单号"),
                out_trade_no=col("商户订单号"),
                openid=col("用户标识"),
                trade_type=col("交易类型"),
                trade_state=col("交易状态"),
                currency=col("货币种类"),
                settlement_fen=yuan_to_fen(col("应结订单金额")),
                refund_id=col("微信退款单号"),
                out_refund_no=col("商户退款单号"),
                refund_fen=yuan_to_fen(col("退款金额")),
                refund_status=col("退款状态"),
                description=col("商品名称"),
                fee_fen_text=col("手续费"),
                order_fen=yuan_to_fen(col("订单金额")),
            )
        )
    return rows
