"""Reading ID cards offline, on synthetic cards of made-up people (tests/idcards.py): the fields read, the
service's warnings, a photo that is no card, and an upload the decoder refuses.

OCR takes about a second a card: the cards are read once per module and shared by the tests.
"""

from __future__ import annotations

import io
import random
import struct
import zlib
from dataclasses import replace
from datetime import date

import numpy as np
import pytest
from idcards import (
    FONT_MISSING,
    card_photos,
    check_character,
    draw_back,
    fake_identity,
    font_available,
    photograph,
)
from PIL import Image

from app.services import idcard_reading
from app.services.idcard_reading import BoundIdentity
from media import idcard
from media.idcard import Field, FrontReading
from media.types import UnreadableImageError

pytestmark = pytest.mark.skipif(not font_available(), reason=FONT_MISSING)

TODAY = date(2026, 12, 7)
SEEDS = (11, 12, 13)


@pytest.fixture(scope="module")
def cards() -> list[tuple[object, FrontReading, idcard.BackReading]]:
    out = []
    for seed in SEEDS:
        ident, front, back = card_photos(seed)
        out.append((ident, idcard.read_front(front), idcard.read_back(back)))
    return out


def test_synthetic_cards_are_read(cards: list) -> None:
    for ident, front, back in cards:
        assert front.card_found
        assert front.number is not None and front.number.value == ident.number, front.lines
        assert front.name is not None and front.name.value == ident.name, front.lines
        assert front.sex is not None and front.sex.value == ident.sex
        assert front.birth_date is not None and front.birth_date.value == ident.birth
        assert front.ethnicity is not None and front.ethnicity.value == ident.ethnicity
        assert front.address is not None and front.address.value == ident.address
        assert 0.5 < front.number.confidence <= 1
        assert back.authority is not None and back.authority.value == ident.authority, back.lines
        assert back.valid_from is not None and back.valid_from.value == ident.valid_from
        if ident.valid_to is None:
            assert back.long_term and back.valid_until is None
        else:
            assert back.valid_until is not None and back.valid_until.value == ident.valid_to


def test_an_upside_down_card_is_turned_and_read() -> None:
    ident, front, _ = card_photos(SEEDS[0])
    buf = io.BytesIO()
    Image.open(io.BytesIO(front)).rotate(180).save(buf, "JPEG", quality=90)
    reading = idcard.read_front(buf.getvalue())
    assert reading.number is not None and reading.number.value == ident.number, reading.lines
    assert reading.name is not None and reading.name.value == ident.name, reading.lines


def test_the_service_prefills_a_good_card_without_warnings(cards: list) -> None:
    ident, front, back = cards[0]
    result = idcard_reading.judge_front(front, today=TODAY, bound=BoundIdentity(ident.name, ident.number))
    assert result.warnings == ()
    assert result.prefill["id_number"] == ident.number
    assert result.prefill["name"] == ident.name
    assert result.prefill["birth_date"] == ident.birth.isoformat()
    back_result = idcard_reading.judge_back(back, today=TODAY)
    assert back_result.warnings == () and not back_result.expired
    assert back_result.prefill["issuing_authority"] == ident.authority


def test_a_wrong_check_digit_is_flagged(cards: list) -> None:
    _, front, _ = cards[1]
    assert front.number is not None
    number = front.number.value
    wrong = number[:17] + next(c for c in "0123456789X" if c != check_character(number[:17]))
    result = idcard_reading.judge_front(replace(front, number=Field(wrong, 0.99)), today=TODAY)
    assert result.has("check_digit")
    assert [w.field for w in result.warnings if w.code == "check_digit"] == ["id_number"]
    assert "号码校验位不符" in result.warnings[0].message


def test_birth_and_sex_are_compared_with_the_number(cards: list) -> None:
    _, front, _ = cards[2]
    assert front.sex is not None and front.birth_date is not None
    other_sex = "女" if front.sex.value == "男" else "男"
    changed = replace(
        front,
        sex=Field(other_sex, 0.99),
        birth_date=Field(front.birth_date.value.replace(year=front.birth_date.value.year - 1), 0.99),
    )
    result = idcard_reading.judge_front(changed, today=TODAY)
    assert result.has("sex_mismatch") and result.has("birth_mismatch")


def test_a_card_not_of_the_bound_identity_is_flagged(cards: list) -> None:
    ident, front, _ = cards[0]
    other, _, _ = cards[1]
    # The same name written another way (spaces, full width) is no mismatch; another person's number is.
    same_name = BoundIdentity(" ".join(ident.name), other.number)
    result = idcard_reading.judge_front(front, today=TODAY, bound=same_name)
    assert [(w.code, w.field) for w in result.warnings] == [("bound_mismatch", "id_number")]
    assert "与实名信息不一致" in result.warnings[0].message
    result = idcard_reading.judge_front(front, today=TODAY, bound=BoundIdentity(other.name, ident.number))
    assert [(w.code, w.field) for w in result.warnings] == [("bound_mismatch", "name")]


def test_an_expired_back_is_flagged() -> None:
    rng = random.Random(7)
    ident = replace(fake_identity(rng), valid_from=date(2005, 3, 12), valid_to=date(2015, 3, 12))
    result = idcard_reading.read_back(photograph(draw_back(ident, rng), rng), today=TODAY)
    assert result.reading.valid_until is not None and result.reading.valid_until.value == date(2015, 3, 12)
    assert result.expired and result.has("expired")
    assert "证件已过期" in next(w.message for w in result.warnings if w.code == "expired")
    assert result.prefill["valid_until"] == "2015-03-12"


def test_a_photo_that_is_no_card_gives_an_empty_reading() -> None:
    rng = np.random.default_rng(3)
    noise = rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(noise).save(buf, "JPEG", quality=80)
    reading = idcard.read_front(buf.getvalue())
    assert reading.empty and reading.number is None and reading.name is None
    assert idcard.read_back(buf.getvalue()).empty
    result = idcard_reading.judge_front(reading, today=TODAY)
    assert result.prefill == {} and result.has("not_read")


def test_a_decompression_bomb_is_refused_before_decoding() -> None:
    # A small PNG whose header declares 30 000 × 30 000 pixels (3.6 GB decoded): refused from the header.
    buf = io.BytesIO()
    Image.new("RGB", (64, 64)).save(buf, "PNG")
    data = bytearray(buf.getvalue())
    ihdr = bytearray(data[12:29])  # chunk type and data
    ihdr[4:12] = struct.pack(">II", 30_000, 30_000)
    data[12:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(ihdr)))
    with pytest.raises(UnreadableImageError, match="像素"):
        idcard.read_front(bytes(data))
    with pytest.raises(UnreadableImageError):
        idcard_reading.read_back(bytes(data), today=TODAY)
