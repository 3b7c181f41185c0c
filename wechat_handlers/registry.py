"""The router: ONE dict maps (msg_type, event, key) to a handler; dispatch is one lookup plus fallbacks.

Keys, all lower-case except menu keys, which WeChat passes through exactly as the menu defines them:

    ("text", None, "帮助")            a keyword (the message text, trimmed, lower-cased, without a
                                      trailing question mark or full stop)
    ("text", None, None)              any other text
    ("event", "click", "HELP")        a menu CLICK with EventKey HELP
    ("event", "subscribe", None)      an event type (wechatpy's name: "subscribe_scan" is a follow
                                      through a scene QR code, "scan" a follower scanning one)
    ("event", None, None)             any other event
    (None, None, None)                everything else (voice, video, location, link, ...)

Lookup order: exact key → (type, event) → (type) → default. Registering a key twice raises at
import, so two modules can never silently fight over a message.

A handler reads the message's fields, calls one service and returns the reply: a text, a wechatpy
reply object, or None for an empty reply ("handled, nothing to say").

`read_only=True` registers a handler that answers without changing anything (keywords, menu clicks,
link events). It is given a `ReadOnlyContext`, on every path: its session cannot write (flushes and
any statement but a SELECT are refused, app/wechat/read_only.py) and it has no Redis. So the
endpoint may compute its reply before claiming the message for dedupe and store the reply in the
same round trip (app/wechat/answering.py): one Redis round trip per message instead of two, safe
because such a handler cannot write, not because it promises not to. Every other handler gets a
`Context` with the unit of work's session and Redis, and runs once per message, after the claim.

Handlers never record the sender as a user: the endpoint does (app/wechat/answering.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import NamedTuple, TypeAlias, TypeVar

from redis import Redis
from sqlalchemy.orm import Session
from wechatpy.events import BaseEvent
from wechatpy.messages import BaseMessage
from wechatpy.replies import BaseReply

from app.services import enrollments, progress, wording
from app.services.progress import Progress
from config import Settings
from models import utcnow

Key: TypeAlias = tuple[str | None, str | None, str | None]
Reply: TypeAlias = str | BaseReply | None


@dataclass(slots=True, kw_only=True)
class _Context:
    open_session: Callable[[], Session]
    settings: Settings
    _session: Session | None = None

    @property
    def session(self) -> Session:
        """The session, opened on first use: opening and closing one cost a tenth of a keyword
        reply's CPU (0.04 of 0.44 ms), and most messages need none."""
        if self._session is None:
            self._session = self.open_session()
        return self._session

    def rollback(self) -> None:
        """Undo what a failed handler left in the session, if it opened one."""
        if self._session is not None:
            self._session.rollback()

    def close(self) -> None:
        """End the handler's use of the session (the connection goes back to the pool)."""
        if self._session is not None:
            self._session.close()
            self._session = None

    def progress(self, openid: str) -> Progress:
        """Where the sender stands (one query; a sender not known yet has not bound an identity)."""
        return progress.of_sender(self.session, openid, utcnow())

    def help_text(self, openid: str) -> str:
        """帮助, with the fee of the sender's batch when they are linked to one."""
        return wording.help_text(self.base_url, enrollments.fee_of_sender(self.session, openid))

    def fee_answer(self, openid: str) -> str:
        """How much and how to pay, for the sender's batch when they are linked to one."""
        return wording.fee_answer(self.base_url, enrollments.fee_of_sender(self.session, openid))

    @property
    def base_url(self) -> str:
        return self.settings.PUBLIC_BASE_URL


@dataclass(slots=True, kw_only=True)
class ReadOnlyContext(_Context):
    """What a read-only handler may use besides the message: a session that cannot write (opened on
    first use) and the settings; no Redis."""


@dataclass(slots=True, kw_only=True)
class Context(_Context):
    """What any other handler may use: the unit of work's session (it commits once), and Redis."""

    cache: Redis


Handler: TypeAlias = Callable[[BaseMessage, Context], Reply]
ReadOnlyHandler: TypeAlias = Callable[[BaseMessage, ReadOnlyContext], Reply]
AnyHandler = TypeVar("AnyHandler", Handler, ReadOnlyHandler)

DEFAULT: Key = (None, None, None)
HANDLERS: dict[Key, Handler | ReadOnlyHandler] = {}
# By handler, not by key: a handler put in HANDLERS some other way (a test's stand-in) is not
# read-only unless it says so.
READ_ONLY: set[Handler | ReadOnlyHandler] = set()


class Route(NamedTuple):
    handler: Handler | ReadOnlyHandler
    read_only: bool  # registered read_only=True: the handler takes a ReadOnlyContext


class DuplicateHandlerError(RuntimeError):
    """Two handlers were registered for the same key."""


def register(
    msg_type: str | None, event: str | None = None, *keys: str | None, read_only: bool = False
) -> Callable[[AnyHandler], AnyHandler]:
    """Register the decorated handler for (msg_type, event, key) — one entry per key given."""
    entries: list[Key] = [(msg_type, event, key) for key in (keys or (None,))]

    def decorate(handler: AnyHandler) -> AnyHandler:
        for entry in entries:
            if entry in HANDLERS:
                raise DuplicateHandlerError(
                    f"{entry} is already handled by {HANDLERS[entry].__module__}.{HANDLERS[entry].__name__}"
                )
            HANDLERS[entry] = handler
        if read_only:
            READ_ONLY.add(handler)
        return handler

    return decorate


def key_of(message: BaseMessage, fields: Mapping[str, str | None]) -> Key:
    """The exact routing key of a message: its type and event as wechatpy names them (a follow
    through a scene QR code is "subscribe_scan"), and the key or keyword from its XML `fields`."""
    msg_type = (fields.get("MsgType") or "").lower()
    if msg_type == "event":
        event = message.event if isinstance(message, BaseEvent) else (fields.get("Event") or "").lower()
        return (msg_type, event, fields.get("EventKey"))
    if msg_type == "text":
        return (msg_type, None, normalize_keyword(fields.get("Content") or ""))
    return (msg_type, None, None)


# "怎么交费？" and "帮助!" are the keywords 怎么交费 and 帮助; "?" alone stays the help keyword.
TRAILING_PUNCTUATION = "?？!！。.~～ \t\n"


def normalize_keyword(text: str) -> str:
    keyword = text.strip().lower()
    return keyword.rstrip(TRAILING_PUNCTUATION) or keyword


def find(key: Key) -> Handler | ReadOnlyHandler:
    msg_type, event, _ = key
    return (
        HANDLERS.get(key)
        or HANDLERS.get((msg_type, event, None))
        or HANDLERS.get((msg_type, None, None))
        or HANDLERS[DEFAULT]
    )


def route(message: BaseMessage, fields: Mapping[str, str | None]) -> Route:
    """The handler of a message (`fields`: its XML's top-level fields), and whether it is read-only."""
    handler = find(key_of(message, fields))
    return Route(handler, handler in READ_ONLY)
