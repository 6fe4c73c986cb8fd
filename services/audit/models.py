"""The audit store: the append-only, hash-chained record (审计记录) and its signed checkpoints.

Each row of ``audit_records`` is one event of one service, as received,
with the columns a trace needs indexed — or an anchor the writer appends
after each checkpoint. ``hash = H(prev_hash ‖ canonical form of the row)``,
H SHA-256 or SM3 under the gm profile (:mod:`contracts.audit_chain`, which
also declares the table), so
altering, removing or inserting a row breaks the chain at that row.
``audit_checkpoints`` keeps every checkpoint the service signed
(:mod:`contracts.audit_checkpoints`). The service only ever INSERTs into
both; on PostgreSQL its database role may do nothing else (``dibao db roles``).
"""
from __future__ import annotations

from sqlalchemy.orm import DeclarativeBase

from contracts.audit_chain import audit_record_table
from contracts.audit_checkpoints import audit_checkpoint_table
from shared.db import platform_tables


class Base(DeclarativeBase):
    pass


OUTBOX, INBOX = platform_tables(Base.metadata)

audit_records = audit_record_table(Base.metadata)
audit_checkpoints = audit_checkpoint_table(Base.metadata)

#: the indexed subject keys (the whole subject is kept in ``subject``)
SUBJECT_COLUMNS = ("household_id", "application_id", "case_id")
