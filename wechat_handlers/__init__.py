"""WeChat message and event handlers, one module per kind, routed by `registry.route`.

Importing the package registers every handler (a duplicate key raises here, at import).
"""

from __future__ import annotations

from wechat_handlers import events, fallback, image, menu, text
from wechat_handlers.registry import HANDLERS, Context, ReadOnlyContext, Reply, Route, route

__all__ = [
    "HANDLERS",
    "Context",
    "ReadOnlyContext",
    "Reply",
    "Route",
    "events",
    "fallback",
    "image",
    "menu",
    "route",
    "text",
]
