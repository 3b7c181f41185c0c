"""Image messages. The photo checks arrive with the photo pipeline; until then, point to the page.

Format: https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Receiving_standard_messages.html
"""

from __future__ import annotations

from wechatpy.messages import BaseMessage

from wechat_handlers import texts
from wechat_handlers.registry import Context, Reply, register


@register("image")
def handle_image(message: BaseMessage, ctx: Context) -> Reply:
    ctx.ensure_follower(message.source)
    return texts.image_received(ctx.base_url)
