"""The official-account server URL: GET verifies the URL, POST receives messages and events.

Access: https://developers.weixin.qq.com/doc/offiaccount/Basic_Information/Access_Overview.html
Safe mode: https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Message_encryption_and_decryption_instructions.html

Answers: 403 for a bad or stale signature or a post the encryption mode does not accept, 413 for a
body over WECHAT_MAX_BODY_BYTES, 400 for malformed or hostile XML; otherwise always 200 — a reply,
or "success" (WeChat's "handled, nothing to say"), also when a handler fails, so that WeChat never
retries an action that half happened.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from flask import Response, current_app, request
from flask.blueprints import BlueprintSetupState
from redis import Redis
from wechatpy import parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.messages import BaseMessage
from wechatpy.replies import create_reply
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

import wechat_handlers
from app.extensions import db
from app.integrations import redis_client
from app.services import users
from app.wechat import bp, dedupe
from app.wechat.security import (
    HostileXmlError,
    MalformedXmlError,
    fresh_timestamp,
    parse_envelope,
    valid_signature,
)
from config import EncryptMode, Settings
from wechat_handlers.registry import raw_fields

log = logging.getLogger(__name__)

EMPTY_REPLY = "success"
ECHOSTR_MAX_LENGTH = 256
OPENID_MAX_LENGTH = 64  # users.openid; WeChat's are 28 characters
EXTENSION = "wechat_endpoint"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Everything a request needs, built once per app (WeChatCrypto included), not per request."""

    settings: Settings
    token: str
    mode: EncryptMode
    crypto: WeChatCrypto | None
    max_body_bytes: int
    max_skew_seconds: int
    dedupe_ttl_seconds: int


@bp.record_once
def _build_endpoint(state: BlueprintSetupState) -> None:
    settings: Settings = state.app.config["SETTINGS"]
    crypto = None
    if settings.WECHAT_AES_KEY:
        crypto = WeChatCrypto(settings.WECHAT_TOKEN, settings.WECHAT_AES_KEY, settings.WECHAT_APPID)
    state.app.extensions[EXTENSION] = Endpoint(
        settings=settings,
        token=settings.WECHAT_TOKEN,
        mode=settings.WECHAT_ENCRYPT_MODE,
        crypto=crypto,
        max_body_bytes=settings.WECHAT_MAX_BODY_BYTES,
        max_skew_seconds=settings.WECHAT_MAX_CLOCK_SKEW_SECONDS,
        dedupe_ttl_seconds=settings.WECHAT_DEDUPE_TTL_SECONDS,
    )


@bp.errorhandler(Exception)
def _never_500(exc: Exception) -> Response | HTTPException:
    # Handler errors are caught in _handle; this is the net under everything else on this
    # blueprint. WeChat retries a 5xx and then shows "该公众号暂时无法提供服务": "success" is better.
    if isinstance(exc, HTTPException):
        return exc
    log.exception("wechat endpoint failed")
    return Response(EMPTY_REPLY, mimetype="text/plain")


def _refuse(status: int, reason: str) -> Response:
    log.warning("wechat request refused: %s", reason, extra={"status": status})
    return Response(reason, status=status, mimetype="text/plain")


def _signed(endpoint: Endpoint) -> bool:
    args = request.args
    timestamp = args.get("timestamp", "")
    return fresh_timestamp(timestamp, time.time(), endpoint.max_skew_seconds) and valid_signature(
        endpoint.token, args.get("signature"), timestamp, args.get("nonce", "")
    )


@bp.get("/wechat")
def verify_url() -> Response:
    """WeChat's server-URL check: echo `echostr` when the signature is ours (in every mode)."""
    endpoint: Endpoint = current_app.extensions[EXTENSION]
    if not _signed(endpoint):
        return _refuse(403, "bad signature")
    echostr = request.args.get("echostr", "")
    if not echostr or len(echostr) > ECHOSTR_MAX_LENGTH:
        return _refuse(400, "missing echostr")
    response = Response(echostr, mimetype="text/plain")
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.post("/wechat")
def receive() -> Response:
    endpoint: Endpoint = current_app.extensions[EXTENSION]
    if not _signed(endpoint):
        return _refuse(403, "bad signature")
    encrypted = request.args.get("encrypt_type", "raw").lower() == "aes"
    if encrypted and endpoint.crypto is None:
        return _refuse(403, "encrypted post, but no WECHAT_AES_KEY is set")
    if encrypted and endpoint.mode is EncryptMode.PLAIN:
        return _refuse(403, "encrypted post, but WECHAT_ENCRYPT_MODE=plain")
    if not encrypted and endpoint.mode is EncryptMode.SAFE:
        return _refuse(403, "plain post, but WECHAT_ENCRYPT_MODE=safe")

    # Werkzeug refuses a larger Content-Length before reading, and stops a streamed (chunked) body
    # at the maximum, silently; one byte of margin tells "exactly the limit" from "more than it".
    request.max_content_length = endpoint.max_body_bytes + 1
    try:
        body = request.get_data(cache=False)
    except RequestEntityTooLarge:
        return _refuse(413, "body too large")
    if len(body) > endpoint.max_body_bytes:
        return _refuse(413, "body too large")

    try:
        envelope = parse_envelope(body)
        if encrypted:
            xml = _decrypt(endpoint, envelope.findtext("Encrypt") or "")
            if xml is None:
                return _refuse(403, "bad msg_signature")
            parse_envelope(xml)
        else:
            xml = body.decode("utf-8")
        message = parse_message(xml)
        if not isinstance(message.source, str) or not 0 < len(message.source) <= OPENID_MAX_LENGTH:
            raise MalformedXmlError("FromUserName missing or too long")
    except HostileXmlError as exc:
        return _refuse(400, f"hostile XML ({exc})")
    except _DecryptError:
        return _refuse(400, "cannot decrypt")
    except (MalformedXmlError, UnicodeDecodeError, KeyError, TypeError, AttributeError):
        return _refuse(400, "malformed XML")

    cache = redis_client()
    key = dedupe.key_for(message)
    mark = users.follower_mark(message.source)
    reply = None
    if (
        key is not None
        and wechat_handlers.is_read_only(message)
        and not _may_be_retry(message)
        and dedupe.can_store_first(cache)
    ):
        reply = _answer_first(message, endpoint, cache, key, mark)
    if reply is None:
        reply = dedupe.run_once(
            cache,
            key,
            endpoint.dedupe_ttl_seconds,
            lambda seen: _handle(message, endpoint, cache, known_follower=bool(seen)),
            prefetch=mark,
        )
    if not reply:
        return Response(EMPTY_REPLY, mimetype="text/plain")
    if encrypted:
        assert endpoint.crypto is not None
        reply = endpoint.crypto.encrypt_message(reply, request.args.get("nonce", ""))
    return Response(reply, mimetype="application/xml")


class _DecryptError(ValueError):
    pass


def _decrypt(endpoint: Endpoint, encrypt: str) -> str | None:
    """The plaintext XML of a safe/compatible-mode post, or None when msg_signature is wrong.

    msg_signature signs the Encrypt field; `signature` does not, and must not be used here.
    """
    args = request.args
    timestamp, nonce, msg_signature = (
        args.get("timestamp", ""),
        args.get("nonce", ""),
        args.get("msg_signature"),
    )
    if not encrypt:
        raise _DecryptError("no Encrypt field")
    if not valid_signature(endpoint.token, msg_signature, timestamp, nonce, encrypt):
        return None
    assert endpoint.crypto is not None
    try:
        plaintext: str = endpoint.crypto.decrypt_message(
            {"Encrypt": encrypt}, msg_signature, timestamp, nonce
        )
    except Exception as exc:
        # Bad base64, padding or length, or another AppID: nothing in it can be trusted.
        raise _DecryptError(type(exc).__name__) from None
    return plaintext


# WeChat tries a message again 5 s after a try it got no answer to. A post of a message that old
# may be such a retry, with its first try still running: it is claimed first, so that a read-only
# handler too runs once. One second of margin for the two clocks.
RETRY_SUSPECT_AFTER_SECONDS = 4
_now = time.time  # tests move the clock


def _may_be_retry(message: BaseMessage) -> bool:
    try:
        created = int(raw_fields(message)["CreateTime"])
    except (KeyError, TypeError, ValueError):
        return True
    return _now() - created >= RETRY_SUSPECT_AFTER_SECONDS


def _answer_first(message: BaseMessage, endpoint: Endpoint, cache: Redis, key: str, mark: str) -> str | None:
    """The reply of a read-only handler, computed before the message is claimed and stored in the
    round trip that dedupes it (dedupe.store_first); None when it has to be claimed first after all.
    """
    ctx = wechat_handlers.Context(db.session, cache, endpoint.settings, before_claim=True)
    try:
        reply = _run(message, ctx)
    except wechat_handlers.NeedsClaim:
        return None
    first = dedupe.store_first(cache, key, endpoint.dedupe_ttl_seconds, reply, prefetch=mark)
    if first is None:
        return None
    if first.mine and ctx.follower_wanted and not first.mark:
        # The write the handler asked for, now that this request is the message's first answer.
        try:
            users.ensure_follower(ctx.session, cache, message.source)
        except Exception:
            ctx.rollback()
            log.exception("wechat: could not record the sender", extra={"openid": message.source[:8]})
    return first.reply


def _handle(message: BaseMessage, endpoint: Endpoint, cache: Redis, *, known_follower: bool) -> str:
    """Run the handler of a claimed message. Never raises."""
    ctx = wechat_handlers.Context(db.session, cache, endpoint.settings, known_follower)
    return _run(message, ctx)


def _run(message: BaseMessage, ctx: wechat_handlers.Context) -> str:
    """Run the handler and render its reply as plaintext XML ("" for none).

    Raises only NeedsClaim (a read-only handler answering before the claim met a write).
    """
    try:
        result = wechat_handlers.dispatch(message, ctx)
        return create_reply(result, message, render=True) if result else ""
    except wechat_handlers.NeedsClaim:
        raise
    except Exception:
        ctx.rollback()
        log.exception(
            "wechat handler failed",
            extra={"msg_type": type(message).__name__, "openid": (message.source or "")[:8]},
        )
        return ""
