"""The local WeChat emulator, mounted at /_sandbox/ only when SANDBOX=1.

It plays WeChat's side, over HTTP, with WeChat's formats: the server API the service calls
(`api.py`, state in `store.py`), OAuth2 (`oauth.py`), the messages WeChat posts to /wechat
(`messenger.py`), and a phone page where a person plays a student (`phone.py`).
"""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint(
    "sandbox", __name__, url_prefix="/_sandbox", template_folder="templates", static_folder="static"
)

from app.sandbox import api, oauth, pay, phone, roster  # noqa: E402,F401  (routes register on bp)
