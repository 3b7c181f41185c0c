"""Messages whose handler failed and that change something, kept in Redis until they can be applied.

A follow, an unfollow, a scene scan or an image whose handler failed — PostgreSQL restarting, say —
was answered and then forgotten: 136 of 667 follows were lost in an 8-second outage. Such a message is
parked here (its plaintext XML, in arrival order) and the worker replays it through the same path as a
post (`answering.replay_parked`: claimed and deduplicated by its message key) until it succeeds. A
WeChat retry that already applied it leaves the replay nothing to do but drop it; the dedupe key makes
the handler run once either way.
"""

from __future__ import annotations

import json
import logging
import time

from redis import Redis

log = logging.getLogger(__name__)

PARKED = "wechat:parked"
DEAD = "wechat:parked:dead"
# A message that still fails a day later is not waiting for the database: a person must look.
GIVE_UP_SECONDS = 24 * 3600


def park(cache: Redis, xml: str) -> None:
    """Keep a message for replay; raises RedisError when Redis is unavailable."""
    cache.rpush(PARKED, json.dumps({"xml": xml, "parked_at": time.time()}, ensure_ascii=False))
    log.warning("wechat: message parked until it can be applied")


def oldest(cache: Redis) -> tuple[str, str] | None:
    """The oldest parked entry and its XML, or None; an unreadable entry is dropped."""
    while (raw := cache.lindex(PARKED, 0)) is not None:
        try:
            return raw, str(json.loads(raw)["xml"])
        except (ValueError, KeyError, TypeError):
            log.error("wechat: unreadable parked entry dropped")
            cache.lrem(PARKED, 1, raw)
    return None


def drop(cache: Redis, raw: str) -> None:
    cache.lrem(PARKED, 1, raw)


def requeue(cache: Redis, raw: str, now: float) -> None:
    """A replay that failed again: to the back of the queue, so one message that keeps failing cannot
    hold up the others; after GIVE_UP_SECONDS to the dead list, logged as an error."""
    parked_at = float(json.loads(raw).get("parked_at") or 0)
    pipe = cache.pipeline()
    pipe.lrem(PARKED, 1, raw)
    if now - parked_at > GIVE_UP_SECONDS:
        pipe.rpush(DEAD, raw)
        log.error("wechat: a parked message kept failing for a day; moved to %s", DEAD)
    else:
        pipe.rpush(PARKED, raw)
    pipe.execute()


def count(cache: Redis) -> int:
    return int(cache.llen(PARKED))
