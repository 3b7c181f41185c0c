"""Batch form definitions (the file's validation, with paths) and the checks of answers against them:
pure functions, no database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from app.services import batch_forms
from app.services.batch_forms import DefinitionError

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "app" / "data" / "batch_forms").glob("*.yaml"))

FORM: dict[str, Any] = {
    "school": "11551",
    "batch": "自考本科 2026 年下学士学位申请",
    "sections": [
        {
            "title": "个人信息",
            "fields": [
                {"key": "mobile", "label": "手机号码", "kind": "phone", "required": True, "personal": True},
                {"key": "email", "label": "电子邮箱", "kind": "email"},
                {
                    "key": "category",
                    "label": "考生类别",
                    "kind": "radio",
                    "options": ["自考", "成考"],
                    "required": True,
                },
                {
                    "key": "exam_no",
                    "label": "考籍号",
                    "kind": "pattern",
                    "pattern": "[0-9]{12}",
                    "hint": "考籍号为 12 位数字",
                    "required": True,
                    "when": {"field": "category", "equals": "自考"},
                },
            ],
        },
        {
            "title": "院校信息",
            "fields": [
                {"key": "score", "label": "平均成绩", "kind": "number", "decimals": 2, "min": 0, "max": 100},
                {
                    "key": "cet4",
                    "label": "四级准考证号",
                    "kind": "pattern",
                    "pattern": "[0-9]{15}",
                    "hint": "15 位数字",
                },
                {"key": "enrolled_on", "label": "入学时间", "kind": "date"},
                {
                    "key": "family",
                    "label": "家庭关系",
                    "kind": "group",
                    "personal": True,
                    "min_rows": 1,
                    "max_rows": 2,
                    "fields": [
                        {"key": "name", "label": "姓名", "required": True},
                        {"key": "phone", "label": "联系电话", "kind": "phone"},
                    ],
                },
            ],
        },
    ],
    "documents": [
        {"key": "id_card_front", "label": "身份证正面", "kind": "id_card_front", "formats": ["jpg", "png"]},
        {
            "key": "thesis",
            "label": "论文",
            "formats": ["pdf"],
            "when": {"field": "category", "equals": "成考"},
        },
    ],
}


def _definition() -> batch_forms.Definition:
    return batch_forms.from_data(FORM)


def _problems(data: Any) -> dict[str, str]:
    with pytest.raises(DefinitionError) as caught:
        batch_forms.from_data(data)
    return {p.path: p.message for p in caught.value.problems}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_file_loads(path: Path) -> None:
    definition = batch_forms.parse(path.read_bytes())
    assert definition.fields() and definition.documents


def test_the_examples_cover_the_five_demo_schools() -> None:
    assert {p.stem for p in EXAMPLES} == {"10542", "10699", "10496", "11551", "xj-zikao"}


def test_a_bad_pattern_is_refused_with_its_path() -> None:
    data = {**FORM, "sections": [FORM["sections"][0], {**FORM["sections"][1]}]}
    fields = [dict(f) for f in FORM["sections"][1]["fields"]]
    fields[1]["pattern"] = "[0-9{15"
    data["sections"][1]["fields"] = fields
    problems = _problems(data)
    assert list(problems) == ["sections[1].fields[1]"]
    assert "正则" in problems["sections[1].fields[1]"]


def test_unknown_keys_missing_options_and_bad_kinds_name_their_paths() -> None:
    data: dict[str, Any] = {
        "school": "x",
        "batch": "y",
        "sections": [
            {
                "title": "a",
                "fields": [
                    {"key": "a", "label": "A", "kind": "select"},
                    {"key": "b", "label": "B", "kind": "colour"},
                    {"key": "c", "label": "C", "colour": "red"},
                ],
            }
        ],
        "documents": [{"key": "d", "label": "D", "formats": ["exe"]}],
    }
    problems = _problems(data)
    assert "sections[0].fields[0]" in problems and "options" in problems["sections[0].fields[0]"]
    assert problems["sections[0].fields[1].kind"].startswith("取值不在允许范围内")
    assert problems["sections[0].fields[2].colour"].startswith("不认识的键")
    assert "documents[0].formats[0]" in problems


def test_when_must_name_an_earlier_non_personal_choice_and_one_of_its_options() -> None:
    fields = [dict(f) for f in FORM["sections"][0]["fields"]]
    fields[3] = {**fields[3], "when": {"field": "mobile", "equals": "x"}}
    data = {**FORM, "sections": [{**FORM["sections"][0], "fields": fields}]}
    assert "sections[0].fields[3].when.field" in _problems(data)
    fields[3] = {**fields[3], "when": {"field": "category", "equals": "网教"}}
    assert "sections[0].fields[3].when.equals" in _problems(data)


def test_duplicate_keys_are_refused() -> None:
    fields = [*FORM["sections"][0]["fields"], {"key": "mobile", "label": "又一个"}]
    data = {**FORM, "sections": [{**FORM["sections"][0], "fields": fields}]}
    assert "sections[0].fields[4].key" in _problems(data)


def test_bad_yaml_is_one_problem_for_the_file() -> None:
    with pytest.raises(DefinitionError) as caught:
        batch_forms.parse(b"sections: [unclosed")
    assert caught.value.problems[0].path == ""


def _with_fills(fills: dict[str, str], kind: str = "id_card_front", **field: Any) -> dict[str, Any]:
    """A form with an 姓名/性别/出生 section and one ID card slot filling `fills`."""
    fields = [
        {"key": "xm", "label": "姓名", "personal": True, **field},
        {"key": "gender", "label": "性别", "kind": "select", "options": ["男", "女"], "personal": True},
        {"key": "birth", "label": "出生日期", "kind": "date", "personal": True},
        {"key": "note", "label": "备注"},
        {
            "key": "family",
            "label": "家庭",
            "kind": "group",
            "personal": True,
            "fields": [{"key": "n", "label": "N"}],
        },
    ]
    slot = {"key": "card", "label": "身份证", "kind": kind, "formats": ["jpg"], "fills": fills}
    return {"school": "x", "batch": "y", "sections": [{"title": "a", "fields": fields}], "documents": [slot]}


def test_fills_name_existing_personal_fields_of_a_fitting_kind() -> None:
    ok = batch_forms.from_data(_with_fills({"name": "xm", "sex": "gender", "birth_date": "birth"}))
    assert ok.documents[0].fills == {"name": "xm", "sex": "gender", "birth_date": "birth"}
    problems = _problems(
        _with_fills({"name": "nobody", "address": "birth", "ethnicity": "note", "sex": "family"})
    )
    assert "no such field" in problems["documents[0].fills.name"]
    assert "kind does not fit" in problems["documents[0].fills.address"]
    assert "must be personal" in problems["documents[0].fills.ethnicity"]
    assert "kind does not fit" in problems["documents[0].fills.sex"]  # a group is no place for a value
    assert "twice" in _problems(_with_fills({"name": "xm", "address": "xm"}))["documents[0].fills.address"]


def test_fills_keys_depend_on_the_slot_kind() -> None:
    front_key_on_back = _problems(_with_fills({"name": "xm"}, kind="id_card_back"))
    assert "unknown reading key" in front_key_on_back["documents[0]"]
    assert "ID card slots" in _problems(_with_fills({"name": "xm"}, kind="other"))["documents[0]"]
    assert batch_forms.from_data(_with_fills({"valid_until": "xm"}, kind="id_card_back"))


def test_a_sex_choice_needs_both_options() -> None:
    data = _with_fills({"sex": "gender"})
    data["sections"][0]["fields"][1]["options"] = ["M", "F"]
    assert "男/女" in _problems(data)["documents[0].fills.sex"]


def test_fillable_fills_visible_empty_fields_with_values_they_accept() -> None:
    definition = batch_forms.from_data(_with_fills({"name": "xm", "sex": "gender", "birth_date": "birth"}))
    slot = definition.documents[0]
    read = {"name": "王小明", "sex": "男", "birth_date": "1990-02-03", "address": "不填"}
    assert batch_forms.fillable(definition, slot, {}, read) == {
        "xm": "王小明",
        "gender": "男",
        "birth": "1990-02-03",
    }
    # Typed answers (stored encrypted) are kept; a value the field refuses is left for the student.
    assert batch_forms.fillable(definition, slot, {"xm": "gAAAA-token"}, {**read, "sex": "未知"}) == {
        "birth": "1990-02-03"
    }
    # A card prints 维吾尔; a list of options may say 维吾尔族.
    data = _with_fills({"ethnicity": "xm"})
    data["sections"][0]["fields"][0] |= {"kind": "select", "options": ["汉族", "维吾尔族"]}
    definition = batch_forms.from_data(data)
    filled = batch_forms.fillable(definition, definition.documents[0], {}, {"ethnicity": "维吾尔"})
    assert filled == {"xm": "维吾尔族"}


# --- answers ----------------------------------------------------------------------------------


def _clean(answers: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    kept, problems = batch_forms.clean(_definition(), answers)
    return kept, {p.field: p.message for p in problems}


def test_formats_phone_email_pattern_with_hint_decimals_and_dates() -> None:
    _, errors = _clean(
        {
            "mobile": "12345",
            "email": "not-an-email",
            "category": "自考",
            "exam_no": "12345",
            "score": "78.505",
            "cet4": "12",
            "enrolled_on": "2024-13-01",
        }
    )
    assert errors["mobile"] == "「手机号码」应为 11 位手机号码。"
    assert "电子邮箱" in errors["email"]
    assert errors["exam_no"] == "「考籍号」格式不对：考籍号为 12 位数字"
    assert errors["score"] == "「平均成绩」最多保留 2 位小数。"
    assert errors["cet4"].endswith("15 位数字")
    assert "日期" in errors["enrolled_on"]


def test_good_answers_are_kept_and_complete() -> None:
    kept, errors = _clean(
        {
            "mobile": "138 0013 8000",
            "category": "自考",
            "exam_no": "012345678901",
            "score": 78.5,
            "cet4": "123456789012345",
            "family": [{"name": "李四", "phone": "13900139000"}],
            "unknown": "dropped",
        }
    )
    assert errors == {}
    assert kept["mobile"] == "13800138000" and kept["score"] == "78.5" and "unknown" not in kept
    assert batch_forms.missing(_definition(), kept) == []


def test_hidden_fields_are_neither_required_nor_kept() -> None:
    kept, errors = _clean({"category": "成考", "exam_no": "not checked either", "mobile": "13800138000"})
    assert errors == {} and "exam_no" not in kept
    missing = {p.field for p in batch_forms.missing(_definition(), kept)}
    assert missing == {"family"}
    kept, _ = _clean({"category": "自考", "mobile": "13800138000", "family": [{"name": "李四"}]})
    assert [p.field for p in batch_forms.missing(_definition(), kept)] == ["exam_no"]


def test_repeating_rows_have_dotted_paths_and_min_max() -> None:
    _, errors = _clean(
        {"family": [{"name": "李四", "phone": "13900139000"}, {"name": "王五", "phone": "123"}]}
    )
    assert errors == {"family.2.phone": "第 2 行：「联系电话」应为 11 位手机号码。"}
    _, errors = _clean({"family": [{"name": str(n)} for n in range(3)]})
    assert errors == {"family": "「家庭关系」最多填写 2 行。"}
    kept, _ = _clean({"family": [{"phone": "13900139000"}]})
    assert [p.field for p in batch_forms.missing(_definition(), kept) if p.field.startswith("family")] == [
        "family.1.name"
    ]


def test_documents_missing_follow_when_and_counts() -> None:
    definition = _definition()
    missing = batch_forms.missing_documents(definition, {"category": "成考"}, {"id_card_front": 1})
    assert [p.field for p in missing] == ["thesis"]
    assert batch_forms.missing_documents(definition, {"category": "自考"}, {"id_card_front": 1}) == []


def test_personal_values_are_transformed_and_others_left() -> None:
    kept, _ = _clean({"mobile": "13800138000", "category": "成考", "family": [{"name": "李四"}]})
    sealed = batch_forms.transform(_definition(), kept, lambda v: f"enc({v})")
    assert sealed == {"mobile": "enc(13800138000)", "category": "成考", "family": [{"name": "enc(李四)"}]}
