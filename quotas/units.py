"""Conversions between the API's values (float seconds, aware datetimes) and stored ones, and calendar months.

The database keeps GPU time in integer milliseconds, so that a balance always equals the exact sum of
its ledger rows, and times as unix seconds.
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime


def to_ms(seconds: float) -> int:
    return round(seconds * 1000)


def to_seconds(ms: int) -> float:
    return ms / 1000


def to_ts(moment: datetime) -> float:
    """Unix time of `moment`; a naive datetime is taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def to_dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def maybe_dt(ts: float | None) -> datetime | None:
    return None if ts is None else to_dt(ts)


def utc_day(ts: float) -> int:
    """Days since the epoch, in UTC."""
    return int(ts // 86400)


def add_months(anchor: datetime, months: int) -> datetime:
    """`anchor` moved by whole calendar months, the day clamped to the month's length (Jan 31 -> Feb 28)."""
    index = anchor.year * 12 + anchor.month - 1 + months
    year, month = divmod(index, 12)
    day = min(anchor.day, calendar.monthrange(year, month + 1)[1])
    return anchor.replace(year=year, month=month + 1, day=day)


def monthly_period(anchor_ts: float, now_ts: float) -> tuple[float, float]:
    """The (start, end) of the monthly period around `now_ts`, periods falling on anniversaries of the anchor."""
    anchor, now = to_dt(anchor_ts), to_dt(now_ts)
    months = max(0, (now.year - anchor.year) * 12 + now.month - anchor.month)
    if months and add_months(anchor, months) > now:
        months -= 1
    return to_ts(add_months(anchor, months)), to_ts(add_months(anchor, months + 1))
