"""Identity documents and names: each document type's real format rule, in students' words.

Pure functions (no database): `parse_document` normalises what a student typed and tells, in
Chinese, what is wrong with it; for 18-digit numbers it also derives birth date and sex, which
the bind page shows back for the student to confirm (as seeds 002 and 003 do).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date
from enum import StrEnum


class DocumentType(StrEnum):
    RESIDENT_ID = "resident_id"  # 居民身份证
    RESIDENCE_PERMIT = "residence_permit"  # 港澳台居民居住证
    HK_MACAO_PERMIT = "hk_macao_permit"  # 港澳居民来往内地通行证
    TAIWAN_PERMIT = "taiwan_permit"  # 台湾居民来往大陆通行证
    PASSPORT = "passport"  # 护照


DOCUMENT_LABELS: dict[DocumentType, str] = {
    DocumentType.RESIDENT_ID: "居民身份证",
    DocumentType.RESIDENCE_PERMIT: "港澳台居民居住证",
    DocumentType.HK_MACAO_PERMIT: "港澳居民来往内地通行证",
    DocumentType.TAIWAN_PERMIT: "台湾居民来往大陆通行证",
    DocumentType.PASSPORT: "护照",
}

# GB/T 2260 province-level codes of the mainland (the first two digits of a 居民身份证 number).
PROVINCE_CODES: dict[str, str] = {
    "11": "北京市", "12": "天津市", "13": "河北省", "14": "山西省", "15": "内蒙古自治区",
    "21": "辽宁省", "22": "吉林省", "23": "黑龙江省",
    "31": "上海市", "32": "江苏省", "33": "浙江省", "34": "安徽省", "35": "福建省", "36": "江西省",
    "37": "山东省",
    "41": "河南省", "42": "湖北省", "43": "湖南省", "44": "广东省", "45": "广西壮族自治区",
    "46": "海南省",
    "50": "重庆市", "51": "四川省", "52": "贵州省", "53": "云南省", "54": "西藏自治区",
    "61": "陕西省", "62": "甘肃省", "63": "青海省", "64": "宁夏回族自治区", "65": "新疆维吾尔自治区",
}  # fmt: skip
# 港澳台居民居住证 numbers start with these address codes (GB/T 2260's 810000/820000/830000).
PERMIT_PREFIXES = {"810000": "香港", "820000": "澳门", "830000": "台湾"}

# GB 11643-1999: weights of the first 17 digits, and the check character for sum mod 11.
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK_CHARS = "10X98765432"

# Students type the middle dot of minority names (e.g. 阿依古丽·买买提) many ways.
_DOTS = "·•・‧∙⋅．.ᐧ"
_HAN = "[\u3400-\u4dbf\u4e00-\u9fff\U00020000-\U0003134f]"  # CJK ideographs incl. extensions
_CHINESE_NAME = re.compile(f"^{_HAN}+(·{_HAN}+)*$")
# Every repetition starts with a separator, so a long wrong name cannot backtrack exponentially.
_LATIN_NAME = re.compile(r"^[A-Za-z\u00c0-\u024f]+(?:(?:[.,]?[ '\-]|[.,])[A-Za-z\u00c0-\u024f]+)*\.?$")


class FieldError(ValueError):
    """One field is wrong; `message` is what the student reads beside it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(field, message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Document:
    type: DocumentType
    number: str  # normalised: upper case, no spaces
    birth_date: date | None = None
    sex: str | None = None  # "男" / "女", where the number encodes it
    region: str | None = None


def check_character(first17: str) -> str:
    total = sum(int(d) * w for d, w in zip(first17, _WEIGHTS, strict=True))
    return _CHECK_CHARS[total % 11]


def _clean_number(raw: str) -> str:
    # NFKC turns full-width digits and letters (１２３Ｘ) into ASCII.
    return re.sub(r"[\s\-()（）]", "", unicodedata.normalize("NFKC", raw)).upper()


def normalise_number(raw: str) -> str:
    """What a number is stored and hashed as, from what a person typed (staff searching, too)."""
    return _clean_number(raw)


def _eighteen_digits(number: str, today: date) -> tuple[date, str]:
    """Shared by 居民身份证 and 居住证: shape, birth date, check digit. Returns (birth, sex)."""
    field = "id_number"
    if re.fullmatch(r"[0-9]{15}", number):
        raise FieldError(field, "这是旧的 15 位身份证号，请填写现在使用的 18 位号码")
    if not re.fullmatch(r"[0-9]{17}[0-9X]", number):
        raise FieldError(field, "证件号码应为 18 位：17 位数字加最后一位数字或 X")
    try:
        birth = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        raise FieldError(field, "证件号码中的出生日期不存在，请核对第 7–14 位") from None
    if birth >= today or birth.year < 1900:
        raise FieldError(field, "证件号码中的出生日期不正确，请核对第 7–14 位")
    if check_character(number[:17]) != number[17]:
        raise FieldError(field, "证件号码校验位不正确，请逐位核对（最后一位 X 请大写）")
    sex = "男" if int(number[16]) % 2 == 1 else "女"
    return birth, sex


def parse_document(doc_type: DocumentType, raw: str, today: date) -> Document:
    number = _clean_number(raw)
    field = "id_number"
    if not number:
        raise FieldError(field, "请填写证件号码")
    if doc_type is DocumentType.RESIDENT_ID:
        if number[:6] in PERMIT_PREFIXES:
            raise FieldError(field, "这是港澳台居民居住证号码，请把证件类型选为「港澳台居民居住证」")
        birth, sex = _eighteen_digits(number, today)
        province = PROVINCE_CODES.get(number[:2])
        if province is None:
            raise FieldError(field, "证件号码前两位不是有效的省份代码，请核对")
        return Document(doc_type, number, birth, sex, province)
    if doc_type is DocumentType.RESIDENCE_PERMIT:
        if len(number) == 18 and number[:6] not in PERMIT_PREFIXES:
            raise FieldError(
                field, "港澳台居民居住证号码以 810000（香港）、820000（澳门）或 830000（台湾）开头"
            )
        birth, sex = _eighteen_digits(number, today)
        return Document(doc_type, number, birth, sex, PERMIT_PREFIXES[number[:6]])
    if doc_type is DocumentType.HK_MACAO_PERMIT:
        # 回乡证: H (香港) or M (澳门) + 8 digits; cards issued before 2013 carry 2 more digits.
        if not re.fullmatch(r"[HM][0-9]{8}([0-9]{2})?", number):
            raise FieldError(field, "港澳居民来往内地通行证号码为 H 或 M 开头加 8 位数字（旧证 10 位）")
        return Document(doc_type, number, region="香港" if number[0] == "H" else "澳门")
    if doc_type is DocumentType.TAIWAN_PERMIT:
        # 台胞证: 8 digits since 2015; older booklets 10 digits, sometimes with a letter in brackets.
        if not re.fullmatch(r"[0-9]{8}|[0-9]{10}[A-Z]?", number):
            raise FieldError(field, "台湾居民来往大陆通行证号码为 8 位数字（旧证 10 位）")
        return Document(doc_type, number, region="台湾")
    if doc_type is DocumentType.PASSPORT:
        # ICAO 9303 document numbers: letters and digits; China's are E/G + 8 characters.
        if not re.fullmatch(r"[A-Z0-9]{5,17}", number) or number.isalpha():
            raise FieldError(field, "护照号码为 5–17 位字母和数字，请按护照资料页填写")
        return Document(doc_type, number)
    raise FieldError("id_type", "请选择证件类型")


def comparable_name(raw: str) -> str:
    """The one spelling a name is looked up by: what `normalise_name` stores for it, from however it
    was typed (spaces, other middle dots, full-width or lower-case letters). No checks: a search
    must not refuse a name, it just finds nothing."""
    name = re.sub(r"\s+", " ", unicodedata.normalize("NFKC", raw).strip())
    chinese = "".join("·" if ch in _DOTS else ch for ch in name.replace(" ", ""))
    return chinese if _CHINESE_NAME.fullmatch(chinese) else name.upper()


def normalise_name(raw: str, doc_type: DocumentType) -> str:
    """Trim, unify the middle dot, and check the name against what the document type allows.

    Chinese names (any type): CJK ideographs with an optional middle dot between parts.
    Latin names: only for passports, where foreign students write their name as in the passport.
    """
    name = unicodedata.normalize("NFKC", raw).strip()
    name = re.sub(r"\s+", " ", name)
    chinese = "".join("·" if ch in _DOTS else ch for ch in name.replace(" ", ""))
    if not name:
        raise FieldError("name", "请填写姓名")
    if len(name) > 60:
        raise FieldError("name", "姓名太长，请按证件填写")
    if _CHINESE_NAME.fullmatch(chinese):
        if not 2 <= len(chinese) <= 30:
            raise FieldError("name", "姓名长度应为 2–30 个字")
        return chinese
    if doc_type is DocumentType.PASSPORT and _LATIN_NAME.fullmatch(name):
        return name.upper()
    if doc_type is DocumentType.PASSPORT:
        raise FieldError("name", "请按护照填写姓名：中文，或英文字母（可含空格、连字符）")
    raise FieldError("name", "请填写证件上的中文姓名，少数民族姓名中间的点用「·」")
