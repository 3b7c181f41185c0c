"""Beijing time: what students and staff read, and where a "day" starts (Asia/Shanghai, no DST)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

BEIJING = ZoneInfo("Asia/Shanghai")


def stored_utc(moment: datetime) -> datetime:
    """A time read from the database as an aware UTC time: SQLite hands back naive datetimes, and
    every stored time is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def chinese_time(moment: datetime | None) -> str:
    """ "2026年11月23日 09:05" in Beijing time, as students read it; "" for no moment."""
    if moment is None:
        return ""
    local = moment.astimezone(BEIJING)
    return f"{local.year}年{local.month}月{local.day}日 {local:%H:%M}"
