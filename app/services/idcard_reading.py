"""Reading a resident ID card photo to fill the bind form or a document slot, and saying what looks wrong.

As in 新疆自考's manual: "系统会自动提取身份证上的姓名、身份证号码、性别、民族、出生年月信息并自动填充。
若识别有误，考生可手动进行修改". The reading is a suggestion the student confirms or corrects, never a
verification: nothing here refuses a card, it only fills fields and lists warnings.

    result = read_front(data, today=today, bound=BoundIdentity(name, id_number))  # bound: optional
    result.prefill      {"name", "id_number", "sex", "ethnicity", "birth_date" (YYYY-MM-DD), "address"}: str
    result.uncertain    the prefilled fields read with low confidence: highlight them for checking
    result.warnings     (ReadingWarning(code, field, message), …), message in Chinese for the student
    result.expired      the card's validity has ended (also a warning "expired")

    result = read_back(data, today=today)
    result.prefill      {"issuing_authority", "valid_from" (YYYY-MM-DD), "valid_until" (YYYY-MM-DD or 长期)}

The OCR (media/idcard.py) takes about a second of one core: call these from a job or a request that may
take that long. ``judge_front`` / ``judge_back`` do the checks on a reading already made (no OCR).
Undecodable uploads raise media.types.UnreadableImageError with a Chinese message, as every upload does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from app.services.id_documents import (
    PROVINCE_CODES,
    check_character,
    comparable_name,
    normalise_number,
)
from media import idcard
from media.idcard import BackReading, FrontReading

# Below this recogniser score a prefilled field is flagged for the student to check: blurred or glared
# lines score low. A high score is no proof — on the bench's synthetic cards every field scored above 0.94,
# the addresses that lost a character too — so every prefilled field is still shown for confirmation.
MIN_CONFIDENCE = 0.85


@dataclass(frozen=True)
class BoundIdentity:
    """The student's bound real-name values (decrypted by the caller), to compare the card with."""

    name: str
    id_number: str


@dataclass(frozen=True)
class ReadingWarning:
    # not_read | check_digit | number_invalid | birth_mismatch | sex_mismatch | bound_mismatch | expired
    # | validity_unread
    code: str
    field: str | None  # the prefill key it is about, None for the whole card
    message: str


@dataclass(frozen=True)
class FrontResult:
    reading: FrontReading
    prefill: dict[str, str]
    uncertain: tuple[str, ...]
    warnings: tuple[ReadingWarning, ...] = field(default=())

    def has(self, code: str) -> bool:
        return any(w.code == code for w in self.warnings)


@dataclass(frozen=True)
class BackResult:
    reading: BackReading
    prefill: dict[str, str]
    uncertain: tuple[str, ...]
    warnings: tuple[ReadingWarning, ...] = field(default=())
    expired: bool = False

    def has(self, code: str) -> bool:
        return any(w.code == code for w in self.warnings)


def read_front(data: bytes, *, today: date, bound: BoundIdentity | None = None) -> FrontResult:
    """OCR the card's portrait side (人像面) and judge the reading."""
    return judge_front(idcard.read_front(data), today=today, bound=bound)


def read_back(data: bytes, *, today: date) -> BackResult:
    """OCR the card's emblem side (国徽面) and judge the reading."""
    return judge_back(idcard.read_back(data), today=today)


def _number_birth_sex(number: str) -> tuple[date | None, str]:
    try:
        birth: date | None = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        birth = None
    return birth, "男" if int(number[16]) % 2 == 1 else "女"


def judge_front(reading: FrontReading, *, today: date, bound: BoundIdentity | None = None) -> FrontResult:
    prefill: dict[str, str] = {}
    uncertain: list[str] = []
    warnings: list[ReadingWarning] = []
    values: dict[str, idcard.Field[str] | idcard.Field[date] | None] = {
        "name": reading.name,
        "id_number": reading.number,
        "sex": reading.sex,
        "ethnicity": reading.ethnicity,
        "birth_date": reading.birth_date,
        "address": reading.address,
    }
    for key, f in values.items():
        if f is None:
            continue
        prefill[key] = f.value.isoformat() if isinstance(f.value, date) else f.value
        if f.confidence < MIN_CONFIDENCE:
            uncertain.append(key)
    if reading.empty:
        warnings.append(
            ReadingWarning(
                "not_read",
                None,
                "没有识别出身份证信息：请把身份证人像面放平、对准、拍清楚后重新上传，或手动填写",
            )
        )
    number = reading.number.value if reading.number else None
    if number is not None:
        if check_character(number[:17]) != number[17]:
            warnings.append(
                ReadingWarning(
                    "check_digit", "id_number", "号码校验位不符：身份证号码可能识别有误，请逐位核对"
                )
            )
        number_birth, number_sex = _number_birth_sex(number)
        if number_birth is None or not date(1900, 1, 1) <= number_birth < today:
            warnings.append(
                ReadingWarning(
                    "number_invalid", "id_number", "号码中的出生日期不存在：身份证号码可能识别有误"
                )
            )
        elif PROVINCE_CODES.get(number[:2]) is None:
            warnings.append(
                ReadingWarning(
                    "number_invalid", "id_number", "号码前两位不是有效的省份代码：身份证号码可能识别有误"
                )
            )
        if number_birth and reading.birth_date and reading.birth_date.value != number_birth:
            warnings.append(
                ReadingWarning("birth_mismatch", "birth_date", "证件上的出生日期与号码中的不一致，请核对")
            )
        if reading.sex and reading.sex.value != number_sex:
            warnings.append(
                ReadingWarning("sex_mismatch", "sex", "证件上的性别与号码（第 17 位）不一致，请核对")
            )
    if bound is not None:
        if number is not None and normalise_number(bound.id_number) != number:
            warnings.append(
                ReadingWarning(
                    "bound_mismatch", "id_number", "与实名信息不一致：证件上的号码与你绑定的证件号码不同"
                )
            )
        if reading.name is not None and comparable_name(bound.name) != comparable_name(reading.name.value):
            warnings.append(
                ReadingWarning("bound_mismatch", "name", "与实名信息不一致：证件上的姓名与你绑定的姓名不同")
            )
    return FrontResult(reading, prefill, tuple(uncertain), tuple(warnings))


def judge_back(reading: BackReading, *, today: date) -> BackResult:
    prefill: dict[str, str] = {}
    uncertain: list[str] = []
    warnings: list[ReadingWarning] = []
    if reading.authority is not None:
        prefill["issuing_authority"] = reading.authority.value
        if reading.authority.confidence < MIN_CONFIDENCE:
            uncertain.append("issuing_authority")
    if reading.valid_from is not None:
        prefill["valid_from"] = reading.valid_from.value.isoformat()
        if reading.valid_from.confidence < MIN_CONFIDENCE:
            uncertain.append("valid_from")
    if reading.long_term:
        prefill["valid_until"] = "长期"
    elif reading.valid_until is not None:
        prefill["valid_until"] = reading.valid_until.value.isoformat()
        if reading.valid_until.confidence < MIN_CONFIDENCE:
            uncertain.append("valid_until")
    expired = reading.valid_until is not None and not reading.long_term and reading.valid_until.value < today
    if reading.empty:
        warnings.append(
            ReadingWarning(
                "not_read",
                None,
                "没有识别出身份证国徽面的信息：请把国徽面放平、对准、拍清楚后重新上传，或手动填写",
            )
        )
    elif reading.valid_until is None and not reading.long_term:
        warnings.append(ReadingWarning("validity_unread", "valid_until", "没有识别出有效期限，请手动填写"))
    if expired and reading.valid_until is not None:
        warnings.append(
            ReadingWarning(
                "expired",
                "valid_until",
                f"证件已过期（有效期至 {reading.valid_until.value:%Y.%m.%d}）：请使用有效期内的身份证，"
                "或先到公安机关换领",
            )
        )
    if reading.valid_from is not None and reading.valid_from.value > today:
        uncertain.append("valid_from")  # a start in the future is a misread digit
    return BackResult(reading, prefill, tuple(dict.fromkeys(uncertain)), tuple(warnings), expired)
