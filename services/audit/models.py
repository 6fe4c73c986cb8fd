"""The audit store: one append-only, hash-chained table (审计记录).

Each row is one event of one service, as received, with the columns a trace
needs indexed. ``hash = sha256(prev_hash ‖ canonical form of the row)``
(:mod:`services.audit.chain`), so altering, removing or inserting a row
breaks the chain at that row. The service only ever INSERTs here.
"""
from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import DeclarativeBase

from shared.db import platform_tables


class Base(DeclarativeBase):
    pass


OUTBOX, INBOX = platform_tables(Base.metadata)

#: JSON text kept verbatim on PostgreSQL (``json``, not ``jsonb``) so the stored form is the hashed form
JsonText = sa.JSON().with_variant(postgresql.JSON(), "postgresql")

audit_records = sa.Table(
    "audit_records", Base.metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("event_id", sa.String(36), nullable=False, unique=True),
    sa.Column("type", sa.String(100), nullable=False),
    sa.Column("source", sa.String(40), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("occurred_at", sa.String(32), nullable=False, doc="UTC, ISO, fixed width: sorts as text"),
    sa.Column("recorded_at", sa.String(32), nullable=False),
    sa.Column("actor_user", sa.String(100), nullable=True),
    sa.Column("actor_name", sa.String(100), nullable=True),
    sa.Column("actor_role", sa.String(40), nullable=True),
    sa.Column("actor_unit", sa.String(20), nullable=True),
    sa.Column("household_id", sa.String(36), nullable=True),
    sa.Column("application_id", sa.String(36), nullable=True),
    sa.Column("case_id", sa.String(36), nullable=True),
    sa.Column("correlation_id", sa.String(64), nullable=False),
    sa.Column("subject", JsonText, nullable=False),
    sa.Column("payload", JsonText, nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Index("ix_audit_household", "household_id", "seq"),
    sa.Index("ix_audit_application", "application_id", "seq"),
    sa.Index("ix_audit_case", "case_id", "seq"),
    sa.Index("ix_audit_actor", "actor_user", "occurred_at"),
    sa.Index("ix_audit_unit", "actor_unit", "occurred_at"),
    sa.Index("ix_audit_type", "type", "seq"),
)

#: the indexed subject keys (the whole subject is kept in ``subject``)
SUBJECT_COLUMNS = ("household_id", "application_id", "case_id")
