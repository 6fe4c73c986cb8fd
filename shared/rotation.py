"""Key rotation (密钥轮换) of a service's encrypted columns, while it runs.

``dibao keys rotate SERVICE`` (cli/keys.py) adds a new key to the service's
keyring file (the last entry encrypts), then :func:`reseal` re-encrypts every
token not yet under it, table by table, in batches:

- a batch is read by primary key order (keyset, never OFFSET), its tokens
  opened with their row's binding (shared/sealing.py) and sealed again under
  the new key in Python — the AEAD runs in the process, not in SQL — and
  written back by one executemany ``UPDATE … WHERE pk = :pk AND col = :old``
  per column, committed per batch (short transactions beside the running
  service);
- the ``col = :old`` guard makes each write a compare-and-swap: a value the
  service changed meanwhile is left alone (it is under whichever key the
  service used; a later pass takes it);
- the running service reads both keys throughout: a token under a key id it
  does not know makes it re-read its keyring, and it re-reads the file every
  few seconds (``shared.crypto.RELOAD_SECONDS``), so it soon writes under the
  new key too. The last pass starts only after that delay.

A token that does not open (moved, altered) is counted and left as it is;
:func:`key_usage` then still shows it under its old key, and ``dibao keys
retire`` refuses to drop a key any token still names.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import sqlalchemy as sa

from shared import crypto
from shared.profiles import Unsealable
from shared.sealing import Binding, encrypted_columns, row_id

log = logging.getLogger(__name__)


@dataclass
class ResealReport:
    """What a rotation did: per ``table.column``, tokens re-encrypted, skipped
    (changed meanwhile), unreadable; and what still is not under the key."""

    key_id: str
    resealed: dict[str, int] = field(default_factory=dict)
    unreadable: dict[str, int] = field(default_factory=dict)
    skipped: int = 0
    remaining: dict[str, int] = field(default_factory=dict)
    passes: int = 0
    batches: int = 0

    @property
    def done(self) -> bool:
        return not any(self.remaining.values())


def _raw(column: sa.Column):
    """The column as stored text (the token), bypassing the type's Ciphertext."""
    return sa.type_coerce(column, sa.Text)


def key_usage(engine, metadata: sa.MetaData, key_ids) -> dict[str, dict[str, int]]:
    """``table.column`` → {key id: tokens under it}, plus ``"other"`` for
    tokens under a key id not in ``key_ids`` (or not tokens at all)."""
    usage: dict[str, dict[str, int]] = {}
    with engine.connect() as conn:
        for table, column, _ in encrypted_columns(metadata):
            raw = _raw(column)
            counts = [sa.func.count(sa.case((raw.like(crypto.token_prefix(kid) + "%"), 1)))
                      for kid in key_ids]
            row = conn.execute(sa.select(sa.func.count(raw), *counts).select_from(table)).one()
            total, per_key = row[0], dict(zip(key_ids, row[1:]))
            per_key["other"] = total - sum(per_key.values())
            usage[f"{table.name}.{column.name}"] = per_key
    return usage


def _by_table(metadata: sa.MetaData):
    tables: dict[str, tuple[sa.Table, list[tuple[sa.Column, Binding]]]] = {}
    for table, column, binding in encrypted_columns(metadata):
        tables.setdefault(table.name, (table, []))[1].append((column, binding))
    return tables.values()


def _not_under(column: sa.Column, key_id: str):
    raw = _raw(column)
    return sa.and_(raw.isnot(None), ~raw.like(crypto.token_prefix(key_id) + "%"))


def remaining(engine, metadata: sa.MetaData, key_id: str) -> dict[str, int]:
    """``table.column`` → tokens not under ``key_id``."""
    out = {}
    with engine.connect() as conn:
        for table, column, _ in encrypted_columns(metadata):
            out[f"{table.name}.{column.name}"] = conn.execute(
                sa.select(sa.func.count()).select_from(table).where(_not_under(column, key_id))).scalar()
    return out


def _reseal_table(engine, table: sa.Table, columns, cipher, key_id: str, batch: int, report: ResealReport,
                  unreadable_seen: set, on_batch) -> None:
    pk_columns = list(table.primary_key.columns)
    if len(pk_columns) != 1:
        raise ValueError(f"{table.name}: re-encryption pages by a one-column primary key")
    pk = pk_columns[0]
    key_columns = {name for _, binding in columns for name in binding.row_key}
    wanted = [pk] + [table.c[name] for name in sorted(key_columns) if name != pk.name]
    stale = sa.or_(*(_not_under(column, key_id) for column, _ in columns))
    after = None
    while True:
        stmt = sa.select(*wanted, *(_raw(c).label(f"token_{c.name}") for c, _ in columns)).where(stale)
        if after is not None:
            stmt = stmt.where(pk > after)
        with engine.connect() as conn:
            rows = conn.execute(stmt.order_by(pk).limit(batch)).mappings().all()
        if not rows:
            return
        after = rows[-1][pk.name]
        writes: dict[str, list[dict]] = {}
        for row in rows:
            for column, binding in columns:
                token = row[f"token_{column.name}"]
                if token is None or token.startswith(crypto.token_prefix(key_id)):
                    continue
                rid = row_id(row[name] for name in binding.row_key)
                aad = crypto.associated_data(cipher.profile, binding.table, binding.column, rid)
                try:
                    fresh = cipher.encrypt(cipher.decrypt(token, aad), aad, key_id=key_id)
                except (Unsealable, ValueError, UnicodeDecodeError) as exc:
                    name = f"{table.name}.{column.name}"
                    if (name, rid) not in unreadable_seen:
                        unreadable_seen.add((name, rid))
                        report.unreadable[name] = report.unreadable.get(name, 0) + 1
                        log.error("re-encryption: %s of row %s does not open (key %s): %s — left as it is",
                                  name, rid, crypto.key_id_of(token) or "?", type(exc).__name__)
                    continue
                writes.setdefault(column.name, []).append({"pk": row[pk.name], "old": token, "new": fresh})
        with engine.begin() as conn:
            for name, params in writes.items():
                column = table.c[name]
                stmt = (table.update().where(pk == sa.bindparam("pk"), _raw(column) == sa.bindparam("old", type_=sa.Text))
                        .values({name: sa.bindparam("new", type_=sa.Text)}))
                done = conn.execute(stmt, params).rowcount
                done = len(params) if done is None or done < 0 else done
                report.resealed[f"{table.name}.{name}"] = report.resealed.get(f"{table.name}.{name}", 0) + done
                report.skipped += len(params) - done
        report.batches += 1
        if on_batch is not None:
            on_batch(report)


def reseal(engine, metadata: sa.MetaData, cipher, key_id: str | None = None, batch: int = 500,
           passes: int = 3, settle_seconds: float = 0.0, started: float | None = None,
           on_batch=None) -> ResealReport:
    """Re-encrypt every token of the service's tables not under ``key_id``
    (default: the cipher's primary). Up to ``passes`` passes (at least two),
    the second no sooner than ``settle_seconds`` after ``started`` (the time
    the new key was written: running services have re-read their keyrings by
    then), the later ones only while tokens remain. ``on_batch(report)``
    after each committed batch (progress)."""
    key_id = key_id or cipher.primary
    report = ResealReport(key_id)
    started = time.monotonic() if started is None else started
    unreadable_seen: set = set()
    for n in range(passes):
        if n == 1:   # what the running services wrote under the old key until they re-read the keyring
            wait = settle_seconds - (time.monotonic() - started)
            if wait > 0:
                time.sleep(wait)
        report.passes += 1
        for table, columns in _by_table(metadata):
            _reseal_table(engine, table, columns, cipher, key_id, batch, report, unreadable_seen, on_batch)
        report.remaining = remaining(engine, metadata, key_id)
        left = sum(report.remaining.values()) - sum(report.unreadable.values())
        if n >= 1 and left <= 0:
            break
    return report
