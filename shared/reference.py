"""Reference data every service reads: the policy, divisions, the calendar.

Built once per container in ``setup()``; each worker gets the same frozen
object.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from nameko.extensions import DependencyProvider

from shared.clock import Clock, SystemClock, clock_from_config
from shared.config import repo_path
from shared.divisions import DivisionRegistry
from shared.errors import ValidationFailed
from shared.policy import policy_from_config
from shared.policy.base import Policy
from shared.standards import StandardsTable
from shared.workdays import WorkdayCalendar


@dataclass(frozen=True)
class ReferenceData:
    policy: Policy
    divisions: DivisionRegistry
    calendar: WorkdayCalendar
    standards: StandardsTable
    #: config CLOCK (shared/clock.py): the system date, a fixed day, or a file a demo advances
    clock: Clock = field(default_factory=SystemClock)

    @classmethod
    def from_config(cls, config: dict) -> "ReferenceData":
        return cls(
            policy=policy_from_config(config),
            divisions=DivisionRegistry.load(repo_path(config.get("DIVISIONS_FILE"))),
            calendar=WorkdayCalendar.load(repo_path(config.get("WORKDAY_OVERRIDES_FILE"))),
            standards=StandardsTable.load(repo_path(config.get("STANDARDS_FILE"))),
            clock=clock_from_config(config),
        )

    def today(self) -> date:
        """Today by the configured clock: every rule date in every service comes from here."""
        return self.clock.today()

    def division(self, code: str, field: str, level: str | None = None):
        """The division, or ValidationFailed naming ``field``."""
        try:
            return self.divisions.validate(code, level)
        except ValueError as exc:
            raise ValidationFailed.field(field, str(exc)) from None


class Reference(DependencyProvider):
    def setup(self):
        self.data = ReferenceData.from_config(self.container.config)

    def get_dependency(self, worker_ctx):
        return self.data
