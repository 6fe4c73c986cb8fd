"""The verification service's copy of the official working-day schedules (review owns them):
the bureaus' answer deadlines are counted on them (shared/workday_schedule.py)."""
from __future__ import annotations

from services.verification.models import WORKDAY_SCHEDULE
from shared import workday_schedule
from shared.db import UnitOfWork
from shared.events import load_payload


def schedule_loaded(uow: UnitOfWork, event: dict) -> None:
    workday_schedule.store(uow.session, WORKDAY_SCHEDULE, workday_schedule.years_of_payload(load_payload(event)))
