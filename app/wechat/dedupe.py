"""Answer WeChat's retries with the first reply, running the handler once.

WeChat waits 5 s for a reply and then retries, three tries in all, with the same MsgId (messages)
or the same FromUserName + CreateTime (events).
https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Passive_user_reply_message.html

`Dedupe(redis, ttl)` has one method per path, both keyed by `key_for`:

- `run_once` (the claimed path): the first request claims the key with SET NX EX (value PENDING),
  produces the reply, and stores the rendered plaintext reply under the same key — unless the
  handler failed: then the claim is released, so that WeChat's retry runs the handler again. A retry that
  finds the key returns the stored reply; if the first is still working, the retry polls for it
  for at most WAIT_SECONDS, then answers empty ("handled"). The empty answer ends WeChat's
  retries; the first request still finishes its work.
- `answer_first` (the store-first path, for replies that change nothing — handlers registered
  read-only, which are given a session that cannot write): the reply is produced first and stored
  with SET NX GET, which also returns what an earlier try stored; that one is answered then. One
  round trip instead of two (claim, then store): the store alone was ~15 % of /wechat's throughput
  (bench/wechat_endpoint.py). Before Redis 7.0 the server refuses SET NX GET: found out once per
  connection pool, after which `answer_first` declines at once and the caller claims.

Both read one more key in the same round trip when asked (`prefetch`: the sender's follower mark).
Replies are stored before encryption, so a retry gets its own freshly encrypted copy.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from redis import Connection, ConnectionPool, Redis
from redis.exceptions import RedisError, ResponseError

log = logging.getLogger(__name__)

PREFIX = "wechat:dedupe:"
PENDING = "p"
DONE = "r:"  # + the reply XML ("" = empty reply)
# Below WeChat's 5 s, so the waiting retry answers before WeChat gives up on it.
WAIT_SECONDS = 4.0
POLL_SECONDS = 0.02
MAX_POLL_SECONDS = 0.2
_pause = time.sleep  # tests wrap this to see a retry waiting


def key_for(fields: Mapping[str, str | None]) -> str | None:
    """The dedupe key of a message, from its XML fields; None when it cannot be told apart."""
    msg_id = fields.get("MsgId") or fields.get("MsgID")
    if msg_id:
        return f"{PREFIX}m:{msg_id}"
    source, created = fields.get("FromUserName"), fields.get("CreateTime")
    if not source or not created:
        return None
    event = fields.get("Event") or fields.get("MsgType") or ""
    return f"{PREFIX}e:{source}:{created}:{event}:{fields.get('EventKey') or ''}"


@dataclass(frozen=True, slots=True)
class Produced:
    """A reply, and whether it is the message's answer. `failed`: the handler failed (its work was
    rolled back), so nothing is stored — a retry of the message runs the handler again."""

    reply: str
    failed: bool = False


@dataclass(frozen=True, slots=True)
class First:
    """What `answer_first` found: the reply to send, and whether it is this request's own."""

    reply: str
    mine: bool  # stored now: this request answers the message first (or Redis was unavailable)
    mark: str | None  # the prefetched key's value


@dataclass(frozen=True, slots=True)
class Dedupe:
    """WeChat's retries of one message get one answer, in Redis (cheap to make per request: the
    connections and what the server supports are kept per connection pool)."""

    redis: Redis
    ttl_seconds: int

    def run_once(
        self, key: str | None, produce: Callable[[str | None], Produced], prefetch: str | None = None
    ) -> Produced:
        """The reply for this message: produced here, or the one a first request produced.

        `prefetch` names a key to read in the same round trip as the claim; its value is handed to
        `produce` (on the hot path every round trip counts). `produce` must not raise. A failed
        production releases the claim instead of storing its reply, so a retry runs it again.
        """
        if key is None:
            return produce(None)
        pool = self.redis.connection_pool
        conn = _own_connection(pool)
        try:
            first, mark = _round_trip(conn, ("SET", key, PENDING, "NX", "EX", self.ttl_seconds), prefetch)
            if isinstance(first, ResponseError):
                raise first
        except RedisError:
            # Answering matters more than deduplicating: a retry may run the handler again.
            log.exception("dedupe unavailable, handling without it")
            return produce(None)
        if not first:
            return Produced(_wait_for_reply(self.redis, key))
        produced = produce(mark)
        if produced.failed:
            _release(self.redis, key)
        else:
            _store(pool, conn, key, DONE + produced.reply, self.ttl_seconds)
        return produced

    def answer_first(
        self, key: str, produce: Callable[[], Produced], prefetch: str | None = None
    ) -> First | None:
        """Produce the reply, then store it as the message's answer unless a try of it was there
        first, in one round trip; `produce` must change nothing and must not raise. A failed
        production is answered as it is and stored nowhere (mine=False: nothing was recorded).

        Returns the earlier try's stored reply when there is one (waiting for it, like a retry in
        `run_once`, if that try claimed the message and is still working). None when the server
        does not support SET with both NX and GET (Redis < 7.0): the caller then uses `run_once`.
        """
        pool = self.redis.connection_pool
        if _set_get_support.get(pool) is False:
            return None
        produced = produce()
        reply = produced.reply
        if produced.failed:
            return First(reply, mine=False, mark=None)
        conn = _own_connection(pool)
        store = ("SET", key, DONE + reply, "NX", "GET", "EX", self.ttl_seconds)
        try:
            earlier, mark = _round_trip(conn, store, prefetch)
            # Only an old server's "syntax error" means unsupported (OOM, say, is a failure).
            if isinstance(earlier, ResponseError) and "syntax" not in str(earlier).lower():
                raise earlier
        except RedisError:
            # As in run_once: answering matters more than deduplicating.
            log.exception("dedupe unavailable, answering without it")
            return First(reply, mine=True, mark=None)
        if isinstance(earlier, ResponseError):
            _set_get_support[pool] = False
            log.info("dedupe: SET NX GET unsupported, messages are claimed first")
            return None
        if earlier is None:
            return First(reply, mine=True, mark=mark)
        if isinstance(earlier, str) and earlier.startswith(DONE):
            return First(earlier[len(DONE) :], mine=False, mark=mark)
        return First(_wait_for_reply(self.redis, key), mine=False, mark=mark)


def _round_trip(conn: Connection, command: tuple[Any, ...], prefetch: str | None) -> tuple[Any, Any]:
    """Send `command`, and GET `prefetch` when given, in one write; their answers.

    An error answer to `command` is returned, not raised, once the GET's answer is read too: the
    connection stays in step. Any other RedisError propagates, the connection disconnected (answers
    may be left unread on it; the next use reconnects).
    """
    commands = [command] if prefetch is None else [command, ("GET", prefetch)]
    try:
        conn.send_packed_command(conn.pack_commands(commands))
        try:
            first = conn.read_response()
        except ResponseError as exc:
            first = exc
        mark = conn.read_response() if prefetch is not None else None
    except RedisError:
        conn.disconnect()
        raise
    return first, mark


# Per connection pool: False once the server refused SET NX GET.
_set_get_support: weakref.WeakKeyDictionary[ConnectionPool, bool] = weakref.WeakKeyDictionary()


@dataclass
class _Own:
    conn: Connection
    pid: int
    used_at: float


class _OwnConnections(threading.local):
    def __init__(self) -> None:
        self.by_pool: weakref.WeakKeyDictionary[ConnectionPool, _Own] = weakref.WeakKeyDictionary()


_own = _OwnConnections()
# After this long unused, look for a connection the server closed (restart, idle timeout) first.
IDLE_CHECK_SECONDS = 5.0


def _own_connection(pool: ConnectionPool) -> Connection:
    """This thread's own connection to the pool's server, for the claim and the store.

    Not a pool checkout: each checkout takes a lock and a non-blocking read to make sure the
    connection is sound and has nothing unread, ~5 % of a /wechat request under load. This code
    never leaves anything unread (it disconnects on any error), so the read is only done after the
    connection sat idle, when the server may have closed it. One connection per thread and process
    (a forked worker makes its own); redis-py reconnects a disconnected one on its next use.
    """
    now = time.monotonic()
    own = _own.by_pool.get(pool)
    if own is None or own.pid != os.getpid():
        own = _Own(pool.connection_class(**pool.connection_kwargs), os.getpid(), now)
        _own.by_pool[pool] = own
    elif now - own.used_at > IDLE_CHECK_SECONDS:
        try:
            stale = own.conn.can_read()  # EOF or stray data: not usable as it is
        except (RedisError, OSError):
            stale = True
        if stale:
            own.conn.disconnect()
    own.used_at = now
    return own.conn


def _store(pool: ConnectionPool, conn: Connection, key: str, value: str, ttl_seconds: int) -> None:
    """SET the reply without waiting for Redis's "OK" when the server allows it.

    Under load each blocking round trip costs far more than its bytes: waiting for this "OK" took
    a quarter of /wechat's throughput (bench/wechat_endpoint.py). `CLIENT REPLY SKIP` tells Redis
    not to answer the next command, so the SET goes out and the request moves on; Redis applies
    commands of one connection in order, so a retry arriving later still finds the reply. redis-py
    has no such mode (its parser would read the missing answer), hence the raw connection here.
    A failed store is logged; a retry then finds the claim, waits, and answers empty.
    """
    try:
        if _reply_skip_supported(pool, conn):
            conn.send_packed_command(
                conn.pack_commands([("CLIENT", "REPLY", "SKIP"), ("SET", key, value, "EX", ttl_seconds)])
            )
        else:
            conn.send_command("SET", key, value, "EX", ttl_seconds)
            conn.read_response()
    except RedisError:
        conn.disconnect()
        log.exception("dedupe: could not store the reply")


# Per connection pool: does the server honour CLIENT REPLY SKIP? (Redis ≥ 3.2 does; some proxies
# and the embedded fakeredis do not.) Probed once, on the first store.
_skip_support: weakref.WeakKeyDictionary[ConnectionPool, bool] = weakref.WeakKeyDictionary()


def _reply_skip_supported(pool: ConnectionPool, conn: Connection) -> bool:
    known = _skip_support.get(pool)
    if known is not None:
        return known
    # If SKIP works, the first PING goes unanswered and the first answer read is "seen".
    conn.send_packed_command(
        conn.pack_commands([("CLIENT", "REPLY", "SKIP"), ("PING", "skipped"), ("PING", "seen")])
    )
    try:
        answer = conn.read_response()
    except ResponseError:  # CLIENT REPLY refused: both PINGs answer
        conn.read_response()
        conn.read_response()
        answer = None
    supported = answer in ("seen", b"seen")
    if answer in ("skipped", b"skipped"):
        conn.read_response()  # "seen": the command was accepted but not honoured
    _skip_support[pool] = supported
    log.info("dedupe: CLIENT REPLY SKIP %s", "in use" if supported else "unsupported, waiting for OK")
    return supported


def _release(r: Redis, key: str) -> None:
    """Give up the claim of a message whose handler failed, so that WeChat's retry runs it again.

    A plain DEL: only the claimer writes the key while it is PENDING (retries only read it), and the
    claim outlives any request (WECHAT_DEDUPE_TTL_SECONDS against gunicorn's 30 s timeout).
    """
    try:
        r.delete(key)
    except RedisError:
        log.exception("dedupe: could not release a failed message's claim")


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
