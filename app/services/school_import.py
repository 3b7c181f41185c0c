"""`flask schools import FILE.csv`: schools and their batches from a spreadsheet (docs/schools-csv.md).

The whole file is checked before anything is written, every bad row is reported with its line
number, and the rows are written in one transaction: a file is imported completely or not at all.
Rows are upserted (schools by code, batches by school + name), so importing the same file again
changes nothing.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any, TypeVar

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.services import schools
from app.services.localtime import BEIJING
from app.services.schools import BatchData, Contact, ExamSettings
from media.spec import BACKGROUND_LABELS, PhotoSpec
from models import Batch, Flow, LockOn, School

REQUIRED = (
    "school_code",
    "school_name",
    "province",
    "city",
    "batch_name",
    "education",
    "opens_at",
    "closes_at",
)
OPTIONAL = (
    "fee_yuan",
    "fee_fen",
    "photo_width",
    "photo_height",
    "photo_size_mode",
    "photo_formats",
    "photo_min_kb",
    "photo_max_kb",
    "photo_background",
    "review_days_min",
    "review_days_max",
    "contact_phone",
    "contact_email",
    "receipt_title",
    "receipt_note",
    # The batch's workflow (models/school.py); a file without these columns imports pay-first batches.
    "flow",
    "verify_identity",
    "pay_opens_at",
    "pay_closes_at",
    "lock_on",
    "fee_per_attempt",
    "notice",
    "pledge",
    "signature",
    "after_approval",
    # Exam sign-up (docs/exams.md); a file without any of these leaves a batch's exam settings as they are.
    "exam_selection",
    "exam_room_size",
    "ticket_opens_at",
    "ticket_closes_at",
    "ticket_notice",
    "ticket_pledge",
)
EXAM_COLUMNS = OPTIONAL[-6:]
COLUMNS = REQUIRED + OPTIONAL

# Same limits as the columns of models/school.py.
MAX_LENGTHS = {
    "school_code": 32,
    "school_name": 100,
    "province": 20,
    "city": 30,
    "batch_name": 100,
    "receipt_title": 60,
    "receipt_note": 200,
    "education": 20,
    "contact_phone": 40,
    "contact_email": 120,
    # Text columns: no limit in the database, but students read these on a phone.
    "notice": 2000,
    "pledge": 500,
    "after_approval": 1000,
    "ticket_notice": 4000,
    "ticket_pledge": 2000,
}
# The code becomes part of a QR scene ("school:<code>", ≤ 64 characters) and of URLs.
CODE_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
FORMAT_NAMES = {"jpeg": "jpeg", "jpg": "jpeg", "png": "png"}
# light_blue, 浅蓝色 and 浅蓝 all name the same background.
BACKGROUNDS = {
    name: key for key, label in BACKGROUND_LABELS.items() for name in (key, label, label.removesuffix("色"))
}
# 0731-88872114, 400-800-1234, +86 731 8887 2114, 0731-88872114 转 8021: what schools print.
PHONE_PATTERN = re.compile(r"^\+?[0-9(][0-9 ()\-]*[0-9](\s*(转|ext\.?|-)\s*[0-9]{1,6})?$")
PHONE_DIGITS = (5, 20)
EMAIL_PATTERN = re.compile(r"^[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(\.[A-Za-z0-9\-]+)+$")
_E = TypeVar("_E", bound=StrEnum)
DATE_HELP = "应为 2026-03-01 或 2026-03-01 09:00（北京时间）"
FLOW_HELP = "应为 pay_first（先缴费后审核）、review_first（先审核，通过后缴费）或 free（不收费）"
LOCK_HELP = "应为 pay（缴费后）、approve（审核通过后）或 confirm（学生最后确认后）不能再修改信息"
YES = {"yes", "y", "true", "1", "是"}
NO = {"no", "n", "false", "0", "否"}


@dataclass(frozen=True)
class RowError:
    line: int
    messages: list[str]

    def __str__(self) -> str:
        return f"第 {self.line} 行：" + "；".join(self.messages)


class ImportFileError(ValueError):
    """The file cannot be imported; nothing was written. `errors` lists every problem found."""

    def __init__(self, errors: list[RowError]) -> None:
        super().__init__("\n".join(str(e) for e in errors))
        self.errors = errors


@dataclass(frozen=True)
class SchoolRow:
    code: str
    name: str
    province: str
    city: str
    # None: the file has no contact columns, so the school's contact is left as it is.
    contact: Contact | None = None


@dataclass(frozen=True)
class ImportRow:
    line: int
    school: SchoolRow
    batch: BatchData


@dataclass
class ImportResult:
    rows: int = 0
    schools_created: int = 0
    schools_updated: int = 0
    batches_created: int = 0
    batches_updated: int = 0
    # Codes of the schools in the file, in file order (for the summary).
    school_codes: list[str] = field(default_factory=list)


def parse(content: bytes) -> list[ImportRow]:
    """Check the whole file; raises ImportFileError with every problem, else returns the rows."""
    try:
        text = content.decode("utf-8-sig")  # Excel's "CSV UTF-8" starts with a BOM
    except UnicodeDecodeError as exc:
        line = content[: exc.start].count(b"\n") + 1
        raise ImportFileError(
            [RowError(line, ["文件不是 UTF-8 编码。Excel 请用「另存为 → CSV UTF-8（逗号分隔）」保存"])]
        ) from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise ImportFileError([RowError(1, ["文件是空的"])]) from None
    except csv.Error as exc:
        raise ImportFileError([RowError(1, [f"CSV 格式错误：{exc}"])]) from None
    columns = [name.strip().lower() for name in header]
    header_errors = _check_header(columns)
    if header_errors:
        raise ImportFileError([RowError(1, header_errors)])

    rows: list[ImportRow] = []
    errors: list[RowError] = []
    seen_batches: dict[tuple[str, str], int] = {}
    seen_schools: dict[str, tuple[SchoolRow, int]] = {}
    line = reader.line_num + 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            errors.append(RowError(line, [f"CSV 格式错误：{exc}"]))
            break
        start, line = line, reader.line_num + 1
        if not any(cell.strip() for cell in cells):
            continue  # blank lines (Excel leaves some at the end)
        if len(cells) > len(columns):
            errors.append(
                RowError(start, [f"有 {len(cells)} 列，表头只有 {len(columns)} 列（多余的逗号？）"])
            )
            continue
        values = {name: (cells[i].strip() if i < len(cells) else "") for i, name in enumerate(columns)}
        parsed, messages = _parse_row(start, values)
        if parsed is not None:
            key = (parsed.school.code, parsed.batch.name)
            if key in seen_batches:
                messages.append(f"与第 {seen_batches[key]} 行是同一学校的同名批次")
            seen_batches.setdefault(key, start)
            earlier = seen_schools.get(parsed.school.code)
            if earlier is not None and earlier[0] != parsed.school:
                messages.append(
                    f"学校代码 {parsed.school.code} 的名称、省市或联系方式与第 {earlier[1]} 行不一致"
                )
            seen_schools.setdefault(parsed.school.code, (parsed.school, start))
        if messages:
            errors.append(RowError(start, messages))
        elif parsed is not None:
            rows.append(parsed)
    if errors:
        raise ImportFileError(errors)
    if not rows:
        raise ImportFileError([RowError(1, ["文件里没有数据行"])])
    return rows


def import_csv(session: Session, content: bytes) -> ImportResult:
    """Check the file, then upsert every row in one transaction; commits once.

    Raises ImportFileError (nothing written) when any row is wrong.
    """
    rows = parse(content)
    result = ImportResult(rows=len(rows))
    try:
        for row in rows:
            school = schools.get_by_code(session, row.school.code)
            if row.school.code not in result.school_codes:
                result.school_codes.append(row.school.code)
                if school is None:
                    result.schools_created += 1
                elif _school_changed(school, row.school):
                    result.schools_updated += 1
            school = schools.upsert_school(
                session,
                row.school.code,
                row.school.name,
                row.school.province,
                row.school.city,
                contact=row.school.contact,
            )
            existing = session.scalar(
                select(Batch).where(Batch.school_id == school.id, Batch.name == row.batch.name)
            )
            before = _batch_state(existing) if existing is not None else None
            batch = schools.upsert_batch(session, school, row.batch)
            if before is None:
                result.batches_created += 1
            elif before != _batch_state(batch):
                result.batches_updated += 1
        session.commit()
    except Exception:
        session.rollback()
        raise
    return result


def _school_changed(school: School, row: SchoolRow) -> bool:
    if (school.name, school.province, school.city) != (row.name, row.province, row.city):
        return True
    return row.contact is not None and (school.contact_phone, school.contact_email) != (
        row.contact.phone,
        row.contact.email,
    )


def _batch_state(batch: Batch) -> tuple[Any, ...]:
    return (
        batch.education,
        batch.opens_at,
        batch.closes_at,
        batch.fee_fen,
        batch.review_days_min,
        batch.review_days_max,
        batch.photo_spec,
        batch.receipt_title,
        batch.receipt_note,
        batch.flow,
        batch.verify_identity,
        batch.pay_opens_at,
        batch.pay_closes_at,
        batch.lock_on,
        batch.fee_per_attempt,
        batch.notice,
        batch.pledge,
        batch.signature,
        batch.after_approval,
        batch.exam_selection,
        batch.exam_room_size,
        batch.ticket_opens_at,
        batch.ticket_closes_at,
        batch.ticket_notice,
        batch.ticket_pledge,
    )


def _check_header(columns: list[str]) -> list[str]:
    problems = []
    unknown = [c for c in columns if c not in COLUMNS]
    if unknown:
        problems.append("不认识的列：" + "、".join(c or "（空列名）" for c in unknown))
    duplicated = sorted({c for c in columns if columns.count(c) > 1})
    if duplicated:
        problems.append("重复的列：" + "、".join(duplicated))
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        problems.append("缺少必填的列：" + "、".join(missing))
    if "fee_yuan" not in columns and "fee_fen" not in columns:
        problems.append("缺少费用列：fee_yuan 或 fee_fen")
    return problems


def _parse_row(line: int, values: dict[str, str]) -> tuple[ImportRow | None, list[str]]:
    messages: list[str] = []
    for column in REQUIRED:
        if not values.get(column):
            messages.append(f"{column} 不能为空")
    for column, limit in MAX_LENGTHS.items():
        if len(values.get(column, "")) > limit:
            messages.append(f"{column} 超过 {limit} 个字符")
    code = values.get("school_code", "")
    if code and not CODE_PATTERN.match(code):
        messages.append(f"school_code「{code}」只能含字母、数字、- 和 _")

    opens_at = _moment(values.get("opens_at", ""), end_of_day=False, column="opens_at", messages=messages)
    closes_at = _moment(values.get("closes_at", ""), end_of_day=True, column="closes_at", messages=messages)
    if opens_at and closes_at and closes_at <= opens_at:
        messages.append("closes_at 必须晚于 opens_at")

    flow = _choice(values, "flow", Flow, Flow.PAY_FIRST, FLOW_HELP, messages)
    # Nothing is paid in a free batch, so its data freezes at 通过 unless the file says otherwise.
    lock_default = LockOn.APPROVE if flow == Flow.FREE else LockOn.PAY
    lock_on = _choice(values, "lock_on", LockOn, lock_default, LOCK_HELP, messages)
    pay_opens_at = _moment(
        values.get("pay_opens_at", ""), end_of_day=False, column="pay_opens_at", messages=messages
    )
    pay_closes_at = _moment(
        values.get("pay_closes_at", ""), end_of_day=True, column="pay_closes_at", messages=messages
    )
    verify_identity = _yes_no(values, "verify_identity", True, messages)
    fee_per_attempt = _yes_no(values, "fee_per_attempt", True, messages)
    signature = _yes_no(values, "signature", False, messages)

    # An empty fee means 0, which only a free batch may have (workflow_problems says so otherwise).
    fee_fen = _fee(values, messages, empty_is_zero=flow == Flow.FREE)
    review_min = _integer(values, "review_days_min", 7, messages, low=1, high=365)
    review_max = _integer(values, "review_days_max", 10, messages, low=1, high=365)
    if review_min is not None and review_max is not None and review_max < review_min:
        messages.append("review_days_max 不能小于 review_days_min")
    spec = _photo_spec(values, messages)
    contact = _contact(values, messages)
    texts = {column: values.get(column) or None for column in ("notice", "pledge", "after_approval")}
    exam = _exam(values, messages)

    # A pay date that did not parse is reported already; checked as "missing" it would be reported twice.
    dates_ok = all(
        values.get(c, "") == "" or m is not None
        for c, m in (("pay_opens_at", pay_opens_at), ("pay_closes_at", pay_closes_at))
    )
    if (
        opens_at
        and closes_at
        and fee_fen is not None
        and flow
        and lock_on
        and dates_ok
        and signature is not None
    ):
        # The rules between columns live in the schools service, which the demo data obeys too (the
        # photo spec plays no part in them).
        messages.extend(
            schools.workflow_problems(
                BatchData(
                    name=values.get("batch_name", ""),
                    education=values.get("education", ""),
                    opens_at=opens_at,
                    closes_at=closes_at,
                    fee_fen=fee_fen,
                    photo_spec=PhotoSpec(),
                    flow=flow,
                    pay_opens_at=pay_opens_at,
                    pay_closes_at=pay_closes_at,
                    lock_on=lock_on,
                    pledge=texts["pledge"],
                    signature=signature,
                    exam=exam,
                )
            )
        )

    if messages:
        return None, messages
    assert opens_at and closes_at and fee_fen is not None and spec is not None
    assert review_min is not None and review_max is not None
    assert flow and lock_on and verify_identity is not None and fee_per_attempt is not None
    assert signature is not None
    school = SchoolRow(code, values["school_name"], values["province"], values["city"], contact)
    batch = BatchData(
        name=values["batch_name"],
        education=values["education"],
        opens_at=opens_at,
        closes_at=closes_at,
        fee_fen=fee_fen,
        photo_spec=spec,
        review_days_min=review_min,
        review_days_max=review_max,
        receipt_title=values.get("receipt_title") or None,
        receipt_note=values.get("receipt_note") or None,
        flow=flow,
        verify_identity=verify_identity,
        pay_opens_at=pay_opens_at,
        pay_closes_at=pay_closes_at,
        lock_on=lock_on,
        fee_per_attempt=fee_per_attempt,
        notice=texts["notice"],
        pledge=texts["pledge"],
        signature=signature,
        after_approval=texts["after_approval"],
        exam=exam,
    )
    return ImportRow(line, school, batch), messages


def _exam(values: dict[str, str], messages: list[str]) -> ExamSettings | None:
    """The exam settings, checked; None when the file has none of their columns."""
    if not any(column in values for column in EXAM_COLUMNS):
        return None
    before = len(messages)
    selection = _yes_no(values, "exam_selection", False, messages)
    room_size = _integer(values, "exam_room_size", None, messages, low=1, high=500)
    opens = _moment(
        values.get("ticket_opens_at", ""), end_of_day=False, column="ticket_opens_at", messages=messages
    )
    closes = _moment(
        values.get("ticket_closes_at", ""), end_of_day=True, column="ticket_closes_at", messages=messages
    )
    if len(messages) != before:
        return None
    return ExamSettings(
        selection=bool(selection),
        room_size=room_size,
        ticket_opens_at=opens,
        ticket_closes_at=closes,
        ticket_notice=values.get("ticket_notice") or None,
        ticket_pledge=values.get("ticket_pledge") or None,
    )


def _contact(values: dict[str, str], messages: list[str]) -> Contact | None:
    """The school's contact for students, checked; None when the file has neither column."""
    if "contact_phone" not in values and "contact_email" not in values:
        return None
    phone, email = values.get("contact_phone", ""), values.get("contact_email", "")
    if phone:
        digits = sum(ch.isdigit() for ch in phone)
        if not PHONE_PATTERN.match(phone) or not PHONE_DIGITS[0] <= digits <= PHONE_DIGITS[1]:
            messages.append(
                f"contact_phone「{phone}」不是有效的电话号码，应如 0731-88872114、400-800-1234 或 13800138000"
            )
    if email and (not EMAIL_PATTERN.match(email) or ".." in email):
        messages.append(f"contact_email「{email}」不是有效的电子邮箱，应如 zsb@hunnu.edu.cn")
    return Contact(phone or None, email or None)


def _moment(raw: str, *, end_of_day: bool, column: str, messages: list[str]) -> datetime | None:
    """A date (the whole day: opens at 00:00, closes at 23:59:59) or a date and time, Beijing time."""
    if not raw:
        return None
    try:
        if len(raw) == 10:
            day = date.fromisoformat(raw)
            clock = time(23, 59, 59) if end_of_day else time(0, 0)
            return datetime.combine(day, clock, tzinfo=BEIJING)
        moment = datetime.fromisoformat(raw)
    except ValueError:
        messages.append(f"{column}「{raw}」不是有效的日期，{DATE_HELP}")
        return None
    return moment.replace(tzinfo=BEIJING) if moment.tzinfo is None else moment


def _choice(
    values: dict[str, str], column: str, enum: type[_E], default: _E, help_text: str, messages: list[str]
) -> _E | None:
    raw = values.get(column, "").lower()
    if not raw:
        return default
    try:
        return enum(raw)
    except ValueError:
        messages.append(f"{column}「{values[column]}」{help_text}")
        return None


def _yes_no(values: dict[str, str], column: str, default: bool, messages: list[str]) -> bool | None:
    raw = values.get(column, "").lower()
    if not raw:
        return default
    if raw in YES or raw in NO:
        return raw in YES
    messages.append(f"{column}「{values[column]}」应为 yes 或 no（是/否）")
    return None


def _fee(values: dict[str, str], messages: list[str], *, empty_is_zero: bool = False) -> int | None:
    yuan_raw, fen_raw = values.get("fee_yuan", ""), values.get("fee_fen", "")
    fen_from_yuan: int | None = None
    fen: int | None = None
    if yuan_raw:
        try:
            amount = Decimal(yuan_raw)
        except InvalidOperation:
            amount = Decimal("NaN")
        if not amount.is_finite() or amount < 0 or amount != amount.quantize(Decimal("0.01")):
            messages.append(f"fee_yuan「{yuan_raw}」应为不小于 0、最多两位小数的金额，如 2 或 2.00")
        else:
            fen_from_yuan = int(amount * 100)
    if fen_raw:
        fen = _integer(values, "fee_fen", None, messages, low=0, high=10**8)
    if not yuan_raw and not fen_raw:
        if empty_is_zero:
            return 0
        messages.append("fee_yuan 和 fee_fen 至少填一个")
        return None
    if fen_from_yuan is not None and fen is not None and fen_from_yuan != fen:
        messages.append(f"fee_yuan（{yuan_raw} 元）与 fee_fen（{fen_raw} 分）不一致")
        return None
    return fen if fen is not None else fen_from_yuan


def _integer(
    values: dict[str, str], column: str, default: int | None, messages: list[str], *, low: int, high: int
) -> int | None:
    raw = values.get(column, "")
    if not raw:
        return default
    try:
        number = int(raw)
    except ValueError:
        messages.append(f"{column}「{raw}」应为整数")
        return None
    if not low <= number <= high:
        messages.append(f"{column} 应在 {low}–{high} 之间")
        return None
    return number


def _photo_spec(values: dict[str, str], messages: list[str]) -> PhotoSpec | None:
    before = len(messages)
    fields: dict[str, Any] = {}
    for column, name in (("photo_width", "width"), ("photo_height", "height")):
        number = _integer(values, column, None, messages, low=100, high=4000)
        if number is not None:
            fields[name] = number
    for column, name, low in (("photo_min_kb", "min_bytes", 0), ("photo_max_kb", "max_bytes", 1)):
        number = _integer(values, column, None, messages, low=low, high=100 * 1024)
        if number is not None:
            fields[name] = number * 1024
    mode = values.get("photo_size_mode", "").lower()
    if mode:
        if mode in ("exact", "max"):
            fields["size_mode"] = mode
        else:
            messages.append(f"photo_size_mode「{mode}」应为 exact（必须正好这个尺寸）或 max（不超过）")
    formats_raw = values.get("photo_formats", "")
    if formats_raw:
        names = [f.lower() for f in re.split(r"[\s/|;,、]+", formats_raw) if f]
        unknown = [f for f in names if f not in FORMAT_NAMES]
        if unknown or not names:
            messages.append(f"photo_formats「{formats_raw}」只能是 jpg、jpeg、png，多个用 / 分隔")
        else:
            fields["formats"] = tuple(dict.fromkeys(FORMAT_NAMES[f] for f in names))
    background = values.get("photo_background", "")
    if background:
        if background.lower() in BACKGROUNDS or background in BACKGROUNDS:
            fields["background"] = BACKGROUNDS.get(background.lower(), BACKGROUNDS.get(background))
        else:
            choices = "、".join(f"{k}（{v}）" for k, v in BACKGROUND_LABELS.items())
            messages.append(f"photo_background「{background}」应为 {choices}")
    try:
        # Built even when a column was wrong, so that the rules between columns are reported too.
        spec = PhotoSpec(**fields)
    except ValidationError as exc:
        for err in exc.errors():
            if err["type"] == "value_error" and "min_bytes" in err["msg"]:
                messages.append("photo_min_kb 必须小于 photo_max_kb")
            else:
                messages.append(f"照片要求有误：{err['msg']}")
        return None
    return spec if len(messages) == before else None


def summary(result: ImportResult) -> str:
    return (
        f"导入 {result.rows} 行：学校 新增 {result.schools_created}、更新 {result.schools_updated}；"
        f"批次 新增 {result.batches_created}、更新 {result.batches_updated}"
    )
