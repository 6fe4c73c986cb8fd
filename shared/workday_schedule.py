"""The official working-day schedules (放假安排 with 调休) as every service keeps them.

Reference data with one owner and an event: the **review** service owns the
schedules (it owns the policy and the statutory clock of the review) —
``review.import_calendar(rows)`` validates a year's schedule, stores it, and
emits ``review.calendar_schedule_loaded`` carrying the days; every service
that counts working days (intake, review) consumes that event, stores the
schedule in its own table ``workday_schedule`` (this module) and hands it to
its :class:`~shared.workdays.WorkdayCalendar` at once — no restart. A service
that was down gets the event from its durable queue when it comes back; a
service re-reads its table on start and every ``CALENDAR_REFRESH_SECONDS``
(other replicas of the same service, which share the queue, pick it up so).
"""
from __future__ import annotations

import logging
from datetime import date, datetime, timezone

import sqlalchemy as sa

from shared.errors import ValidationFailed
from shared.workdays import Day, ScheduleError, WorkdayCalendar, parse_schedule

log = logging.getLogger(__name__)

TABLE = "workday_schedule"


def schedule_table(metadata: sa.MetaData) -> sa.Table:
    """One row per listed day of a loaded official schedule."""
    return sa.Table(
        TABLE, metadata,
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("year", sa.Integer, nullable=False, index=True),
        sa.Column("workday", sa.Boolean, nullable=False),
        sa.Column("note", sa.String(200), nullable=False, default=""),
        sa.Column("loaded_at", sa.DateTime(timezone=True), nullable=False),
    )


def validate_rows(rows) -> dict[int, dict[date, Day]]:
    """An import's rows (``[{line, date, workday, note}]``) → year → days, or
    ValidationFailed naming the line (nothing is changed)."""
    if not isinstance(rows, list):
        raise ValidationFailed.field("rows", "expected a list of {line, date, workday, note}")
    parsed = []
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise ValidationFailed.field(f"rows.{i}", "expected an object {line, date, workday, note}")
        line = row.get("line", i + 2)
        if isinstance(line, bool) or not isinstance(line, int):
            raise ValidationFailed.field(f"rows.{i}.line", "must be an integer")
        note = row.get("note") or ""
        if not isinstance(note, str) or len(note) > 200:
            raise ValidationFailed.field(f"line {line}", "note must be text of at most 200 characters")
        parsed.append((line, row.get("date"), row.get("workday"), note))
    try:
        days = parse_schedule(parsed, require_days=True)
    except ScheduleError as exc:
        raise ValidationFailed.field(f"line {exc.line}" if exc.line is not None else "rows",
                                     str(exc).split(": ", 1)[-1] if exc.line is not None else str(exc)) from None
    years: dict[int, dict[date, Day]] = {}
    for day, value in days.items():
        years.setdefault(day.year, {})[day] = value
    return years


def store(session, table: sa.Table, years: dict[int, dict[date, Day]]) -> None:
    """Replace the stored schedules of these years (in the caller's transaction)."""
    now = datetime.now(timezone.utc)
    session.execute(sa.delete(table).where(table.c.year.in_(sorted(years))))
    rows = [{"day": d, "year": y, "workday": flag, "note": note, "loaded_at": now}
            for y, days in sorted(years.items()) for d, (flag, note) in sorted(days.items())]
    if rows:
        session.execute(sa.insert(table), rows)


def stored(session, table: sa.Table) -> dict[int, dict[date, Day]]:
    """Every stored schedule: year → days."""
    years: dict[int, dict[date, Day]] = {}
    for row in session.execute(sa.select(table.c.day, table.c.workday, table.c.note)):
        years.setdefault(row.day.year, {})[row.day] = (bool(row.workday), row.note or "")
    return years


def event_payload(years: dict[int, dict[date, Day]]) -> dict:
    return {"years": sorted(years),
            "days": [{"date": d, "workday": flag, "note": note}
                     for y in sorted(years) for d, (flag, note) in sorted(years[y].items())]}


def years_of_payload(payload: dict) -> dict[int, dict[date, Day]]:
    """The event's days back as year → days (a year listed with no days is emptied)."""
    years: dict[int, dict[date, Day]] = {int(y): {} for y in payload["years"]}
    for item in payload["days"]:
        day = item["date"] if isinstance(item["date"], date) else date.fromisoformat(item["date"])
        years.setdefault(day.year, {})[day] = (bool(item["workday"]), item.get("note") or "")
    return years


def refresh(calendar: WorkdayCalendar, session, table: sa.Table) -> list[int]:
    """Give the calendar what the table holds; the years that changed."""
    years = stored(session, table)
    changed = sorted(y for y in set(years) | set(calendar.schedule) if years.get(y) != calendar.schedule.get(y))
    if changed:
        calendar.replace_schedule(years)
        log.info("working-day schedule in use for %s (official schedule loaded)",
                 ", ".join(str(y) for y in sorted(years)) or "no year")
    return changed
