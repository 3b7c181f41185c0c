"""The outbound WeChat API client (wechatpy), pointed at WECHAT_API_BASE."""

from __future__ import annotations

from flask import Flask


def init_wechat_client(app: Flask) -> None:
    """Filled in by the client work."""
