"""Checks on what claims to come from WeChat: signatures, clock skew, and the XML itself.

Signatures: https://developers.weixin.qq.com/doc/offiaccount/Basic_Information/Access_Overview.html
(sha1 over the sorted token, timestamp and nonce; safe mode adds the Encrypt field, as msg_signature).
"""

from __future__ import annotations

import hashlib
import hmac
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from app.inputs import ascii_int


class HostileXmlError(ValueError):
    """The body declares a DTD, entities or external references."""


class MalformedXmlError(ValueError):
    """The body is not well-formed XML, or not a WeChat <xml> document."""


def signature_of(*parts: str) -> str:
    # Sorted as bytes, like WeChat and wechatpy (the same order as str for these ASCII values).
    data = sorted(part.encode() for part in parts)
    return hashlib.sha1(b"".join(data)).hexdigest()  # noqa: S324 (WeChat's scheme, not our choice)


def valid_signature(token: str, signature: str | None, timestamp: str, nonce: str, *extra: str) -> bool:
    if not signature:
        return False
    expected = signature_of(token, timestamp, nonce, *extra)
    # Bytes, not str: compare_digest refuses non-ASCII str, and a forged signature may be anything.
    return hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace"))


def fresh_timestamp(timestamp: str, now: float, max_skew_seconds: int) -> bool:
    """Refuse replays of old signed requests and requests from a badly wrong clock."""
    seconds = ascii_int(timestamp) if len(timestamp) <= 12 else None
    return seconds is not None and abs(now - seconds) <= max_skew_seconds


def parse_envelope(body: bytes | str) -> Element:
    """Parse WeChat XML with every DTD feature refused (defusedxml, forbid_dtd).

    WeChat never sends a DOCTYPE, so any DTD is refused outright rather than inspected: no entity
    is declared, expanded or fetched (billion laughs, quadratic blowup, external entities).
    wechatpy's parser (xmltodict on expat) only runs on bodies that passed this check.
    """
    try:
        root: Element = fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise HostileXmlError(type(exc).__name__) from None
    except (ParseError, ValueError, TypeError) as exc:
        raise MalformedXmlError(str(exc)[:200]) from None
    if root.tag != "xml":
        raise MalformedXmlError(f"root element is <{root.tag[:32]}>, not <xml>")
    return root


def message_fields(root: Element) -> dict[str, str | None]:
    """The message's top-level fields by name, read from the envelope parsed above: what routing and
    dedupe need (MsgType, Event, EventKey, Content, MsgId, FromUserName, CreateTime).

    Text is stripped and empty text is None, as in wechatpy's parse (xmltodict); a field with
    child elements (ScanCodeInfo, SendPicsInfo, ...) is None here: wechatpy's typed message has it.
    """
    return {child.tag: None if len(child) else (child.text or "").strip() or None for child in root}
