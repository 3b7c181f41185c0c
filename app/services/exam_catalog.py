"""A batch's exam catalogue (docs/exams.md): its 考点 (sites.csv), 专业 (majors.csv) and 课程 (courses.csv),
imported all-or-nothing, and read back for the 报考 cascade.

Every file is checked before anything is written, and every problem names the file, the line and the
column. A new import replaces the batch's whole catalogue, but only while no candidate has registered
(or been seated) against it: their choices point at these rows, so a catalogue in use is refused with
the reason instead of being rewritten under them.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from app.services.errors import ServiceError
from app.services.localtime import BEIJING, stored_utc
from models import Batch, School
from models.exam import ExamCourse, ExamMajor, ExamRegistration, ExamSeat, ExamSite

SITES, MAJORS, COURSES = "sites.csv", "majors.csv", "courses.csv"
KINDS = (SITES, MAJORS, COURSES)
# (required, optional) columns of each file.
COLUMNS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    SITES: (("district", "county", "code", "name", "address", "capacity"), ()),
    MAJORS: (("code", "name"), ("standard", "special")),
    COURSES: (("code", "name", "starts_at", "ends_at"), ("major_code", "fee_yuan", "fee_fen")),
}
# Same limits as the columns of models/exam.py; a 毕业标准 is read on a phone.
MAX_LENGTHS = {"district": 40, "county": 40, "code": 20, "name": 100, "address": 200, "standard": 4000}
CODE_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
TIME_HELP = "应为 2021-04-01 09:00（北京时间，日期和时刻）"
YES = {"yes", "y", "true", "1", "是"}
NO = {"no", "n", "false", "0", "否", ""}
MAX_CAPACITY = 100_000


@dataclass(frozen=True)
class RowError:
    file: str
    line: int
    column: str | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file} 第 {self.line} 行" + (f"，{self.column} 列" if self.column else "")
        english = f"{self.file} line {self.line}" + (f", column {self.column}" if self.column else "")
        return f"{where}：{self.message}（{english}）"


class CatalogFileError(ValueError):
    """The files cannot be imported; nothing was written. `errors` lists every problem found."""

    def __init__(self, errors: list[RowError]) -> None:
        super().__init__("\n".join(str(e) for e in errors))
        self.errors = errors


class CatalogError(ServiceError):
    message = "考试目录不能导入"


class CatalogInUseError(CatalogError):
    message = "已有考生报考，不能替换本批次的考点、专业和课程目录。"


@dataclass(frozen=True)
class SiteRow:
    district: str
    county: str
    code: str
    name: str
    address: str
    capacity: int


@dataclass(frozen=True)
class MajorRow:
    code: str
    name: str
    standard: str | None
    special: bool


@dataclass(frozen=True)
class CourseRow:
    code: str
    name: str
    major_code: str | None
    starts_at: datetime
    ends_at: datetime
    fee_fen: int


@dataclass
class Catalog:
    sites: list[SiteRow] = field(default_factory=list)
    majors: list[MajorRow] = field(default_factory=list)
    courses: list[CourseRow] = field(default_factory=list)

    def shifted(self, delta: timedelta) -> Catalog:
        """The same catalogue with every exam moved by `delta` (the demo keeps its dates current)."""
        moved = [replace(c, starts_at=c.starts_at + delta, ends_at=c.ends_at + delta) for c in self.courses]
        return Catalog(list(self.sites), list(self.majors), moved)


# --- checking the files ----------------------------------------------------------------------------


def read_dir(directory: Path) -> dict[str, bytes]:
    """The catalogue files found in `directory` (majors.csv may be absent: public courses only)."""
    return {kind: (directory / kind).read_bytes() for kind in KINDS if (directory / kind).is_file()}


def parse(files: dict[str, bytes]) -> Catalog:
    """Check every file; raises CatalogFileError with every problem, else returns the catalogue."""
    errors: list[RowError] = []
    for kind in (SITES, COURSES):
        if kind not in files:
            errors.append(RowError(kind, 1, None, "缺少这个文件"))
    tables = {kind: _rows(kind, content, errors) for kind, content in files.items() if kind in KINDS}
    catalog = Catalog()
    catalog.sites = _sites(tables.get(SITES, []), errors)
    # A major row wrong elsewhere still names its code: its courses are not reported a second time.
    major_codes: dict[str, int] = {}
    catalog.majors = _majors(tables.get(MAJORS, []), major_codes, errors)
    catalog.courses = _courses(tables.get(COURSES, []), set(major_codes), errors)
    if not errors and not catalog.sites:
        errors.append(RowError(SITES, 1, None, "文件里没有考点"))
    if not errors and not catalog.courses:
        errors.append(RowError(COURSES, 1, None, "文件里没有课程"))
    if errors:
        raise CatalogFileError(errors)
    return catalog


Row = tuple[int, dict[str, str]]


def _rows(kind: str, content: bytes, errors: list[RowError]) -> list[Row]:
    """(line, values) of each non-blank row, after checking the header; [] when the file is unreadable."""
    try:
        text = content.decode("utf-8-sig")  # Excel's "CSV UTF-8" starts with a BOM
    except UnicodeDecodeError as exc:
        line = content[: exc.start].count(b"\n") + 1
        errors.append(RowError(kind, line, None, "文件不是 UTF-8 编码。Excel 请用「另存为 → CSV UTF-8」保存"))
        return []
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [name.strip().lower() for name in next(reader)]
    except StopIteration:
        errors.append(RowError(kind, 1, None, "文件是空的"))
        return []
    except csv.Error as exc:
        errors.append(RowError(kind, 1, None, f"CSV 格式错误：{exc}"))
        return []
    required, optional = COLUMNS[kind]
    problems = []
    unknown = [c or "（空列名）" for c in header if c not in required + optional]
    if unknown:
        problems.append("不认识的列：" + "、".join(unknown))
    duplicated = sorted({c for c in header if header.count(c) > 1})
    if duplicated:
        problems.append("重复的列：" + "、".join(duplicated))
    missing = [c for c in required if c not in header]
    if missing:
        problems.append("缺少必填的列：" + "、".join(missing))
    if kind == COURSES and "fee_yuan" not in header and "fee_fen" not in header:
        problems.append("缺少费用列：fee_yuan 或 fee_fen")
    if problems:
        errors.extend(RowError(kind, 1, None, p) for p in problems)
        return []
    rows: list[Row] = []
    line = reader.line_num + 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            errors.append(RowError(kind, line, None, f"CSV 格式错误：{exc}"))
            break
        start, line = line, reader.line_num + 1
        if not any(cell.strip() for cell in cells):
            continue  # blank lines (Excel leaves some at the end)
        if len(cells) > len(header):
            errors.append(RowError(kind, start, None, f"有 {len(cells)} 列，表头只有 {len(header)} 列"))
            continue
        rows.append(
            (start, {name: (cells[i].strip() if i < len(cells) else "") for i, name in enumerate(header)})
        )
    return rows


class _Checker:
    """Collects one row's problems, each with its column."""

    def __init__(self, kind: str, line: int, values: dict[str, str], errors: list[RowError]) -> None:
        self.kind, self.line, self.values, self.errors = kind, line, values, errors
        self.ok = True

    def bad(self, column: str | None, message: str) -> None:
        self.errors.append(RowError(self.kind, self.line, column, message))
        self.ok = False

    def text(self, column: str, *, required: bool = True) -> str:
        value = self.values.get(column, "")
        if required and not value:
            self.bad(column, "不能为空")
        limit = MAX_LENGTHS.get(column)
        if limit is not None and len(value) > limit:
            self.bad(column, f"超过 {limit} 个字符")
        return value

    def code(self, column: str, seen: dict[str, int], *, required: bool = True) -> str:
        value = self.text(column, required=required)
        if value and not CODE_PATTERN.match(value):
            self.bad(column, f"「{value}」只能含字母、数字、- 和 _")
        elif value and column == "code":
            if value in seen:
                self.bad(column, f"代码 {value} 与第 {seen[value]} 行重复")
            seen.setdefault(value, self.line)
        return value

    def moment(self, column: str) -> datetime | None:
        raw = self.values.get(column, "")
        if not raw:
            self.bad(column, "不能为空")
            return None
        try:
            if len(raw) <= 10:
                date.fromisoformat(raw)  # a date alone names no exam time
                raise ValueError(raw)
            moment = datetime.fromisoformat(raw)
        except ValueError:
            self.bad(column, f"「{raw}」不是有效的考试时间，{TIME_HELP}")
            return None
        return moment.replace(tzinfo=BEIJING) if moment.tzinfo is None else moment

    def integer(self, column: str, low: int, high: int) -> int | None:
        raw = self.values.get(column, "")
        try:
            number = int(raw)
        except ValueError:
            self.bad(column, f"「{raw}」应为整数" if raw else "不能为空")
            return None
        if not low <= number <= high:
            self.bad(column, f"应在 {low}–{high} 之间")
            return None
        return number

    def yes_no(self, column: str) -> bool:
        raw = self.values.get(column, "").lower()
        if raw not in YES and raw not in NO:
            self.bad(column, f"「{self.values[column]}」应为 yes 或 no（是/否）")
        return raw in YES

    def fee(self) -> int | None:
        yuan_raw, fen_raw = self.values.get("fee_yuan", ""), self.values.get("fee_fen", "")
        from_yuan = from_fen = None
        if yuan_raw:
            try:
                amount = Decimal(yuan_raw)
            except InvalidOperation:
                amount = Decimal("NaN")
            if not amount.is_finite() or amount <= 0 or amount != amount.quantize(Decimal("0.01")):
                self.bad("fee_yuan", f"「{yuan_raw}」应为大于 0、最多两位小数的金额，如 35 或 35.00")
            else:
                from_yuan = int(amount * 100)
        if fen_raw:
            from_fen = self.integer("fee_fen", 1, 10**8)
        if not yuan_raw and not fen_raw:
            self.bad("fee_yuan", "fee_yuan 和 fee_fen 至少填一个")
            return None
        if from_yuan is not None and from_fen is not None and from_yuan != from_fen:
            self.bad("fee_fen", f"与 fee_yuan（{yuan_raw} 元）不一致")
            return None
        return from_fen if from_fen is not None else from_yuan


def _each(kind: str, rows: list[Row], errors: list[RowError]) -> Any:
    for line, values in rows:
        yield _Checker(kind, line, values, errors)


def _sites(rows: list[Row], errors: list[RowError]) -> list[SiteRow]:
    found, seen = [], {}  # type: ignore[var-annotated]
    for row in _each(SITES, rows, errors):
        texts = {c: row.text(c) for c in ("district", "county", "name", "address")}
        code = row.code("code", seen)
        capacity = row.integer("capacity", 1, MAX_CAPACITY)
        if row.ok and capacity is not None:
            found.append(SiteRow(code=code, capacity=capacity, **texts))
    return found


def _majors(rows: list[Row], seen: dict[str, int], errors: list[RowError]) -> list[MajorRow]:
    found = []
    for row in _each(MAJORS, rows, errors):
        code, name = row.code("code", seen), row.text("name")
        standard = row.text("standard", required=False) or None
        special = row.yes_no("special")
        if row.ok:
            found.append(MajorRow(code, name, standard, special))
    return found


def _courses(rows: list[Row], majors: set[str], errors: list[RowError]) -> list[CourseRow]:
    found, seen = [], {}  # type: ignore[var-annotated]
    for row in _each(COURSES, rows, errors):
        code, name = row.code("code", seen), row.text("name")
        major_code = row.code("major_code", {}, required=False) or None
        if major_code and major_code not in majors:
            row.bad("major_code", f"专业代码 {major_code} 不在 majors.csv 里（公共课请留空）")
        starts_at, ends_at = row.moment("starts_at"), row.moment("ends_at")
        if starts_at and ends_at and ends_at <= starts_at:
            row.bad("ends_at", "考试结束时间必须晚于开始时间 starts_at")
        fee = row.fee()
        if row.ok and starts_at and ends_at and fee is not None:
            found.append(CourseRow(code, name, major_code, starts_at, ends_at, fee))
    return found


# --- writing ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportResult:
    sites: int
    majors: int
    courses: int
    replaced: bool


def find_batch(session: Session, school_code: str, batch_name: str) -> Batch:
    batch = session.scalar(
        select(Batch).join(School).where(School.code == school_code, Batch.name == batch_name)
    )
    if batch is None:
        raise CatalogError(
            f"找不到学校 {school_code} 的批次「{batch_name}」（先用 flask schools import 导入）"
        )
    return batch


def in_use(session: Session, batch_id: int) -> int:
    """How many candidates hold a registration or a seat in the batch's catalogue."""
    registered = session.scalar(
        select(func.count()).select_from(ExamRegistration).where(ExamRegistration.batch_id == batch_id)
    )
    seated = session.scalar(select(func.count()).select_from(ExamSeat).where(ExamSeat.batch_id == batch_id))
    return int(registered or 0) + int(seated or 0)


def replace_catalog(session: Session, batch: Batch, catalog: Catalog) -> ImportResult:
    """Write `catalog` as the batch's whole catalogue, in one commit. Raises CatalogInUseError while any
    candidate registered or was seated against the current one."""
    holders = in_use(session, batch.id)
    if holders:
        raise CatalogInUseError(
            f"已有 {holders} 名考生报考或已分配考场，不能替换本批次的考点、专业和课程目录；"
            "如需调整单门课程，请用 flask exams cancel-course。"
        )
    try:
        replaced = bool(session.scalar(select(func.count()).where(ExamSite.batch_id == batch.id)))
        for model in (ExamCourse, ExamMajor, ExamSite):
            session.execute(delete(model).where(model.batch_id == batch.id))
        for site in catalog.sites:
            session.add(ExamSite(batch_id=batch.id, **site.__dict__))
        majors = {}
        for major in catalog.majors:
            majors[major.code] = ExamMajor(batch_id=batch.id, **major.__dict__)
            session.add(majors[major.code])
        session.flush()
        for course in catalog.courses:
            values = {k: v for k, v in course.__dict__.items() if k != "major_code"}
            major_id = majors[course.major_code].id if course.major_code else None
            session.add(ExamCourse(batch_id=batch.id, major_id=major_id, **values))
        session.commit()
    except Exception:
        session.rollback()
        raise
    _CACHE.clear()
    return ImportResult(len(catalog.sites), len(catalog.majors), len(catalog.courses), replaced)


def import_files(
    session: Session, school_code: str, batch_name: str, files: dict[str, bytes]
) -> ImportResult:
    """`flask exams import-catalog`: check the files, then replace the batch's catalogue; commits."""
    batch = find_batch(session, school_code, batch_name)
    return replace_catalog(session, batch, parse(files))


def summary(result: ImportResult) -> str:
    verb = "替换为" if result.replaced else "导入"
    return f"{verb}：考点 {result.sites} 个，专业 {result.majors} 个，课程 {result.courses} 门"


# --- reading: GET /api/v1/batches/<id>/catalog ------------------------------------------------------


def exam_time_label(moment: datetime) -> str:
    """ "2021年04月01日 上午", as the 新疆自考 pay page lists a course (Beijing time)."""
    local = stored_utc(moment).astimezone(BEIJING)
    return f"{local:%Y年%m月%d日} {'上午' if local.hour < 12 else '下午'}"


def exam_time_range(starts_at: datetime, ends_at: datetime) -> str:
    """ "2021-04-01 09:00–11:30" (Beijing time)."""
    start, end = stored_utc(starts_at).astimezone(BEIJING), stored_utc(ends_at).astimezone(BEIJING)
    return f"{start:%Y-%m-%d %H:%M}–{end:%H:%M}"


def _version(session: Session, batch_id: int) -> tuple[Any, ...]:
    """What changes when the catalogue is imported again or a course is cancelled (new rows get new ids)."""
    return tuple(
        session.execute(
            select(
                select(func.max(ExamSite.id)).where(ExamSite.batch_id == batch_id).scalar_subquery(),
                select(func.max(ExamMajor.id)).where(ExamMajor.batch_id == batch_id).scalar_subquery(),
                select(func.max(ExamCourse.id)).where(ExamCourse.batch_id == batch_id).scalar_subquery(),
                select(func.count(ExamCourse.cancelled_at))
                .where(ExamCourse.batch_id == batch_id)
                .scalar_subquery(),
            )
        ).one()
    )


# Built catalogues by (batch id, version): the 2,000-course body is built once per import, not per request.
_CACHE: dict[tuple[Any, ...], Built] = {}
_CACHE_SIZE = 32


@dataclass(frozen=True)
class Built:
    """A catalogue as served, but for the seats left: the JSON around the districts already
    serialised, and the sites (id, then the site's fields) in district and county order."""

    head: bytes  # '{"batch_id":…,"districts":'
    tail: bytes  # ',"majors":[…],"courses":[…]}'
    districts: list[tuple[str, list[tuple[str, list[tuple[int, dict[str, Any]]]]]]]
    version: str


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def _build(session: Session, batch: Batch, key: tuple[Any, ...]) -> Built:
    sites = session.scalars(
        select(ExamSite)
        .where(ExamSite.batch_id == batch.id)
        .order_by(ExamSite.district, ExamSite.county, ExamSite.code)
    )
    districts: dict[str, dict[str, list[tuple[int, dict[str, Any]]]]] = {}
    for site in sites:
        fields = {"code": site.code, "name": site.name, "address": site.address, "capacity": site.capacity}
        districts.setdefault(site.district, {}).setdefault(site.county, []).append((site.id, fields))
    majors = list(
        session.scalars(select(ExamMajor).where(ExamMajor.batch_id == batch.id).order_by(ExamMajor.code))
    )
    codes = {m.id: m.code for m in majors}
    courses = session.scalars(
        select(ExamCourse)
        .where(ExamCourse.batch_id == batch.id)
        .order_by(ExamCourse.starts_at, ExamCourse.code)
    )
    head = {"batch_id": batch.id, "batch_name": batch.name, "selection": batch.exam_selection}
    tail = {
        "majors": [
            {"code": m.code, "name": m.name, "standard": m.standard, "special": m.special} for m in majors
        ],
        "courses": [
            {
                "code": c.code,
                "name": c.name,
                "major_code": codes.get(c.major_id) if c.major_id else None,
                "starts_at": stored_utc(c.starts_at).isoformat(),
                "ends_at": stored_utc(c.ends_at).isoformat(),
                "exam_time": exam_time_label(c.starts_at),
                "exam_time_range": exam_time_range(c.starts_at, c.ends_at),
                "fee_fen": c.fee_fen,
                "cancelled": c.cancelled_at is not None,
            }
            for c in courses
        ],
    }
    return Built(
        head=_dumps(head)[:-1] + b',"districts":',
        tail=b"," + _dumps(tail)[1:],
        districts=[(d, list(counties.items())) for d, counties in districts.items()],
        version=repr(key),
    )


@dataclass(frozen=True)
class Served:
    """The catalogue for one request: its ETag, known before the body is made (a 304 makes none)."""

    built: Built
    taken: dict[int, int]  # site id → registrations
    etag: str

    def body(self) -> bytes:
        districts = [
            {
                "name": district,
                "counties": [
                    {
                        "name": county,
                        "sites": [
                            fields | {"seats_left": max(0, fields["capacity"] - self.taken.get(site_id, 0))}
                            for site_id, fields in sites
                        ],
                    }
                    for county, sites in counties
                ],
            }
            for district, counties in self.built.districts
        ]
        return self.built.head + _dumps(districts) + self.built.tail


def catalog(session: Session, batch: Batch) -> Served:
    """The batch's catalogue with seats left per site. Two small queries per request (the catalogue's
    version and the registrations per site); the rest is built once per version and kept."""
    # The batch's own columns the body shows are part of the key: a schools import may change them.
    key = (batch.id, batch.name, batch.exam_selection, *_version(session, batch.id))
    built = _CACHE.get(key)
    if built is None:
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.clear()
        built = _CACHE[key] = _build(session, batch, key)
    rows = session.execute(
        select(ExamRegistration.site_id, func.count())
        .where(ExamRegistration.batch_id == batch.id)
        .group_by(ExamRegistration.site_id)
    )
    taken = {site_id: int(n) for site_id, n in rows}
    digest = hashlib.sha256(f"{built.version}|{sorted(taken.items())}".encode()).hexdigest()[:32]
    return Served(built, taken, digest)
