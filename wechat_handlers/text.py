"""Text messages: keywords; anything else is kept for staff to answer (客服留言, app/services/inbox.py).

Format: https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Receiving_standard_messages.html
"""

from __future__ import annotations

from wechatpy.messages import BaseMessage

from app.services import inbox, wording
from wechat_handlers.registry import Context, ReadOnlyContext, Reply, register


@register("text", None, "帮助", "help", "?", "？", read_only=True)
def handle_help(message: BaseMessage, ctx: ReadOnlyContext) -> Reply:
    return ctx.help_text(message.source)


@register("text", None, "绑定", "实名绑定", read_only=True)
def handle_bind(message: BaseMessage, ctx: ReadOnlyContext) -> Reply:
    return wording.bind(ctx.base_url)


# Questions about money, as students type them (keywords match the whole message).
FEE_KEYWORDS = (
    "交费",
    "缴费",
    "费用",
    "收费",
    "多少钱",
    "收费标准",
    "怎么交费",
    "怎么缴费",
    "如何交费",
    "如何缴费",
    "在哪交费",
    "在哪缴费",
    "交费方式",
    "缴费方式",
    "怎么付款",
    "核验费",
)


@register("text", None, *FEE_KEYWORDS, read_only=True)
def handle_fee(message: BaseMessage, ctx: ReadOnlyContext) -> Reply:
    return ctx.fee_answer(message.source)


@register("text", None, "进度", "查询", "审核结果", read_only=True)
def handle_progress(message: BaseMessage, ctx: ReadOnlyContext) -> Reply:
    return wording.progress(ctx.base_url, ctx.progress(message.source))


@register("text")
def handle_text(message: BaseMessage, ctx: Context) -> Reply:
    # Not read-only: the message is written to the inbox, once (after the dedupe claim; MsgId also
    # keys the row, so a replayed post is not kept twice).
    msg_id = str(message.id) if message.id else None
    inbox.record(ctx.session, message.source, message.content or "", msg_id=msg_id, at=message.create_time)
    return wording.MESSAGE_KEPT
