"""The official-account server URL, /wechat."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("wechat", __name__)

from app.wechat import views  # noqa: E402,F401
