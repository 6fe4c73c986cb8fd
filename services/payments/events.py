"""Payments' events (docs/events.md): standards, benefit changes, payment
runs, disbursements. No account number, no name, no income in any payload.

Bulk events (one per case on a standard change, one per line on a
reconciliation) are written to the outbox in chunks by :func:`write_bulk`,
in the same transaction as the state they report.
"""
from __future__ import annotations

import csv
import io
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
    payload is checked against the registered schema. Each body is the same
    text ``shared.events.encode(envelope)`` gives (sorted keys), assembled
    around the per-row parts."""
    spec = CATALOGUE[(SOURCE, event_name)]
    now = datetime.now(timezone.utc)
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode
    head = (f'{{"actor":{dumps(actor)},"correlation_id":{dumps(correlation_id)},"event_id":"')
    middle = f'","occurred_at":{dumps(now.isoformat())},"payload":'
    source = f',"source":{dumps(SOURCE)},"subject":'
    tail = f',"type":{dumps(event_name)},"version":{spec.version}}}'
    exchange = f"{SOURCE}.events"
    checked = False
    for subject, payload in items:
        if not checked:
            errors = spec.instance.validate(payload)
            if errors:
                raise ValueError(f"{SOURCE}.{event_name} payload does not match its schema: {errors}")
            checked = True
        event_id = str(uuid.uuid4())
        yield {"event_id": event_id, "exchange": exchange, "routing_key": event_name,
               "body": head + event_id + middle + dumps(payload) + source + dumps(subject) + tail,
               "correlation_id": correlation_id, "created_at": now}


OUTBOX_COLUMNS = ("event_id", "exchange", "routing_key", "body", "correlation_id", "created_at")


def write_bulk(uow, event_name: str, items, chunk: int = 5000) -> int:
    """Insert the events into the outbox in chunks, inside ``uow``'s transaction:
    COPY on PostgreSQL (a multi-row INSERT through psycopg2 costs ~50 µs a
    row), executemany on SQLite."""
    connection = uow.session.connection()
    copy = connection.dialect.name == "postgresql"
    insert = uow._outbox.insert()
    rows, written = [], 0

    def flush():
        if copy:
            _copy_rows(connection, rows)
        else:
            uow.session.execute(insert, rows)

    for row in bulk_outbox_rows(event_name, items, uow.actor, uow.correlation_id):
        rows.append(row)
        if len(rows) >= chunk:
            flush()
            written += len(rows)
            rows = []
    if rows:
        flush()
        written += len(rows)
    return written


def _copy_rows(connection, rows: list[dict]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for row in rows:
        writer.writerow([row["event_id"], row["exchange"], row["routing_key"], row["body"], row["correlation_id"],
                         row["created_at"].isoformat()])
    buffer.seek(0)
    # psycopg2 refuses COPY while psycogreen's wait callback is installed (in a
    # nameko worker): lift it for the COPY. The COPY then blocks this process's
    # green threads for its duration (about half a second per 100,000 events).
    import psycopg2.extensions
    callback = psycopg2.extensions.get_wait_callback()
    cursor = connection.connection.dbapi_connection.cursor()
    try:
        psycopg2.extensions.set_wait_callback(None)
        cursor.copy_expert(f"COPY outbox ({', '.join(OUTBOX_COLUMNS)}) FROM STDIN WITH (FORMAT csv)", buffer)
    finally:
        psycopg2.extensions.set_wait_callback(callback)
        cursor.close()
