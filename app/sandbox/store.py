"""What the emulated WeChat server remembers: tokens, menus, tags, media, QR codes, OAuth2 codes.

Built on `state.py` (users, chat logs, recorded calls); every key lives under `sandbox:`. Lifetimes
that WeChat defines (access tokens 7200 s with a 5-minute overlap, OAuth2 codes 5 minutes, the 48 h
window for custom messages) are checked against `now(r)`, the sandbox's clock, which tests may move
forward (`advance_clock`) instead of sleeping. Redis TTLs are only for cleaning up.

Other sandbox modules use: `touch_user`, `current_menu_for`, `save_media`, `get_media`,
`find_qrcode`, `issue_oauth_code`.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any

from redis import Redis
from redis.exceptions import WatchError

from app.sandbox import state

P = state.PREFIX
CLOCK_OFFSET = P + "clock_offset"  # seconds added to time.time()
TOKENS = P + "tokens"  # hash access_token -> expires_at
CURRENT_TOKEN = P + "token:current"
LAST_SEEN = P + "last_seen"  # hash openid -> last time the user wrote to the account
MENU_DEFAULT = P + "menu:default"  # JSON {"button": [...], "menuid": int}
MENU_CONDITIONAL = P + "menu:conditional"  # hash menuid -> JSON {"button", "matchrule", "menuid"}
MENU_SEQ = P + "menu:seq"
TAGS = P + "tags"  # hash tag id -> name
TAG_SEQ = P + "tags:seq"
TEMPLATES = P + "templates"  # hash template_id -> JSON {"template_id", "title", "content"}
MSG_SEQ = P + "msg:seq"
FAULTS = P + "faults"  # hash WeChat path -> JSON {"errcode" | "http_status", "times"}

TOKEN_LIFETIME = 7200
# After a new token is issued the previous one keeps working this long, then stops (WeChat's rule).
TOKEN_OVERLAP = 300
OAUTH_CODE_LIFETIME = 300
SNS_TOKEN_LIFETIME = 7200
CUSTOM_MESSAGE_WINDOW = 48 * 3600
MEDIA_LIFETIME = 3 * 24 * 3600  # temporary media (临时素材) live three days
QR_DEFAULT_EXPIRE = 60
QR_MAX_EXPIRE = 30 * 24 * 3600
TEMPLATE_DEDUPE_SECONDS = 600
MAX_TAGS = 100
MAX_TAGS_PER_USER = 20
MAX_CONDITIONAL_MENUS = 20
# WeChat's own tags: 0/1/2 are reserved; 2 is 星标组 and shows in tags/get.
RESERVED_TAGS = {2: "星标组"}
FIRST_TAG_ID = 100

# A template library as an account would have it after picking templates on the admin page.
# The service names template ids in its settings; tests can add more with `add_template`.
DEFAULT_TEMPLATES: dict[str, dict[str, str]] = {
    "sandbox-review-result": {
        "template_id": "sandbox-review-result",
        "title": "审核结果通知",
        "content": (
            "审核结果：{{phrase1.DATA}}\n学校：{{thing2.DATA}}\n说明：{{thing3.DATA}}\n时间：{{time4.DATA}}"
        ),
    },
}


# --- the clock ------------------------------------------------------------------------------


def now(r: Redis) -> float:
    offset = r.get(CLOCK_OFFSET)
    return time.time() + (float(offset) if offset else 0.0)


def advance_clock(r: Redis, seconds: float) -> float:
    """Move the sandbox's clock forward (tests: token expiry, the 48 h window) and return it."""
    r.incrbyfloat(CLOCK_OFFSET, seconds)
    return now(r)


def _ttl(seconds: float) -> int:
    # Keys outlive their logical lifetime generously so a moved clock still sees them (and says why).
    return int(seconds) + 86400


# --- access tokens ---------------------------------------------------------------------------


def issue_token(r: Redis) -> tuple[str, int]:
    """A new access_token; the previous current one stays valid for TOKEN_OVERLAP more seconds."""
    token = secrets.token_urlsafe(96)[:128]
    moment = now(r)
    r.hset(TOKENS, token, moment + TOKEN_LIFETIME)
    previous = r.getset(CURRENT_TOKEN, token)
    if previous:
        expires = r.hget(TOKENS, previous)
        if expires is not None:
            r.hset(TOKENS, previous, min(float(expires), moment + TOKEN_OVERLAP))
    # Forget tokens dead for a day, so the hash does not grow forever.
    for old, expires_at in r.hgetall(TOKENS).items():
        if float(expires_at) < moment - 86400:
            r.hdel(TOKENS, old)
    return token, TOKEN_LIFETIME


def check_token(r: Redis, token: str | None) -> int:
    """0 when usable; else WeChat's errcode: 41001 missing, 40001 unknown/replaced, 42001 expired."""
    if not token:
        return 41001
    expires = r.hget(TOKENS, token)
    if expires is None:
        return 40001
    if now(r) >= float(expires):
        return 42001
    return 0


def expire_tokens(r: Redis, mode: str = "expire") -> int:
    """Tests: "expire" makes every token expired (42001); "invalidate" forgets them (40001)."""
    tokens = r.hkeys(TOKENS)
    if mode == "invalidate":
        r.delete(TOKENS, CURRENT_TOKEN)
    else:
        moment = now(r) - 1
        for token in tokens:
            r.hset(TOKENS, token, moment)
    return len(tokens)


# --- users: last interaction, tags ------------------------------------------------------------


def touch_user(r: Redis, openid: str) -> None:
    """The user wrote to the account (message, menu click, follow): opens the 48 h custom window."""
    r.hset(LAST_SEEN, openid, now(r))


def last_seen(r: Redis, openid: str) -> float | None:
    value = r.hget(LAST_SEEN, openid)
    return float(value) if value is not None else None


def within_custom_window(r: Redis, openid: str) -> bool:
    seen = last_seen(r, openid)
    return seen is not None and now(r) - seen < CUSTOM_MESSAGE_WINDOW


def _user_tags_key(openid: str) -> str:
    return f"{P}user_tags:{openid}"


def user_tags(r: Redis, openid: str) -> list[int]:
    return sorted(int(t) for t in r.smembers(_user_tags_key(openid)))


def tags(r: Redis) -> dict[int, str]:
    found = {int(k): str(v) for k, v in r.hgetall(TAGS).items()}
    return {**RESERVED_TAGS, **found}


def tag_count(r: Redis, tag_id: int) -> int:
    return sum(1 for u in state.list_users(r) if tag_id in user_tags(r, u["openid"]))


def create_tag(r: Redis, name: str) -> int:
    if r.hlen(TAGS) == 0 and not r.exists(TAG_SEQ):
        r.set(TAG_SEQ, FIRST_TAG_ID - 1)
    tag_id = int(r.incr(TAG_SEQ))
    r.hset(TAGS, str(tag_id), name)
    return tag_id


def tag_users(r: Redis, tag_id: int, openids: list[str]) -> None:
    for openid in openids:
        r.sadd(_user_tags_key(openid), str(tag_id))


def untag_users(r: Redis, tag_id: int, openids: list[str]) -> None:
    for openid in openids:
        r.srem(_user_tags_key(openid), str(tag_id))


# --- menus -----------------------------------------------------------------------------------


def default_menu(r: Redis) -> dict[str, Any] | None:
    raw = r.get(MENU_DEFAULT)
    return json.loads(raw) if raw else None


def conditional_menus(r: Redis) -> list[dict[str, Any]]:
    """Newest first: WeChat matches the most recently created conditional menu first."""
    menus = [json.loads(v) for v in r.hvals(MENU_CONDITIONAL)]
    return sorted(menus, key=lambda m: int(m["menuid"]), reverse=True)


def _next_menuid(r: Redis) -> int:
    if not r.exists(MENU_SEQ):
        r.set(MENU_SEQ, 400000000)  # WeChat's menuids are 9-digit numbers
    return int(r.incr(MENU_SEQ))


def set_default_menu(r: Redis, buttons: list[dict[str, Any]]) -> int:
    menuid = _next_menuid(r)
    r.set(MENU_DEFAULT, json.dumps({"button": buttons, "menuid": menuid}, ensure_ascii=False))
    return menuid


def add_conditional_menu(r: Redis, buttons: list[dict[str, Any]], matchrule: dict[str, Any]) -> int:
    menuid = _next_menuid(r)
    menu = {"button": buttons, "matchrule": matchrule, "menuid": menuid}
    r.hset(MENU_CONDITIONAL, str(menuid), json.dumps(menu, ensure_ascii=False))
    return menuid


def delete_conditional_menu(r: Redis, menuid: str) -> bool:
    return bool(r.hdel(MENU_CONDITIONAL, str(menuid)))


def delete_all_menus(r: Redis) -> None:
    r.delete(MENU_DEFAULT, MENU_CONDITIONAL)


def current_menu_for(r: Redis, openid: str) -> dict[str, Any] | None:
    """The menu this user sees, in WeChat's {"button": [...]} shape (None: the account has none).

    Conditional menus match on tag_id only (WeChat dropped sex/country/... matching); the newest
    conditional menu that matches wins, else the default menu.
    """
    default = default_menu(r)
    if default is None:
        return None
    tags_of_user = {str(t) for t in user_tags(r, openid)}
    for menu in conditional_menus(r):
        tag_id = menu["matchrule"].get("tag_id")
        if tag_id in (None, "") or str(tag_id) in tags_of_user:
            return {"button": menu["button"]}
    return {"button": default["button"]}


# --- media -----------------------------------------------------------------------------------


def _media_key(media_id: str) -> str:
    return f"{P}media:{media_id}"


def save_media(r: Redis, content: bytes, content_type: str, media_type: str = "image") -> str:
    """Store bytes as temporary media and return its media_id (64 characters, like WeChat's)."""
    media_id = secrets.token_urlsafe(48)[:64]
    key = _media_key(media_id)
    # The client decodes responses as text: keep the bytes as base64.
    r.hset(
        key,
        mapping={
            "content": base64.b64encode(content).decode("ascii"),
            "content_type": content_type,
            "media_type": media_type,
            "created_at": int(now(r)),
        },
    )
    r.expire(key, MEDIA_LIFETIME)
    return media_id


def get_media(r: Redis, media_id: str) -> tuple[bytes, str] | None:
    data = r.hgetall(_media_key(media_id)) if media_id else {}
    if not data:
        return None
    return base64.b64decode(data["content"]), str(data["content_type"])


# --- QR codes with a scene -------------------------------------------------------------------


@dataclass(frozen=True)
class QRCode:
    ticket: str
    url: str  # what the square encodes, as WeChat's http://weixin.qq.com/q/<code>
    action_name: str
    scene_id: int | None
    scene_str: str | None
    expire_at: float | None  # None: permanent

    @property
    def scene(self) -> str:
        return self.scene_str if self.scene_str is not None else str(self.scene_id)


def _qr_key(ticket: str) -> str:
    return f"{P}qrcode:{ticket}"


def _qr_url_key(url: str) -> str:
    return f"{P}qrcode_url:{url}"


def create_qrcode(
    r: Redis, action_name: str, scene_id: int | None, scene_str: str | None, expire_seconds: int | None
) -> QRCode:
    ticket = "gQ" + secrets.token_urlsafe(72)[:94]
    url = "http://weixin.qq.com/q/" + secrets.token_urlsafe(16)[:22]
    expire_at = now(r) + expire_seconds if expire_seconds is not None else None
    code = QRCode(ticket, url, action_name, scene_id, scene_str, expire_at)
    ttl = _ttl(expire_seconds) if expire_seconds is not None else None
    r.set(_qr_key(ticket), json.dumps(code.__dict__, ensure_ascii=False), ex=ttl)
    r.set(_qr_url_key(url), ticket, ex=ttl)
    return code


def find_qrcode(r: Redis, ticket_or_url: str) -> QRCode | None:
    """A live QR code by its ticket or by the URL it encodes (what a phone that scans it reads)."""
    ticket = ticket_or_url
    if ticket_or_url.startswith("http"):
        ticket = str(r.get(_qr_url_key(ticket_or_url)) or "")
    raw = r.get(_qr_key(ticket)) if ticket else None
    if not raw:
        return None
    code = QRCode(**json.loads(raw))
    if code.expire_at is not None and now(r) >= code.expire_at:
        return None
    return code


# --- OAuth2 (网页授权) -------------------------------------------------------------------------


def _code_key(code: str) -> str:
    return f"{P}oauth:code:{code}"


def issue_oauth_code(r: Redis, openid: str, appid: str, scope: str) -> str:
    code = secrets.token_hex(16)
    record = {"openid": openid, "appid": appid, "scope": scope, "expires_at": now(r) + OAUTH_CODE_LIFETIME}
    r.set(_code_key(code), json.dumps(record), ex=_ttl(OAUTH_CODE_LIFETIME))
    return code


def redeem_oauth_code(r: Redis, code: str) -> tuple[int, dict[str, Any] | None]:
    """(0, record) the first time; 40163 once used; 40029 unknown or expired."""
    raw = r.get(_code_key(code)) if code else None
    if not raw:
        return 40029, None
    record: dict[str, Any] = json.loads(raw)
    if now(r) >= record["expires_at"]:
        return 40029, None
    # SET NX: of two concurrent exchanges exactly one wins, like WeChat's single-use codes.
    if not r.set(_code_key(code) + ":used", "1", nx=True, ex=_ttl(OAUTH_CODE_LIFETIME)):
        return 40163, None
    return 0, record


def issue_sns_token(r: Redis, openid: str, scope: str) -> tuple[str, str]:
    access_token = secrets.token_urlsafe(64)[:86]
    refresh_token = secrets.token_urlsafe(64)[:86]
    record = {"openid": openid, "scope": scope, "expires_at": now(r) + SNS_TOKEN_LIFETIME}
    r.set(f"{P}sns:{access_token}", json.dumps(record), ex=_ttl(SNS_TOKEN_LIFETIME))
    return access_token, refresh_token


def sns_token(r: Redis, access_token: str) -> dict[str, Any] | None:
    raw = r.get(f"{P}sns:{access_token}") if access_token else None
    if not raw:
        return None
    record: dict[str, Any] = json.loads(raw)
    return record if now(r) < record["expires_at"] else None


# --- templates and message ids ---------------------------------------------------------------


def add_template(r: Redis, title: str, content: str, template_id: str | None = None) -> str:
    template_id = template_id or secrets.token_urlsafe(32)[:43]
    record = {"template_id": template_id, "title": title, "content": content}
    r.hset(TEMPLATES, template_id, json.dumps(record, ensure_ascii=False))
    return template_id


def get_template(r: Redis, template_id: str) -> dict[str, str] | None:
    raw = r.hget(TEMPLATES, template_id)
    if raw:
        record: dict[str, str] = json.loads(raw)
        return record
    return DEFAULT_TEMPLATES.get(template_id)


def list_templates(r: Redis) -> list[dict[str, str]]:
    custom = [json.loads(v) for v in r.hvals(TEMPLATES)]
    return [*DEFAULT_TEMPLATES.values(), *custom]


_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\.DATA\s*\}\}")


def render_template(content: str, data: dict[str, Any]) -> str:
    def value(match: re.Match[str]) -> str:
        field = data.get(match.group(1))
        return str(field.get("value", "")) if isinstance(field, dict) else ""

    return _PLACEHOLDER.sub(value, content)


def remember_template_send(r: Redis, openid: str, client_msg_id: str, msgid: int) -> int | None:
    """None the first time; the first send's msgid for a repeat within 10 minutes (then dropped)."""
    key = f"{P}tmpl_sent:{openid}:{client_msg_id}"
    if r.set(key, msgid, nx=True, ex=TEMPLATE_DEDUPE_SECONDS):
        return None
    previous = r.get(key)
    return int(previous) if previous else msgid


def next_msgid(r: Redis) -> int:
    if not r.exists(MSG_SEQ):
        r.set(MSG_SEQ, 2_000_000_000)
    return int(r.incr(MSG_SEQ))


# --- injected faults (tests of retry paths) --------------------------------------------------


def add_fault(
    r: Redis, path: str, *, errcode: int | None = None, http_status: int | None = None, times: int = 1
) -> None:
    """The next `times` calls to `path` fail with WeChat's `errcode` (e.g. -1 busy) or an HTTP error."""
    r.hset(FAULTS, path, json.dumps({"errcode": errcode, "http_status": http_status, "times": times}))


def take_fault(r: Redis, path: str) -> dict[str, Any] | None:
    # WATCH/MULTI so that two concurrent calls never both consume the last fault.
    with r.pipeline() as pipe:
        while True:
            try:
                pipe.watch(FAULTS)  # type: ignore[no-untyped-call]
                raw = pipe.hget(FAULTS, path)
                if not raw:
                    pipe.unwatch()
                    return None
                fault: dict[str, Any] = json.loads(raw)
                pipe.multi()
                if fault["times"] <= 1:
                    pipe.hdel(FAULTS, path)
                else:
                    pipe.hset(FAULTS, path, json.dumps({**fault, "times": fault["times"] - 1}))
                pipe.execute()
                return fault
            except WatchError:
                continue
