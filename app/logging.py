"""Structured logs: one JSON object a line, each carrying the request id of the request it serves."""

from __future__ import annotations

import logging
import random
import sys
from contextvars import ContextVar

from flask import Flask, Response, g, request
from pythonjsonlogger.json import JsonFormatter

request_id_var: ContextVar[str] = ContextVar("request_id", default="-")


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


def configure_logging(app: Flask) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_RequestIdFilter())
    if app.config["LOG_FORMAT"] == "json":
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
                rename_fields={"asctime": "ts", "levelname": "level", "name": "logger"},
            )
        )
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s")
        )
    root = logging.getLogger()
    # Replace, not add: create_app runs once per test and must not stack handlers.
    root.handlers = [handler]
    root.setLevel(app.config["LOG_LEVEL"])
    for noisy in ("alembic.runtime.plugins", "werkzeug"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    @app.before_request
    def _assign_request_id() -> None:
        incoming = request.headers.get("X-Request-ID", "")
        rid = incoming if 0 < len(incoming) <= 64 and incoming.isascii() else _new_request_id()
        g.request_id = rid
        request_id_var.set(rid)

    @app.after_request
    def _echo_request_id(response: Response) -> Response:
        response.headers["X-Request-ID"] = g.get("request_id", "-")
        return response


def _new_request_id() -> str:
    # A correlation id, not a secret: 128 bits from `random` (re-seeded in each forked worker)
    # rather than uuid4, whose os.urandom (a getrandom syscall) was ~3 % of a /wechat request's CPU.
    return f"{random.getrandbits(128):032x}"
