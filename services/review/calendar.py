"""The working-day calendar's official schedules: review owns them.

Review owns the policy and the statutory clock of the review, so it owns the
reference data that clock runs on: ``import_calendar`` validates a year's
official schedule (放假安排 with 调休), stores it, recomputes the deadlines of
the open applications it touches, and emits ``calendar_schedule_loaded``,
which every other service that counts working days consumes
(shared/workday_schedule.py, docs/calendar.md).
"""
from __future__ import annotations

import logging
from datetime import date

import sqlalchemy as sa

from services.review.handlers import policy_of, workday_deadline
from services.review.models import WORKDAY_SCHEDULE, ReviewFile
from shared import workday_schedule
from shared.db import UnitOfWork
from shared.errors import ValidationFailed
from shared.events import Event
from shared.identity import Actor, Role, authorize
from shared.reference import ReferenceData
from shared.workdays import FIRST_YEAR, LAST_YEAR, Day, WorkdayCalendar

log = logging.getLogger(__name__)

SOURCE = "review"
#: who may load the State Council's schedule for the bureau
IMPORTERS = (Role.DISTRICT_OFFICER, Role.CENTRE_DIRECTOR)
OPEN_STATUSES = ("awaiting_investigation", "in_review", "awaiting_reinvestigation")
#: the calendar is public information: any authenticated caller may read it
VIEWERS = ()


def import_calendar(uow: UnitOfWork, actor: Actor, rows, ref: ReferenceData) -> tuple[dict, dict[int, dict[date, Day]]]:
    """Validate and store the official schedule(s) in ``rows``, recompute the
    open applications' deadlines, emit the event. ValidationFailed naming the
    line changes nothing. Returns (the answer, the years loaded)."""
    authorize(actor, IMPORTERS)
    years = workday_schedule.validate_rows(rows)
    workday_schedule.store(uow.session, WORKDAY_SCHEDULE, years)
    calendar = WorkdayCalendar(ref.calendar.overrides, {**ref.calendar.schedule, **years})
    recomputed = recompute_deadlines(uow, calendar, years)
    uow.emit(Event(SOURCE, "calendar_schedule_loaded", {}, workday_schedule.event_payload(years)))
    uow.commit()
    days = sum(len(d) for d in years.values())
    log.info("official working-day schedule of %s loaded by %s: %d days; %d open applications' deadlines "
             "recomputed", ", ".join(map(str, sorted(years))), actor.user, days, recomputed)
    return {"years": sorted(years), "days": days, "recomputed": recomputed}, years


def recompute_deadlines(uow: UnitOfWork, calendar: WorkdayCalendar, years) -> int:
    """The open applications whose step or process deadline is counted across
    one of ``years`` get them counted again on ``calendar``; how many changed."""
    first, last = date(min(years), 1, 1), date(max(years), 12, 31)
    files = uow.session.scalars(sa.select(ReviewFile).where(
        ReviewFile.status.in_(OPEN_STATUSES),
        sa.or_(sa.and_(ReviewFile.step_opened_on <= last, ReviewFile.step_due_on >= first),
               sa.and_(ReviewFile.accepted_on <= last, ReviewFile.process_due_on >= first))))
    changed = 0
    for f in files:
        before = (f.step_due_on, f.step_due_provisional, f.process_due_on, f.process_due_provisional)
        policy = policy_of(f)
        if f.step and f.step_opened_on:
            counted = workday_deadline(calendar, f.step_opened_on, policy.step(f.step).deadline_workdays)
            f.step_due_on, f.step_due_provisional = counted
        workdays = (policy.process_workdays_with_objection if f.objections and policy.process_workdays_with_objection
                    else policy.process_workdays)
        f.process_due_on, f.process_due_provisional = workday_deadline(calendar, f.accepted_on, workdays)
        if (f.step_due_on, f.step_due_provisional, f.process_due_on, f.process_due_provisional) != before:
            changed += 1
    return changed


def calendar_year(actor: Actor, year, ref: ReferenceData) -> dict:
    """``dibao calendar show YEAR``: the year's days off and make-up working days, each
    with its source, and whether the year is confirmed or provisional."""
    authorize(actor, VIEWERS)
    if isinstance(year, bool) or not isinstance(year, int):
        try:
            year = int(str(year))
        except ValueError:
            raise ValidationFailed.field("year", "must be a year, e.g. 2027") from None
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise ValidationFailed.field("year", f"{year} is outside {FIRST_YEAR}–{LAST_YEAR}")
    return ref.calendar.year_view(year)
