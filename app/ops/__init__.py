"""Liveness and readiness for load balancers and orchestrators, and the site icon browsers ask for."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app, jsonify, send_from_directory
from sqlalchemy import text

from app.extensions import db
from app.integrations import redis_client

bp = Blueprint("ops", __name__)
log = logging.getLogger(__name__)


# Browsers fetch /favicon.ico on every page whatever the HTML says; a day in every cache, and a
# changed icon is picked up by the ETag after that.
FAVICON_MAX_AGE = 86_400


@bp.get("/favicon.ico")
def favicon() -> Response:
    assert current_app.static_folder is not None  # the factory serves app/static
    response = send_from_directory(
        current_app.static_folder, "favicon.ico", mimetype="image/vnd.microsoft.icon", max_age=FAVICON_MAX_AGE
    )
    response.cache_control.public = True
    return response


@bp.get("/healthz")
def healthz() -> Response:
    """The process is up and serving; touches nothing else."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    """Ready to serve: the database and Redis both answer."""
    checks: dict[str, str] = {}
    try:
        db.session.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:
        log.warning("readiness: database unreachable: %s", type(exc).__name__)
        checks["database"] = "unreachable"
    finally:
        db.session.remove()
    try:
        redis_client().ping()
        checks["redis"] = "ok"
    except Exception as exc:
        log.warning("readiness: redis unreachable: %s", type(exc).__name__)
        checks["redis"] = "unreachable"
    ready = all(v == "ok" for v in checks.values())
    return jsonify(status="ok" if ready else "unavailable", checks=checks), 200 if ready else 503
