"""The JSON API under /api/v1 used by the H5 pages; its OpenAPI document is generated from schemas."""

from __future__ import annotations

from flask import Blueprint, Flask

bp = Blueprint("api", __name__, url_prefix="/api/v1")


def register_openapi(app: Flask) -> None:
    """Serve /api/v1/openapi.json (filled in by the OpenAPI work)."""
