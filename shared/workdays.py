"""The Chinese working-day calendar (工作日) for statutory deadlines.

Review deadlines in the 低保 procedure are counted in working days: a date is
a working day per, in order,

1. the bureau's **override table** (a CSV, ``WORKDAY_OVERRIDES_FILE``);
2. :func:`chinese_calendar.is_workday`, which knows the State Council's
   holiday arrangements — public holidays and make-up working days (调休) —
   for the years it covers (2004–2026 in chinesecalendar 1.11);
3. for years it does not cover, a fallback: Monday–Friday, minus the
   fixed-date statutory holidays 1 January (元旦), 1–3 May (劳动节) and
   1–7 October (国庆节).

The fallback cannot know the lunar holidays (春节, 清明, 端午, 中秋) nor the
调休 Saturdays of an uncovered year.  **The override table is how a bureau
adds them** until a newer chinesecalendar is installed: one row per date,
``workday`` 0 for a holiday, 1 for a make-up working day.

Override CSV format (header required; ``note`` is free text)::

    date,workday,note
    2027-02-08,0,春节
    2027-02-20,1,春节调休上班

``workday`` is ``1``/``0`` or ``true``/``false``.  The shipped file
``shared/data/workday_overrides.csv`` holds only the header.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from pathlib import Path

import chinese_calendar

__all__ = ["WorkdayCalendar", "DEFAULT_OVERRIDES_FILE"]

#: The override file shipped with the package (header only).
DEFAULT_OVERRIDES_FILE = Path(__file__).parent / "data" / "workday_overrides.csv"

_PROJECT_ROOT = Path(__file__).resolve().parent.parent
_FIXED_HOLIDAYS = frozenset({(1, 1), (5, 1), (5, 2), (5, 3)} | {(10, d) for d in range(1, 8)})
_TRUE = {"1", "true"}
_FALSE = {"0", "false"}


def _resolve(path: str | os.PathLike[str]) -> Path:
    """A relative path not found from the CWD is tried from the project root."""
    candidate = Path(path)
    if not candidate.is_absolute() and not candidate.exists():
        rooted = _PROJECT_ROOT / candidate
        if rooted.exists():
            return rooted
    return candidate


def _as_date(d: date) -> date:
    if isinstance(d, datetime):
        return d.date()
    if not isinstance(d, date):
        raise TypeError(f"expected a date, not {type(d).__name__}")
    return d


class WorkdayCalendar:
    """Working days: overrides, then chinese_calendar, then a weekday fallback."""

    def __init__(self, overrides: Mapping[date, bool] | None = None) -> None:
        """:param overrides: date → True (working day) / False (day off)."""
        self.overrides: dict[date, bool] = {
            _as_date(d): bool(v) for d, v in (overrides or {}).items()
        }

    def is_workday(self, d: date) -> bool:
        """Whether ``d`` is a working day (工作日)."""
        d = _as_date(d)
        if d in self.overrides:
            return self.overrides[d]
        try:
            return bool(chinese_calendar.is_workday(d))
        except NotImplementedError:  # year not covered by chinese_calendar
            return d.weekday() < 5 and (d.month, d.day) not in _FIXED_HOLIDAYS

    def add_workdays(self, start: date, n: int) -> date:
        """The date ``n`` working days after ``start`` (``start`` itself not counted).

        ``n == 0`` returns ``start``.  E.g. a Friday + 3 (ordinary weekend)
        is the next Wednesday.

        :raises ValueError: if ``n`` is negative.
        """
        start = _as_date(start)
        if isinstance(n, bool) or not isinstance(n, int):
            raise TypeError("n must be an int")
        if n < 0:
            raise ValueError("n must be >= 0")
        current = start
        remaining = n
        while remaining:
            current += timedelta(days=1)
            if self.is_workday(current):
                remaining -= 1
        return current

    def workdays_between(self, a: date, b: date) -> int:
        """Number of working days in the interval (a, b]; 0 if ``b <= a``.

        ``workdays_between(s, add_workdays(s, n)) == n``.
        """
        a, b = _as_date(a), _as_date(b)
        count = 0
        current = a
        while current < b:
            current += timedelta(days=1)
            if self.is_workday(current):
                count += 1
        return count

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None) -> WorkdayCalendar:
        """A calendar with the overrides read from the CSV at ``path``.

        ``None``, an empty path or a missing file give no overrides.  A
        relative path not found from the working directory is tried from the
        project root (so the config default ``shared/data/...`` works).

        :raises ValueError: for a missing header column, a bad date or
            workday value, or a date listed twice with different values.
        """
        if not path:
            return cls()
        resolved = _resolve(path)
        if not resolved.is_file():
            return cls()
        overrides: dict[date, bool] = {}
        with resolved.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            missing = {"date", "workday"} - set(reader.fieldnames or ())
            if missing:
                raise ValueError(f"{resolved}: missing column(s) {', '.join(sorted(missing))}")
            for row in reader:
                raw_date = (row.get("date") or "").strip()
                raw_flag = (row.get("workday") or "").strip().lower()
                if not raw_date and not raw_flag:
                    continue  # blank line
                where = f"{resolved}:{reader.line_num}"
                try:
                    day = date.fromisoformat(raw_date)
                except ValueError as exc:
                    raise ValueError(f"{where}: bad date {raw_date!r}") from exc
                if raw_flag in _TRUE:
                    flag = True
                elif raw_flag in _FALSE:
                    flag = False
                else:
                    raise ValueError(f"{where}: workday must be 1/0/true/false, got {raw_flag!r}")
                if overrides.get(day, flag) != flag:
                    raise ValueError(f"{where}: {day} is listed twice with different values")
                overrides[day] = flag
        return cls(overrides)
