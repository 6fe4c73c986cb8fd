"""Intake's copy of the official working-day schedules (review owns them).

``review.calendar_schedule_loaded`` is stored in intake's own table and the
investigation start deadlines of the applications still waiting for their
home investigation are counted again on it (shared/workday_schedule.py).
"""
from __future__ import annotations

from datetime import date

import sqlalchemy as sa

from services.intake.models import WORKDAY_SCHEDULE, Application
from shared import workday_schedule
from shared.db import UnitOfWork
from shared.events import load_payload
from shared.policy import load_policy
from shared.reference import ReferenceData
from shared.workdays import WorkdayCalendar


def schedule_loaded(uow: UnitOfWork, event: dict, ref: ReferenceData) -> None:
    """Store the schedule and recount the open investigation deadlines across its years."""
    years = workday_schedule.years_of_payload(load_payload(event))
    workday_schedule.store(uow.session, WORKDAY_SCHEDULE, years)
    calendar = WorkdayCalendar(ref.calendar.overrides, {**ref.calendar.schedule, **years})
    first, last = date(min(years), 1, 1), date(max(years), 12, 31)
    for application in uow.session.scalars(sa.select(Application).where(
            Application.status == "submitted", Application.accepted_on <= last,
            Application.investigation_deadline >= first)):
        counted = load_policy(application.policy).investigation_start_deadline(application.accepted_on, calendar)
        if counted is not None:
            application.investigation_deadline = counted.day
            application.investigation_deadline_provisional = counted.provisional
