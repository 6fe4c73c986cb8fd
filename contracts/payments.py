"""Payments' events (docs/events.md): standards, benefit changes, payment
runs, disbursements. No account number, no name, no income in any payload.

Bulk events (one per case on a standard change, one per line on a
reconciliation) go to the outbox through ``UnitOfWork.emit_many``, in the
same transaction as the state they report.
"""
from __future__ import annotations

from marshmallow import Schema, fields

from shared.events import event_type
from shared.money import Money

SOURCE = "payments"


@event_type(SOURCE, "standard_changed", partner=True)
class StandardChanged(Schema):
    """A guarantee standard was set (提标/降标) and every affected case recalculated. Subject: change_id."""

    change_id = fields.String(required=True)
    division_code = fields.String(required=True, metadata={"doc": "division code (prefix) the standard covers"})
    area_type = fields.String(required=True, metadata={"doc": "urban | rural"})
    effective_from = fields.Date(required=True)
    old_amount = Money(required=True, allow_none=True, metadata={"doc": "yuan per person per month, or null"})
    new_amount = Money(required=True, metadata={"doc": "yuan per person per month"})
    cases_raised = fields.Integer(required=True)
    cases_lowered = fields.Integer(required=True)
    cases_held = fields.Integer(load_default=0, metadata={
        "doc": "cases whose benefit could not be recalculated (no basis): held back until reviewed"})


# Each partner form (``…ForPartners``, DESIGN §3.4a) declares the fields partners
# receive; the full event subclasses it and adds the amounts, so a field is
# declared once and the partner form can only ever be a subset of the event.

class BenefitChangedForPartners(Schema):
    """What partners receive of ``benefit_changed``: the direction, no amounts (income by subtraction)."""

    case_id = fields.String(required=True)
    household_id = fields.String(required=True)
    community_code = fields.String(required=True)
    township_code = fields.String(required=True)
    area_type = fields.String(required=True)
    household_size = fields.Integer(required=True)
    direction = fields.String(required=True, metadata={"doc": "raised | lowered"})
    effective_month = fields.String(required=True, metadata={"doc": "YYYY-MM"})
    change_id = fields.String(required=True)


@event_type(SOURCE, "benefit_changed", partner=BenefitChangedForPartners)
class BenefitChanged(BenefitChangedForPartners):
    """A case's monthly benefit changed with a standard. Subject: household_id, case_id, change_id."""

    old_benefit = Money(required=True)
    new_benefit = Money(required=True)


class PaymentRunApprovedForPartners(Schema):
    """What partners receive of ``payment_run_approved``: no total (a one-line run's total is a benefit)."""

    run_id = fields.String(required=True)
    period = fields.String(required=True, metadata={"doc": "YYYY-MM, or YYYY-Qn for quarterly payment"})
    area_type = fields.String(required=True)
    division_code = fields.String(required=True)
    lines = fields.Integer(required=True)
    prepared_by = fields.String(required=True)
    approved_by = fields.String(required=True)


@event_type(SOURCE, "payment_run_approved", partner=PaymentRunApprovedForPartners)
class PaymentRunApproved(PaymentRunApprovedForPartners):
    """A payment run was approved (by someone other than who prepared it) and frozen. Subject: run_id."""

    total = Money(required=True)


class PaymentLineForPartners(Schema):
    """What partners receive of a payment line: that it was paid, not the amount."""

    run_id = fields.String(required=True)
    line_id = fields.String(required=True)
    case_id = fields.String(required=True)
    household_id = fields.String(required=True)
    community_code = fields.String(required=True)
    township_code = fields.String(required=True)
    area_type = fields.String(required=True)
    household_size = fields.Integer(required=True)
    period = fields.String(required=True)
    paid_on = fields.Date(required=True, allow_none=True, metadata={"doc": "the bank's value date (null if failed)"})


class _LineAmount(Schema):
    amount = Money(required=True)


class PaymentFailedForPartners(PaymentLineForPartners):
    """What partners receive of ``payment_failed``: no amount, not the bank's reason."""

    carried_forward = fields.Boolean(required=True, metadata={"doc": "it will be paid in the area's next run"})


@event_type(SOURCE, "payment_disbursed", partner=PaymentLineForPartners)
class PaymentDisbursed(_LineAmount, PaymentLineForPartners):
    """The bank paid a line of a run (reconciliation). Subject: household_id, case_id, run_id."""


@event_type(SOURCE, "payment_failed", partner=PaymentFailedForPartners)
class PaymentFailed(_LineAmount, PaymentFailedForPartners):
    """The bank could not pay a line (reconciliation). Subject: household_id, case_id, run_id."""

    reason = fields.String(required=True)
