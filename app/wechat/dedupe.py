"""Answer WeChat's retries with the first reply, running the handler once.

WeChat waits 5 s for a reply and then retries, three tries in all, with the same MsgId (messages)
or the same FromUserName + CreateTime (events).
https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Passive_user_reply_message.html

The first request claims the key with SET NX EX (value PENDING), runs the handler, and stores the
rendered plaintext reply under the same key. A retry that finds the key returns the stored reply;
if the first is still working, the retry polls for it for at most WAIT_SECONDS, then answers empty
("handled"). The empty answer ends WeChat's retries; the first request still finishes its work.
Replies are stored before encryption, so a retry gets its own freshly encrypted copy.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from redis import Redis
from redis.exceptions import RedisError
from wechatpy.messages import BaseMessage

from wechat_handlers.registry import raw_fields

log = logging.getLogger(__name__)

PREFIX = "wechat:dedupe:"
PENDING = "p"
DONE = "r:"  # + the reply XML ("" = empty reply)
# Below WeChat's 5 s, so the waiting retry answers before WeChat gives up on it.
WAIT_SECONDS = 4.0
POLL_SECONDS = 0.02
MAX_POLL_SECONDS = 0.2
_pause = time.sleep  # tests wrap this to see a retry waiting


def key_for(message: BaseMessage) -> str | None:
    fields = raw_fields(message)
    msg_id = fields.get("MsgId") or fields.get("MsgID")
    if msg_id:
        return f"{PREFIX}m:{msg_id}"
    source, created = fields.get("FromUserName"), fields.get("CreateTime")
    if not source or not created:
        return None
    event = fields.get("Event") or fields.get("MsgType") or ""
    event_key = fields.get("EventKey")
    event_key = event_key if isinstance(event_key, str) else ""
    return f"{PREFIX}e:{source}:{created}:{event}:{event_key}"


def run_once(
    r: Redis,
    key: str | None,
    ttl_seconds: int,
    produce: Callable[[str | None], str],
    prefetch: str | None = None,
) -> str:
    """The reply for this message: produced here, or the one a first request produced.

    `prefetch` names a key the handler will want (the sender's follower mark): it is read in the
    same round trip as the claim and handed to `produce` — on the hot path every round trip counts.
    `produce` must not raise (the view turns handler errors into an empty reply first).
    """
    if key is None:
        return produce(None)
    try:
        pipe = r.pipeline(transaction=False)
        pipe.set(key, PENDING, nx=True, ex=ttl_seconds)
        if prefetch is not None:
            pipe.get(prefetch)
        first, *prefetched = pipe.execute()
    except RedisError:
        # Answering matters more than deduplicating: a retry may run the handler again.
        log.exception("dedupe unavailable, handling without it")
        return produce(None)
    if first:
        reply = produce(prefetched[0] if prefetched else None)
        try:
            r.set(key, DONE + reply, ex=ttl_seconds)
        except RedisError:
            log.exception("dedupe: could not store the reply")
        return reply
    return _wait_for_reply(r, key)


def _wait_for_reply(r: Redis, key: str) -> str:
    deadline = time.monotonic() + WAIT_SECONDS
    interval = POLL_SECONDS
    while True:
        try:
            value = r.get(key)
        except RedisError:
            log.exception("dedupe: could not read the first reply")
            return ""
        if isinstance(value, str) and value.startswith(DONE):
            return value[len(DONE) :]
        if value is None:
            # Expired, or the first request's process died before storing: nothing to repeat.
            return ""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            log.info("dedupe: retry answered empty, first request still running")
            return ""
        _pause(min(interval, remaining))
        interval = min(interval * 2, MAX_POLL_SECONDS)
