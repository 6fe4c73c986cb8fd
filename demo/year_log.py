"""The demo year's calendar and its log: which months it simulates, the working day each
month's work is done on, the period a run pays, and what the driver tracks (its cases, its
log, which the year-demo test counts from by hand).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, timedelta

from cli.common import fail
from shared.months import add_months

#: seconds to wait for an event to cross services (generous: a loaded 2-core machine)
YEAR_WAIT = 90.0


def first_day(month: str) -> date:
    return date(int(month[:4]), int(month[5:7]), 1)


def last_day(month: str) -> date:
    return first_day(add_months(month, 1)) - timedelta(days=1)


def first_month(today: date, months: int) -> str:
    """The simulation runs in next year and ends with a quarter, so that the
    last month's statistics show a rural quarter paid: 12 months → January
    to December, 4 → March to June; more than 12 start in January."""
    end = min(12, 3 * math.ceil(months / 3))
    start = max(1, end - months + 1)
    return f"{today.year + 1}-{start:02d}"


def working_day(calendar, month: str, n: int = 3) -> date:
    """The n-th working day of the month (the month's work is done then)."""
    day = first_day(month)
    while not calendar.is_workday(day):
        day += timedelta(days=1)
    return calendar.add_workdays(day, n - 1) if n > 1 else day


def payout_period(month: str, every: int) -> str | None:
    """The period a run pays when ``month`` closes it: the month itself, or
    the quarter (YYYY-Qn) on its last month; None while the period runs."""
    if every == 1:
        return month
    if every == 3:
        m = int(month[5:7])
        return f"{month[:4]}-Q{(m - 1) // 3 + 1}" if m % 3 == 0 else None
    fail(f"the demo pays monthly or quarterly periods, not every {every} months")


@dataclass
class CaseTrack:
    """One approved case as the driver knows it."""

    case_id: str
    household_id: str
    community_code: str
    township_code: str
    area_type: str
    size: int
    benefit: str
    approved_on: str
    start_month: str
    next_rereview_on: str | None
    run: object = field(repr=False, default=None)          # the Demo's HouseholdRun
    end_month: str | None = None                            # first month no longer paid
    missed: list[str] = field(default_factory=list)         # check-in months missed


@dataclass
class YearLog:
    """What the driver did; the test counts from it by hand."""

    policy: str
    district: str
    months: list[str] = field(default_factory=list)
    approved: list[dict] = field(default_factory=list)      # case_id, area_type, size, approved_on, month
    cancelled: list[dict] = field(default_factory=list)     # case_id, area_type, size, decided_on, effective_month…
    changed: list[dict] = field(default_factory=list)       # case_id, area_type, size, direction, effective_month…
    paid: list[dict] = field(default_factory=list)          # run_month, period, area_type, case_id, amount
    failed: list[dict] = field(default_factory=list)        # run_month, period, area_type, case_id, amount
    rejected_proposals: list[dict] = field(default_factory=list)
    checkins: dict = field(default_factory=dict)            # month → recorded
    missed_checkins: dict = field(default_factory=dict)     # month → missed
    standard_raise: dict | None = None
    campaign: dict | None = None
    statistics: dict | None = None                          # audit.statistics(last day), as the RPC answered
    last_day: str | None = None


def start_day(calendar, today: date, months: int) -> date:
    """The clock's first day: the third working day of the first simulated month."""
    return working_day(calendar, first_month(today, months))
