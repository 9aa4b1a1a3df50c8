"""Relative date query functions (``Microsoft.Dynamics.CRM.LastXDays`` and friends).

Each names a window of time relative to *now*; a row matches when its date column falls in
the window. Day, week, month and year boundaries are taken in UTC (Dataverse uses the
calling user's time zone, which for the emulator's application users is UTC), weeks start
on Sunday (the organisation default). "Last X" windows end now, "Next X" windows start now,
"OlderThanX" matches everything before now minus X.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

_DAY = timedelta(days=1)


def _add_months(moment: datetime, months: int) -> datetime:
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(moment.day, _days_in_month(year, month))
    return moment.replace(year=year, month=month, day=day)


def _days_in_month(year: int, month: int) -> int:
    following = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
    return (following - _DAY).day


def _midnight(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def _week_start(now: datetime) -> datetime:
    today = _midnight(now)
    return today - (today.weekday() + 1) % 7 * _DAY


def _month_start(now: datetime) -> datetime:
    return _midnight(now).replace(day=1)


def _year_start(now: datetime) -> datetime:
    return _midnight(now).replace(month=1, day=1)


Window = tuple[datetime | None, datetime, bool]
"""Start (None: open), end, whether the end is included."""

_FIXED: dict[str, Callable[[datetime], Window]] = {
    "Today": lambda n: (_midnight(n), _midnight(n) + _DAY, False),
    "Yesterday": lambda n: (_midnight(n) - _DAY, _midnight(n), False),
    "Tomorrow": lambda n: (_midnight(n) + _DAY, _midnight(n) + 2 * _DAY, False),
    "Last7Days": lambda n: (_midnight(n) - 7 * _DAY, n, True),
    "Next7Days": lambda n: (n, _midnight(n) + 8 * _DAY, False),
    "ThisWeek": lambda n: (_week_start(n), _week_start(n) + 7 * _DAY, False),
    "LastWeek": lambda n: (_week_start(n) - 7 * _DAY, _week_start(n), False),
    "NextWeek": lambda n: (_week_start(n) + 7 * _DAY, _week_start(n) + 14 * _DAY, False),
    "ThisMonth": lambda n: (_month_start(n), _add_months(_month_start(n), 1), False),
    "LastMonth": lambda n: (_add_months(_month_start(n), -1), _month_start(n), False),
    "NextMonth": lambda n: (
        _add_months(_month_start(n), 1),
        _add_months(_month_start(n), 2),
        False,
    ),
    "ThisYear": lambda n: (_year_start(n), _add_months(_year_start(n), 12), False),
    "LastYear": lambda n: (_add_months(_year_start(n), -12), _year_start(n), False),
    "NextYear": lambda n: (_add_months(_year_start(n), 12), _add_months(_year_start(n), 24), False),
}


def _back(now: datetime, unit: str, count: int) -> datetime:
    if unit == "Minutes":
        return now - timedelta(minutes=count)
    if unit == "Hours":
        return now - timedelta(hours=count)
    if unit == "Days":
        return now - count * _DAY
    if unit == "Weeks":
        return now - 7 * count * _DAY
    return _add_months(now, -count * (12 if unit == "Years" else 1))


def _counted(name: str, count: int, now: datetime) -> Window:
    if name.startswith("OlderThanX"):
        return None, _back(now, name.removeprefix("OlderThanX"), count), False
    unit = name.removeprefix("LastX").removeprefix("NextX")
    if unit == "Hours":
        hours = timedelta(hours=count)
        return (now - hours, now, True) if name.startswith("Last") else (now, now + hours, True)
    if name.startswith("Last"):
        return _back(_midnight(now), unit, count), now, True
    ahead = _add_months(_midnight(now), count * (12 if unit == "Years" else 1))
    if unit in ("Days", "Weeks"):
        ahead = _midnight(now) + count * (7 if unit == "Weeks" else 1) * _DAY
    return now, ahead + _DAY, False


_COUNTED = frozenset(
    f"{prefix}{unit}"
    for prefix, units in (
        ("LastX", ("Hours", "Days", "Weeks", "Months", "Years")),
        ("NextX", ("Hours", "Days", "Weeks", "Months", "Years")),
        ("OlderThanX", ("Minutes", "Hours", "Days", "Weeks", "Months", "Years")),
    )
    for unit in units
)
WINDOWS = frozenset(_FIXED) | _COUNTED


def takes_count(name: str) -> bool:
    """Whether the function has a ``PropertyValue`` (the X)."""
    return name in _COUNTED


def window(name: str, count: int, now: datetime) -> Window:
    """The window ``name`` describes at ``now``."""
    now = now if now.tzinfo else now.replace(tzinfo=UTC)
    if name in _FIXED:
        return _FIXED[name](now)
    return _counted(name, count, now)


def within(name: str, count: int, value: datetime, now: datetime) -> bool:
    """Whether ``value`` lies in the window of ``name`` at ``now``."""
    start, end, inclusive = window(name, count, now)
    if start is not None and value < start:
        return False
    return value <= end if inclusive else value < end
