"""Properties of the guards in front of everything outsiders send: WeChat's XML and signatures, WeChat
Pay's notifications, and uploaded images. Whatever arrives, each answers with its own refusal (or the
parsed value) and never with an unexpected exception, which would be a 500 and, for WeChat, a retry
storm. The ID-number parsers' properties are in tests/test_id_documents.py.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import string
import time
from xml.sax.saxutils import escape

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from app.integrations.wechat_pay_config import PayConfig
from app.integrations.wechat_pay_notifications import NotificationInvalid, verify_notification
from app.sandbox.pay.notifications import build_notification
from app.wechat.security import (
    HostileXmlError,
    MalformedXmlError,
    fresh_timestamp,
    message_fields,
    parse_envelope,
    signature_of,
    valid_signature,
)
from media.decode import inspect
from media.types import UnreadableImageError

# --- WeChat's XML ---------------------------------------------------------------------------------


@given(st.binary(max_size=2048))
def test_any_bytes_parse_to_an_xml_envelope_or_a_clear_refusal(body: bytes) -> None:
    try:
        root = parse_envelope(body)
    except (HostileXmlError, MalformedXmlError):
        return
    assert root.tag == "xml"


@given(st.text(max_size=300))
def test_any_text_parses_to_an_xml_envelope_or_a_clear_refusal(body: str) -> None:
    with contextlib.suppress(HostileXmlError, MalformedXmlError):
        assert parse_envelope(body).tag == "xml"


ENTITY_VALUES = st.text(alphabet=string.ascii_letters + "&;#%", max_size=40)


@given(name=st.sampled_from(["lol", "xxe", "a"]), value=ENTITY_VALUES, system=st.booleans())
def test_a_doctype_is_refused_whatever_it_declares(name: str, value: str, system: bool) -> None:
    declared = f'SYSTEM "file:///etc/{name}"' if system else f'"{escape(value, {chr(34): "&quot;"})}"'
    body = f'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY {name} {declared}>]><xml><A>&{name};</A></xml>'
    with pytest.raises(HostileXmlError):
        parse_envelope(body)


FIELD_NAMES = st.from_regex(r"[A-Z][A-Za-z]{0,15}", fullmatch=True)
# What WeChat puts in a field: any text without the characters XML 1.0 cannot carry.
FIELD_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufffe\uffff"),
    max_size=60,
)


@given(st.dictionaries(FIELD_NAMES, FIELD_TEXT, max_size=8))
def test_message_fields_read_back_what_wechat_wrote(fields: dict[str, str]) -> None:
    # WeChat wraps text in CDATA; "]]>" cannot sit inside one section, so it is split as XML requires.
    def cdata(text: str) -> str:
        return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"

    body = "<xml>" + "".join(f"<{k}>{cdata(v)}</{k}>" for k, v in fields.items()) + "</xml>"
    read = message_fields(parse_envelope(body.encode()))
    assert read == {k: v.strip() or None for k, v in fields.items()}


# --- WeChat's signature and timestamp -------------------------------------------------------------

TOKENS = st.text(alphabet=string.ascii_letters + string.digits, min_size=3, max_size=32)


@given(token=TOKENS, timestamp=st.integers(0, 2**33).map(str), nonce=TOKENS)
def test_wechats_signature_verifies_and_any_change_fails(token: str, timestamp: str, nonce: str) -> None:
    signature = signature_of(token, timestamp, nonce)
    assert valid_signature(token, signature, timestamp, nonce)
    assert not valid_signature(token, signature, timestamp, nonce + "x")
    assert not valid_signature(token + "x", signature, timestamp, nonce)


@given(
    signature=st.one_of(st.none(), st.text(max_size=80)),
    timestamp=st.text(max_size=20),
    nonce=st.text(max_size=40),
)
def test_a_forged_signature_of_any_text_is_refused_without_an_error(
    signature: str | None, timestamp: str, nonce: str
) -> None:
    assert not valid_signature("a-token", signature, timestamp, nonce) or signature == signature_of(
        "a-token", timestamp, nonce
    )
    fresh_timestamp(timestamp, time.time(), 300)  # any text: an answer, never an exception


# --- WeChat Pay's notifications ---------------------------------------------------------------------

PLATFORM_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
SERIAL = "PUB_KEY_ID_0114232134912410000000000000"
APIV3_KEY = "a" * 32
CONFIG = PayConfig(
    mchid="1900000001",
    appid="wx-sandbox-app",
    merchant_serial="M" * 40,
    private_key_pem=PLATFORM_KEY.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode(),
    apiv3_key=APIV3_KEY,
    public_key_id=SERIAL,
    public_key_pem=None,
    cert_dir=None,
    api_base="https://api.mch.weixin.qq.com",
    notify_url="https://photo.example.edu.cn/pay/notify",
    timeout=5.0,
    max_notify_age=300,
    max_notify_bytes=65536,
    merchant_name="测试商户",
)


def _key_for(serial: str) -> rsa.RSAPublicKey | None:
    return PLATFORM_KEY.public_key() if serial == SERIAL else None


def _signed(body: bytes, now: float) -> dict[str, str]:
    timestamp, nonce = str(int(now)), "n" * 32
    signature = PLATFORM_KEY.sign(
        f"{timestamp}\n{nonce}\n".encode() + body + b"\n", padding.PKCS1v15(), hashes.SHA256()
    )
    return {
        "Wechatpay-Timestamp": timestamp,
        "Wechatpay-Nonce": nonce,
        "Wechatpay-Serial": SERIAL,
        "Wechatpay-Signature": base64.b64encode(signature).decode(),
    }


def _notification(out_trade_no: str, total: int) -> bytes:
    resource = {
        "mchid": CONFIG.mchid,
        "appid": CONFIG.appid,
        "out_trade_no": out_trade_no,
        "transaction_id": "4200002026120812345678901234",
        "trade_type": "JSAPI",
        "trade_state": "SUCCESS",
        "success_time": "2026-12-08T08:00:00+08:00",
        "payer": {"openid": "oStudent"},
        "amount": {"total": total, "payer_total": total, "currency": "CNY", "payer_currency": "CNY"},
    }
    envelope = build_notification(APIV3_KEY, "TRANSACTION.SUCCESS", "transaction", "支付成功", resource)
    return json.dumps(envelope, ensure_ascii=False).encode()


HEADER_VALUES = st.text(max_size=60)


@settings(max_examples=60)
@given(
    headers=st.fixed_dictionaries(
        {},
        optional={
            "Wechatpay-Signature": HEADER_VALUES,
            "Wechatpay-Timestamp": st.one_of(HEADER_VALUES, st.just(str(int(time.time())))),
            "Wechatpay-Nonce": HEADER_VALUES,
            "Wechatpay-Serial": st.one_of(HEADER_VALUES, st.just(SERIAL)),
            "Wechatpay-Signature-Type": st.one_of(HEADER_VALUES, st.just("WECHATPAY2-SHA256-RSA2048")),
        },
    ),
    body=st.binary(max_size=512),
)
def test_any_post_to_the_notify_url_is_refused_cleanly(headers: dict[str, str], body: bytes) -> None:
    with pytest.raises(NotificationInvalid):
        verify_notification(headers, body, CONFIG, _key_for, time.time())


OUT_TRADE_NOS = st.from_regex(r"[A-Za-z0-9_\-|*]{6,32}", fullmatch=True)


@settings(max_examples=40, deadline=None)
@given(out_trade_no=OUT_TRADE_NOS, total=st.integers(1, 10**7), flip=st.integers(0, 10**6))
def test_a_genuine_notification_reads_back_and_any_flipped_byte_is_refused(
    out_trade_no: str, total: int, flip: int
) -> None:
    now = time.time()
    body = _notification(out_trade_no, total)
    headers = _signed(body, now)
    notification = verify_notification(headers, body, CONFIG, _key_for, now)
    assert (notification.out_trade_no, notification.amount_total) == (out_trade_no, total)
    position = flip % len(body)
    tampered = body[:position] + bytes([body[position] ^ 0x01]) + body[position + 1 :]
    with pytest.raises(NotificationInvalid) as refused:
        verify_notification(headers, tampered, CONFIG, _key_for, now)
    assert refused.value.status == 401
    # The same genuine post, replayed after the accepted age, is refused too.
    with pytest.raises(NotificationInvalid):
        verify_notification(headers, body, CONFIG, _key_for, now + CONFIG.max_notify_age + 1)


# --- uploaded images --------------------------------------------------------------------------------


@given(st.binary(max_size=4096))
def test_any_bytes_are_an_image_header_or_a_chinese_refusal(data: bytes) -> None:
    try:
        inspect(data)
    except UnreadableImageError as exc:
        assert any("\u4e00" <= ch <= "\u9fff" for ch in str(exc))


@settings(max_examples=40, deadline=None)
@given(
    size=st.tuples(st.integers(1, 900), st.integers(1, 900)),
    fmt=st.sampled_from(["JPEG", "PNG", "GIF", "BMP", "WEBP"]),
    cut=st.one_of(st.none(), st.integers(8, 400)),
)
def test_real_images_whole_or_truncated_are_read_or_refused_cleanly(
    size: tuple[int, int], fmt: str, cut: int | None
) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 120, 40)).save(buffer, fmt)
    data = buffer.getvalue()[:cut] if cut is not None else buffer.getvalue()
    try:
        header = inspect(data)
    except UnreadableImageError:
        return
    assert (header.width, header.height) == size and fmt in ("JPEG", "PNG")
