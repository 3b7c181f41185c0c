"""Figures for the staff dashboard (/review/dashboard): plain data, drawn by the template as SVG.

Counts by state per batch, paid submissions and decisions per Beijing day for the last 30 days,
pass rate (approved / decided) per batch, and the median hours from payment to decision.

Everything is aggregated in the database (measured with bench/review_queue.py: reading the period's
rows into Python took about a second for an admin at a million submissions). Days are Beijing days
on both backends: PostgreSQL bins timestamps into whole days from the first Beijing midnight of the
period (`date_bin`, PostgreSQL 14+; far cheaper per row than a time-zone conversion), SQLite shifts
them by Beijing's offset (`date(..., '+28800 seconds')`); both rest on Asia/Shanghai keeping one
offset, which it has since 1991. The median is `percentile_cont(0.5)` on PostgreSQL; SQLite has
none, so it reads the one or two middle decisions (ORDER BY the duration, LIMIT/OFFSET) and
interpolates them the same way.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Float, Select, and_, case, cast, extract, func, select
from sqlalchemy.orm import Session

from app.services import flows
from app.services.localtime import BEIJING
from app.services.reviews import APPROVALS
from models import Batch, Flow, School, Submission, SubmissionStatus, utcnow
from models.submission import STATUS_LABELS

DAYS = 30
# What review passed: 审核通过，待缴费 (review_first's 通过) and the 逾期未缴费 it lapses into, whose
# fee (not its review) failed; so the figures of past days do not move when a pay window closes.
PASSED = (*APPROVALS, SubmissionStatus.VOID)
DECIDED = (*PASSED, SubmissionStatus.RETURNED, SubmissionStatus.REFUSED)
# The states shown as columns, in the order a submission moves through them.
COLUMNS = (
    SubmissionStatus.PENDING_REVIEW,
    SubmissionStatus.IN_REVIEW,
    SubmissionStatus.APPROVED_UNPAID,
    SubmissionStatus.APPROVED,
    SubmissionStatus.RETURNED,
    SubmissionStatus.REFUSED,
    SubmissionStatus.VOID,
    SubmissionStatus.VERIFYING,
    SubmissionStatus.VERIFY_FAILED,
    SubmissionStatus.AWAITING_PAYMENT,
    SubmissionStatus.CANCELLED,
    SubmissionStatus.REFUNDED,
)

# Chart geometry (SVG user units).
CHART_W = 720
CHART_H = 200
CHART_PAD = 24


@dataclass(frozen=True, slots=True)
class BatchRow:
    batch_id: int
    school: str
    name: str
    flow_label: str
    takes_fee: bool
    # When fees are taken: the pay window for review_first (None while not announced), sign-up
    # for pay_first; None for free batches.
    pay_window: tuple[datetime, datetime] | None
    counts: dict[str, int]
    total: int
    approved: int
    decided: int

    @property
    def pass_rate(self) -> float | None:
        return self.approved / self.decided if self.decided else None


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    y: float
    w: float
    h: float
    value: int
    day: str
    series: str  # "submissions" | "decisions"


@dataclass(frozen=True, slots=True)
class DayFigures:
    day: str
    submissions: int
    decisions: int


@dataclass(slots=True)
class Dashboard:
    since: str
    until: str
    batches: list[BatchRow] = field(default_factory=list)
    days: list[DayFigures] = field(default_factory=list)
    bars: list[Bar] = field(default_factory=list)
    peak: int = 0
    median_hours: float | None = None
    decided_in_period: int = 0
    columns: list[tuple[str, str]] = field(default_factory=list)

    @property
    def pass_rate(self) -> float | None:
        approved = sum(b.approved for b in self.batches)
        decided = sum(b.decided for b in self.batches)
        return approved / decided if decided else None


def _bars(days: list[DayFigures]) -> tuple[list[Bar], int]:
    peak = max([1, *(d.submissions for d in days), *(d.decisions for d in days)])
    slot = (CHART_W - 2 * CHART_PAD) / max(1, len(days))
    width = slot * 0.4
    usable = CHART_H - 2 * CHART_PAD
    bars: list[Bar] = []
    for i, d in enumerate(days):
        left = CHART_PAD + i * slot + slot * 0.1
        for offset, series, value in ((0.0, "submissions", d.submissions), (width, "decisions", d.decisions)):
            h = usable * value / peak
            bars.append(
                Bar(
                    x=round(left + offset, 1),
                    y=round(CHART_H - CHART_PAD - h, 1),
                    w=round(width, 1),
                    h=round(h, 1),
                    value=value,
                    day=d.day,
                    series=series,
                )
            )
    return bars, peak


def _local_day(column: Any, start: datetime, dialect: str) -> ColumnElement[Any]:
    """The Beijing day of a timestamp column, as a value `_as_date` turns into a `date`."""
    if dialect == "postgresql":
        # Whole days counted from `start` (a Beijing midnight): the bin's start, a timestamptz.
        return func.date_bin(timedelta(days=1), column, start)
    # SQLite stores 'YYYY-MM-DD HH:MM:SS.ffffff' (UTC). Its date functions round the fraction to
    # milliseconds, which would move 23:59:59.9996 to the next day: drop the fraction first.
    offset = int((start.utcoffset() or timedelta()).total_seconds())
    return func.date(func.substr(column, 1, 19), f"{offset:+d} seconds")


def _as_date(value: Any) -> date:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(BEIJING).date()
    return date.fromisoformat(str(value))


def _per_day(session: Session, query: Select[Any]) -> Counter[date]:
    days: Counter[date] = Counter()
    for day, n in session.execute(query):
        days[_as_date(day)] += int(n)
    return days


def _decisions(
    session: Session, decided: Select[Any], start: datetime, dialect: str
) -> tuple[Counter[date], int, float | None]:
    """Decisions per Beijing day, their number, and the median seconds from payment (or creation, if
    not paid before the decision) to decision, for the `decided` rows."""
    # The wait starts at payment where payment comes first; review_first pays after its approval
    # (and free never pays), so its wait starts at submission instead.
    began = case(
        (
            and_(Submission.paid_at.is_not(None), Submission.paid_at <= Submission.decided_at),
            Submission.paid_at,
        ),
        else_=Submission.created_at,
    )
    day = _local_day(Submission.decided_at, start, dialect)
    by_day: Counter[date] = Counter()
    if dialect == "postgresql":
        # One pass: ROLLUP adds the row for all days (day NULL) that carries the overall median.
        seconds = cast(extract("epoch", Submission.decided_at - began), Float)
        rows = session.execute(
            decided.with_only_columns(
                day, func.count(), func.percentile_cont(0.5).within_group(seconds)
            ).group_by(func.rollup(day))
        )
        total, median = 0, None
        for bucket, n, middle in rows:
            if bucket is None:
                total, median = int(n), None if middle is None else float(middle)
            else:
                by_day[_as_date(bucket)] += int(n)
        return by_day, total, median
    by_day = _per_day(session, decided.with_only_columns(day.label("day"), func.count()).group_by(day))
    total = sum(by_day.values())
    if total == 0:
        return by_day, 0, None
    # No percentile_cont: the middle one (odd count) or two (even count), ordered by the duration;
    # their exact durations are computed here from the timestamps.
    order = func.julianday(Submission.decided_at) - func.julianday(began)
    middle_rows = session.execute(
        decided.with_only_columns(Submission.decided_at, Submission.paid_at, Submission.created_at)
        .order_by(order, Submission.id)
        .limit(2 - total % 2)
        .offset((total - 1) // 2)
    ).all()
    durations = sorted(
        (
            decided_at - (paid_at if paid_at is not None and paid_at <= decided_at else created_at)
        ).total_seconds()
        for decided_at, paid_at, created_at in middle_rows
        if decided_at is not None  # always, by the WHERE clause
    )
    lo, hi = durations[0], durations[-1]
    return by_day, total, lo + (hi - lo) * 0.5  # interpolated as percentile_cont does


def _pay_window(
    flow: str,
    opens: datetime,
    closes: datetime,
    pay_opens: datetime | None,
    pay_closes: datetime | None,
) -> tuple[datetime, datetime] | None:
    if flow == Flow.FREE:
        return None
    if flow == Flow.REVIEW_FIRST:
        return (pay_opens, pay_closes) if pay_opens is not None and pay_closes is not None else None
    return opens, closes


def build(
    session: Session, school_ids: set[int] | None, now: datetime | None = None, days: int = DAYS
) -> Dashboard:
    """The dashboard for the given schools (None = all schools)."""
    local_today = (now or utcnow()).astimezone(BEIJING).date()
    first_day = local_today - timedelta(days=days - 1)
    start = datetime(first_day.year, first_day.month, first_day.day, tzinfo=BEIJING)
    board = Dashboard(since=first_day.isoformat(), until=local_today.isoformat())
    board.columns = [(s.value, STATUS_LABELS[s]) for s in COLUMNS]

    batch_q = select(
        Batch.id,
        Batch.name,
        School.name,
        Batch.flow,
        Batch.opens_at,
        Batch.closes_at,
        Batch.pay_opens_at,
        Batch.pay_closes_at,
    ).join(School, School.id == Batch.school_id)
    if school_ids is not None:
        batch_q = batch_q.where(Batch.school_id.in_(school_ids))
    batches = session.execute(batch_q.order_by(School.code, Batch.id)).all() if school_ids != set() else []
    # A reviewer's scope is their schools' batches: a list the planner sees, so it can use the
    # batch_id-leading index for a small school instead of filtering the whole period.
    scope: list[ColumnElement[bool]] = []
    if school_ids is not None:
        scope.append(Submission.batch_id.in_([row[0] for row in batches]))

    counts: dict[int, Counter[str]] = defaultdict(Counter)
    paid_by_day: Counter[date] = Counter()
    decided_by_day: Counter[date] = Counter()
    median: float | None = None
    if batches or school_ids is None:
        dialect = session.get_bind().dialect.name
        count_q = (
            select(Submission.batch_id, Submission.status, func.count())
            .where(*scope)
            .group_by(Submission.batch_id, Submission.status)
        )
        for batch_id, status, n in session.execute(count_q):
            counts[batch_id][str(status)] += int(n)

        paid_day = _local_day(Submission.paid_at, start, dialect).label("day")
        paid_by_day = _per_day(
            session,
            select(paid_day, func.count()).where(Submission.paid_at >= start, *scope).group_by(paid_day),
        )
        # Every decision since the period began (one dated after today, a skewed clock, included).
        decided = select(Submission.id).where(
            Submission.decided_at >= start, Submission.status.in_(DECIDED), *scope
        )
        decided_by_day, board.decided_in_period, median = _decisions(session, decided, start, dialect)

    for batch_id, batch_name, school_name, flow, opens, closes, pay_opens, pay_closes in batches:
        c = counts.get(batch_id, Counter())
        board.batches.append(
            BatchRow(
                batch_id=batch_id,
                school=school_name,
                name=batch_name,
                flow_label=flows.flow_label(flow),
                takes_fee=flow != Flow.FREE,
                pay_window=_pay_window(flow, opens, closes, pay_opens, pay_closes),
                counts=dict(c),
                total=sum(c.values()),
                approved=sum(c[s.value] for s in PASSED),
                decided=sum(c[s.value] for s in DECIDED),
            )
        )
    for i in range(days):
        day = first_day + timedelta(days=i)
        board.days.append(DayFigures(day.isoformat(), paid_by_day[day], decided_by_day[day]))
    board.bars, board.peak = _bars(board.days)
    board.median_hours = None if median is None else round(median / 3600, 1)
    return board
