"""The Chinese working-day calendar (工作日) for statutory deadlines.

Review deadlines in the 低保 procedure are counted in working days: a date is
a working day per, in order,

1. the bureau's **local override table** (a CSV, ``WORKDAY_OVERRIDES_FILE``):
   it wins over everything;
2. the **official schedule** of its year as loaded by the bureau (the State
   Council's 放假安排 with its make-up working days 调休, loaded with
   ``dibao calendar import``; the review service owns it and every service
   receives it by the event ``review.calendar_schedule_loaded``, see
   docs/calendar.md): the listed dates as listed, the others Monday–Friday;
3. :mod:`chinese_calendar`, which knows the State Council's arrangements for
   the years it covers (2004–2026 in chinesecalendar 1.11);
4. for a later year, the statutory holidays the :mod:`holidays` package
   computes for China (元旦, 春节 with 除夕, 清明, 劳动节, 端午, 中秋, 国庆 —
   the lunar ones from the lunar calendar — and the days it moves off a
   weekend) plus Saturdays and Sundays. The make-up working days are not
   known until the State Council publishes them, so such a year is
   **provisional**: :meth:`WorkdayCalendar.count` says whether a count crossed
   a provisional day, and the first use of each provisional year is logged
   once per process.

CSV format, of the override table and of an official schedule (header
required; ``note`` is free text)::

    date,workday,note
    2027-02-08,0,春节
    2027-02-20,1,春节调休上班

``workday`` is ``1``/``0`` or ``true``/``false``.  The shipped override file
``shared/data/workday_overrides.csv`` holds only the header.
"""

from __future__ import annotations

import csv
import logging
import os
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import chinese_calendar
import holidays as holidays_package

log = logging.getLogger(__name__)

__all__ = ["WorkdayCalendar", "Counted", "ScheduleError", "DEFAULT_OVERRIDES_FILE", "FIRST_YEAR", "LAST_YEAR",
           "read_schedule_csv", "parse_schedule"]

#: The override file shipped with the package (header only).
DEFAULT_OVERRIDES_FILE = Path(__file__).parent / "data" / "workday_overrides.csv"

#: The years a schedule may be loaded or shown for.
FIRST_YEAR, LAST_YEAR = 1990, 2100

#: Where a day's status comes from (``dibao calendar show``).
OVERRIDE, BUREAU, LIBRARY, HOLIDAYS, WEEKDAY = "override", "bureau", "library", "holidays", "weekday"

_PROJECT_ROOT = Path(__file__).resolve().parent.parent
_TRUE = {"1", "true"}
_FALSE = {"0", "false"}

#: A day of a schedule: (working day?, note).
Day = tuple[bool, str]


class ScheduleError(ValueError):
    """A schedule row that cannot be taken; ``line`` is its line number (1 = the header)."""

    def __init__(self, line: int | None, message: str):
        self.line = line
        super().__init__(f"line {line}: {message}" if line is not None else message)


@dataclass(frozen=True)
class Counted:
    """A date reached by counting working days, and whether the count crossed
    a provisional day (a year whose official schedule is not loaded yet)."""

    day: date
    provisional: bool


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


def _flag(raw) -> bool | None:
    if isinstance(raw, bool):
        return raw
    text = str(raw if raw is not None else "").strip().lower()
    return True if text in _TRUE else False if text in _FALSE else None


def parse_schedule(rows: Iterable[tuple[int | None, object, object, object]], require_days: bool = False
                   ) -> dict[date, Day]:
    """``(line, date, workday, note)`` rows → date → (working day?, note).

    :raises ScheduleError: naming the line, for a bad date or workday value, a
        date listed twice with different values, a year outside
        1990–2100, or (``require_days``) no rows at all or a year with no day
        off (an official schedule always has its holidays).
    """
    days: dict[date, Day] = {}
    first_line: dict[int, int | None] = {}
    off_years: set[int] = set()
    for line, raw_date, raw_flag, note in rows:
        text = str(raw_date if raw_date is not None else "").strip()
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise ScheduleError(line, f"bad date {text!r} (YYYY-MM-DD)") from None
        if not FIRST_YEAR <= day.year <= LAST_YEAR:
            raise ScheduleError(line, f"{day.year} is outside {FIRST_YEAR}–{LAST_YEAR}")
        flag = _flag(raw_flag)
        if flag is None:
            raise ScheduleError(line, f"workday must be 1/0/true/false, got {raw_flag!r}")
        if day in days and days[day][0] != flag:
            raise ScheduleError(line, f"{day} is listed twice with different values")
        days[day] = (flag, str(note or "").strip())
        first_line.setdefault(day.year, line)
        if not flag:
            off_years.add(day.year)
    if require_days:
        if not days:
            raise ScheduleError(None, "no days: a schedule lists its year's days off and make-up working days")
        for year in sorted(set(first_line) - off_years):
            raise ScheduleError(first_line[year], f"{year} has no day off: not a year's official schedule")
    return days


def read_schedule_csv(path: str | os.PathLike[str]) -> list[tuple[int, str, str, str]]:
    """The ``(line, date, workday, note)`` rows of a ``date,workday,note`` CSV
    (blank lines skipped), unparsed: :func:`parse_schedule` judges them.

    :raises ScheduleError: for a missing header column.
    """
    with Path(path).open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        missing = {"date", "workday"} - set(reader.fieldnames or ())
        if missing:
            raise ScheduleError(1, f"missing column(s) {', '.join(sorted(missing))} (header: date,workday,note)")
        out = []
        for row in reader:
            raw_date = (row.get("date") or "").strip()
            raw_flag = (row.get("workday") or "").strip()
            if not raw_date and not raw_flag:
                continue  # blank line
            out.append((reader.line_num, raw_date, raw_flag, (row.get("note") or "").strip()))
        return out


_library_years: dict[int, bool] = {}
_statutory: dict[int, Mapping[date, str]] = {}
_warned_years: set[int] = set()
_cache_lock = threading.Lock()


def library_covers(year: int) -> bool:
    """Whether chinesecalendar knows the State Council's schedule of ``year``."""
    known = _library_years.get(year)
    if known is None:
        try:
            chinese_calendar.is_workday(date(year, 6, 30))
            known = True
        except NotImplementedError:
            known = False
        _library_years[year] = known
    return known


def statutory_holidays(year: int) -> Mapping[date, str]:
    """China's statutory holidays of ``year`` per the ``holidays`` package (names in Chinese)."""
    found = _statutory.get(year)
    if found is None:
        with _cache_lock:
            found = _statutory.get(year)
            if found is None:
                found = dict(holidays_package.China(years=year, language="zh_CN").items())
                _statutory[year] = found
    return found


def _warn_provisional(year: int) -> None:
    if year in _warned_years:
        return
    with _cache_lock:
        if year in _warned_years:
            return
        _warned_years.add(year)
    log.warning("working days of %d are provisional: its statutory holidays come from the `holidays` package "
                "and its make-up working days (调休) are unknown until the bureau loads the State Council's "
                "schedule (`dibao calendar import FILE`, docs/calendar.md); deadlines crossing %d are marked "
                "provisional", year, year)


class WorkdayCalendar:
    """Working days: local overrides, the bureau's official schedules, chinese_calendar,
    then the ``holidays`` package's statutory days plus weekends (provisional)."""

    def __init__(self, overrides: Mapping[date, bool] | None = None,
                 schedule: Mapping[int, Mapping[date, Day]] | None = None) -> None:
        """:param overrides: date → True (working day) / False (day off).
        :param schedule: year → the bureau's official schedule of that year."""
        self.overrides: dict[date, bool] = {
            _as_date(d): bool(v) for d, v in (overrides or {}).items()
        }
        self._schedule: dict[int, dict[date, Day]] = {}
        if schedule:
            self.replace_schedule(schedule)

    # --- the bureau's official schedules -----------------------------------------

    def replace_schedule(self, schedule: Mapping[int, Mapping[date, Day]]) -> None:
        """Use these official schedules (year → days) from now on, and only these."""
        self._schedule = {int(y): dict(days) for y, days in schedule.items()}

    def load_years(self, schedule: Mapping[int, Mapping[date, Day]]) -> None:
        """Add or replace the official schedules of these years."""
        merged = dict(self._schedule)
        merged.update({int(y): dict(days) for y, days in schedule.items()})
        self._schedule = merged

    @property
    def schedule(self) -> dict[int, dict[date, Day]]:
        return self._schedule

    # --- one day ---------------------------------------------------------------------

    def is_provisional(self, d: date) -> bool:
        """Whether ``d``'s status is a guess: no override for it, and its year
        neither in a loaded schedule nor in chinesecalendar."""
        d = _as_date(d)
        return d not in self.overrides and d.year not in self._schedule and not library_covers(d.year)

    def day(self, d: date) -> tuple[bool, str, str]:
        """``(working day?, source, note)`` of ``d``."""
        d = _as_date(d)
        if d in self.overrides:
            return self.overrides[d], OVERRIDE, ""
        year = self._schedule.get(d.year)
        if year is not None:
            if d in year:
                return year[d][0], BUREAU, year[d][1]
            return d.weekday() < 5, WEEKDAY, ""
        if library_covers(d.year):
            on, name = chinese_calendar.get_holiday_detail(d)
            return (not on), LIBRARY, name or ""
        _warn_provisional(d.year)
        name = statutory_holidays(d.year).get(d)
        if name is not None:
            return False, HOLIDAYS, name
        return d.weekday() < 5, WEEKDAY, ""

    def is_workday(self, d: date) -> bool:
        """Whether ``d`` is a working day (工作日)."""
        d = _as_date(d)
        if d in self.overrides:
            return self.overrides[d]
        year = self._schedule.get(d.year)
        if year is not None:
            return year[d][0] if d in year else d.weekday() < 5
        if library_covers(d.year):
            return bool(chinese_calendar.is_workday(d))
        _warn_provisional(d.year)
        return d.weekday() < 5 and d not in statutory_holidays(d.year)

    # --- counting ----------------------------------------------------------------------

    def count(self, start: date, n: int) -> Counted:
        """The date ``n`` working days after ``start`` (``start`` itself not
        counted), and whether a provisional day was crossed on the way.

        ``n == 0`` returns ``start`` (not provisional).

        :raises ValueError: if ``n`` is negative.
        """
        start = _as_date(start)
        if isinstance(n, bool) or not isinstance(n, int):
            raise TypeError("n must be an int")
        if n < 0:
            raise ValueError("n must be >= 0")
        current = start
        remaining = n
        provisional = False
        while remaining:
            current += timedelta(days=1)
            provisional = provisional or self.is_provisional(current)
            if self.is_workday(current):
                remaining -= 1
        return Counted(current, provisional)

    def add_workdays(self, start: date, n: int) -> date:
        """The date ``n`` working days after ``start`` (``start`` itself not counted).

        ``n == 0`` returns ``start``.  E.g. a Friday + 3 (ordinary weekend)
        is the next Wednesday.  :meth:`count` also says whether it is provisional.

        :raises ValueError: if ``n`` is negative.
        """
        return self.count(start, n).day

    def crosses_provisional(self, start: date | None, end: date | None) -> bool:
        """Whether a deadline ``end`` counted from ``start`` crossed a provisional
        day (any day in (start, end]); False when either is missing."""
        if start is None or end is None:
            return False
        start, end = _as_date(start), _as_date(end)
        if end <= start:
            return False
        if not any(self._year_has_provisional(y) for y in range(start.year, end.year + 1)):
            return False
        current = start
        while current < end:
            current += timedelta(days=1)
            if self.is_provisional(current):
                return True
        return False

    def _year_has_provisional(self, year: int) -> bool:
        return year not in self._schedule and not library_covers(year)

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

    # --- a year, for people ----------------------------------------------------------------

    def year_status(self, year: int) -> str:
        """``confirmed`` (the bureau's schedule is loaded), ``library``
        (chinesecalendar knows it: confirmed too) or ``provisional``."""
        if year in self._schedule:
            return "confirmed"
        return "library" if library_covers(year) else "provisional"

    def year_view(self, year: int) -> dict:
        """The year's days off on weekdays, make-up working days on weekends,
        and named holidays, each with its source (``dibao calendar show``)."""
        if not FIRST_YEAR <= year <= LAST_YEAR:
            raise ScheduleError(None, f"{year} is outside {FIRST_YEAR}–{LAST_YEAR}")
        candidates: set[date] = {d for d in self.overrides if d.year == year}
        if year in self._schedule:
            candidates |= set(self._schedule[year])
        elif library_covers(year):
            candidates |= {d for d in (*chinese_calendar.holidays, *chinese_calendar.workdays) if d.year == year}
        else:
            candidates |= set(statutory_holidays(year))
        days = []
        for d in sorted(candidates):
            workday, source, note = self.day(d)
            weekend = d.weekday() >= 5
            if workday and not weekend and source in (WEEKDAY, LIBRARY) and not note:
                continue
            days.append({"date": d.isoformat(), "workday": workday, "source": source, "note": note,
                         "kind": "make-up working day" if workday and weekend else
                         "working day" if workday else "day off"})
        status = self.year_status(year)
        return {"year": year, "status": "confirmed" if status != "provisional" else "provisional",
                "source": {"confirmed": BUREAU, "library": LIBRARY, "provisional": HOLIDAYS}[status],
                "days": days}

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
        try:
            days = parse_schedule(read_schedule_csv(resolved))
        except ScheduleError as exc:
            raise ValueError(f"{resolved}:{exc.line}: {str(exc).split(': ', 1)[-1]}") from None
        return cls({d: flag for d, (flag, _) in days.items()})
