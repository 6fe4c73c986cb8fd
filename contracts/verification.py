"""The verification service's events (核对, docs/verification.md) and the
schemas of its RPC calls (for the CLI, the gateway's API and the console).

No event carries a resident ID number or what a bureau found: the audit and
the other services learn who asked which bureau about which household, when,
and how it stands — the findings stay encrypted in the verification service.
"""
from marshmallow import Schema, fields, validate

from shared.divisions import DivisionCode
from shared.events import event_type
from shared.money import Money

SOURCE = "verification"
RESOLUTIONS = ("explained", "reinvestigated", "grounds_for_rejection")
RULES = ("undeclared_vehicle", "property_beyond_family_home", "deposits_above_standard", "income_above_declared")


class _Subject(Schema):
    community_code = fields.String(required=True)


@event_type(SOURCE, "request_sent")
class RequestSent(_Subject):
    """A verification request (or a reminder) went to one partner bureau, on that bureau's own
    channel. Subject: household_id, round_id, request_id (application_id or case_id).
    The actor is who asked; the request itself (names, ID numbers) went to the bureau only."""

    bureau = fields.String(required=True)
    purpose = fields.String(required=True, metadata={"doc": "application | monitoring"})
    member_count = fields.Integer(required=True)
    answer_by = fields.Date(required=True, metadata={"doc": "the bureau's deadline (working days)"})
    reminder = fields.Integer(required=True, metadata={"doc": "0: the request; n: the n-th reminder"})


@event_type(SOURCE, "answer_received")
class AnswerReceived(_Subject):
    """A bureau's answer was accepted and stored (encrypted). Subject: household_id, round_id, request_id."""

    bureau = fields.String(required=True)
    members_answered = fields.Integer(required=True)
    found = fields.Integer(required=True)
    no_record = fields.Integer(required=True)
    cannot_answer = fields.Integer(required=True)
    request_closed = fields.Boolean(required=True, metadata={"doc": "every member of the request is answered"})


@event_type(SOURCE, "answer_refused")
class AnswerRefused(Schema):
    """A message on the answers' channel was refused (parked, nothing applied, the bureau told why).
    Subject: request_id when known."""

    bureau = fields.String(required=True, metadata={"doc": "the authenticated bureau, or '' when none"})
    reason = fields.String(required=True)


@event_type(SOURCE, "report_updated")
class ReportUpdated(_Subject):
    """The verification report (核对报告) of a round changed. Subject: household_id, round_id,
    application_id or case_id. Review gates its steps on it."""

    purpose = fields.String(required=True)
    revision = fields.Integer(required=True, metadata={"doc": "increases with each update of the round"})
    complete = fields.Boolean(required=True, metadata={"doc": "every bureau answered every member"})
    bureaus_missing = fields.List(fields.String(), required=True)
    answers_missing = fields.Integer(required=True, metadata={"doc": "bureau × member answers still missing"})
    answers_due_by = fields.Date(allow_none=True, load_default=None, metadata={
        "doc": "the last answer deadline of the bureaus still missing (None: none is missing)"})
    open_discrepancies = fields.Integer(required=True)
    discrepancy_rules = fields.List(fields.String(), required=True)


@event_type(SOURCE, "report_filed")
class ReportFiled(_Subject):
    """The report is filed in the household file (一户一档) once every bureau answered.
    Subject: household_id, round_id, application_id or case_id."""

    title = fields.String(required=True)
    filed_on = fields.Date(required=True)
    discrepancies = fields.Integer(required=True)


@event_type(SOURCE, "discrepancy_resolved")
class DiscrepancyResolved(_Subject):
    """An officer recorded how a discrepancy was resolved. Subject: household_id, round_id, application_id or case_id."""

    discrepancy_id = fields.Integer(required=True)
    rule = fields.String(required=True)
    resolution = fields.String(required=True, metadata={"doc": " | ".join(RESOLUTIONS)})


@event_type(SOURCE, "change_reported")
class ChangeReported(_Subject):
    """A change for an active case: a bureau reported it on its own, or the monitoring's
    re-verification found a discrepancy. Review makes it a proposal (once). Subject: household_id, case_id."""

    change_id = fields.String(required=True, metadata={"doc": "what the proposal is made over (never twice)"})
    bureau = fields.String(required=True)
    rule = fields.String(required=True, metadata={"doc": "pushed, or the discrepancy rule"})
    kind = fields.String(required=True, metadata={"doc": "the kind of finding: vehicle, pension, …"})
    monthly_income = Money(required=True, allow_none=True,
                           metadata={"doc": "for an income: the monthly amount found (internal)"})
    as_of = fields.Date(required=True)


# --- RPC calls (verification.<method>) -----------------------------------------------------

class RequestVerificationIn(Schema):
    """verification.request_verification: ask every configured bureau about a household."""

    household_id = fields.String(required=True, validate=validate.Length(1, 36))
    application_id = fields.String(load_default=None, validate=validate.Length(1, 36))


class UnitAsOfIn(Schema):
    """verification.overdue / verification.stats: a unit and a day."""

    unit_code = DivisionCode(required=True)
    as_of = fields.Date(load_default=None)


class ReportIn(Schema):
    """verification.report: the latest round of a household, or one round."""

    household_id = fields.String(load_default=None, validate=validate.Length(1, 36))
    round_id = fields.String(load_default=None, validate=validate.Length(1, 36))


class ResolveIn(Schema):
    """verification.resolve_discrepancy: how an officer resolved it, with the reason."""

    discrepancy_id = fields.Integer(required=True)
    resolution = fields.String(required=True, validate=validate.OneOf(RESOLUTIONS))
    reason = fields.String(required=True, validate=validate.Length(2, 2000))


class MonitoringIn(Schema):
    """verification.run_monitoring: re-verify the active cases due by ``as_of``."""

    as_of = fields.Date(load_default=None)


class FindingOut(Schema):
    bureau = fields.String()
    member_ref = fields.String()
    member_name = fields.String()
    outcome = fields.String()
    reason = fields.String(allow_none=True)
    kind = fields.String(allow_none=True)
    description = fields.String(allow_none=True)
    amount = Money(allow_none=True)
    as_of = fields.Date(allow_none=True)
    pushed = fields.Boolean()


class DiscrepancyOut(Schema):
    id = fields.Integer()
    rule = fields.String()
    bureau = fields.String()
    member_ref = fields.String(allow_none=True)
    description = fields.String()
    declared = Money(allow_none=True)
    found = Money(allow_none=True)
    threshold = Money(allow_none=True)
    status = fields.String(metadata={"doc": "open | resolved"})
    resolution = fields.String(allow_none=True)
    resolution_reason = fields.String(allow_none=True)
    resolved_by = fields.String(allow_none=True)


class BureauStatusOut(Schema):
    bureau = fields.String()
    request_id = fields.String()
    status = fields.String(metadata={"doc": "open | closed"})
    answer_by = fields.Date()
    overdue = fields.Boolean()
    reminders = fields.Integer()
    members_answered = fields.Integer()
    members = fields.Integer()


class ReportOut(Schema):
    """核对报告: what was declared beside what was found, and the discrepancies."""

    round_id = fields.String()
    household_id = fields.String()
    application_id = fields.String(allow_none=True)
    case_id = fields.String(allow_none=True)
    purpose = fields.String()
    community_code = fields.String()
    requested_by = fields.String()
    requested_at = fields.AwareDateTime(format="iso")
    complete = fields.Boolean()
    filed = fields.Boolean()
    declared = fields.Dict(metadata={"doc": "{incomes: [{member_id, source, monthly_amount}], assets: [...]}"})
    bureaus = fields.List(fields.Nested(BureauStatusOut))
    findings = fields.List(fields.Nested(FindingOut))
    discrepancies = fields.List(fields.Nested(DiscrepancyOut))


class OverdueOut(Schema):
    request_id = fields.String()
    round_id = fields.String()
    household_id = fields.String()
    community_code = fields.String()
    bureau = fields.String()
    sent_on = fields.Date()
    answer_by = fields.Date()
    reminders = fields.Integer()
    members_missing = fields.Integer()
