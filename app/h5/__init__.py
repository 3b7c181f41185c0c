"""Student pages opened from the menu (mobile layout, Chinese)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("h5", __name__, url_prefix="/h5")

from app.h5 import flow, forms, identity, pay, photo, registration, school, status, ticket, views  # noqa: E402,F401
