"""Events: follow, unfollow, scene QR codes, menu links, location and whatever else WeChat adds.

Formats: https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Receiving_event_pushes.html
"""

from __future__ import annotations

from wechatpy.events import ScanEvent, SubscribeScanEvent
from wechatpy.messages import BaseMessage

from app.services import schools, users, wording
from wechat_handlers.registry import Context, ReadOnlyContext, Reply, register


@register("event", "subscribe")
def handle_subscribe(message: BaseMessage, ctx: Context) -> Reply:
    result = users.subscribe(ctx.session, message.source, cache=ctx.cache)
    return _greeting(message.source, result.is_new, ctx)


@register("event", "subscribe_scan")
def handle_subscribe_with_scene(message: BaseMessage, ctx: Context) -> Reply:
    # WeChat sends EventKey "qrscene_<scene>"; wechatpy has already stripped the prefix.
    scene = _scene(message)
    result = users.subscribe(ctx.session, message.source, scene=scene or None, cache=ctx.cache)
    greeting = _greeting(message.source, result.is_new, ctx)
    return f"{_scene_reply(scene, ctx)}\n\n{greeting}" if scene else greeting


@register("event", "scan")
def handle_scan(message: BaseMessage, ctx: Context) -> Reply:
    # A follower scanned a parametric QR code: EventKey is the scene itself.
    scene = _scene(message)
    if not scene:
        return None
    users.record_scene(ctx.session, message.source, scene)
    return _scene_reply(scene, ctx)


@register("event", "unsubscribe")
def handle_unsubscribe(message: BaseMessage, ctx: Context) -> Reply:
    # Nobody reads a reply to an unfollow; the data stays for audit and for a return.
    users.unsubscribe(ctx.session, message.source, cache=ctx.cache)
    return None


@register("event", "view", read_only=True)
def handle_view(message: BaseMessage, ctx: ReadOnlyContext) -> Reply:
    # A menu link was opened; the page itself is the answer.
    return None


@register("event", "location", read_only=True)
def handle_location(message: BaseMessage, ctx: ReadOnlyContext) -> Reply:
    # Reported location (if the account asks for it): not used.
    return None


@register("event", read_only=True)
def handle_unknown_event(message: BaseMessage, ctx: ReadOnlyContext) -> Reply:
    # Template-send reports, subscription-notice events, ...: acknowledged, nothing to say.
    return None


def _greeting(openid: str, is_new: bool, ctx: Context) -> str:
    # The welcome lists the follower's checklist: everything to do for a newcomer, where they stand
    # for someone coming back.
    steps = ctx.progress(openid).checklist
    return wording.welcome(ctx.base_url, steps) if is_new else wording.welcome_back(ctx.base_url, steps)


def _scene_reply(scene: str, ctx: Context) -> str:
    # A school's QR code names the school; any other scene is only acknowledged.
    code = schools.scene_school_code(scene)
    school = schools.get_by_code(ctx.session, code) if code else None
    return wording.school_scanned(ctx.base_url, school.name) if school else wording.scene_recorded(scene)


def _scene(message: BaseMessage) -> str:
    value = message.scene_id if isinstance(message, ScanEvent | SubscribeScanEvent) else None
    return value.strip() if isinstance(value, str) else ""
