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


@event_type(SOURCE, "checkpoint_signed", partner=True)
class CheckpointSigned(Schema):
    """The audit service signed the head of the audit chain (签名检查点), every
    `AUDIT_CHECKPOINT_EVERY_RECORDS` records or `AUDIT_CHECKPOINT_EVERY_SECONDS`.
    Keep every one: with them and the deployment's public key (`dibao audit
    public-key`) anyone verifies the record offline (`dibao audit verify --bundle
    FILE --checkpoint FILE --public-key FILE`) — a truncation or a rewrite after a
    checkpoint is named. No personal data: figures and hashes only (the format:
    `contracts/audit_checkpoints.py`). Subject: none."""

    seq = fields.Integer(required=True, metadata={"doc": "the last record the checkpoint covers"})
    head_hash = fields.String(required=True, metadata={"doc": "that record's chain hash (hex; sha256, sm3 under the gm profile)"})
    records = fields.Integer(required=True, metadata={"doc": "how many records the chain had"})
    signed_at = fields.String(required=True, metadata={"doc": "when it was signed (ISO 8601, UTC)"})
    key_id = fields.String(required=True, metadata={"doc": "the signing key: first 16 hex of sha256 of the public key"})
    algorithm = fields.String(required=True, metadata={"doc": "the signature's algorithm: ed25519, or sm2-sm3 under the gm profile"})
    previous_seq = fields.Integer(required=True, metadata={"doc": "the checkpoint before (0: none): the range "
                                                                   "is previous_seq+1 .. seq"})
    previous_hash = fields.String(required=True, metadata={"doc": "that checkpoint's head hash (64 zeros: none)"})
    locator = fields.String(required=True, metadata={"doc": "base64 of the first 8 bytes of each record's hash in "
                                                             "the range (empty: none), to name a changed record"})
    signature = fields.String(required=True, metadata={"doc": "base64 signature of the other fields"})


def load_contracts() -> None:
    """Register every service's event schemas (the audit accepts all of them)."""
    import contracts

    contracts.load_all()


load_contracts()
