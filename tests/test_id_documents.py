from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.services.id_documents import (
    PERMIT_PREFIXES,
    PROVINCE_CODES,
    DocumentType,
    FieldError,
    check_character,
    normalise_name,
    parse_document,
)

TODAY = date(2026, 11, 23)
RESIDENT = DocumentType.RESIDENT_ID


def with_check(first17: str) -> str:
    return first17 + check_character(first17)


@st.composite
def resident_ids(draw: st.DrawFn, prefixes: list[str] | None = None) -> tuple[str, date, str]:
    if prefixes is None:
        prefix = draw(st.sampled_from(sorted(PROVINCE_CODES))) + draw(
            st.from_regex(r"[0-9]{4}", fullmatch=True)
        )
    else:
        prefix = draw(st.sampled_from(prefixes))
    birth = draw(st.dates(min_value=date(1900, 1, 1), max_value=TODAY - timedelta(days=1)))
    sequence = draw(st.from_regex(r"[0-9]{3}", fullmatch=True))
    number = with_check(f"{prefix}{birth:%Y%m%d}{sequence}")
    return number, birth, "男" if int(sequence[-1]) % 2 else "女"


@given(resident_ids())
def test_every_valid_resident_id_parses_with_birth_date_and_sex(case: tuple[str, date, str]) -> None:
    number, birth, sex = case
    doc = parse_document(RESIDENT, number, TODAY)
    assert (doc.number, doc.birth_date, doc.sex) == (number, birth, sex)
    assert doc.region == PROVINCE_CODES[number[:2]]


@given(resident_ids(), st.integers(min_value=0, max_value=17), st.sampled_from("0123456789X"))
def test_any_single_character_change_is_refused(case: tuple[str, date, str], pos: int, char: str) -> None:
    number = case[0]
    if number[pos] == char or (pos < 17 and char == "X"):
        return
    changed = number[:pos] + char + number[pos + 1 :]
    with pytest.raises(FieldError) as err:
        parse_document(RESIDENT, changed, TODAY)
    assert err.value.field == "id_number"


@given(resident_ids(prefixes=sorted(PERMIT_PREFIXES)))
def test_residence_permits_use_the_same_check_digit(case: tuple[str, date, str]) -> None:
    number, birth, sex = case
    doc = parse_document(DocumentType.RESIDENCE_PERMIT, number, TODAY)
    assert (doc.birth_date, doc.sex, doc.region) == (birth, sex, PERMIT_PREFIXES[number[:6]])


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "请填写证件号码"),
        ("210101010101001", "15 位"),
        ("2101012001010100", "应为 18 位"),
        ("21010120010101001Y", "应为 18 位"),
        ("210101200101010012", "校验位"),
        ("210101200102300014", "出生日期不存在"),  # 30 February
        (with_check("21010120300101001"), "出生日期不正确"),  # born in 2030
        (with_check("99010120010101001"), "省份代码"),
        (with_check("81000020010101001"), "港澳台居民居住证"),
    ],
)
def test_resident_id_errors_say_what_to_fix(raw: str, message: str) -> None:
    with pytest.raises(FieldError, match=message):
        parse_document(RESIDENT, raw, TODAY)


def test_the_seed_manuals_example_number_and_friendly_input() -> None:
    # 湖南师范大学's manual (图示一) uses 210101200101010011; students paste full-width digits and spaces.
    doc = parse_document(RESIDENT, " ２１０１０１ 2001 0101 0011 ", TODAY)
    assert doc.number == "210101200101010011"
    assert (doc.birth_date, doc.sex, doc.region) == (date(2001, 1, 1), "男", "辽宁省")
    lower_x = with_check("11010519491231002")
    assert parse_document(RESIDENT, lower_x.lower(), TODAY).number == lower_x


def test_a_residence_permit_number_must_have_its_prefix() -> None:
    with pytest.raises(FieldError, match="810000"):
        parse_document(DocumentType.RESIDENCE_PERMIT, "210101200101010011", TODAY)


@pytest.mark.parametrize(
    ("doc_type", "good", "bad"),
    [
        (
            DocumentType.HK_MACAO_PERMIT,
            ["H12345678", "m1234567890", "H 1234 5678"],
            ["H1234567", "X12345678"],
        ),
        (DocumentType.TAIWAN_PERMIT, ["12345678", "1234567890", "1234567890(B)"], ["1234567", "A1234567"]),
        (
            DocumentType.PASSPORT,
            ["E12345678", "EA1234567", "g 1234 5678", "123456789"],
            ["ABCDEFGH", "E12", "E1234-5678!"],
        ),
    ],
)
def test_other_documents_follow_their_format(doc_type: DocumentType, good: list[str], bad: list[str]) -> None:
    for raw in good:
        assert parse_document(doc_type, raw, TODAY).number.isalnum()
    for raw in bad:
        with pytest.raises(FieldError):
            parse_document(doc_type, raw, TODAY)


@pytest.mark.parametrize(
    ("raw", "doc_type", "expected"),
    [
        ("  张三 ", RESIDENT, "张三"),
        ("阿依古丽•买买提", RESIDENT, "阿依古丽·买买提"),
        ("阿依古丽・买买提", RESIDENT, "阿依古丽·买买提"),
        ("阿依古丽．买买提", RESIDENT, "阿依古丽·买买提"),
        ("欧阳 小明", RESIDENT, "欧阳小明"),
        ("john  smith", DocumentType.PASSPORT, "JOHN SMITH"),
        ("Ｍａｒｙ O'Neil-Lee", DocumentType.PASSPORT, "MARY O'NEIL-LEE"),
        ("王小丫", DocumentType.PASSPORT, "王小丫"),
    ],
)
def test_names_are_normalised(raw: str, doc_type: DocumentType, expected: str) -> None:
    assert normalise_name(raw, doc_type) == expected


@pytest.mark.parametrize(
    ("raw", "doc_type"),
    [
        ("", RESIDENT),
        ("张", RESIDENT),
        ("John Smith", RESIDENT),
        ("张三3", RESIDENT),
        ("·张三", RESIDENT),
        ("张三··李", RESIDENT),
        ("<script>", DocumentType.PASSPORT),
        ("A" * 61, DocumentType.PASSPORT),
    ],
)
def test_bad_names_are_refused(raw: str, doc_type: DocumentType) -> None:
    with pytest.raises(FieldError) as err:
        normalise_name(raw, doc_type)
    assert err.value.field == "name"
