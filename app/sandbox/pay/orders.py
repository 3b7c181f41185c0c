"""Payment orders as WeChat Pay keeps them: JSAPI and Native 下单, 查询订单, 关闭订单, and paying.

NOTPAY → SUCCESS (paid) / CLOSED (closed, or past time_expire) → REFUND (refunds.py).
https://pay.weixin.qq.com/doc/v3/merchant/4012791856 (JSAPI 下单) and its siblings.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
from typing import Any

from flask import Response, request
from redis import Redis

from app.integrations import redis_client
from app.sandbox import bp, store
from app.sandbox.pay import PREFIX
from app.sandbox.pay.merchant import Merchant
from app.sandbox.pay.notifications import enqueue_notification
from app.sandbox.pay.wire import answer, error, json_body, now_rfc3339, v3_api
from app.services.localtime import BEIJING

ORDERS = PREFIX + "orders"  # set of order keys (the trade bill scans it)
# WeChat Pay: out_trade_no is 6–32 characters of digits, letters, _-|*.
OUT_TRADE_NO = re.compile(r"^[0-9A-Za-z_\-|*]{6,32}$")


def order_key(mchid: str, out_trade_no: str) -> str:
    return f"{PREFIX}order:{mchid}:{out_trade_no}"


def get_order(r: Redis, mchid: str, out_trade_no: str, now: float | None = None) -> dict[str, Any] | None:
    """The order, with time_expire applied: an unpaid order past it is CLOSED from then on."""
    raw = r.get(order_key(mchid, out_trade_no))
    if raw is None:
        return None
    order: dict[str, Any] = json.loads(raw)
    now = store.now(r) if now is None else now
    if order["trade_state"] == "NOTPAY" and order.get("time_expire") and now > order["time_expire"]:
        with r.lock(order_key(mchid, out_trade_no) + ":lock", timeout=5, blocking_timeout=5):
            current = json.loads(r.get(order_key(mchid, out_trade_no)) or raw)
            if current["trade_state"] == "NOTPAY":
                current.update(trade_state="CLOSED", trade_state_desc="订单已关闭", closed_by="expiry")
                r.set(order_key(mchid, out_trade_no), json.dumps(current, ensure_ascii=False))
            order = current
    return order


def save_order(r: Redis, order: dict[str, Any]) -> None:
    key = order_key(order["mchid"], order["out_trade_no"])
    r.set(key, json.dumps(order, ensure_ascii=False))
    r.sadd(ORDERS, key)


def public_order(order: dict[str, Any]) -> dict[str, Any]:
    """The 查询订单 answer's shape."""
    shape: dict[str, Any] = {
        "appid": order["appid"],
        "mchid": order["mchid"],
        "out_trade_no": order["out_trade_no"],
        "trade_type": order["trade_type"],
        "trade_state": order["trade_state"],
        "trade_state_desc": order["trade_state_desc"],
        "attach": order.get("attach", ""),
        "amount": {"total": order["amount"]["total"], "currency": order["amount"]["currency"]},
    }
    if order.get("transaction_id"):
        shape["transaction_id"] = order["transaction_id"]
        shape["bank_type"] = "OTHERS"
        shape["success_time"] = order["success_time"]
        shape["payer"] = {"openid": order["payer_openid"]}
        shape["amount"].update(payer_total=order["amount"]["total"], payer_currency="CNY")
    return shape


def parse_rfc3339(value: Any) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment.timestamp() if moment.tzinfo else None


def _create(merchant: Merchant, trade_type: str) -> Response:
    data = json_body()
    if data is None:
        return error(400, "PARAM_ERROR", "请求体不是合法的 JSON")
    amount = data.get("amount") if isinstance(data.get("amount"), dict) else None
    total = amount.get("total") if amount else None
    problems = []
    if data.get("mchid") != merchant.mchid:
        return error(400, "MCH_NOT_EXISTS", "商户号不存在")
    if data.get("appid") != merchant.appid:
        return error(400, "APPID_MCHID_NOT_MATCH", "appid 和 mch_id 不匹配")
    if not isinstance(data.get("description"), str) or not 1 <= len(data["description"]) <= 127:
        problems.append("description")
    if not isinstance(data.get("out_trade_no"), str) or not OUT_TRADE_NO.match(data["out_trade_no"]):
        problems.append("out_trade_no")
    if not isinstance(data.get("notify_url"), str) or not re.match(
        r"^https?://[^?#\s]+$", data["notify_url"]
    ):
        problems.append("notify_url")
    if isinstance(total, bool) or not isinstance(total, int) or total < 1:
        problems.append("amount.total")
    if amount and amount.get("currency", "CNY") != "CNY":
        problems.append("amount.currency")
    payer = data.get("payer") if isinstance(data.get("payer"), dict) else {}
    if trade_type == "JSAPI" and not payer.get("openid"):
        problems.append("payer.openid")
    r = redis_client()
    expire = parse_rfc3339(data["time_expire"]) if "time_expire" in data else store.now(r) + 7200
    if expire is None:
        problems.append("time_expire")
    if problems:
        return error(400, "PARAM_ERROR", f"参数错误: {', '.join(problems)}")
    assert expire is not None
    if expire <= store.now(r) + 1:
        return error(400, "PARAM_ERROR", "time_expire 时间过短")
    key = order_key(merchant.mchid, data["out_trade_no"])
    with r.lock(key + ":lock", timeout=5, blocking_timeout=5):
        existing = get_order(r, merchant.mchid, data["out_trade_no"])
        request_fields = {
            "trade_type": trade_type,
            "description": data["description"],
            "total": total,
            "openid": payer.get("openid"),
        }
        if existing is not None:
            if existing["trade_state"] in ("SUCCESS", "REFUND"):
                return error(403, "ORDERPAID", "该订单已支付")
            if existing["trade_state"] == "CLOSED":
                return error(400, "ORDER_CLOSED", "订单已关闭")
            if existing["request_fields"] != request_fields:
                return error(400, "INVALID_REQUEST", "201 商户订单号重复")
            order = existing  # the same request again gets the same prepay_id / code_url
        else:
            order = {
                "appid": merchant.appid,
                "mchid": merchant.mchid,
                "out_trade_no": data["out_trade_no"],
                "description": data["description"],
                "notify_url": data["notify_url"],
                "attach": data.get("attach", ""),
                "amount": {"total": total, "currency": "CNY"},
                "payer_openid": payer.get("openid"),
                "trade_type": trade_type,
                "trade_state": "NOTPAY",
                "trade_state_desc": "订单未支付",
                "time_expire": expire,
                "created_at": store.now(r),
                "request_fields": request_fields,
                "prepay_id": "wx" + dt.datetime.now(BEIJING).strftime("%d%H%M%S") + secrets.token_hex(12),
                "code_token": secrets.token_urlsafe(12),
            }
            save_order(r, order)
            r.set(f"{PREFIX}prepay:{order['prepay_id']}", key, ex=7200)
            r.set(f"{PREFIX}code:{order['code_token']}", key, ex=7200)
    if trade_type == "JSAPI":
        return answer({"prepay_id": order["prepay_id"]}, merchant=merchant)
    return answer({"code_url": f"weixin://wxpay/bizpayurl?pr={order['code_token']}"}, merchant=merchant)


@bp.post("/pay/v3/pay/transactions/jsapi")
@v3_api
def pay_jsapi(merchant: Merchant) -> Response:
    return _create(merchant, "JSAPI")


@bp.post("/pay/v3/pay/transactions/native")
@v3_api
def pay_native(merchant: Merchant) -> Response:
    return _create(merchant, "NATIVE")


@bp.get("/pay/v3/pay/transactions/out-trade-no/<out_trade_no>")
@v3_api
def pay_query(merchant: Merchant, out_trade_no: str) -> Response:
    if request.args.get("mchid") != merchant.mchid:
        return error(400, "PARAM_ERROR", "mchid 参数错误")
    order = get_order(redis_client(), merchant.mchid, out_trade_no)
    if order is None:
        return error(404, "ORDER_NOT_EXIST", "订单不存在")
    return answer(public_order(order), merchant=merchant)


@bp.post("/pay/v3/pay/transactions/out-trade-no/<out_trade_no>/close")
@v3_api
def pay_close(merchant: Merchant, out_trade_no: str) -> Response:
    data = json_body()
    if data is None or data.get("mchid") != merchant.mchid:
        return error(400, "PARAM_ERROR", "mchid 参数错误")
    r = redis_client()
    key = order_key(merchant.mchid, out_trade_no)
    with r.lock(key + ":lock", timeout=5, blocking_timeout=5):
        order = get_order(r, merchant.mchid, out_trade_no)
        if order is None:
            return error(404, "ORDER_NOT_EXIST", "订单不存在")
        if order["trade_state"] in ("SUCCESS", "REFUND"):
            return error(403, "ORDERPAID", "订单已支付")
        if order["trade_state"] == "NOTPAY":
            order.update(trade_state="CLOSED", trade_state_desc="订单已关闭", closed_by="merchant")
            save_order(r, order)
    return answer(None, 204, merchant=merchant)


def mark_paid(r: Redis, mchid: str, out_trade_no: str, openid: str | None) -> tuple[int, dict[str, Any]]:
    """The user confirmed payment: NOTPAY → SUCCESS, and the notification is queued."""
    key = order_key(mchid, out_trade_no)
    with r.lock(key + ":lock", timeout=5, blocking_timeout=5):
        order = get_order(r, mchid, out_trade_no)
        if order is None:
            return 404, {"code": "ORDER_NOT_EXIST", "message": "订单不存在"}
        if order["trade_state"] in ("SUCCESS", "REFUND"):
            return 403, {"code": "ORDERPAID", "message": "该订单已支付"}
        if order["trade_state"] == "CLOSED":
            return 400, {"code": "ORDER_CLOSED", "message": "订单已关闭"}
        if order["trade_type"] == "JSAPI" and openid and openid != order["payer_openid"]:
            return 403, {"code": "PAYER_MISMATCH", "message": "支付验证失败：付款人与下单用户不一致"}
        payer = order["payer_openid"] or openid
        if not payer:
            return 400, {"code": "PARAM_ERROR", "message": "缺少付款用户 openid"}
        now = store.now(r)
        order.update(
            trade_state="SUCCESS",
            trade_state_desc="支付成功",
            payer_openid=payer,
            transaction_id="42000"
            + dt.datetime.now(BEIJING).strftime("%Y%m%d")
            + f"{secrets.randbelow(10**15):015d}",
            success_time=now_rfc3339(now),
            paid_at=now,
        )
        save_order(r, order)
    enqueue_notification(
        r,
        order["notify_url"],
        "TRANSACTION.SUCCESS",
        "transaction",
        "支付成功",
        {k: v for k, v in public_order(order).items()},
    )
    return 200, {
        "trade_state": "SUCCESS",
        "out_trade_no": out_trade_no,
        "transaction_id": order["transaction_id"],
    }
