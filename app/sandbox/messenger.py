"""WeChat's side of the server URL: the messages and events WeChat posts to /wechat.

For each thing a user does on the phone (send text or an image, follow, tap the menu) this builds
the XML WeChat would post, signs the query string as WeChat does (and encrypts in safe/compatible
mode), posts it with WeChat's 5 s timeout and its retries (three tries, same MsgId/CreateTime),
reads the passive reply and writes both to the user's chat log.

Formats:
https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Receiving_standard_messages.html
https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Receiving_event_pushes.html
https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Passive_user_reply_message.html
https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Message_encryption_and_decryption_instructions.html
"""

from __future__ import annotations

import hmac
import logging
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from xml.parsers.expat import ExpatError

import requests
import xmltodict
from flask import current_app
from redis import Redis
from wechatpy.crypto import PrpCrypto, WeChatCrypto
from wechatpy.exceptions import InvalidAppIdException
from wechatpy.utils import WeChatSigner

from app.sandbox import addresses, state

log = logging.getLogger(__name__)

# What WeChat shows the user when the server did not answer in time or answered garbage.
SERVICE_UNAVAILABLE = "该公众号暂时无法提供服务，请稍后再试"
# The account's original ID (原始ID, gh_ + 12 hex digits): ToUserName of everything WeChat posts.
DEFAULT_ACCOUNT_ID = "gh_5a9dbe0c0ffe"
TIMEOUT_SECONDS = 5.0
TRIES = 3
REPLY_TYPES = {"text", "image", "voice", "video", "music", "news", "transfer_customer_service"}
# XML 1.0 forbids most control characters; WeChat never sends them.
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")

Field = tuple[str, "str | int | float"]


def account_id() -> str:
    value: str = current_app.config.get("SANDBOX_ACCOUNT_ID", DEFAULT_ACCOUNT_ID)
    return value


def server_url() -> str:
    """The URL configured as 服务器地址 on WeChat's admin page: the service's /wechat by default."""
    return str(current_app.config.get("SANDBOX_WECHAT_URL") or addresses.service_url() + "/wechat")


def new_msg_id() -> int:
    # Real MsgIds are 64-bit integers of 17-19 digits; 19 digits that still fit a signed bigint.
    return 10**18 + secrets.randbelow(8 * 10**18)


def new_nonce() -> str:
    return str(secrets.randbelow(9 * 10**9) + 10**9)


def _cdata(value: str) -> str:
    # "]]>" cannot appear inside CDATA: close the section and open a new one around the ">".
    value = _XML_INVALID.sub("", value)
    return "<![CDATA[" + value.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def to_xml(fields: list[Field]) -> str:
    """WeChat's flat message XML: strings in CDATA, numbers bare, in the documented order."""
    parts = ["<xml>"]
    for name, value in fields:
        text = str(value) if isinstance(value, int | float) else _cdata(value)
        parts.append(f"<{name}>{text}</{name}>")
    parts.append("</xml>")
    return "".join(parts)


# --- message and event bodies -------------------------------------------------------------------


def _head(openid: str, msg_type: str, create_time: int | None) -> list[Field]:
    return [
        ("ToUserName", account_id()),
        ("FromUserName", openid),
        ("CreateTime", create_time or int(time.time())),
        ("MsgType", msg_type),
    ]


def text_fields(
    openid: str, content: str, *, msg_id: int | None = None, create_time: int | None = None
) -> list[Field]:
    return [*_head(openid, "text", create_time), ("Content", content), ("MsgId", msg_id or new_msg_id())]


def media_url(media_id: str) -> str:
    return f"{addresses.own_base()}/media/{media_id}"


def image_fields(
    openid: str, media_id: str, *, msg_id: int | None = None, create_time: int | None = None
) -> list[Field]:
    return [
        *_head(openid, "image", create_time),
        ("PicUrl", media_url(media_id)),
        ("MediaId", media_id),
        ("MsgId", msg_id or new_msg_id()),
    ]


def voice_fields(
    openid: str, media_id: str, fmt: str = "amr", *, msg_id: int | None = None, create_time: int | None = None
) -> list[Field]:
    return [
        *_head(openid, "voice", create_time),
        ("MediaId", media_id),
        ("Format", fmt),
        ("MsgId", msg_id or new_msg_id()),
    ]


def location_fields(
    openid: str,
    latitude: float,
    longitude: float,
    label: str,
    scale: int = 15,
    *,
    msg_id: int | None = None,
    create_time: int | None = None,
) -> list[Field]:
    return [
        *_head(openid, "location", create_time),
        ("Location_X", latitude),
        ("Location_Y", longitude),
        ("Scale", scale),
        ("Label", label),
        ("MsgId", msg_id or new_msg_id()),
    ]


def event_fields(
    openid: str,
    event: str,
    event_key: str | None = None,
    *,
    ticket: str | None = None,
    menu_id: str | None = None,
    create_time: int | None = None,
) -> list[Field]:
    """subscribe / unsubscribe (no EventKey), subscribe with `qrscene_<scene>` + Ticket, SCAN
    (scene + Ticket), CLICK (key), VIEW (URL, MenuId for a conditional menu)."""
    fields = [*_head(openid, "event", create_time), ("Event", event)]
    if event_key is not None:
        fields.append(("EventKey", event_key))
    if ticket is not None:
        fields.append(("Ticket", ticket))
    if menu_id is not None:
        fields.append(("MenuId", menu_id))
    return fields


# --- signing, encryption, transport -------------------------------------------------------------


def _sign(*values: str) -> str:
    signer = WeChatSigner()
    signer.add_data(*values)
    return str(signer.signature)


def _crypto() -> WeChatCrypto:
    config = current_app.config
    return WeChatCrypto(config["WECHAT_TOKEN"], config["WECHAT_AES_KEY"], config["WECHAT_APPID"])


def encrypt_mode() -> str:
    return str(current_app.config["WECHAT_ENCRYPT_MODE"])


@dataclass
class Envelope:
    """One signed post, reused unchanged for each retry."""

    params: dict[str, str]
    body: bytes
    nonce: str
    timestamp: str


def envelope(fields: list[Field], openid: str) -> Envelope:
    """Sign (and in compatible/safe mode encrypt) a message the way WeChat posts it."""
    config = current_app.config
    timestamp, nonce = str(int(time.time())), new_nonce()
    params = {
        "signature": _sign(config["WECHAT_TOKEN"], timestamp, nonce),
        "timestamp": timestamp,
        "nonce": nonce,
        "openid": openid,
    }
    mode = encrypt_mode()
    if mode == "plain":
        return Envelope(params, to_xml(fields).encode(), nonce, timestamp)
    crypto = _crypto()
    encrypted = PrpCrypto(crypto.key).encrypt(to_xml(fields), config["WECHAT_APPID"]).decode()
    outer: list[Field] = [("ToUserName", account_id()), ("Encrypt", encrypted)]
    if mode == "compatible":
        # 兼容模式: the plaintext fields and their encrypted copy travel together.
        outer = [*fields, ("Encrypt", encrypted)]
    params["encrypt_type"] = "aes"
    params["msg_signature"] = _sign(config["WECHAT_TOKEN"], timestamp, nonce, encrypted)
    return Envelope(params, to_xml(outer).encode(), nonce, timestamp)


def _post(url: str, params: dict[str, str], body: bytes, timeout: float) -> requests.Response:
    """One try; tests wrap this to watch the tries."""
    return requests.post(
        url,
        params=params,
        data=body,
        headers={"Content-Type": "text/xml", "User-Agent": "Mozilla/4.0"},
        timeout=timeout,
        allow_redirects=False,
    )


@dataclass
class Delivery:
    """What happened to one message: the tries, the final HTTP status, and what the user saw."""

    tries: int = 0
    status: int | None = None
    reply: dict[str, Any] | None = None
    failed: bool = False
    entries: list[dict[str, Any]] = field(default_factory=list)


def deliver(fields: list[Field], openid: str) -> Delivery:
    """Post with WeChat's retry rule: no answer within the timeout → the same post again, 3 tries."""
    config = current_app.config
    timeout = float(config.get("SANDBOX_WECHAT_TIMEOUT_SECONDS", TIMEOUT_SECONDS))
    tries = int(config.get("SANDBOX_WECHAT_TRIES", TRIES))
    env = envelope(fields, openid)
    url = server_url()
    delivery = Delivery()
    for _ in range(tries):
        delivery.tries += 1
        try:
            response = _post(url, env.params, env.body, timeout)
        except (requests.Timeout, requests.ConnectionError) as exc:
            log.info("sandbox: no answer from %s (try %d): %s", url, delivery.tries, type(exc).__name__)
            continue
        delivery.status = response.status_code
        if response.status_code != 200:
            log.warning("sandbox: %s answered HTTP %d", url, response.status_code)
            delivery.failed = True
            return delivery
        try:
            delivery.reply = parse_reply(response.content, openid)
        except InvalidReplyError as exc:
            log.warning("sandbox: invalid reply from %s: %s", url, exc)
            delivery.failed = True
        return delivery
    delivery.failed = True
    return delivery


# --- replies ------------------------------------------------------------------------------------


class InvalidReplyError(ValueError):
    """WeChat would not accept this passive reply."""


def _parse_xml(raw: bytes | str) -> dict[str, Any]:
    try:
        doc = xmltodict.parse(raw, disable_entities=True)
    except (ExpatError, ValueError) as exc:
        raise InvalidReplyError(f"not XML: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("xml"), dict):
        raise InvalidReplyError("no <xml> root")
    xml: dict[str, Any] = doc["xml"]
    return xml


def _decrypt_reply(outer: dict[str, Any]) -> dict[str, Any]:
    """An encrypted reply: MsgSignature over (token, TimeStamp, Nonce, Encrypt), then AES."""
    config = current_app.config
    values = [outer.get(name) for name in ("Encrypt", "MsgSignature", "TimeStamp", "Nonce")]
    if not all(isinstance(v, str) and v for v in values):
        raise InvalidReplyError("encrypted reply lacks Encrypt/MsgSignature/TimeStamp/Nonce")
    encrypted, signature, timestamp, nonce = (str(v) for v in values)
    expected = _sign(config["WECHAT_TOKEN"], timestamp, nonce, encrypted)
    if not hmac.compare_digest(expected, signature):
        raise InvalidReplyError("wrong MsgSignature")
    try:
        plain = PrpCrypto(_crypto().key).decrypt(encrypted, config["WECHAT_APPID"])
    except InvalidAppIdException:
        raise InvalidReplyError("encrypted for another AppID") from None
    except Exception as exc:  # bad base64, padding, length: all "not a valid reply"
        raise InvalidReplyError(f"cannot decrypt: {type(exc).__name__}") from None
    return _parse_xml(plain)


def parse_reply(raw: bytes, openid: str) -> dict[str, Any] | None:
    """The passive reply as a chat entry; None for "no reply" (an empty body or "success")."""
    text = raw.decode("utf-8", errors="replace").strip()
    if text in ("", "success"):
        return None
    xml = _parse_xml(raw)
    if "Encrypt" in xml:
        if encrypt_mode() == "plain":
            raise InvalidReplyError("encrypted reply in plain mode")
        xml = _decrypt_reply(xml)
    elif encrypt_mode() == "safe":
        raise InvalidReplyError("plaintext reply in safe mode")
    msg_type = xml.get("MsgType")
    if msg_type not in REPLY_TYPES:
        raise InvalidReplyError(f"unknown MsgType {msg_type!r}")
    if xml.get("ToUserName") != openid:
        raise InvalidReplyError("ToUserName is not the user who wrote")
    if xml.get("FromUserName") != account_id():
        raise InvalidReplyError("FromUserName is not the account")
    return _reply_entry(xml)


def _media(value: Any) -> str | None:
    media_id = value.get("MediaId") if isinstance(value, dict) else None
    return f"/_sandbox/media/{media_id}" if media_id else None


def _reply_entry(xml: dict[str, Any]) -> dict[str, Any] | None:
    msg_type: str = xml["MsgType"]
    entry: dict[str, Any] = {"direction": "out", "type": msg_type, "via": "reply"}
    if msg_type == "text":
        if not isinstance(xml.get("Content"), str):
            raise InvalidReplyError("text reply without Content")
        entry["text"] = xml["Content"]
    elif msg_type in ("image", "voice", "video"):
        node = xml.get(msg_type.capitalize())
        entry["media_url"] = _media(node)
        if not entry["media_url"]:
            raise InvalidReplyError(f"{msg_type} reply without MediaId")
        if isinstance(node, dict) and node.get("Title"):
            entry["text"] = node["Title"]
    elif msg_type == "music":
        music = xml.get("Music") or {}
        entry.update(text=music.get("Title"), url=music.get("MusicUrl"))
    elif msg_type == "news":
        items = (xml.get("Articles") or {}).get("item") or []
        items = items if isinstance(items, list) else [items]
        articles = [
            {k: item.get(k) for k in ("Title", "Description", "PicUrl", "Url")}
            for item in items
            if isinstance(item, dict)
        ]
        if not articles:
            raise InvalidReplyError("news reply without articles")
        first = articles[0]
        entry.update(
            text=first["Title"], url=first["Url"], media_url=first["PicUrl"], data={"articles": articles}
        )
    else:  # transfer_customer_service: handed to a human agent, nothing shown
        return None
    return entry


# --- what the phone calls -----------------------------------------------------------------------


def _user_entry(fields: list[Field]) -> dict[str, Any]:
    values = dict(fields)
    msg_type = str(values["MsgType"])
    entry: dict[str, Any] = {"direction": "in", "type": msg_type, "via": "user"}
    if "MsgId" in values:
        entry["msg_id"] = str(values["MsgId"])  # 19 digits: a string, or JavaScript rounds it
    if msg_type == "text":
        entry["text"] = values["Content"]
    elif msg_type in ("image", "voice"):
        entry["media_url"] = f"/_sandbox/media/{values['MediaId']}"
    elif msg_type == "location":
        entry["text"] = str(values["Label"])
        entry["data"] = {"latitude": values["Location_X"], "longitude": values["Location_Y"]}
    elif msg_type == "event":
        entry["event"] = values["Event"]
        entry["event_key"] = values.get("EventKey")
    return entry


# WeChat opens the 48-hour window for custom messages on these, not on VIEW or unsubscribe.
# https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Service_Center_messages.html
_NO_TOUCH_EVENTS = {"VIEW", "unsubscribe"}
# WeChat delivers no passive reply for these: the user has left the chat.
_NO_REPLY_EVENTS = {"VIEW", "unsubscribe"}


def send(r: Redis, openid: str, fields: list[Field]) -> Delivery:
    """Record the user's action, post it to the service, record what the user then sees."""
    from app.sandbox import store

    entry = _user_entry(fields)
    event = entry.get("event")
    if event not in _NO_TOUCH_EVENTS:
        store.touch_user(r, openid)
    recorded = [state.append_chat(r, openid, entry)]
    delivery = deliver(fields, openid)
    if event not in _NO_REPLY_EVENTS:
        if delivery.failed:
            notice = {"direction": "out", "type": "system", "via": "reply", "text": SERVICE_UNAVAILABLE}
            recorded.append(state.append_chat(r, openid, notice))
        elif delivery.reply is not None:
            recorded.append(state.append_chat(r, openid, delivery.reply))
    delivery.entries = recorded
    return delivery


class UnknownUserError(LookupError):
    """No sandbox user with this openid."""


def _set_subscribed(r: Redis, openid: str, subscribed: bool) -> None:
    user = state.get_user(r, openid)
    if user is None:
        raise UnknownUserError(openid)
    user["subscribed"] = subscribed
    user["subscribed_at" if subscribed else "unsubscribed_at"] = int(time.time())
    state.save_user(r, user)


def send_text(r: Redis, openid: str, content: str) -> Delivery:
    return send(r, openid, text_fields(openid, content))


def send_image(r: Redis, openid: str, media_id: str) -> Delivery:
    return send(r, openid, image_fields(openid, media_id))


def send_voice(r: Redis, openid: str, media_id: str, fmt: str = "amr") -> Delivery:
    return send(r, openid, voice_fields(openid, media_id, fmt))


def send_location(r: Redis, openid: str, latitude: float, longitude: float, label: str) -> Delivery:
    return send(r, openid, location_fields(openid, latitude, longitude, label))


def qr_ticket() -> str:
    """A ticket-shaped string for a scene QR code the phone 'scanned' (WeChat's are opaque base64)."""
    return "gQ" + secrets.token_urlsafe(36)


def subscribe(r: Redis, openid: str, scene: str | None = None, ticket: str | None = None) -> Delivery:
    """关注: plain, or through a scene QR code (EventKey qrscene_<scene> and the code's Ticket)."""
    _set_subscribed(r, openid, True)
    if scene is None:
        return send(r, openid, event_fields(openid, "subscribe"))
    fields = event_fields(openid, "subscribe", f"qrscene_{scene}", ticket=ticket or qr_ticket())
    return send(r, openid, fields)


def unsubscribe(r: Redis, openid: str) -> Delivery:
    _set_subscribed(r, openid, False)
    return send(r, openid, event_fields(openid, "unsubscribe"))


def scan(r: Redis, openid: str, scene: str, ticket: str | None = None) -> Delivery:
    """A follower scans a scene QR code (a non-follower gets `subscribe` with qrscene_ instead)."""
    return send(r, openid, event_fields(openid, "SCAN", scene, ticket=ticket or qr_ticket()))


def click(r: Redis, openid: str, key: str) -> Delivery:
    return send(r, openid, event_fields(openid, "CLICK", key))


def view(r: Redis, openid: str, url: str, menu_id: str | None = None) -> Delivery:
    return send(r, openid, event_fields(openid, "VIEW", url, menu_id=menu_id))
