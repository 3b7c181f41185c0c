"""Refunds as WeChat Pay keeps them: 申请退款 and 查询单笔退款. A refund succeeds at once and its
REFUND.SUCCESS notification is queued.

https://pay.weixin.qq.com/doc/v3/merchant/4012791862 (退款申请)
"""

from __future__ import annotations

import json
import re
import secrets
from typing import Any

from flask import Response

from app.integrations import redis_client
from app.sandbox import bp, store
from app.sandbox.pay import PREFIX
from app.sandbox.pay.merchant import Merchant
from app.sandbox.pay.notifications import enqueue_notification
from app.sandbox.pay.orders import get_order, order_key, save_order
from app.sandbox.pay.wire import answer, error, json_body, now_rfc3339, v3_api

REFUNDS = PREFIX + "refunds"  # set of refund keys (the trade bill scans it)
# WeChat Pay: out_refund_no is 1-64 characters of digits, letters, _-|*@.
OUT_REFUND_NO = re.compile(r"^[0-9A-Za-z_\-|*@]{1,64}$")


def refund_key(mchid: str, out_refund_no: str) -> str:
    return f"{PREFIX}refund:{mchid}:{out_refund_no}"


def public_refund(refund: dict[str, Any]) -> dict[str, Any]:
    shape = {k: refund[k] for k in ("refund_id", "out_refund_no", "transaction_id", "out_trade_no")}
    shape.update(
        channel="ORIGINAL",
        user_received_account="支付用户零钱",
        create_time=refund["create_time"],
        status=refund["status"],
        funds_account="AVAILABLE",
        amount={
            "total": refund["total"],
            "refund": refund["refund"],
            "payer_total": refund["total"],
            "payer_refund": refund["refund"],
            "settlement_refund": refund["refund"],
            "settlement_total": refund["total"],
            "discount_refund": 0,
            "currency": "CNY",
        },
    )
    if refund.get("success_time"):
        shape["success_time"] = refund["success_time"]
    return shape


@bp.post("/pay/v3/refund/domestic/refunds")
@v3_api
def refund_create(merchant: Merchant) -> Response:
    data = json_body()
    if data is None:
        return error(400, "PARAM_ERROR", "请求体不是合法的 JSON")
    amount = data.get("amount") if isinstance(data.get("amount"), dict) else {}
    refund_fen, total_fen = amount.get("refund"), amount.get("total")
    if not isinstance(data.get("out_refund_no"), str) or not OUT_REFUND_NO.match(data["out_refund_no"]):
        return error(400, "PARAM_ERROR", "out_refund_no 参数错误")
    if any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in (refund_fen, total_fen)):
        return error(400, "PARAM_ERROR", "amount 参数错误")
    r = redis_client()
    out_trade_no = data.get("out_trade_no")
    if not isinstance(out_trade_no, str):
        return error(400, "PARAM_ERROR", "缺少 out_trade_no")
    okey = order_key(merchant.mchid, out_trade_no)
    with r.lock(okey + ":lock", timeout=5, blocking_timeout=5):
        order = get_order(r, merchant.mchid, out_trade_no)
        if order is None:
            return error(404, "RESOURCE_NOT_EXISTS", "订单不存在")
        if order["trade_state"] not in ("SUCCESS", "REFUND"):
            return error(400, "INVALID_REQUEST", "订单未支付，不能退款")
        if total_fen != order["amount"]["total"]:
            return error(400, "INVALID_REQUEST", "订单金额与原订单不一致")
        rkey = refund_key(merchant.mchid, data["out_refund_no"])
        existing = r.get(rkey)
        if existing:
            refund = json.loads(existing)
            if refund["refund"] != refund_fen or refund["out_trade_no"] != out_trade_no:
                return error(400, "INVALID_REQUEST", "退款单号重复，且金额或订单不一致")
            return answer(public_refund(refund), merchant=merchant)
        refunded = int(order.get("refunded", 0))
        if refund_fen > total_fen - refunded:
            return error(403, "NOT_ENOUGH", "申请退款金额超过订单可退金额")
        now = store.now(r)
        refund = {
            "mchid": merchant.mchid,
            "refund_id": "50300" + f"{secrets.randbelow(10**24):024d}",
            "out_refund_no": data["out_refund_no"],
            "transaction_id": order["transaction_id"],
            "out_trade_no": out_trade_no,
            "reason": data.get("reason", ""),
            "create_time": now_rfc3339(now),
            "status": "PROCESSING",
            "refund": refund_fen,
            "total": total_fen,
        }
        processing = public_refund(refund)  # WeChat Pay answers PROCESSING; the money moves right after
        refund.update(status="SUCCESS", success_time=now_rfc3339(now), succeeded_at=now)
        r.set(rkey, json.dumps(refund, ensure_ascii=False))
        r.sadd(REFUNDS, rkey)
        order.update(refunded=refunded + refund_fen, trade_state="REFUND", trade_state_desc="订单发生过退款")
        save_order(r, order)
    notify_url = data.get("notify_url") or order["notify_url"]
    enqueue_notification(
        r,
        notify_url,
        "REFUND.SUCCESS",
        "refund",
        "退款成功",
        {
            "mchid": merchant.mchid,
            "out_trade_no": out_trade_no,
            "transaction_id": order["transaction_id"],
            "out_refund_no": refund["out_refund_no"],
            "refund_id": refund["refund_id"],
            "refund_status": "SUCCESS",
            "success_time": refund["success_time"],
            "user_received_account": "支付用户零钱",
            "amount": {
                "total": total_fen,
                "refund": refund_fen,
                "payer_total": total_fen,
                "payer_refund": refund_fen,
            },
        },
    )
    return answer(processing, merchant=merchant)


@bp.get("/pay/v3/refund/domestic/refunds/<out_refund_no>")
@v3_api
def refund_query(merchant: Merchant, out_refund_no: str) -> Response:
    raw = redis_client().get(refund_key(merchant.mchid, out_refund_no))
    if raw is None:
        return error(404, "RESOURCE_NOT_EXISTS", "退款单不存在")
    return answer(public_refund(json.loads(raw)), merchant=merchant)
