"""Calendar months as the rules use them: ``YYYY-MM`` strings (a benefit's
start month, a check-in, a payment period) and whole-month steps of dates
(re-review dates). One arithmetic for every service."""
from __future__ import annotations

from datetime import date


def month_of(day: date) -> str:
    """2026-11-28 → '2026-11'."""
    return day.strftime("%Y-%m")


def add_months(month: str, n: int) -> str:
    """'2026-11' + 2 → '2027-01' (n may be negative)."""
    k = int(month[:4]) * 12 + int(month[5:7]) - 1 + n
    return f"{k // 12:04d}-{k % 12 + 1:02d}"


def months_later(day: date, months: int) -> date:
    """The same day ``months`` later (the month's last day when it has none)."""
    k = day.year * 12 + day.month - 1 + months
    year, month = k // 12, k % 12 + 1
    for d in (day.day, 30, 29, 28):
        try:
            return date(year, month, d)
        except ValueError:
            continue
    raise AssertionError("unreachable")


def quarter_of(day: date) -> str:
    """2026-11-28 → '2026-Q4'."""
    return f"{day.year}-Q{(day.month - 1) // 3 + 1}"


def months_of_quarter(day: date) -> list[str]:
    """The three months of the quarter ``day`` falls in."""
    first = 3 * ((day.month - 1) // 3) + 1
    return [f"{day.year}-{m:02d}" for m in range(first, first + 3)]
