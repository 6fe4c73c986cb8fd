"""The appeal (复核) rules: pure functions named after the rule they enforce."""
from __future__ import annotations

from datetime import date, timedelta

from shared.errors import Conflict, Forbidden, ValidationFailed
from shared.policy.base import Policy
from shared.workdays import WorkdayCalendar

KINDS = ("rejection", "cancellation", "benefit_change")
OUTCOMES = ("upheld", "dismissed")
RULE_WITHIN_PERIOD = "appeal_within_period"
RULE_ONCE_PER_DECISION = "one_appeal_per_decision"
RULE_UNINVOLVED_DECIDER = "decided_by_someone_uninvolved"
RULE_DECIDER_REGISTERED = "decider_in_staff_registry"


def appeal_period_ends(policy: Policy, decided_on: date, calendar: WorkdayCalendar) -> date:
    """The last day a household may ask for a review of a decision taken on ``decided_on``:
    the policy's period in working days (on the calendar) or in calendar days."""
    if policy.appeal_period_in_workdays:
        return calendar.count(decided_on, policy.appeal_period).day
    return decided_on + timedelta(days=policy.appeal_period)


def appeal_within_period(policy: Policy, decided_on: date, filed_on: date, calendar: WorkdayCalendar) -> date:
    """复核申请期限: filed within the policy's period after the decision (else Conflict naming the rule)."""
    last = appeal_period_ends(policy, decided_on, calendar)
    if filed_on > last:
        unit = "working days" if policy.appeal_period_in_workdays else "days"
        raise Conflict(f"an appeal is filed within {policy.appeal_period} {unit} of the decision "
                       f"({decided_on.isoformat()}): the period ended on {last.isoformat()}",
                       {"rule": RULE_WITHIN_PERIOD, "period_ended_on": last.isoformat()})
    return last


def one_appeal_per_decision(existing_status: str | None) -> None:
    """A decision is reviewed once: a second appeal of the same decision is a conflict."""
    if existing_status is not None:
        raise Conflict(f"this decision is already under appeal ({existing_status})",
                       {"rule": RULE_ONCE_PER_DECISION, "status": existing_status})


def decided_by_someone_uninvolved(user: str, name: str, participants: list[dict]) -> None:
    """复核由未参与原决定的人作出: nobody who investigated, evaluated, reviewed, signed,
    proposed, approved or recorded the decision under appeal decides it (by user id; by
    name for those the record names only, e.g. the committee's members)."""
    for person in participants:
        if (person.get("user") and person["user"] == user) or (person.get("name") and person["name"] == name):
            raise Forbidden(f"you took part in the decision under appeal ({person['part']}); someone else decides",
                            {"rule": RULE_UNINVOLVED_DECIDER, "part": person["part"]})


def decider_in_staff_registry(registered: bool, roles: tuple[str, ...]) -> None:
    if not registered:
        raise Forbidden("the staff registry does not show you in a role that decides appeals for this unit",
                        {"rule": RULE_DECIDER_REGISTERED, "roles": ", ".join(roles)})


def appeal_is_open(status: str) -> None:
    if status != "open":
        raise Conflict(f"the appeal is already {status}", {"status": status})


def decision_has_reason(reason: str | None) -> str:
    """Every appeal decision states its reason."""
    if not (reason and reason.strip()):
        raise ValidationFailed.field("reason", "a reason is required")
    return reason.strip()


def appeal_overdue(status: str, due_on: date, as_of: date) -> bool:
    """超期: an open appeal past its decision deadline."""
    return status == "open" and due_on < as_of
