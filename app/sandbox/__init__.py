"""The local WeChat emulator (only when SANDBOX=1), at /_sandbox/: mounted inside the service, or
served by a process of its own (`server.py`, SANDBOX_URL; `make run` does that, docs/sandbox.md).

It plays WeChat's side, over HTTP, with WeChat's formats: the server API the service calls
(`api.py`, state in `store.py`), OAuth2 (`oauth.py`), the messages WeChat posts to /wechat
(`messenger.py`), WeChat Pay (`pay/`), the population register the identity check reads (`roster.py`,
`roster_verifier.py`), and a phone page where a person plays a student (`phone.py`).

Only the app factory imports this package: it hands the stand-ins to app/integrations. `addresses.py`
says where the emulator and the service are, seen from here.
"""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint(
    "sandbox", __name__, url_prefix="/_sandbox", template_folder="templates", static_folder="static"
)

from app.sandbox import api, oauth, pay, phone, roster, roster_verifier  # noqa: E402,F401  (routes register on bp)
