"""Error responses: JSON for the API (with a Chinese message), a plain page elsewhere."""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)

MESSAGES = {
    400: "请求格式有误",
    401: "请先登录",
    403: "没有权限",
    404: "页面不存在",
    405: "不支持的请求方式",
    408: "请求内容发送超时，请检查网络后重试",
    413: "提交的内容太大",
    422: "提交的信息有误",
    429: "操作太频繁，请稍后再试",
    500: "服务器开小差了，请稍后再试",
}


def _wants_json() -> bool:
    return request.path.startswith(("/api/", "/_sandbox/api/")) or request.is_json


def error_response(status: int, message: str | None = None) -> tuple[Response | str, int]:
    message = message or MESSAGES.get(status, "请求失败")
    if _wants_json():
        return jsonify(error={"code": status, "message": message}), status
    return render_template("error.html", status=status, message=message), status


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        response = app.make_response(error_response(status, MESSAGES.get(status)))
        # Headers the status requires travel with it: Allow on 405 (RFC 9110), Retry-After on 429/503.
        for name, value in exc.get_headers():
            if name.lower() != "content-type":
                response.headers[name] = value
        return response

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> tuple[Response | str, int]:
        log.exception("unhandled error")
        return error_response(500)
