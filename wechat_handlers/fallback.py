"""Everything without a handler of its own: voice, video, location, link, mini-program cards, ..."""

from __future__ import annotations

from wechatpy.messages import BaseMessage

from app.services import wording
from wechat_handlers.registry import ReadOnlyContext, Reply, register


@register(None, read_only=True)
def handle_other(message: BaseMessage, ctx: ReadOnlyContext) -> Reply:
    return wording.OTHER_MESSAGE
