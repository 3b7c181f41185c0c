"""Figures for the staff dashboard (/review/dashboard): plain data, drawn by the template as SVG.

Counts by state per batch, paid submissions and decisions per Beijing day for the last 30 days,
pass rate (approved / decided) per batch, and the median hours from payment to decision. The median
is computed in Python from the decided rows of the period, so SQLite and PostgreSQL agree.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.services.localtime import BEIJING
from models import Batch, School, Submission, SubmissionStatus, utcnow
from models.submission import STATUS_LABELS

DAYS = 30
DECIDED = (SubmissionStatus.APPROVED, SubmissionStatus.RETURNED, SubmissionStatus.REFUSED)
# The states shown as columns, in the order a submission moves through them.
COLUMNS = (
    SubmissionStatus.PENDING_REVIEW,
    SubmissionStatus.IN_REVIEW,
    SubmissionStatus.APPROVED,
    SubmissionStatus.RETURNED,
    SubmissionStatus.REFUSED,
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


def _aware(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything stored is UTC.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


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


def build(
    session: Session, school_ids: set[int] | None, now: datetime | None = None, days: int = DAYS
) -> Dashboard:
    """The dashboard for the given schools (None = all schools)."""
    local_today = (now or utcnow()).astimezone(BEIJING).date()
    first_day = local_today - timedelta(days=days - 1)
    start = datetime(first_day.year, first_day.month, first_day.day, tzinfo=BEIJING)
    board = Dashboard(since=first_day.isoformat(), until=local_today.isoformat())
    board.columns = [(s.value, STATUS_LABELS[s]) for s in COLUMNS]
    if school_ids is not None and not school_ids:
        board.days = [DayFigures((first_day + timedelta(days=i)).isoformat(), 0, 0) for i in range(days)]
        board.bars, board.peak = _bars(board.days)
        return board

    batch_q = select(Batch.id, Batch.name, School.name).join(School, School.id == Batch.school_id)
    count_q = (
        select(Submission.batch_id, Submission.status, func.count(Submission.id))
        .join(Batch, Batch.id == Submission.batch_id)
        .group_by(Submission.batch_id, Submission.status)
    )
    period_q = (
        select(Submission.status, Submission.created_at, Submission.paid_at, Submission.decided_at)
        .join(Batch, Batch.id == Submission.batch_id)
        .where((Submission.paid_at >= start) | (Submission.decided_at >= start))
    )
    if school_ids is not None:
        batch_q = batch_q.where(Batch.school_id.in_(school_ids))
        count_q = count_q.where(Batch.school_id.in_(school_ids))
        period_q = period_q.where(Batch.school_id.in_(school_ids))

    counts: dict[int, Counter[str]] = defaultdict(Counter)
    for batch_id, status, n in session.execute(count_q):
        counts[batch_id][str(status)] += int(n)
    for batch_id, batch_name, school_name in session.execute(batch_q.order_by(School.code, Batch.id)):
        c = counts.get(batch_id, Counter())
        decided = sum(c[s.value] for s in DECIDED)
        board.batches.append(
            BatchRow(
                batch_id=batch_id,
                school=school_name,
                name=batch_name,
                counts=dict(c),
                total=sum(c.values()),
                approved=c[SubmissionStatus.APPROVED.value],
                decided=decided,
            )
        )

    paid_by_day: Counter[date] = Counter()
    decided_by_day: Counter[date] = Counter()
    waits: list[float] = []
    for status, created_at, paid_at, decided_at in session.execute(period_q):
        if paid_at is not None and _aware(paid_at) >= start:
            paid_by_day[_aware(paid_at).astimezone(BEIJING).date()] += 1
        if decided_at is not None and status in DECIDED and _aware(decided_at) >= start:
            decided_by_day[_aware(decided_at).astimezone(BEIJING).date()] += 1
            began = _aware(paid_at or created_at)
            waits.append((_aware(decided_at) - began).total_seconds() / 3600)
    for i in range(days):
        day = first_day + timedelta(days=i)
        board.days.append(DayFigures(day.isoformat(), paid_by_day[day], decided_by_day[day]))
    board.bars, board.peak = _bars(board.days)
    board.decided_in_period = len(waits)
    board.median_hours = round(statistics.median(waits), 1) if waits else None
    return board
