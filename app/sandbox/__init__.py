"""The local WeChat emulator, mounted at /_sandbox/ only when SANDBOX=1."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint(
    "sandbox", __name__, url_prefix="/_sandbox", template_folder="templates", static_folder="static"
)
