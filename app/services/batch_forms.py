"""A batch's sign-up form and document slots: the definition file, its validation, and the checks of
a student's answers against it (pure functions: no database, no keys).

One file per batch (YAML or JSON, docs/batch-forms.md): sections of fields, repeating groups (西北工业大学's
家庭关系 rows), `when` conditions on an earlier choice (武汉轻工大学: 考生类别 = 自考 → 考籍号, 成考 → 学号),
and the document slots (身份证正反面, 毕业证, 论文 …) with media.documents' rules.

`when` may only name a select or radio field that is not personal: completeness is then decidable
from the stored answers without decrypting anything (submissions check it without the PII keys).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from app.services.errors import ServiceError
from media.documents import SlotRules

FieldKind = Literal[
    "text", "number", "date", "select", "radio", "phone", "email", "pattern", "textarea", "group"
]
DocFormat = Literal["jpg", "png", "pdf", "doc", "docx", "ppt", "pptx"]
KEY = r"^[a-z][a-z0-9_]{0,39}$"
# 中国大陆手机号: 11 digits starting 13–19.
CN_MOBILE = re.compile(r"^1[3-9]\d{9}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
MAX_TEXT = 200
MAX_TEXTAREA = 2000

# What an ID card slot's reading may fill (`fills`: reading key → form field), by slot kind, and the field
# kinds each value fits (app/services/idcard_reading.py names the keys). A value is filled only when it
# passes the field's own checks (an option of a select, a date …).
FILLS: dict[str, dict[str, tuple[str, ...]]] = {
    "id_card_front": {
        "name": ("text",),
        "id_number": ("text", "pattern"),
        "sex": ("text", "select", "radio"),
        "ethnicity": ("text", "select", "radio"),
        "birth_date": ("date", "text"),
        "address": ("text", "textarea"),
    },
    "id_card_back": {
        "issuing_authority": ("text", "textarea"),
        "valid_from": ("date", "text"),
        "valid_until": ("date", "text"),  # 长期 fits a text field only
    },
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class When(_Strict):
    """Shown only when the earlier select/radio field `field` holds one of `equals`."""

    field: str = Field(pattern=KEY)
    equals: list[str] = Field(min_length=1)

    @field_validator("equals", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class FieldDef(_Strict):
    key: str = Field(pattern=KEY)
    label: str = Field(min_length=1, max_length=40)
    kind: FieldKind = "text"
    required: bool = False
    personal: bool = False  # phone, address, family: encrypted at rest
    hint: str | None = Field(default=None, max_length=200)
    when: When | None = None
    options: list[str] | None = None  # select, radio
    pattern: str | None = None  # pattern: a full-match regex
    decimals: int | None = Field(default=None, ge=0, le=6)  # number: at most this many decimals
    min: float | None = None  # number
    max: float | None = None
    max_length: int | None = Field(default=None, ge=1, le=MAX_TEXTAREA)
    # group: its row fields and how many rows
    fields: list[FieldDef] | None = None
    min_rows: int = Field(default=0, ge=0, le=50)
    max_rows: int = Field(default=10, ge=1, le=50)

    @model_validator(mode="after")
    def _kind_rules(self) -> FieldDef:
        if self.kind in ("select", "radio"):
            if not self.options or len(set(self.options)) != len(self.options):
                raise ValueError("select/radio 需要不重复的 options（options: distinct values required）")
        elif self.options is not None:
            raise ValueError("只有 select/radio 可以有 options（options only on select/radio）")
        if self.kind == "pattern":
            if not self.pattern or not self.hint:
                raise ValueError("pattern 字段需要 pattern 和中文 hint（pattern and hint required）")
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise ValueError(f"pattern 不是有效的正则表达式（invalid regex: {exc}）") from None
        elif self.pattern is not None:
            raise ValueError("只有 pattern 字段可以有 pattern（pattern only on kind pattern）")
        if self.kind != "number" and (
            self.decimals is not None or self.min is not None or self.max is not None
        ):
            raise ValueError("decimals/min/max 只用于 number（decimals/min/max only on number）")
        if self.kind == "group":
            if not self.fields:
                raise ValueError("group 需要 fields（group needs fields）")
            if any(f.kind == "group" for f in self.fields):
                raise ValueError("group 不能嵌套（groups do not nest）")
            if self.min_rows > self.max_rows:
                raise ValueError("min_rows 不能大于 max_rows（min_rows > max_rows）")
            _unique((f.key for f in self.fields), "fields")
        elif self.fields is not None:
            raise ValueError("只有 group 可以有 fields（fields only on kind group）")
        return self

    def row_required(self) -> bool:
        return self.required or self.min_rows > 0


class Section(_Strict):
    title: str = Field(min_length=1, max_length=40)
    hint: str | None = None
    fields: list[FieldDef] = Field(min_length=1)


class SlotDef(_Strict):
    key: str = Field(pattern=KEY)
    label: str = Field(min_length=1, max_length=40)
    kind: Literal["id_card_front", "id_card_back", "other"] = "other"
    formats: list[DocFormat] = Field(min_length=1)
    max_bytes: int = Field(default=10 * 1024 * 1024, ge=1024, le=50 * 1024 * 1024)
    max_width: int = Field(default=3000, ge=100, le=10000)
    max_height: int = Field(default=2100, ge=100, le=10000)
    min_files: int = Field(default=1, ge=0, le=20)
    max_files: int = Field(default=1, ge=1, le=20)
    required: bool = True
    when: When | None = None
    hint: str | None = Field(default=None, max_length=200)
    # id_card_front/back: which form fields the card's reading fills while they are empty
    fills: dict[str, str] | None = None

    @model_validator(mode="after")
    def _counts(self) -> SlotDef:
        if self.min_files > self.max_files:
            raise ValueError("min_files 不能大于 max_files（min_files > max_files）")
        if self.fills is not None:
            allowed = FILLS.get(self.kind)
            if allowed is None:
                raise ValueError(
                    "只有 id_card_front/id_card_back 可以有 fills（fills only on ID card slots）"
                )
            unknown = [k for k in self.fills if k not in allowed]
            if unknown:
                raise ValueError(
                    f"fills 中不认识的识别项：{'、'.join(unknown)}；可用：{'、'.join(allowed)}"
                    "（unknown reading key）"
                )
        return self

    def rules(self) -> SlotRules:
        return SlotRules(
            formats=frozenset(self.formats),
            max_bytes=self.max_bytes,
            max_width=self.max_width,
            max_height=self.max_height,
            max_files=self.max_files,
        )


class Definition(_Strict):
    version: Literal[1] = 1
    school: str = Field(min_length=1, max_length=20, description="学校代码")
    batch: str = Field(min_length=1, max_length=100, description="批次名称")
    sections: list[Section] = Field(default_factory=list)
    documents: list[SlotDef] = Field(default_factory=list)

    def fields(self) -> list[FieldDef]:
        return [f for section in self.sections for f in section.fields]

    def field(self, key: str) -> FieldDef | None:
        return next((f for f in self.fields() if f.key == key), None)


def _unique(keys: Iterable[str], where: str) -> None:
    seen: set[str] = set()
    for key in keys:
        if key in seen:
            raise ValueError(f"{where} 中 key 重复：{key}（duplicate key）")
        seen.add(key)


# --- reading a definition file ----------------------------------------------------------------


@dataclass(frozen=True)
class DefinitionProblem:
    path: str  # sections[1].fields[3].pattern
    message: str

    def __str__(self) -> str:
        return f"{self.path or '(文件)'}: {self.message}"


class DefinitionError(ServiceError):
    message = "批次表单定义有误"

    def __init__(self, problems: list[DefinitionProblem]) -> None:
        super().__init__(f"{self.message}：{len(problems)} 处")
        self.problems = problems


_PYDANTIC_ZH = {
    "missing": "缺少此项",
    "extra_forbidden": "不认识的键",
    "literal_error": "取值不在允许范围内",
    "string_pattern_mismatch": "格式不对（key 只能用小写字母、数字和下划线，字母开头）",
    "too_short": "太短或为空",
    "string_too_short": "不能为空",
    "string_too_long": "太长",
    "int_parsing": "应为整数",
    "bool_parsing": "应为 true 或 false",
    "list_type": "应为列表",
    "dict_type": "应为对象（映射）",
    "model_type": "应为对象（映射）",
    "string_type": "应为文本",
    "greater_than_equal": "太小",
    "less_than_equal": "太大",
}


def _path(loc: Iterable[int | str]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def parse(content: bytes | str) -> Definition:
    """A definition from YAML or JSON text; raises DefinitionError naming each wrong path."""
    try:
        raw = yaml.safe_load(content)
    except yaml.YAMLError as exc:
        raise DefinitionError([DefinitionProblem("", f"不是有效的 YAML/JSON（{exc}）")]) from None
    return from_data(raw)


def from_data(raw: Any) -> Definition:
    try:
        definition = Definition.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            zh = _PYDANTIC_ZH.get(error["type"])
            msg = str(error["msg"]).removeprefix("Value error, ")
            problems.append(DefinitionProblem(_path(error["loc"]), f"{zh}（{msg}）" if zh else msg))
        raise DefinitionError(problems) from None
    problems = _cross_checks(definition)
    if problems:
        raise DefinitionError(problems)
    return definition


def _cross_checks(definition: Definition) -> list[DefinitionProblem]:
    """Keys unique across the form and the slots; each `when` names an earlier, non-personal
    select/radio field and one of its options."""
    problems: list[DefinitionProblem] = []
    earlier: dict[str, FieldDef] = {}
    for s, section in enumerate(definition.sections):
        for f, field in enumerate(section.fields):
            path = f"sections[{s}].fields[{f}]"
            if field.key in earlier:
                problems.append(DefinitionProblem(f"{path}.key", f"key 重复：{field.key}（duplicate key）"))
            if field.when is not None:
                problems += _check_when(field.when, earlier, f"{path}.when")
            earlier[field.key] = field
    slot_keys: set[str] = set()
    for d, slot in enumerate(definition.documents):
        path = f"documents[{d}]"
        if slot.key in slot_keys:
            problems.append(DefinitionProblem(f"{path}.key", f"key 重复：{slot.key}（duplicate key）"))
        slot_keys.add(slot.key)
        if slot.when is not None:
            problems += _check_when(slot.when, earlier, f"{path}.when")
        problems += _check_fills(slot, earlier, f"{path}.fills")
    return problems


def _check_fills(slot: SlotDef, fields: dict[str, FieldDef], path: str) -> list[DefinitionProblem]:
    """Each target an existing top-level field of a kind its value fits, personal (what an ID card says
    is personal data: it stays encrypted at rest), and named once."""
    problems: list[DefinitionProblem] = []
    seen: set[str] = set()
    for source, target in (slot.fills or {}).items():
        where = f"{path}.{source}"
        field = fields.get(target)
        kinds = FILLS[slot.kind][source]
        if field is None:
            problems.append(DefinitionProblem(where, f"没有字段 {target}（no such field）"))
        elif field.kind not in kinds:
            problems.append(
                DefinitionProblem(
                    where,
                    f"{target} 是 {field.kind}，{source} 只能填入 {'/'.join(kinds)} 字段"
                    "（kind does not fit）",
                )
            )
        elif not field.personal:
            problems.append(
                DefinitionProblem(
                    where, f"{target} 必须是 personal 字段：证件上的信息要加密保存（target must be personal）"
                )
            )
        elif source == "sex" and field.options is not None and not {"男", "女"} <= set(field.options):
            problems.append(
                DefinitionProblem(where, f"{target} 的选项需要包含 男 和 女（options lack 男/女）")
            )
        if target in seen:
            problems.append(DefinitionProblem(where, f"{target} 被填入两次（target named twice）"))
        seen.add(target)
    return problems


def _check_when(when: When, earlier: dict[str, FieldDef], path: str) -> list[DefinitionProblem]:
    target = earlier.get(when.field)
    if target is None or target.kind not in ("select", "radio") or target.personal:
        return [
            DefinitionProblem(
                f"{path}.field",
                f"{when.field} 必须是前面出现的、非 personal 的 select/radio 字段"
                "（must name an earlier non-personal select/radio field）",
            )
        ]
    unknown = [v for v in when.equals if v not in (target.options or [])]
    if unknown:
        return [
            DefinitionProblem(
                f"{path}.equals", f"{'、'.join(unknown)} 不是 {when.field} 的选项（not an option）"
            )
        ]
    return []


def to_data(definition: Definition) -> dict[str, Any]:
    """As stored in the batch's JSON column (and sent to the pages): defaults written out."""
    data: dict[str, Any] = json.loads(definition.model_dump_json())
    return data


# --- answers ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    field: str  # dotted: family.1.phone (rows counted from 1, as the page shows them)
    message: str


def visible(condition: When | None, answers: dict[str, Any]) -> bool:
    return condition is None or answers.get(condition.field) in condition.equals


def clean(definition: Definition, raw: dict[str, Any]) -> tuple[dict[str, Any], list[Problem]]:
    """The answers to keep and the format errors (wrong phone, too many rows …); missing required
    answers are not errors here — a draft may be saved any time — see `missing`. Hidden fields (their
    `when` not met) and unknown keys are dropped."""
    kept: dict[str, Any] = {}
    problems: list[Problem] = []
    for field in definition.fields():
        if not visible(field.when, kept) or field.key not in raw:
            continue
        value = raw[field.key]
        if field.kind == "group":
            rows, row_problems = _clean_group(field, value)
            problems += row_problems
            if rows:
                kept[field.key] = rows
            continue
        cleaned, message = _clean_value(field, value)
        if message is not None:
            problems.append(Problem(field.key, message))
        elif cleaned is not None:
            kept[field.key] = cleaned
    return kept, problems


def _clean_group(field: FieldDef, value: Any) -> tuple[list[dict[str, str]], list[Problem]]:
    if value is None:
        return [], []
    if not isinstance(value, list) or not all(isinstance(row, dict) for row in value):
        return [], [Problem(field.key, f"「{field.label}」格式不对，应为若干行。")]
    if len(value) > field.max_rows:
        return [], [Problem(field.key, f"「{field.label}」最多填写 {field.max_rows} 行。")]
    rows: list[dict[str, str]] = []
    problems: list[Problem] = []
    for n, row in enumerate(value, start=1):
        kept: dict[str, str] = {}
        for sub in field.fields or []:
            cleaned, message = _clean_value(sub, row.get(sub.key))
            if message is not None:
                problems.append(Problem(f"{field.key}.{n}.{sub.key}", f"第 {n} 行：{message}"))
            elif cleaned is not None:
                kept[sub.key] = cleaned
        if kept:  # a row left entirely empty is no row
            rows.append(kept)
    return rows, problems


def _clean_value(field: FieldDef, value: Any) -> tuple[str | None, str | None]:
    """(the value to keep, or None when empty; an error message in Chinese)."""
    if value is None:
        return None, None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None, f"「{field.label}」格式不对。"
    text = str(value).strip()
    if not text:
        return None, None
    name = f"「{field.label}」"
    limit = field.max_length or (MAX_TEXTAREA if field.kind == "textarea" else MAX_TEXT)
    if len(text) > limit:
        return None, f"{name}最多 {limit} 个字。"
    match field.kind:
        case "phone":
            text = text.replace(" ", "").replace("-", "")
            if not CN_MOBILE.fullmatch(text):
                return None, f"{name}应为 11 位手机号码。"
        case "email":
            if not EMAIL.fullmatch(text):
                return None, f"{name}不是有效的电子邮箱地址。"
        case "pattern":
            if not re.fullmatch(field.pattern or "", text):
                return None, f"{name}格式不对：{field.hint}"
        case "select" | "radio":
            if text not in (field.options or []):
                return None, f"{name}请从选项中选择。"
        case "date":
            try:
                date.fromisoformat(text)
            except ValueError:
                return None, f"{name}应为日期，如 2024-09-01。"
        case "number":
            return _clean_number(field, text)
    return text, None


def _clean_number(field: FieldDef, text: str) -> tuple[str | None, str | None]:
    name = f"「{field.label}」"
    try:
        number = Decimal(text)
    except InvalidOperation:
        return None, f"{name}应为数字。"
    if not number.is_finite():
        return None, f"{name}应为数字。"
    places = max(0, -int(number.as_tuple().exponent))
    allowed = field.decimals or 0
    if places > allowed:
        return None, f"{name}最多保留 {allowed} 位小数。" if allowed else f"{name}应为整数。"
    if field.min is not None and number < Decimal(str(field.min)):
        return None, f"{name}不能小于 {field.min:g}。"
    if field.max is not None and number > Decimal(str(field.max)):
        return None, f"{name}不能大于 {field.max:g}。"
    return text, None


def missing(definition: Definition, answers: dict[str, Any]) -> list[Problem]:
    """Every required visible field not answered (works on stored answers: encrypted values count
    as present)."""
    out: list[Problem] = []
    for field in definition.fields():
        if not visible(field.when, answers):
            continue
        value = answers.get(field.key)
        if field.kind != "group":
            if field.required and value in (None, ""):
                out.append(Problem(field.key, f"请填写「{field.label}」。"))
            continue
        rows = value if isinstance(value, list) else []
        need = max(field.min_rows, 1 if field.required else 0)
        if len(rows) < need:
            out.append(Problem(field.key, f"「{field.label}」至少填写 {need} 行。"))
        for n, row in enumerate(rows, start=1):
            for sub in field.fields or []:
                if sub.required and row.get(sub.key) in (None, ""):
                    out.append(
                        Problem(
                            f"{field.key}.{n}.{sub.key}",
                            f"请填写「{field.label}」第 {n} 行的「{sub.label}」。",
                        )
                    )
    return out


def missing_documents(
    definition: Definition, answers: dict[str, Any], counts: dict[str, int]
) -> list[Problem]:
    """Every required visible slot holding fewer files than it needs."""
    out: list[Problem] = []
    for slot in definition.documents:
        if not slot.required or not visible(slot.when, answers):
            continue
        need = max(slot.min_files, 1)
        if counts.get(slot.key, 0) < need:
            more = f"（至少 {need} 个文件）" if need > 1 else ""
            out.append(Problem(slot.key, f"请上传「{slot.label}」{more}。"))
    return out


def slot(definition: Definition, key: str) -> SlotDef | None:
    return next((s for s in definition.documents if s.key == key), None)


def fillable(
    definition: Definition, slot_def: SlotDef, answers: dict[str, Any], read: dict[str, str]
) -> dict[str, str]:
    """The answers a card's reading (`read`: reading key → value) gives the slot's `fills` targets that are
    visible and still empty in `answers` (stored answers: an encrypted value counts as typed), each
    value as the field's own check keeps it; a value the field refuses (not an option, too long) is left
    for the student to type. Plain values: the caller encrypts them as personal."""
    out: dict[str, str] = {}
    for source, target in (slot_def.fills or {}).items():
        field = definition.field(target)
        value = read.get(source)
        if field is None or not value or answers.get(target) not in (None, ""):
            continue
        if not visible(field.when, answers):
            continue
        candidates = [value]
        if source == "ethnicity" and field.options is not None:
            candidates.append(f"{value}族")  # the card prints 汉; a list may say 汉族
        for candidate in candidates:
            cleaned, message = _clean_value(field, candidate)
            if message is None and cleaned is not None:
                out[target] = cleaned
                break
    return out


# --- personal answers at rest ---------------------------------------------------------------------


def personal_paths(definition: Definition) -> set[tuple[str, str | None]]:
    """(field, row field) pairs whose values are encrypted: personal fields, and every field of a
    personal group (row counts stay readable, so completeness needs no key)."""
    out: set[tuple[str, str | None]] = set()
    for field in definition.fields():
        if field.kind == "group":
            for sub in field.fields or []:
                if field.personal or sub.personal:
                    out.add((field.key, sub.key))
        elif field.personal:
            out.add((field.key, None))
    return out


def transform(definition: Definition, answers: dict[str, Any], change: Any) -> dict[str, Any]:
    """The answers with `change` (encrypt or decrypt) applied to every personal value."""
    paths = personal_paths(definition)
    out: dict[str, Any] = {}
    for key, value in answers.items():
        if isinstance(value, list):
            out[key] = [
                {sub: change(v) if (key, sub) in paths else v for sub, v in row.items()} for row in value
            ]
        else:
            out[key] = change(value) if (key, None) in paths else value
    return out
