"""The phone's side of the emulated WeChat Pay, and controls that are the sandbox's own (not WeChat
Pay's): the pay sheet and scanning a Native code, order and prepay look-ups, faults, delivering
notifications on a chosen clock, the delivery log.
"""

from __future__ import annotations

import base64
import hmac
import re
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from flask import Response, current_app, jsonify, render_template, request

from app.integrations import redis_client
from app.sandbox import bp
from app.sandbox.pay import PREFIX
from app.sandbox.pay.faults import FAULT_NAMES, FAULTS, set_faults
from app.sandbox.pay.merchant import current_merchant
from app.sandbox.pay.notifications import DUE, deliver_due_notifications, deliveries
from app.sandbox.pay.orders import get_order, mark_paid


def _user_json() -> dict[str, Any]:
    data = request.get_json(silent=True)
    return data if isinstance(data, dict) else {}


@bp.post("/pay/<out_trade_no>")
def pay_action(out_trade_no: str) -> tuple[Response, int]:
    """The phone's pay sheet: {"action": "pay"} pays as the order's payer; "cancel" closes the sheet."""
    data = _user_json()
    r = redis_client()
    mchid = current_merchant().mchid
    action = data.get("action")
    openid = data.get("openid") or request.cookies.get("sandbox_phone_user")
    if action == "cancel":
        order = get_order(r, mchid, out_trade_no)
        if order is None:
            return jsonify(code="ORDER_NOT_EXIST", message="订单不存在"), 404
        return jsonify(trade_state=order["trade_state"], out_trade_no=out_trade_no, err_msg="cancel"), 200
    if action != "pay":
        return jsonify(code="PARAM_ERROR", message='action 应为 "pay" 或 "cancel"'), 400
    status, answer = mark_paid(r, mchid, out_trade_no, openid if isinstance(openid, str) else None)
    return jsonify(answer), status


@bp.post("/pay/scan")
def pay_scan() -> tuple[Response, int]:
    """Scan a Native code_url with the phone as `openid` and pay it."""
    data = _user_json()
    code_url, openid = data.get("code_url"), data.get("openid") or request.cookies.get("sandbox_phone_user")
    match = re.match(r"^weixin://wxpay/bizpayurl\?pr=([\w-]+)$", code_url or "")
    if not match or not isinstance(openid, str) or not openid:
        return jsonify(code="PARAM_ERROR", message="需要 code_url 与 openid"), 400
    r = redis_client()
    key = r.get(f"{PREFIX}code:{match.group(1)}")
    if key is None:
        return jsonify(code="ORDER_NOT_EXIST", message="二维码无效或已过期"), 404
    _, mchid, out_trade_no = key.rsplit(":", 2)
    status, answer = mark_paid(r, mchid, out_trade_no, openid)
    return jsonify(answer), status


@bp.get("/pay/_ctl/prepay/<prepay_id>")
def prepay_info(prepay_id: str) -> tuple[Response, int]:
    """What the pay sheet shows for a JSAPI invocation; checks paySign as WeChat's client does."""
    r = redis_client()
    key = r.get(f"{PREFIX}prepay:{prepay_id}")
    if key is None:
        return jsonify(code="ORDER_NOT_EXIST", message="prepay_id 无效或已过期"), 404
    merchant = current_merchant()
    args = request.args
    if "paySign" in args:
        message = "".join(
            f"{args.get(k, '')}\n" for k in ("appId", "timeStamp", "nonceStr", "package")
        ).encode()
        try:
            merchant.public_key.verify(
                base64.b64decode(args["paySign"]), message, padding.PKCS1v15(), hashes.SHA256()
            )
            good = (
                hmac.compare_digest(args.get("package", ""), f"prepay_id={prepay_id}")
                and args.get("appId") == merchant.appid
            )
        except (InvalidSignature, ValueError):
            good = False
        if not good:
            return jsonify(code="SIGN_ERROR", message="支付验证签名失败"), 400
    _, mchid, out_trade_no = key.rsplit(":", 2)
    order = get_order(r, mchid, out_trade_no)
    assert order is not None
    return jsonify(
        out_trade_no=out_trade_no,
        amount_fen=order["amount"]["total"],
        description=order["description"],
        merchant_name=current_app.config["WECHAT_PAY_MERCHANT_NAME"],
        trade_state=order["trade_state"],
        payer_openid=order["payer_openid"],
    ), 200


@bp.get("/pay/_ctl/orders/<out_trade_no>")
def order_info(out_trade_no: str) -> tuple[Response, int]:
    order = get_order(redis_client(), current_merchant().mchid, out_trade_no)
    if order is None:
        return jsonify(code="ORDER_NOT_EXIST", message="订单不存在"), 404
    return jsonify(order), 200


@bp.post("/pay/_ctl/faults")
def set_faults_view() -> tuple[Response, int]:
    data = _user_json()
    set_faults(redis_client(), **{k: v for k, v in data.items() if k in FAULT_NAMES})
    return jsonify(faults=redis_client().hgetall(FAULTS)), 200


@bp.post("/pay/_ctl/deliver")
def deliver_view() -> tuple[Response, int]:
    """Deliver what is due at `now` (default: the sandbox's clock) — drives the retry schedule."""
    now = _user_json().get("now")
    done = deliver_due_notifications(redis_client(), float(now) if now is not None else None)
    return jsonify(deliveries=done), 200


@bp.get("/pay/_ctl/deliveries")
def deliveries_view() -> tuple[Response, int]:
    r = redis_client()
    return jsonify(
        deliveries=deliveries(r), due=[{"id": n, "at": s} for n, s in r.zrange(DUE, 0, -1, withscores=True)]
    ), 200


@bp.get("/pay/sheet")
def sheet_page() -> str:
    """A bare page with the pay sheet, for trying it (and for its browser test): ?prepay_id=…"""
    return render_template("sandbox/paysheet_demo.html")
