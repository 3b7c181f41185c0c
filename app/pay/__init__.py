"""`POST /pay/notify`, WeChat Pay's notify_url. The client and the notification checks are the pay
integration's (app/integrations/wechat_pay*.py).

What a verified notification does is the handler the app factory gave the integration
(app/services/pay_notifications.py): it returns to acknowledge, or raises `NotificationRejected` to
have WeChat Pay send it again later.
"""

from __future__ import annotations

import logging
import time

from flask import Blueprint, Response, jsonify, request

from app.integrations import pay_client, pay_notification_handler
from app.integrations.wechat_pay import PayNotConfiguredError
from app.integrations.wechat_pay_notifications import (
    NotificationInvalid,
    NotificationRejected,
    verify_notification,
)

log = logging.getLogger(__name__)

bp = Blueprint("pay", __name__, url_prefix="/pay")


def _fail(status: int, message: str) -> tuple[Response, int]:
    # WeChat Pay's required shape for "not accepted": it retries on its schedule.
    return jsonify(code="FAIL", message=message), status


@bp.post("/notify")
def notify() -> Response | tuple[Response, int]:
    """Verify, decrypt, hand to the handler; 204 with no body acknowledges."""
    try:
        client = pay_client()
    except PayNotConfiguredError:
        log.error("pay notification refused: WeChat Pay is not configured")
        return _fail(503, "未配置微信支付")
    limit = client.config.max_notify_bytes
    if request.content_length is not None and request.content_length > limit:
        log.warning("pay notification refused: body of %d bytes", request.content_length)
        return _fail(413, "请求体过大")
    body = request.stream.read(limit + 1)
    if len(body) > limit:
        log.warning("pay notification refused: body over %d bytes", limit)
        return _fail(413, "请求体过大")
    try:
        notification = verify_notification(
            request.headers, body, client.config, client.platform_key, time.time()
        )
    except NotificationInvalid as exc:
        # No personal data here: only why, and which serial/size.
        log.warning(
            "pay notification refused: %s (serial=%s, %d bytes)",
            exc.reason,
            request.headers.get("Wechatpay-Serial", "-")[:64],
            len(body),
        )
        return _fail(exc.status, "验签或解密失败" if exc.status in (401, 500) else "通知格式有误")
    handler = pay_notification_handler()
    try:
        handler(notification)
    except NotificationRejected as exc:
        log.warning("pay notification %s not accepted: %s", notification.id, exc.reason)
        return _fail(exc.status, "处理失败，请稍后重试")
    except Exception:
        log.exception("pay notification %s: handler failed", notification.id)
        return _fail(500, "处理失败，请稍后重试")
    return Response(status=204)
