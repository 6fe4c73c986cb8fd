"""Audit's events, and the contracts the audit ingest accepts.

The audit service records every event of every service. It knows a type by
its registered schema (each module of :mod:`contracts`, loaded by
:func:`load_contracts`); any other type is parked on the dead-letter queue
until a deployment that knows it replays it.
"""
from __future__ import annotations

from marshmallow import Schema, fields

import shared.commands  # noqa: F401 - registers <service>.command_recorded for every service
from shared.events import event_type

SOURCE = "audit"


@event_type(SOURCE, "query_recorded")
class QueryRecorded(Schema):
    """Someone queried the audit record (traces, statistics): what they asked. Subject: the ids asked about."""

    kind = fields.String(required=True, metadata={"doc": "trace | who_let_them_in | statistics | scorecard | verify"})
    criteria = fields.Dict(keys=fields.String(), values=fields.String(allow_none=True), required=True,
                           metadata={"doc": "the query's parameters (ids, user, unit code, dates)"})
    results = fields.Integer(required=True, metadata={"doc": "how many entries were returned"})


def load_contracts() -> None:
    """Register every service's event schemas (the audit accepts all of them)."""
    import contracts

    contracts.load_all()


load_contracts()
