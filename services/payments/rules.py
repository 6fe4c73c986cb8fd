"""Payments' rules: pure functions named after the rule they enforce, and
the benefit rule of the policy built as a SQL expression (for set-based
recalculation) from the same parameters as ``Policy.benefit_from_gap``."""
from __future__ import annotations

import re
from datetime import date, timedelta

import sqlalchemy as sa

from shared.errors import Conflict, Forbidden, ValidationFailed
from shared.money import to_money
from shared.months import add_months, month_of  # noqa: F401 - month_of: the rules' month of a date
from shared.policy.base import Policy

MONTH_RE = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
QUARTER_RE = re.compile(r"^(\d{4})-Q([1-4])$")


def next_month(month: str) -> str:
    return add_months(month, 1)


def months_of_period(period: str) -> list[str]:
    """``2026-11`` → [2026-11]; ``2026-Q4`` → [2026-10, 2026-11, 2026-12]."""
    m = MONTH_RE.match(period)
    if m:
        return [period]
    q = QUARTER_RE.match(period)
    if q:
        year, quarter = int(q.group(1)), int(q.group(2))
        return [f"{year}-{3 * (quarter - 1) + k:02d}" for k in (1, 2, 3)]
    raise ValidationFailed.field("period", f"{period!r} is neither a month (YYYY-MM) nor a quarter (YYYY-Qn)")


def period_matches_cadence(period: str, area_type: str, policy: Policy) -> list[str]:
    """Urban benefits are paid monthly; rural monthly or quarterly (季发放) per policy."""
    months = months_of_period(period)
    every = policy.payout_months(area_type)
    if len(months) != every:
        shape = "a month (YYYY-MM)" if every == 1 else "a quarter (YYYY-Qn)"
        raise ValidationFailed.field(
            "period", f"{area_type} benefits are paid {'monthly' if every == 1 else 'quarterly'} under policy "
                      f"{policy.name}: the period must be {shape}, not {period!r}")
    return months


def period_not_in_future(months: list[str], today: date) -> None:
    """A run pays a period that has begun: not one whose first month is still ahead."""
    if months[0] > month_of(today):
        raise ValidationFailed.field("period", f"{months[0]} has not begun yet (today is {today}): "
                                               "a run cannot pay a future period")


def period_is_open(run_status: str | None, period: str) -> None:
    """A period whose run was approved is closed: no second run for it."""
    if run_status is not None and run_status != "prepared":
        raise Conflict(f"the run for {period} is already {run_status}: the period is closed",
                       {"period": period, "status": run_status})


def maker_is_not_checker(prepared_by: str, approver: str) -> None:
    """One person prepares a run, another approves it."""
    if prepared_by == approver:
        raise Forbidden("the person who prepared a run cannot approve it (maker ≠ checker)",
                        {"rule": "maker_is_not_checker", "prepared_by": prepared_by})


def run_is(status: str, allowed: tuple[str, ...], what: str) -> None:
    if status not in allowed:
        raise Conflict(f"cannot {what} a run that is {status}", {"status": status})


def standard_does_not_overlap(existing: list, effective_from: date, effective_to: date | None):
    """Standards of one division and area never overlap. A new open-ended
    standard may follow the current open-ended one (which then ends the day
    before); anything else that intersects is refused. Returns the standard
    it supersedes (or None)."""
    superseded = None
    for s in existing:
        s_to = s.effective_to or date.max
        n_to = effective_to or date.max
        if s.effective_from <= n_to and effective_from <= s_to:
            if s.effective_to is None and effective_to is None and s.effective_from < effective_from:
                superseded = s
                continue
            raise ValidationFailed.field(
                "effective_from", f"overlaps the standard of {s.monthly_amount} in force from {s.effective_from}"
                                  f"{' to ' + str(s.effective_to) if s.effective_to else ''}")
    return superseded


def day_before(day: date) -> date:
    return day - timedelta(days=1)


# --- the benefit rule as SQL (amounts in fen) ------------------------------------

def fen(amount) -> int:
    """Yuan (Decimal, int or str, exact to the fen) → integer fen."""
    return int(to_money(amount) * 100)


def benefit_sql(policy: Policy, gap, size, vulnerable):
    """``Policy.benefit_from_gap`` as a SQL CASE expression over integer-fen
    columns: zero unless the gap is positive; the formula (gap or bands); the
    分类施保 extra per vulnerable member; the minimum."""
    if policy.benefit_formula == "banded":
        whens = [(gap <= fen(bound) * size, fen(per_person) * size) for bound, per_person in policy.benefit_bands]
        base = sa.case(*whens, else_=gap) if whens else gap
    elif policy.benefit_formula == "gap":
        base = gap
    else:
        raise ValueError(f"policy {policy.name}: unknown benefit formula {policy.benefit_formula!r}")
    amount = base + fen(policy.vulnerable_member_extra) * vulnerable if policy.vulnerable_member_extra else base
    if policy.minimum_benefit is not None:
        minimum = fen(policy.minimum_benefit)
        amount = sa.case((amount < minimum, minimum), else_=amount)
    return sa.case((gap <= 0, 0), else_=amount)


def month_due(month: str, start, stop):
    """SQL: the case is paid for ``month`` (started, not yet stopped)."""
    return sa.and_(start <= month, sa.or_(stop.is_(None), stop > month))
