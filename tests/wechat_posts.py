"""Build signed posts to /wechat exactly the way WeChat's servers do, and read the replies.

    from wechat_posts import WeChat, text_message, event_message

    wx = WeChat.for_app(app)                     # token, AppID, AES key and mode from the app
    post = wx.post(text_message("o-student", "帮助"))
    response = client.post(post.path, data=post.body, content_type="text/xml")
    reply = wx.reply_of(response.data, encrypted=post.encrypted)   # dict of the reply XML, or None

Wire format (what WeChat sends):
- query: signature = sha1(sorted(token, timestamp, nonce)), timestamp, nonce, openid; in compatible and
  safe mode also encrypt_type=aes and msg_signature = sha1(sorted(token, timestamp, nonce, Encrypt));
- body: plain mode the message XML; safe mode <xml><ToUserName/><Encrypt/></xml>; compatible mode the
  message XML with the Encrypt element added.
https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Message_encryption_and_decryption_instructions.html
"""

from __future__ import annotations

import hashlib
import itertools
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import xmltodict
from flask import Flask
from wechatpy.crypto import WeChatCrypto

from config import SANDBOX_APPID, SANDBOX_TOKEN

TOKEN = SANDBOX_TOKEN
APPID = SANDBOX_APPID
ACCOUNT = "gh_0123456789ab"  # the account's original ID: ToUserName of what WeChat posts
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"  # an EncodingAESKey: 43 characters

_msg_ids = itertools.count(int(time.time()) * 1000)


def signature(*parts: str) -> str:
    return hashlib.sha1(b"".join(sorted(p.encode() for p in parts))).hexdigest()  # noqa: S324


def to_xml(fields: Mapping[str, Any]) -> str:
    """WeChat's XML: strings in CDATA, numbers bare, one element per field, root <xml>."""
    parts = ["<xml>"]
    for name, value in fields.items():
        if value is None:
            continue
        if isinstance(value, int | float):
            parts.append(f"<{name}>{value}</{name}>")
        else:
            text = str(value).replace("]]>", "]]]]><![CDATA[>")
            parts.append(f"<{name}><![CDATA[{text}]]></{name}>")
    parts.append("</xml>")
    return "".join(parts)


def message(
    openid: str,
    msg_type: str,
    *,
    msg_id: int | None = None,
    create_time: int | None = None,
    to: str = ACCOUNT,
    **fields: Any,
) -> str:
    """A user message (text, image, voice, video, shortvideo, location, link) with its MsgId."""
    return to_xml(
        {
            "ToUserName": to,
            "FromUserName": openid,
            "CreateTime": create_time or int(time.time()),
            "MsgType": msg_type,
            **fields,
            "MsgId": msg_id if msg_id is not None else next(_msg_ids),
        }
    )


def text_message(openid: str, content: str, **kwargs: Any) -> str:
    return message(openid, "text", Content=content, **kwargs)


def image_message(openid: str, media_id: str = "media-1", **kwargs: Any) -> str:
    return message(openid, "image", PicUrl="http://mmbiz.qpic.cn/example.jpg", MediaId=media_id, **kwargs)


def voice_message(openid: str, **kwargs: Any) -> str:
    return message(openid, "voice", MediaId="voice-1", Format="amr", **kwargs)


def location_message(openid: str, **kwargs: Any) -> str:
    return message(openid, "location", Location_X=28.19, Location_Y=112.97, Scale=15, Label="长沙", **kwargs)


def event_message(
    openid: str,
    event: str,
    key: str | None = None,
    *,
    create_time: int | None = None,
    to: str = ACCOUNT,
    **fields: Any,
) -> str:
    """An event (no MsgId). WeChat's names: subscribe, unsubscribe, SCAN, CLICK, VIEW, LOCATION."""
    return to_xml(
        {
            "ToUserName": to,
            "FromUserName": openid,
            "CreateTime": create_time or int(time.time()),
            "MsgType": "event",
            "Event": event,
            "EventKey": key,
            **fields,
        }
    )


@dataclass(frozen=True)
class SignedPost:
    query: dict[str, str]
    body: bytes
    encrypted: bool

    @property
    def path(self) -> str:
        return f"/wechat?{urlencode(self.query)}"


@dataclass(frozen=True)
class WeChat:
    """WeChat's side of one official account: what it signs with and how it encrypts."""

    token: str = TOKEN
    appid: str = APPID
    aes_key: str = ""
    mode: str = "plain"  # plain | compatible | safe, as on WeChat's admin page
    crypto: WeChatCrypto | None = field(default=None, compare=False)

    @classmethod
    def for_app(cls, app: Flask) -> WeChat:
        c = app.config
        return cls(
            token=c["WECHAT_TOKEN"],
            appid=c["WECHAT_APPID"],
            aes_key=c["WECHAT_AES_KEY"],
            mode=str(c["WECHAT_ENCRYPT_MODE"]),
        )

    def _crypto(self) -> WeChatCrypto:
        return self.crypto or WeChatCrypto(self.token, self.aes_key or AES_KEY, self.appid)

    def query(self, *, timestamp: int | None = None, nonce: str | None = None) -> dict[str, str]:
        """The query of a GET URL check or of a plain post: signature, timestamp, nonce."""
        ts = str(timestamp if timestamp is not None else int(time.time()))
        nonce = nonce or str(secrets.randbelow(10**10))
        return {"signature": signature(self.token, ts, nonce), "timestamp": ts, "nonce": nonce}

    def post(
        self, xml: str, *, mode: str | None = None, timestamp: int | None = None, nonce: str | None = None
    ) -> SignedPost:
        mode = mode or self.mode
        query = self.query(timestamp=timestamp, nonce=nonce)
        try:
            fields: dict[str, Any] = xmltodict.parse(xml)["xml"] or {}
        except ValueError:  # a deliberately hostile or broken body: send it as it is
            fields = {}
        query["openid"] = fields.get("FromUserName") or ""
        if mode == "plain":
            return SignedPost(query, xml.encode(), encrypted=False)
        # wechatpy's encrypt_message gives the Encrypt value and its msg_signature for this timestamp/nonce.
        envelope = xmltodict.parse(self._crypto().encrypt_message(xml, query["nonce"], query["timestamp"]))[
            "xml"
        ]
        query.update(encrypt_type="aes", msg_signature=envelope["MsgSignature"])
        if mode == "safe":
            body = to_xml({"ToUserName": fields.get("ToUserName", ACCOUNT), "Encrypt": envelope["Encrypt"]})
        elif mode == "compatible":
            body = to_xml({**fields, "Encrypt": envelope["Encrypt"]})
        else:
            raise ValueError(f"unknown mode {mode!r}")
        return SignedPost(query, body.encode(), encrypted=True)

    def reply_of(self, body: bytes | str, *, encrypted: bool = False) -> dict[str, Any] | None:
        """The reply's fields, None for an empty reply; an encrypted reply's MsgSignature is verified."""
        text = body.decode() if isinstance(body, bytes) else body
        if text in ("", "success"):
            return None
        if encrypted:
            envelope = xmltodict.parse(text)["xml"]
            # decrypt_message raises InvalidSignatureException if MsgSignature is wrong.
            text = self._crypto().decrypt_message(
                envelope, envelope["MsgSignature"], envelope["TimeStamp"], envelope["Nonce"]
            )
        reply: dict[str, Any] = xmltodict.parse(text)["xml"]
        return reply
