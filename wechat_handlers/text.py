"""Text messages: keywords, then short guidance for anything else.

Format: https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Receiving_standard_messages.html
"""

from __future__ import annotations

from wechatpy.messages import BaseMessage

from app.services import wording
from wechat_handlers.registry import ReadOnlyContext, Reply, register


@register("text", None, "帮助", "help", "?", "？", read_only=True)
def handle_help(message: BaseMessage, ctx: ReadOnlyContext) -> Reply:
    return ctx.help_text(message.source)


@register("text", None, "绑定", "实名绑定", read_only=True)
def handle_bind(message: BaseMessage, ctx: ReadOnlyContext) -> Reply:
    return wording.bind(ctx.base_url)


@register("text", None, "进度", "查询", "审核结果", read_only=True)
def handle_progress(message: BaseMessage, ctx: ReadOnlyContext) -> Reply:
    return wording.progress(ctx.base_url, ctx.progress(message.source))


@register("text", read_only=True)
def handle_text(message: BaseMessage, ctx: ReadOnlyContext) -> Reply:
    return wording.UNKNOWN_TEXT
