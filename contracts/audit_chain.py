"""The audit log's hash chain: the record format, appending a batch, verifying the whole log.

A contract, not audit's private code: a third party verifies the log with
this module and :mod:`contracts.audit_checkpoints` alone (``dibao audit
verify``; a bundle offline: :mod:`contracts.audit_bundle`), and the audit
service (``services/audit``) writes its table through it.

``hash(n) = H(hash(n-1) ‖ canonical(n))`` — H is SHA-256, or SM3 under the
国密 profile (``CRYPTO_PROFILE: gm``, :mod:`shared.profiles`; every function
takes the profile, default the process's) — where canonical is the
record's columns (all but ``seq``, ``prev_hash`` and ``hash``) as compact
JSON with sorted keys; ``hash(0)`` is 64 zeros. The chain has ONE writer at
a time (the ingest, under a lock: the audit service's chain lease on
PostgreSQL, SQLite's write lock otherwise), so ``seq`` and the links are
assigned in one order.

:class:`ChainWalk` takes the log in ``seq`` order and names the first
record that is *altered* (its hash no longer matches its content),
*removed* (a gap: the next record links to a hash nobody has) or *inserted*
(a record the chain steps over: the next one links to the record before it).

Besides the events, the writer appends one record of its own after each
signed checkpoint (and as a new chain's first record): an *anchor*
(``audit.chain_anchor``, a random nonce) — it starts the next checkpoint's
range with a record nobody outside can guess, so the hashes a checkpoint
publishes (its locator, :mod:`contracts.audit_checkpoints`) reveal nothing
of the records they fix.
"""
from __future__ import annotations

import base64
import json
import os
import uuid
from contextlib import closing
from dataclasses import dataclass
from typing import Iterable, Iterator, Mapping

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from shared import profiles
from shared.profiles import CryptoProfile

#: JSON text kept verbatim on PostgreSQL (``json``, not ``jsonb``) so the stored form is the hashed form
JsonText = sa.JSON().with_variant(postgresql.JSON(), "postgresql")


def audit_record_table(metadata: sa.MetaData) -> sa.Table:
    """The audit store's one append-only, hash-chained table (审计记录), in ``metadata``."""
    return sa.Table(
        "audit_records", metadata,
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


#: the table as this module reads and writes it (the service's models hold the same one in its metadata)
audit_records = audit_record_table(sa.MetaData())

GENESIS = "0" * 64
CHAINED = ("event_id", "type", "source", "version", "occurred_at", "recorded_at", "actor_user", "actor_name",
           "actor_role", "actor_unit", "household_id", "application_id", "case_id", "correlation_id",
           "subject", "payload")
_COLUMNS = [audit_records.c[name] for name in ("seq",) + CHAINED + ("prev_hash", "hash")]


def canonical(record) -> str:
    return json.dumps([record[k] for k in CHAINED], ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def link(prev_hash: str, record, profile: CryptoProfile | None = None) -> str:
    return (profile or profiles.current()).chain_hash((prev_hash + canonical(record)).encode("utf-8"))


#: the record the writer appends after each checkpoint (and first in a new chain): a nonce, no event
ANCHOR_SOURCE, ANCHOR_TYPE = "audit", "chain_anchor"
#: the tables the audit writer may only append to (its database role: SELECT and INSERT, ``dibao db roles``)
APPEND_ONLY_TABLES = ("audit_records", "audit_checkpoints")


def head(conn) -> tuple[int, str]:
    """(seq, hash) of the last record, or (0, GENESIS)."""
    row = conn.execute(sa.select(audit_records.c.seq, audit_records.c.hash)
                       .order_by(audit_records.c.seq.desc()).limit(1)).first()
    return (row.seq, row.hash) if row else (0, GENESIS)


def append(conn, records: list[dict], profile: CryptoProfile | None = None) -> int:
    """Chain and insert ``records`` (dicts of the CHAINED columns) after the
    head, skipping event ids already stored (a redelivered batch). Runs in
    the caller's transaction; returns how many were inserted."""
    return len(append_rows(conn, records, profile))


def append_rows(conn, records: list[dict], profile: CryptoProfile | None = None) -> list[dict]:
    """:func:`append`, returning the rows inserted (with ``seq``, ``prev_hash`` and ``hash``)."""
    if not records:
        return []
    ids = [r["event_id"] for r in records]
    existing = set()
    for i in range(0, len(ids), 900):
        existing.update(conn.execute(sa.select(audit_records.c.event_id)
                                     .where(audit_records.c.event_id.in_(ids[i:i + 900]))).scalars())
    seq, prev = head(conn)
    profile = profile or profiles.current()
    rows = []
    for record in records:
        if record["event_id"] in existing:
            continue
        existing.add(record["event_id"])   # a duplicate inside the batch too
        seq += 1
        digest = link(prev, record, profile)
        rows.append({**record, "seq": seq, "prev_hash": prev, "hash": digest})
        prev = digest
    if rows:
        conn.execute(audit_records.insert(), rows)
    return rows


def anchor_record(recorded_at: str, after_seq: int) -> dict:
    """An anchor: the record that starts a checkpoint's range (``after_seq``:
    the checkpoint it follows, 0 for a new chain) with a random nonce."""
    return {"event_id": str(uuid.uuid4()), "type": ANCHOR_TYPE, "source": ANCHOR_SOURCE, "version": 1,
            "occurred_at": recorded_at, "recorded_at": recorded_at, "actor_user": None, "actor_name": None,
            "actor_role": None, "actor_unit": None, "household_id": None, "application_id": None,
            "case_id": None, "correlation_id": "", "subject": {},
            "payload": {"nonce": base64.b64encode(os.urandom(32)).decode("ascii"), "after": after_seq}}


def is_anchor(record: Mapping) -> bool:
    return record["type"] == ANCHOR_TYPE and record["source"] == ANCHOR_SOURCE


def read_records(engine, batch: int = 20000, after: int = 0) -> Iterator[dict]:
    """Every record after ``after`` in ``seq`` order, as dicts, read in batches."""
    with engine.connect() as conn:
        while True:
            rows = conn.execute(sa.select(*_COLUMNS).where(audit_records.c.seq > after)
                                .order_by(audit_records.c.seq).limit(batch)).mappings().all()
            if not rows:
                return
            after = rows[-1]["seq"]
            for row in rows:
                yield dict(row)


@dataclass
class Finding:
    """A break in the log: ``kind`` altered | removed | inserted (the chain
    itself), rewritten | missing | unsigned (against a signed checkpoint)."""

    kind: str
    seq: int
    detail: str

    def __str__(self) -> str:
        return f"record {self.seq} {self.kind}: {self.detail}"


@dataclass
class Verification:
    records: int
    head_seq: int
    head_hash: str
    finding: Finding | None

    @property
    def ok(self) -> bool:
        return self.finding is None


class ChainWalk:
    """The chain check, one record at a time in ``seq`` order (from the
    database, a bundle, any iterable): :meth:`feed` each, :meth:`end` for the answer."""

    def __init__(self, profile: CryptoProfile | None = None):
        self.profile = profile or profiles.current()
        self.prev_seq, self.prev_hash, self.count = 0, GENESIS, 0
        self.earlier_hash = None   # the hash of the record before the previous one
        self.pending = None   # a suspicious row waiting for the next one to tell what it is
        self.result: Verification | None = None

    def feed(self, row: Mapping) -> bool:
        """Take the next record; True once the walk has its finding (feed no more)."""
        if self.result is not None:
            return True
        self.count += 1
        if self.pending is not None:
            self.result = _finding(self.count, self.pending, row)
            return True
        intact = link(row["prev_hash"], row, self.profile) == row["hash"]
        linked = row["prev_hash"] == self.prev_hash and row["seq"] == self.prev_seq + 1
        if intact and linked:
            self.earlier_hash, self.prev_seq, self.prev_hash = self.prev_hash, row["seq"], row["hash"]
            return False
        if intact and row["prev_hash"] == self.earlier_hash:
            # it links past the previous record: that one was slipped in (hash and all)
            finding = Finding("inserted", self.prev_seq,
                              f"not part of the chain: record {row['seq']} links to the record before it")
            self.result = Verification(self.count, self.prev_seq, self.prev_hash, finding)
            return True
        self.pending = (row, intact, linked, self.prev_seq, self.prev_hash)
        return False

    def end(self) -> Verification:
        if self.result is None:
            self.result = (_finding(self.count, self.pending, None) if self.pending is not None
                           else Verification(self.count, self.prev_seq, self.prev_hash, None))
        return self.result


def walk(rows: Iterable[Mapping], profile: CryptoProfile | None = None) -> Verification:
    chain = ChainWalk(profile)
    for row in rows:
        if chain.feed(row):
            break
    return chain.end()


def verify(engine, batch: int = 20000, hash_at: int | None = None,
           profile: CryptoProfile | None = None) -> tuple[Verification, str | None]:
    """Walk the whole log; the first finding, and (if asked) the stored hash at ``hash_at``."""
    chain, found_hash = ChainWalk(profile), None
    with closing(read_records(engine, batch)) as rows:
        for row in rows:
            if row["seq"] == hash_at:
                found_hash = row["hash"]
            if chain.feed(row):
                break
    return chain.end(), found_hash


def _finding(count, pending, nxt) -> Verification:
    row, intact, linked, prev_seq, prev_hash = pending
    seq = row["seq"]
    if not linked and nxt is not None and nxt["prev_hash"] == prev_hash:
        finding = Finding("inserted", seq, f"not part of the chain: record {nxt['seq']} links to record {prev_seq}")
    elif not intact:
        finding = Finding("altered", seq, "its content no longer matches its hash")
    elif row["seq"] != prev_seq + 1:
        finding = Finding("removed", prev_seq + 1,
                          f"missing: record {seq} follows record {prev_seq}")
    else:
        finding = Finding("removed", seq, f"record {seq} links to a hash no stored record has "
                                          f"(the record before it was removed, or rewritten with its hash)")
    return Verification(count, prev_seq, prev_hash, finding)
