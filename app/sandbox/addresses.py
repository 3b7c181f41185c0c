"""Where the emulator and the service are, seen from the emulator.

Mounted inside the service (the tests), both are PUBLIC_BASE_URL. As its own process (`make run`)
the emulator is at SANDBOX_URL and the service at PUBLIC_BASE_URL, as WeChat and an official
account's server are two systems that reach each other over HTTP only.
"""

from __future__ import annotations

from flask import current_app


def separate() -> bool:
    """The emulator runs in its own process: the service's routes are not in this app."""
    return bool(current_app.config.get("SANDBOX_URL"))


def service_url() -> str:
    """The service: its /wechat, its pages (OAuth2 redirect domain, H5 links)."""
    return str(current_app.config["PUBLIC_BASE_URL"])


def own_base() -> str:
    """The emulator's routes as others reach them (links WeChat puts in messages, e.g. PicUrl)."""
    config = current_app.config
    return f"{config.get('SANDBOX_URL') or config['PUBLIC_BASE_URL']}/_sandbox"
