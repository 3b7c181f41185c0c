"""Sign-in for the H5 pages: WeChat OAuth2 (snsapi_base)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("auth", __name__)

from app.auth import views  # noqa: E402,F401
