"""What a policy decides. Each attribute is one row of DESIGN §2.6."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from shared.workdays import WorkdayCalendar


@dataclass(frozen=True)
class Policy:
    name: str
    title: str
    #: 入户调查: at least this many distinct investigators, named.
    min_investigators: int = 2
    #: National rule: the family members present sign the investigation record too.
    family_signature_required: bool = False
    #: National rule: the home investigation starts within this many working
    #: days of accepting the application (None: no statutory clock).
    investigation_start_workdays: int | None = None

    def investigation_deadline(self, accepted_on: date, calendar: WorkdayCalendar) -> date | None:
        """Last day the home investigation may start (working-day calendar)."""
        if self.investigation_start_workdays is None:
            return None
        return calendar.add_workdays(accepted_on, self.investigation_start_workdays)
