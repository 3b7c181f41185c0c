"""Beijing time: what students and staff read, and where a "day" starts (Asia/Shanghai, no DST)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

BEIJING = ZoneInfo("Asia/Shanghai")


def stored_utc(moment: datetime) -> datetime:
    """A time read from the database as an aware UTC time: SQLite hands back naive datetimes, and
    every stored time is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
