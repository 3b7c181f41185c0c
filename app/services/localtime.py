"""Beijing time: what students and staff read, and where a "day" starts (Asia/Shanghai, no DST)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

BEIJING = ZoneInfo("Asia/Shanghai")
