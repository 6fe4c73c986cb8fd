"""The audit store: one append-only, hash-chained table (审计记录).

Each row is one event of one service, as received, with the columns a trace
needs indexed. ``hash = sha256(prev_hash ‖ canonical form of the row)``
(:mod:`contracts.audit_chain`, which also declares the table), so altering,
removing or inserting a row breaks the chain at that row. The service only ever INSERTs here.
"""
from __future__ import annotations

from sqlalchemy.orm import DeclarativeBase

from contracts.audit_chain import audit_record_table
from shared.db import platform_tables


class Base(DeclarativeBase):
    pass


OUTBOX, INBOX = platform_tables(Base.metadata)

audit_records = audit_record_table(Base.metadata)

#: the indexed subject keys (the whole subject is kept in ``subject``)
SUBJECT_COLUMNS = ("household_id", "application_id", "case_id")
