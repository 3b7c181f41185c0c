"""The official-account server URL: GET verifies the URL, POST receives messages and events.

Access: https://developers.weixin.qq.com/doc/offiaccount/Basic_Information/Access_Overview.html
Safe mode: https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Message_encryption_and_decryption_instructions.html

The view checks, parses (decrypting in safe mode), hands the message to app/wechat/answering.py
(dedupe, handler, recording the sender), and encrypts the reply.

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
from wechatpy import parse_message
from wechatpy.crypto import WeChatCrypto
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from app.wechat import answering, bp
from app.wechat.security import (
    HostileXmlError,
    MalformedXmlError,
    fresh_timestamp,
    message_fields,
    parse_envelope,
    valid_signature,
)
from config import EncryptMode, Settings

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
    )


@bp.errorhandler(Exception)
def _never_500(exc: Exception) -> Response | HTTPException:
    # Handler errors are caught in app/wechat/answering.py; this is the net under everything else on this
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
        root = parse_envelope(body)
        if encrypted:
            xml = _decrypt(endpoint, root.findtext("Encrypt") or "")
            if xml is None:
                return _refuse(403, "bad msg_signature")
            root = parse_envelope(xml)
        else:
            xml = body.decode("utf-8")
        fields = message_fields(root)
        # wechatpy's typed message for the handlers (its parser only sees XML checked above).
        message = parse_message(xml)
        if not isinstance(message.source, str) or not 0 < len(message.source) <= OPENID_MAX_LENGTH:
            raise MalformedXmlError("FromUserName missing or too long")
    except HostileXmlError as exc:
        return _refuse(400, f"hostile XML ({exc})")
    except _DecryptError:
        return _refuse(400, "cannot decrypt")
    except (MalformedXmlError, UnicodeDecodeError, KeyError, TypeError, AttributeError):
        return _refuse(400, "malformed XML")

    reply = answering.answer(message, fields, endpoint.settings, xml)
    if reply is None:
        # Not applied and not kept (the database and Redis both away): WeChat's retry must come.
        return Response("try again", status=503, mimetype="text/plain")
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
