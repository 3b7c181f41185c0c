"""Menu CLICK events, by the keys of app/data/menus.json.

Format: https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Receiving_event_pushes.html
"""

from __future__ import annotations

from wechatpy.messages import BaseMessage

from app.services import schools, users, wording
from wechat_handlers.registry import ReadOnlyContext, Reply, register


@register("event", "click", "HELP", read_only=True)
def handle_help_click(message: BaseMessage, ctx: ReadOnlyContext) -> Reply:
    return ctx.help_text(message.source)


@register("event", "click", "STATUS", read_only=True)
def handle_status_click(message: BaseMessage, ctx: ReadOnlyContext) -> Reply:
    # 审核结果: where the student stands now.
    return wording.progress(ctx.base_url, ctx.progress(message.source))


@register("event", "click", "CONTACT", read_only=True)
def handle_contact_click(message: BaseMessage, ctx: ReadOnlyContext) -> Reply:
    return wording.contact(schools.linked(ctx.session, openid=message.source))


@register("event", "click", "TODAY_STATS", read_only=True)
def handle_today_stats_click(message: BaseMessage, ctx: ReadOnlyContext) -> Reply:
    # On the operators' personalised menu; a student could still send the key (old menu, forged
    # client), so the role is checked here and not assumed from the menu.
    try:
        stats = users.operator_today_stats(ctx.session, message.source)
    except users.UserNotOperatorError:
        return wording.NOT_OPERATOR
    return wording.today_stats(stats)


@register("event", "click", read_only=True)
def handle_unknown_click(message: BaseMessage, ctx: ReadOnlyContext) -> Reply:
    # A key from a menu newer or older than this code: point to help rather than stay silent.
    return ctx.help_text(message.source)
