"""The emulator's own memory, kept in Redis under `sandbox:` (WeChat's side of the world).

Everything the fake WeChat knows lives here: its users, each user's chat as the phone shows it,
the calls the service made to its API, tokens, menus, tags, media, QR tickets, OAuth codes.
Keys are listed in one place so the emulator's modules agree on them.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

from redis import Redis

PREFIX = "sandbox:"
USERS = PREFIX + "users"  # hash openid -> JSON user
CALLS = PREFIX + "calls"  # list of JSON calls, newest first
CALLS_KEPT = 500
CHAT_KEPT = 300


def chat_key(openid: str) -> str:
    return f"{PREFIX}chat:{openid}"


def new_openid() -> str:
    # Real openids are 28 characters of [A-Za-z0-9_-] starting with "o"; keep the shape.
    return "o" + secrets.token_urlsafe(20)[:27]


def create_user(r: Redis, nickname: str, openid: str | None = None) -> dict[str, Any]:
    user = {
        "openid": openid or new_openid(),
        "nickname": nickname,
        "created_at": int(time.time()),
        "subscribed": False,
    }
    r.hset(USERS, user["openid"], json.dumps(user, ensure_ascii=False))
    return user


def get_user(r: Redis, openid: str) -> dict[str, Any] | None:
    raw = r.hget(USERS, openid)
    return json.loads(raw) if raw else None


def save_user(r: Redis, user: dict[str, Any]) -> None:
    r.hset(USERS, user["openid"], json.dumps(user, ensure_ascii=False))


def list_users(r: Redis) -> list[dict[str, Any]]:
    users = [json.loads(v) for v in r.hvals(USERS)]
    return sorted(users, key=lambda u: u["created_at"])


def append_chat(r: Redis, openid: str, entry: dict[str, Any]) -> dict[str, Any]:
    """Add one bubble to the user's chat. `direction` is "in" (user → account) or "out"."""
    entry = {"id": secrets.token_hex(6), "at": time.time(), **entry}
    key = chat_key(openid)
    pipe = r.pipeline()
    pipe.rpush(key, json.dumps(entry, ensure_ascii=False))
    pipe.ltrim(key, -CHAT_KEPT, -1)
    pipe.execute()
    return entry


def chat(r: Redis, openid: str, since: float = 0.0) -> list[dict[str, Any]]:
    entries = [json.loads(v) for v in r.lrange(chat_key(openid), 0, -1)]
    return [e for e in entries if e["at"] > since]


def record_call(r: Redis, method: str, path: str, query: dict[str, Any], body: Any) -> None:
    call = {"at": time.time(), "method": method, "path": path, "query": query, "body": body}
    pipe = r.pipeline()
    pipe.lpush(CALLS, json.dumps(call, ensure_ascii=False, default=str))
    pipe.ltrim(CALLS, 0, CALLS_KEPT - 1)
    pipe.execute()


def calls(r: Redis, path_contains: str = "") -> list[dict[str, Any]]:
    found = [json.loads(v) for v in r.lrange(CALLS, 0, -1)]
    return [c for c in found if path_contains in c["path"]]
