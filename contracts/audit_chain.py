"""The audit log's hash chain: the record format, appending a batch, verifying the whole log, checkpoints.

A contract, not audit's private code: a third party verifies the log and
the signed checkpoints with this module alone (``dibao audit verify``), and
the audit service (``services/audit``) writes its table through it.

``hash(n) = H(hash(n-1) ‖ canonical(n))`` — H is SHA-256, or SM3 under the
国密 profile (``CRYPTO_PROFILE: gm``, :mod:`shared.profiles`) — where canonical is the
record's columns (all but ``seq``, ``prev_hash`` and ``hash``) as compact
JSON with sorted keys. The chain has ONE writer at a time (the ingest, under
a lock: the audit service's ``ChainLease`` on PostgreSQL, SQLite's
write lock otherwise), so ``seq`` and the links are assigned in one order.

``verify`` walks the log in ``seq`` order and names the first record that
is *altered* (its hash no longer matches its content), *removed* (a gap: the
next record links to a hash nobody has) or *inserted* (a record the chain
steps over: the next one links to the record before it).

A checkpoint is ``{seq, head_hash, ...}`` signed with the deployment's key
(``AUDIT_SIGNING_KEY``: Ed25519, or SM2 under ``gm``); it names its
``profile``, so anyone with the public key can later check the signature and
that the log still has that hash at that ``seq`` (hashed the same way), i.e.
that the log was only appended to since. Every function takes the profile
(default: the process's, :func:`shared.profiles.current`).
"""
from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime, timezone

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from shared import profiles
from shared.profiles import CryptoProfile
from shared.secrets import load_secret

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


def head(conn) -> tuple[int, str]:
    """(seq, hash) of the last record, or (0, GENESIS)."""
    row = conn.execute(sa.select(audit_records.c.seq, audit_records.c.hash)
                       .order_by(audit_records.c.seq.desc()).limit(1)).first()
    return (row.seq, row.hash) if row else (0, GENESIS)


def append(conn, records: list[dict], profile: CryptoProfile | None = None) -> int:
    """Chain and insert ``records`` (dicts of the CHAINED columns) after the
    head, skipping event ids already stored (a redelivered batch). Runs in
    the caller's transaction; returns how many were inserted."""
    if not records:
        return 0
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
    return len(rows)


@dataclass
class Finding:
    """The first break in the chain: ``kind`` altered | removed | inserted."""

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


def verify(engine, batch: int = 20000, hash_at: int | None = None,
           profile: CryptoProfile | None = None) -> tuple[Verification, str | None]:
    """Walk the whole log; the first finding, and (if asked) the stored hash at ``hash_at``."""
    profile = profile or profiles.current()
    prev_seq, prev_hash, count, found_hash = 0, GENESIS, 0, None
    earlier_hash = None   # the hash of the record before the previous one
    pending = None   # a suspicious row waiting for the next one to tell what it is
    after = 0
    with engine.connect() as conn:
        while True:
            rows = conn.execute(sa.select(*_COLUMNS).where(audit_records.c.seq > after)
                                .order_by(audit_records.c.seq).limit(batch)).mappings().all()
            if not rows:
                break
            after = rows[-1]["seq"]
            for row in rows:
                count += 1
                if row["seq"] == hash_at:
                    found_hash = row["hash"]
                if pending is not None:
                    return _finding(count, pending, row), found_hash
                intact = link(row["prev_hash"], row, profile) == row["hash"]
                linked = row["prev_hash"] == prev_hash and row["seq"] == prev_seq + 1
                if intact and linked:
                    earlier_hash, prev_seq, prev_hash = prev_hash, row["seq"], row["hash"]
                    continue
                if intact and row["prev_hash"] == earlier_hash:
                    # it links past the previous record: that one was slipped in (hash and all)
                    finding = Finding("inserted", prev_seq,
                                      f"not part of the chain: record {row['seq']} links to the record before it")
                    return Verification(count, prev_seq, prev_hash, finding), found_hash
                pending = (row, intact, linked, prev_seq, prev_hash)
        if pending is not None:
            return _finding(count, pending, None), found_hash
    return Verification(count, prev_seq, prev_hash, None), found_hash


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


# --- checkpoints ------------------------------------------------------------------

def signing_key(config: dict, profile: CryptoProfile | None = None):
    """The deployment's checkpoint signer (Ed25519, or SM2 under ``gm``):
    ``AUDIT_SIGNING_KEY`` is its 32-byte seed, base64 (the setting, else
    ``<SECRETS_DIR>/audit_signing_key``; a published one is refused)."""
    seed = base64.b64decode(load_secret(config, "AUDIT_SIGNING_KEY"))
    if len(seed) != 32:
        raise ValueError("AUDIT_SIGNING_KEY must be 32 bytes, base64")
    return (profile or profiles.profile_of(config)).signer(seed)


def public_key_text(key) -> str:
    """The base64 public key of a signer (Ed25519: 32 raw bytes; SM2: the point x ‖ y)."""
    return key.public_key_text()


def _signed_part(cp: dict) -> bytes:
    return json.dumps({k: cp[k] for k in ("seq", "head_hash", "records", "made_at")},
                      sort_keys=True, separators=(",", ":")).encode()


def checkpoint_profile(cp: dict) -> CryptoProfile:
    """The profile a checkpoint was made under (``intl`` for one from before profiles)."""
    return profiles.profile_named(cp.get("profile"))


def make_checkpoint(engine, key, profile: CryptoProfile | None = None) -> dict:
    """Sign the current head (after checking the chain up to it)."""
    profile = profile or profiles.current()
    result, _ = verify(engine, profile=profile)
    if not result.ok:
        raise ValueError(f"the log does not verify, no checkpoint: {result.finding}")
    cp = {"seq": result.head_seq, "head_hash": result.head_hash, "records": result.records,
          "made_at": datetime.now(timezone.utc).isoformat(), "profile": profile.name,
          "algorithm": key.algorithm}
    cp["public_key"] = public_key_text(key)
    cp["signature"] = base64.b64encode(key.sign(_signed_part(cp))).decode()
    return cp


def check_signature(cp: dict, public_key: str) -> bool:
    """Whether the checkpoint's signature verifies with ``public_key`` under
    the algorithm of its profile (a changed ``profile`` field changes the
    algorithm, and the signature fails)."""
    try:
        profile = checkpoint_profile(cp)
        return profile.verify_signature(public_key, base64.b64decode(cp["signature"], validate=True),
                                        _signed_part(cp))
    except (KeyError, ValueError, TypeError, binascii.Error):
        return False


def verify_against(engine, cp: dict, public_key: str,
                   profile: CryptoProfile | None = None) -> tuple[Verification, str | None]:
    """The log still verifies and still extends the checkpoint (problem text, or None)."""
    profile = profile or profiles.current()
    if not check_signature(cp, public_key):
        return None, "the checkpoint's signature does not verify with this public key"
    if checkpoint_profile(cp) is not profile:
        return None, (f"the checkpoint was made under CRYPTO_PROFILE={checkpoint_profile(cp).name}, "
                      f"this log is read under {profile.name}")
    result, at = verify(engine, hash_at=cp["seq"], profile=profile)
    if not result.ok:
        return result, str(result.finding)
    if cp["seq"] and at != cp["head_hash"]:
        return result, (f"record {cp['seq']} no longer has the checkpoint's hash: the log was rewritten"
                        if at else f"record {cp['seq']} of the checkpoint is gone")
    return result, None
