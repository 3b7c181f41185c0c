"""The trade bill (交易账单, bill_type=ALL): 申请交易账单 and its download, in WeChat Pay's CSV form.

The columns are restated here from WeChat Pay's documentation, not taken from the service's parser,
so a wrong column list cannot pass on both sides.
https://pay.weixin.qq.com/doc/v3/merchant/4012085994 (交易账单格式)
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import hashlib
import io
import json
import secrets
from typing import Any

from flask import Response, request
from redis import Redis

from app.integrations import redis_client
from app.sandbox import bp
from app.sandbox.pay import PREFIX
from app.sandbox.pay.merchant import Merchant
from app.sandbox.pay.orders import ORDERS, order_key
from app.sandbox.pay.refunds import REFUNDS
from app.sandbox.pay.wire import answer, error, v3_api
from app.services.localtime import BEIJING

BILL_COLUMNS = (
    "交易时间",
    "公众账号ID",
    "商户号",
    "特约商户号",
    "设备号",
    "微信订单号",
    "商户订单号",
    "用户标识",
    "交易类型",
    "交易状态",
    "付款银行",
    "货币种类",
    "应结订单金额",
    "代金券金额",
    "微信退款单号",
    "商户退款单号",
    "退款金额",
    "充值券退款金额",
    "退款类型",
    "退款状态",
    "商品名称",
    "商户数据包",
    "手续费",
    "费率",
    "订单金额",
    "申请退款金额",
    "费率备注",
)


def _yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


def build_trade_bill(r: Redis, mchid: str, day: dt.date) -> str | None:
    """The day's trade bill (bill_type=ALL) in WeChat Pay's CSV form, or None if nothing happened."""
    lines: list[list[str]] = []
    settled = refunded = 0
    for key in sorted(r.smembers(ORDERS)):
        raw = r.get(key)
        order = json.loads(raw) if raw else None
        if not order or order["mchid"] != mchid or not order.get("paid_at"):
            continue
        paid = dt.datetime.fromtimestamp(order["paid_at"], BEIJING)
        if paid.date() != day:
            continue
        total = order["amount"]["total"]
        settled += total
        lines.append(_bill_line(order, paid, "SUCCESS", total, "", "", 0, "", total, 0))
    for key in sorted(r.smembers(REFUNDS)):
        raw = r.get(key)
        refund = json.loads(raw) if raw else None
        if not refund or refund["mchid"] != mchid or not refund.get("succeeded_at"):
            continue
        when = dt.datetime.fromtimestamp(refund["succeeded_at"], BEIJING)
        if when.date() != day:
            continue
        order = json.loads(r.get(order_key(mchid, refund["out_trade_no"])) or "{}")
        refunded += refund["refund"]
        lines.append(
            _bill_line(
                order, when, "REFUND", 0, refund["refund_id"], refund["out_refund_no"],
                refund["refund"], "SUCCESS", refund["total"], refund["refund"],
            )
        )  # fmt: skip
    if not lines:
        return None
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(BILL_COLUMNS)
    writer.writerows(lines)
    writer.writerow(
        [
            "总交易单数",
            "应结订单总金额",
            "退款总金额",
            "充值券退款总金额",
            "手续费总金额",
            "订单总金额",
            "申请退款总金额",
        ]
    )
    totals = (
        str(len(lines)),
        _yuan(settled),
        _yuan(refunded),
        "0.00",
        "0.00",
        _yuan(settled),
        _yuan(refunded),
    )
    writer.writerow(["`" + v for v in totals])
    return out.getvalue()


def _bill_line(
    order: dict[str, Any], when: dt.datetime, state: str, settle: int, refund_id: str, out_refund_no: str,
    refund: int, refund_status: str, order_fen: int, refund_applied: int,
) -> list[str]:  # fmt: skip
    values = [
        when.strftime("%Y-%m-%d %H:%M:%S"), order.get("appid", ""), order.get("mchid", ""), "0", "",
        order.get("transaction_id", ""), order.get("out_trade_no", ""), order.get("payer_openid") or "",
        order.get("trade_type", ""), state, "OTHERS", "CNY", _yuan(settle), "0.00", refund_id, out_refund_no,
        _yuan(refund), "0.00", "ORIGINAL" if refund_id else "", refund_status, order.get("description", ""),
        order.get("attach", ""), "0.00", "0.60%", _yuan(order_fen), _yuan(refund_applied), "",
    ]  # fmt: skip
    return ["`" + v for v in values]


@bp.get("/pay/v3/bill/tradebill")
@v3_api
def trade_bill(merchant: Merchant) -> Response:
    try:
        day = dt.date.fromisoformat(request.args.get("bill_date", ""))
    except ValueError:
        return error(400, "PARAM_ERROR", "bill_date 格式应为 YYYY-MM-DD")
    if request.args.get("bill_type", "ALL") != "ALL":
        return error(400, "PARAM_ERROR", "沙箱只提供 bill_type=ALL")
    # Unlike WeChat Pay (a day's bill is ready the next morning) the sandbox also serves today.
    r = redis_client()
    text = build_trade_bill(r, merchant.mchid, day)
    if text is None:
        return error(400, "NO_STATEMENT_EXIST", "账单不存在")
    data = text.encode("utf-8")
    token = secrets.token_urlsafe(16)
    gz = request.args.get("tar_type") == "GZIP"
    r.set(f"{PREFIX}bill:{token}", json.dumps({"text": text, "gzip": gz}), ex=300)
    base = request.host_url.rstrip("/") + (bp.url_prefix or "") + "/pay"
    return answer(
        {
            "hash_type": "SHA1",
            "hash_value": hashlib.sha1(data, usedforsecurity=False).hexdigest(),
            "download_url": f"{base}/v3/billdownload/file?token={token}",
        },
        merchant=merchant,
    )


@bp.get("/pay/v3/billdownload/file")
@v3_api
def bill_download(merchant: Merchant) -> Response:
    raw = redis_client().get(f"{PREFIX}bill:{request.args.get('token', '')}")
    if raw is None:
        return error(400, "INVALID_REQUEST", "下载链接已过期")
    bill = json.loads(raw)
    data = bill["text"].encode("utf-8")
    # The file itself is not signed; the client checks it against hash_value.
    return Response(gzip.compress(data) if bill["gzip"] else data, mimetype="application/octet-stream")
