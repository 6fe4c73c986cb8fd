"""Automatic signed checkpoints of the audit chain (签名检查点).

The ingest (:mod:`services.audit.ingest`), the chain's one writer, signs the
chain's head every ``AUDIT_CHECKPOINT_EVERY_RECORDS`` new records or, when
fewer came, ``AUDIT_CHECKPOINT_EVERY_SECONDS`` after the last checkpoint
(0 turns either off) — in the same transaction as the records it appended:
the checkpoint row, an anchor record that starts the next range, and the
``audit.checkpoint_signed`` event in the outbox, which the relay publishes
to the partner bureaus (partner-safe: :mod:`contracts.audit_checkpoints`).
Its own anchors and checkpoint events do not count as new records, so an
idle chain is not signed again and again.

What it signs is what it wrote: the hashes of the records it appended in
this process. When it starts, or when the chain's head is not the one it
left (another writer, or someone with the database), it re-reads the
records since its last checkpoint and checks them — content and links — and
that the checkpoint's record still has its hash; if not, it signs nothing
more and says so (CRITICAL in the log, ``checkpoints.broken`` in ``ping``):
the record was changed behind the writer's back.
"""
from __future__ import annotations

import logging
import time
from datetime import datetime, timezone

import sqlalchemy as sa

from contracts import audit_checkpoints as signed
from contracts.audit_chain import GENESIS, anchor_record, append_rows, audit_records, head, is_anchor, link
from shared.db import outbox_row, utcnow
from shared.events import Event

log = logging.getLogger(__name__)

SOURCE = "audit"


def checkpoint_due(new_records: int, seconds_since: float, every_records: int, every_seconds: float) -> bool:
    """A checkpoint is due when records came since the last one, and either
    enough of them or enough time passed (a limit of 0 is off)."""
    if new_records <= 0:
        return False
    return (every_records > 0 and new_records >= every_records) or \
        (every_seconds > 0 and seconds_since >= every_seconds)


def counts(record) -> bool:
    """Whether a record counts towards the next checkpoint (the writer's own anchors and checkpoint events do not)."""
    return not is_anchor(record) and not (record["source"] == SOURCE and record["type"] == "checkpoint_signed")


def _age(signed_at: str) -> float:
    try:
        return max(0.0, (datetime.now(timezone.utc) - datetime.fromisoformat(signed_at)).total_seconds())
    except (TypeError, ValueError):
        return 0.0


def _utc_text() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Checkpointer:
    """The writer's checkpoint state: the last checkpoint, the hashes since, what is due."""

    def __init__(self, key, every_records: int, every_seconds: float, outbox: sa.Table, clock=time.monotonic):
        self.key = key
        self.public_key = signed.public_key_text(key)
        self.every_records = every_records
        self.every_seconds = every_seconds
        self.outbox = outbox
        self.clock = clock
        self.loaded = False
        self.broken: str | None = None
        self.made = 0
        self.last: dict | None = None
        self.known = None   # what the writer knew when the head moved under it: checked against the database

    @classmethod
    def from_config(cls, config: dict, outbox: sa.Table) -> "Checkpointer":
        return cls(signed.signing_key(config), int(config.get("AUDIT_CHECKPOINT_EVERY_RECORDS") or 0),
                   float(config.get("AUDIT_CHECKPOINT_EVERY_SECONDS") or 0), outbox)

    @property
    def enabled(self) -> bool:
        return self.every_records > 0 or self.every_seconds > 0

    def forget(self) -> None:
        """Re-read the state before the next checkpoint (a transaction rolled back)."""
        self.loaded, self.known = False, None

    def _stale(self) -> None:
        """The head is not the one the writer left: re-read, and check what it wrote is still there."""
        if self.loaded and self.broken is None:
            self.known = (self.previous, list(self.hashes) if self.hashes is not None else None)
        self.loaded = False

    def load(self, conn) -> None:
        """The state from the database: the last checkpoint, and the records since, checked."""
        cps = signed.audit_checkpoints
        last = conn.execute(sa.select(cps).order_by(cps.c.seq.desc()).limit(1)).mappings().first()
        self.previous = (last["seq"], last["head_hash"]) if last else (0, GENESIS)
        self.last = signed.from_row(last) if last else self.last
        self.signed_clock = self.clock() - (_age(last["signed_at"]) if last else 0.0)
        start, expected = self.previous
        self.broken = None
        if start:
            at = conn.execute(sa.select(audit_records.c.hash).where(audit_records.c.seq == start)).scalar()
            if at != expected:
                self._break(f"record {start} no longer has the hash its checkpoint signed "
                            f"({'gone' if at is None else 'rewritten'}): no checkpoint is signed over it")
        self.hashes, self.new, prev, seq, after = None, 0, expected, start, start
        while self.broken is None:
            rows = conn.execute(sa.select(audit_records).where(audit_records.c.seq > after)
                                .order_by(audit_records.c.seq).limit(20000)).mappings().all()
            if not rows:
                break
            after = rows[-1]["seq"]
            for row in rows:
                if row["prev_hash"] != prev or row["seq"] != seq + 1 or link(prev, row) != row["hash"]:
                    self._break(f"record {row['seq']} does not chain from its checkpoint's record {start}: "
                                f"no checkpoint is signed over it")
                    break
                if seq == start and is_anchor(row):
                    self.hashes = []     # the range starts with an anchor: it gets a locator
                self._keep(row)
                prev, seq = row["hash"], row["seq"]
        if start == 0 and seq == 0:
            self.hashes = []             # a new chain: its first record will be an anchor
        self.head = (seq, prev)
        self.loaded = True
        known, self.known = self.known, None
        if known is not None and self.broken is None:
            self._compare(*known)

    def _compare(self, previous: tuple[int, str], hashes: list[str] | None) -> None:
        """What the database has now against what this writer signed and wrote."""
        if self.previous[0] < previous[0]:
            self._break(f"the checkpoint of record {previous[0]} is gone from the database")
        elif self.previous == previous and hashes is not None and self.hashes is not None:
            for n, (mine, stored) in enumerate(zip(hashes, self.hashes)):
                if mine != stored:
                    self._break(f"record {previous[0] + 1 + n} was rewritten behind the writer")
                    return
            if len(self.hashes) < len(hashes):
                self._break(f"records {previous[0] + 1 + len(self.hashes)}–{previous[0] + len(hashes)} "
                            f"were removed behind the writer")

    def _break(self, problem: str) -> None:
        if self.broken is None:
            log.critical("audit checkpoints stopped: %s — the record was changed behind its writer's back; "
                         "check it with `dibao audit verify`", problem)
        self.broken = problem

    def prepare(self, conn, adding: bool) -> None:
        """Before a batch is appended: the state, and a new chain's first anchor."""
        if not self.loaded:
            self.load(conn)
        if adding and self.head[0] == 0 and self.broken is None:
            self.appended(append_rows(conn, [anchor_record(_utc_text(), 0)]))

    def appended(self, rows: list[dict]) -> None:
        """Records the writer just appended (in the open transaction)."""
        if not rows or not self.loaded or self.broken is not None:
            return
        if rows[0]["seq"] != self.head[0] + 1 or rows[0]["prev_hash"] != self.head[1]:
            log.warning("audit chain: the head moved under the writer (record %s, expected %s): re-reading",
                        rows[0]["seq"] - 1, self.head[0])
            self._stale()
            return
        for row in rows:
            self._keep(row)
        self.head = (rows[-1]["seq"], rows[-1]["hash"])

    def _keep(self, row) -> None:
        if self.hashes is not None:
            self.hashes.append(row["hash"])
            if len(self.hashes) > signed.MAX_LOCATED:
                self.hashes = None   # too long a range for a locator
        self.new += counts(row)

    def due(self) -> bool:
        return self.loaded and self.broken is None and checkpoint_due(
            self.new, self.clock() - self.signed_clock, self.every_records, self.every_seconds)

    def sign(self, conn) -> dict | None:
        """Sign the head now if a checkpoint is due (in the open transaction):
        the checkpoint row, the next range's anchor, the event in the outbox.
        The caller commits, then wakes the relay; on a rollback, :meth:`forget`."""
        if not self.loaded:
            self.load(conn)
        if not self.due():
            return None
        if head(conn) != self.head:   # someone else wrote: sign only what was checked
            self._stale()
            self.load(conn)
            if not self.due():
                return None
        (start, start_hash), (seq, head_hash) = self.previous, self.head
        cp = signed.sign(self.key, seq, head_hash, start, start_hash, self.hashes)
        conn.execute(signed.audit_checkpoints.insert(), [signed.to_row(cp, self.public_key)])
        row, _ = outbox_row(Event(SOURCE, "checkpoint_signed", {}, cp), None, "", utcnow())
        conn.execute(self.outbox.insert(), [row])
        self.previous, self.hashes, self.new = (seq, head_hash), [], 0
        self.signed_clock = self.clock()
        self.appended(append_rows(conn, [anchor_record(_utc_text(), seq)]))
        self.made += 1
        self.last = cp
        return cp

    def health(self) -> dict:
        return {"enabled": self.enabled, "signed": self.made, "last_seq": (self.last or {}).get("seq"),
                "broken": self.broken}
