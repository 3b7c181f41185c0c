"""Image messages: a picture sent to the account is checked like an upload from /h5/photo.

The reply comes at once ("已收到，正在检查…"); the worker downloads the picture through the media
API, runs the checks and sends the verdict as a custom message (app/jobs/photos.py). Someone who
cannot upload yet (not bound, no school, 须知 not read, batch closed) gets the next step instead.

Format: https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Receiving_standard_messages.html
"""

from __future__ import annotations

from wechatpy.messages import BaseMessage

from app.services import photos, wording
from wechat_handlers.registry import Context, Reply, register


@register("image")
def handle_image(message: BaseMessage, ctx: Context) -> Reply:
    now = ctx.progress(message.source)
    if now.step in ("bind", "school", "notice"):
        return wording.image_needs(ctx.base_url, now)
    # MsgId keys the job: a retried post (or a replay) queues nothing new.
    msg_id = str(message.id) if message.id else f"{message.source}:{message.create_time.timestamp():.0f}"
    photos.queue_chat_image(ctx.session, message.source, message.media_id, message.image, msg_id)
    return wording.image_received(ctx.base_url)
