"""Notify's domain rules: pure functions named after the rule they enforce."""
from __future__ import annotations

import re
from datetime import date, timedelta

from shared.errors import Conflict, Forbidden, ValidationFailed
from shared.identity import Actor, Role
from shared.masking import mask_resident_id

MAX_NOTICE_DAYS = 90


def posting_period(posted_on: date, days: int) -> date:
    """The last day of a notice posted for ``days`` calendar days (the day
    it goes up counts): a 7-day notice posted on the 1st closes after the 7th."""
    if not 1 <= days <= MAX_NOTICE_DAYS:
        raise ValidationFailed.field("days", f"a posting period is 1 to {MAX_NOTICE_DAYS} calendar days")
    return posted_on + timedelta(days=days - 1)


def board_covers_household(unit_code: str, community_code: str) -> None:
    """A notice goes up on the board of the household's own community or of
    a unit above it (its township, its district)."""
    if not community_code.startswith(unit_code):
        raise ValidationFailed.field("unit_code", f"the board of {unit_code} does not cover the household's "
                                                  f"community {community_code}")


def household_size_is_positive(size: int) -> None:
    if size < 1:
        raise ValidationFailed.field("household_size", "at least 1")


def objection_window_open(status: str, closes_on: date, today: date) -> None:
    """群众异议 are taken while the notice is up, to its last day inclusive."""
    if status != "posted" or closes_on < today:
        raise Conflict(f"the notice's posting period ended on {closes_on.isoformat()}; it takes no objection",
                       {"status": status, "closes_on": closes_on.isoformat()})


def may_close_as_of(actor: Actor | None, as_of: date, today: date) -> None:
    """A posting period is never cut short by an operator: only the timer
    (no actor) and the system administrator (demo, tests, a corrected clock)
    may look ahead."""
    if actor is not None and as_of > today and not actor.has(Role.SYSTEM_ADMIN):
        raise Forbidden("only the system administrator may close notices as of a future date",
                        {"field": "as_of"})


#: an 18-character resident ID number (the last may be X), or an old 15-digit one, standing alone
_RESIDENT_ID = re.compile(r"(?<![0-9A-Za-z])(?:[0-9]{17}[0-9Xx]|[0-9]{15})(?![0-9A-Za-z])")


def resident_ids_masked(text: str) -> str:
    """Staff's words as a message to a household may carry them: any resident ID number in them
    masked (the first 3 and the last 4 kept), as on a public notice."""
    return _RESIDENT_ID.sub(lambda m: mask_resident_id(m.group(0)), text)
