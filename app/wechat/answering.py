"""Answer one message posted to /wechat, once the view has checked and parsed it: which dedupe path,
the handler, and recording the sender.

Two paths (app/wechat/dedupe.py), chosen by the handler's registration (wechat_handlers/registry.py):

- store first: a read-only handler is given a session that cannot write and no Redis, so its reply
  may be computed before the message is claimed, and stored with SET NX GET in one round trip; a
  copy of the message that arrived first keeps its answer. Taken for a fresh post with a dedupe key
  while the server supports SET NX GET.
- claimed: every other handler, and a post more than RETRY_SUSPECT_AFTER_SECONDS after its
  CreateTime — it may be one of WeChat's retries with its first try still running, and claiming
  makes even a read-only handler run once for it.

Only followers can act on an account, so the sender of a message, a menu click or a menu link
becomes a user if the service did not know them yet (someone who followed before it existed). That
is recorded here, after answering, and only when the sender's follower mark — read in the dedupe
round trip — was missing: on the store-first path only by the request whose answer was stored
first. Handlers never do it. Follow, unfollow and scan events' handlers own the user row themselves,
and WeChat's own reports (template sends, ...) are no user's action.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

from flask import current_app
from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy.orm import sessionmaker
from wechatpy import parse_message
from wechatpy.messages import BaseMessage
from wechatpy.replies import create_reply

from app.extensions import db
from app.integrations import redis_client
from app.services import users
from app.wechat import dedupe, parked, read_only
from app.wechat.security import message_fields, parse_envelope
from config import Settings
from wechat_handlers import registry
from wechat_handlers.registry import Context, ReadOnlyContext, Route

log = logging.getLogger(__name__)

# WeChat tries a message again 5 s after a try it got no answer to. One second of margin for the
# two clocks.
RETRY_SUSPECT_AFTER_SECONDS = 4
_now = time.time  # tests move the clock

# Events that are a follower's own action, like a message.
FOLLOWER_EVENTS = frozenset({"click", "view"})
READ_ONLY_SESSIONS = "wechat_read_only_sessions"


def answer(
    message: BaseMessage,
    fields: Mapping[str, str | None],
    settings: Settings,
    xml: str,
    *,
    replay: bool = False,
) -> str | None:
    """The plaintext reply XML ("" for none) to a checked message; `fields` are its XML's top-level
    fields, `xml` the message itself. A handler's error becomes an empty reply (logged), and nothing is
    stored for it: WeChat's retries run the handler again. A failed handler that writes (a follow, an
    unfollow, a scan, an image) is parked (app/wechat/parked.py) and applied when it can be; None when
    even that failed (Redis down too): the view then asks WeChat to try again. With `replay` (parked
    messages, app/wechat/parked.py) a failure is not parked again: None, and it stays parked.
    """
    cache = redis_client()
    once = dedupe.Dedupe(cache, settings.WECHAT_DEDUPE_TTL_SECONDS)
    found = registry.route(message, fields)
    key = dedupe.key_for(fields)
    # The sender's follower mark is read in the dedupe round trip, for recording the sender after.
    mark_key = users.follower_mark(message.source) if _from_a_follower(fields) else None

    if found.read_only and key is not None and not replay and not _may_be_retry(fields):
        first = once.answer_first(key, lambda: _run(found, message, settings, cache), prefetch=mark_key)
        if first is not None:
            if first.mine and mark_key is not None and not first.mark:
                _record_sender(message.source, cache)
            return first.reply

    def produce(mark: str | None) -> dedupe.Produced:
        produced = _run(found, message, settings, cache)
        if mark_key is not None and not mark:
            _record_sender(message.source, cache)
        return produced

    produced = once.run_once(key, produce, prefetch=mark_key)
    if not produced.failed or found.read_only:
        return produced.reply
    if replay:
        return None
    try:
        parked.park(cache, xml)
    except RedisError:
        log.exception("wechat: a failed message could not be parked", extra={"openid": message.source[:8]})
        return None
    return produced.reply


def replay_parked(settings: Settings, limit: int = 200) -> int:
    """Apply parked messages (app/wechat/parked.py), oldest first, until one still fails; how many
    were applied. The worker calls it periodically."""
    cache = redis_client()
    applied = 0
    for _ in range(min(limit, parked.count(cache))):
        entry = parked.oldest(cache)
        if entry is None:
            break
        raw, xml = entry
        try:
            fields = message_fields(parse_envelope(xml))
            message = parse_message(xml)
        except Exception:  # it was checked before it was parked: only a damaged entry gets here
            log.exception("wechat: unreadable parked message dropped")
            parked.drop(cache, raw)
            continue
        if answer(message, fields, settings, xml, replay=True) is None:
            # Still failing — most likely the database is still away: a later round tries again.
            parked.requeue(cache, raw, time.time())
            break
        parked.drop(cache, raw)
        applied += 1
    if applied:
        log.info("wechat: parked messages applied", extra={"count": applied})
    return applied


def read_only_context(settings: Settings) -> ReadOnlyContext:
    """What a read-only handler is given: a session that cannot write (opened on first use)."""
    sessions: sessionmaker[read_only.ReadOnlySession] | None = current_app.extensions.get(READ_ONLY_SESSIONS)
    if sessions is None:
        sessions = current_app.extensions[READ_ONLY_SESSIONS] = read_only.sessions(db.engine)
    return ReadOnlyContext(open_session=sessions, settings=settings)


def _run(found: Route, message: BaseMessage, settings: Settings, cache: Redis) -> dedupe.Produced:
    """Run the handler and render its reply as plaintext XML ("" for none). Never raises: a failure
    is rolled back, logged and reported as `failed`."""
    ctx: ReadOnlyContext | Context = (
        read_only_context(settings)
        if found.read_only
        else Context(open_session=db.session, settings=settings, cache=cache)
    )
    try:
        # Registered read_only exactly when it takes a ReadOnlyContext, which is what it gets.
        result = found.handler(message, ctx)  # type: ignore[arg-type]
        return dedupe.Produced(create_reply(result, message, render=True) if result else "")
    except Exception:
        ctx.rollback()
        log.exception(
            "wechat handler failed",
            extra={"msg_type": type(message).__name__, "openid": (message.source or "")[:8]},
        )
        return dedupe.Produced("", failed=True)
    finally:
        ctx.close()


def _from_a_follower(fields: Mapping[str, str | None]) -> bool:
    if (fields.get("MsgType") or "").lower() != "event":
        return True
    return (fields.get("Event") or "").lower() in FOLLOWER_EVENTS


def _may_be_retry(fields: Mapping[str, str | None]) -> bool:
    try:
        created = int(fields.get("CreateTime") or "")
    except ValueError:
        return True
    return _now() - created >= RETRY_SUSPECT_AFTER_SECONDS


def _record_sender(openid: str, cache: Redis) -> None:
    try:
        users.record_follower(db.session(), cache, openid)
    except Exception:
        db.session.rollback()
        log.exception("wechat: could not record the sender", extra={"openid": openid[:8]})
