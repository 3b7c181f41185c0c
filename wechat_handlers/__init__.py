"""WeChat message and event handlers, one module per kind, routed by `registry.dispatch`.

Importing the package registers every handler (a duplicate key raises here, at import).
"""

from __future__ import annotations

from wechat_handlers import events, fallback, image, menu, text
from wechat_handlers.registry import HANDLERS, Context, NeedsClaim, Reply, dispatch, is_read_only

__all__ = [
    "HANDLERS",
    "Context",
    "NeedsClaim",
    "Reply",
    "dispatch",
    "events",
    "fallback",
    "image",
    "is_read_only",
    "menu",
    "text",
]
