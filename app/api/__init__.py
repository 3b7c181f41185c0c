"""The JSON API under /api/v1 used by the H5 pages; its OpenAPI document is generated from schemas."""

from __future__ import annotations

from flask import Blueprint, Flask, Response, jsonify

from app.api.openapi import spec

bp = Blueprint("api", __name__, url_prefix="/api/v1")


@bp.get("/openapi.json")
def openapi_document() -> Response:
    return jsonify(spec.spec)


def register_openapi(app: Flask) -> None:
    """Bind the spec to the app without spectree's UI pages (they load scripts from a CDN)."""
    spec.app = app


from app.api import exams, forms, idcard, me, notice, photos, schools, submissions  # noqa: E402,F401  (routes register on bp)
