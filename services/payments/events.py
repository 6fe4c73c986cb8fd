"""Payments' events (docs/events.md): standards, benefit changes, payment
runs, disbursements. No account number, no name, no income in any payload.

Bulk events (one per case on a standard change, one per line on a
reconciliation) are written to the outbox in chunks by :func:`write_bulk`,
in the same transaction as the state they report.
"""
from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone

from marshmallow import Schema, fields

from shared.events import CATALOGUE, event_type
from shared.money import Money

SOURCE = "payments"


@event_type(SOURCE, "standard_changed")
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


@event_type(SOURCE, "benefit_changed")
class BenefitChanged(Schema):
    """A case's monthly benefit changed with a standard. Subject: household_id, case_id, change_id."""

    case_id = fields.String(required=True)
    household_id = fields.String(required=True)
    community_code = fields.String(required=True)
    township_code = fields.String(required=True)
    area_type = fields.String(required=True)
    household_size = fields.Integer(required=True)
    old_benefit = Money(required=True)
    new_benefit = Money(required=True)
    direction = fields.String(required=True, metadata={"doc": "raised | lowered"})
    effective_month = fields.String(required=True, metadata={"doc": "YYYY-MM"})
    change_id = fields.String(required=True)


@event_type(SOURCE, "payment_run_approved")
class PaymentRunApproved(Schema):
    """A payment run was approved (by someone other than who prepared it) and frozen. Subject: run_id."""

    run_id = fields.String(required=True)
    period = fields.String(required=True, metadata={"doc": "YYYY-MM, or YYYY-Qn for quarterly payment"})
    area_type = fields.String(required=True)
    division_code = fields.String(required=True)
    lines = fields.Integer(required=True)
    total = Money(required=True)
    prepared_by = fields.String(required=True)
    approved_by = fields.String(required=True)


class _LinePayload(Schema):
    run_id = fields.String(required=True)
    line_id = fields.String(required=True)
    case_id = fields.String(required=True)
    household_id = fields.String(required=True)
    community_code = fields.String(required=True)
    township_code = fields.String(required=True)
    area_type = fields.String(required=True)
    household_size = fields.Integer(required=True)
    period = fields.String(required=True)
    amount = Money(required=True)
    paid_on = fields.Date(required=True, allow_none=True, metadata={"doc": "the bank's value date (null if failed)"})


@event_type(SOURCE, "payment_disbursed")
class PaymentDisbursed(_LinePayload):
    """The bank paid a line of a run (reconciliation). Subject: household_id, case_id, run_id."""


@event_type(SOURCE, "payment_failed")
class PaymentFailed(_LinePayload):
    """The bank could not pay a line (reconciliation). Subject: household_id, case_id, run_id."""

    reason = fields.String(required=True)
    carried_forward = fields.Boolean(required=True, metadata={"doc": "it will be paid in the area's next run"})


def bulk_outbox_rows(event_name: str, items, actor: dict | None, correlation_id: str):
    """Outbox rows for many events of one type, built without a schema
    round-trip per row: ``items`` yields ``(subject, payload)`` whose payload
    values are already plain JSON (amounts as 2-place strings). The first
    payload is checked against the registered schema."""
    spec = CATALOGUE[(SOURCE, event_name)]
    now = datetime.now(timezone.utc)
    occurred = now.isoformat()
    checked = False
    exchange = f"{SOURCE}.events"
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode
    for subject, payload in items:
        if not checked:
            errors = spec.instance.validate(payload)
            if errors:
                raise ValueError(f"{SOURCE}.{event_name} payload does not match its schema: {errors}")
            checked = True
        event_id = str(uuid.uuid4())
        env = {"event_id": event_id, "type": event_name, "source": SOURCE, "version": spec.version,
               "occurred_at": occurred, "actor": actor, "subject": subject, "correlation_id": correlation_id,
               "payload": payload}
        yield {"event_id": event_id, "exchange": exchange, "routing_key": event_name, "body": dumps(env),
               "correlation_id": correlation_id, "created_at": now}


def write_bulk(uow, event_name: str, items, chunk: int = 5000) -> int:
    """Insert the events into the outbox in chunks, inside ``uow``'s transaction."""
    outbox = uow._outbox
    rows, written = [], 0
    for row in bulk_outbox_rows(event_name, items, uow.actor, uow.correlation_id):
        rows.append(row)
        if len(rows) >= chunk:
            uow.session.execute(outbox.insert(), rows)
            written += len(rows)
            rows = []
    if rows:
        uow.session.execute(outbox.insert(), rows)
        written += len(rows)
    return written
