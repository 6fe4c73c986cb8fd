"""Trace query latency on a 1,000,000-record audit log, SQLite and PostgreSQL.

Target (issue 4): p95 ≤ 50 ms on both.

Setup (not timed): 1,000,000 synthetic records bulk-loaded straight into a
fresh, migrated audit database (executemany on SQLite, COPY on PostgreSQL),
hash-chained as the ingest would chain them: 100,000 households of 10
records each (registration command and event, application, investigation,
review steps, approval for 60 %, file reads), interleaved in time over two
years, by 500 operators in 50 communities.

Timed: the trace functions the audit service's RPC calls
(:mod:`services.audit.trace`), on one connection, 200 random queries each —
by household, by application, by case (with its application's entry), by
operator over one month and by unit over one week (at most 1,000 lines).
"""
from __future__ import annotations

import io
import json
import random
import time
import uuid
from datetime import date, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from bench.support import record, summary_ms
from contracts import audit_chain as chain
from services.audit import trace
from services.audit.models import Base, audit_records
from services.audit.service import MIGRATIONS
from shared.db import ServiceDatabase

pytestmark = pytest.mark.integration

N_HOUSEHOLDS = 100_000
PER_HOUSEHOLD = 10
QUERIES = 200
TARGET_MS = 50.0
COLUMNS = ["seq", *chain.CHAINED, "prev_hash", "hash"]
KINDS = [("intake", "command_recorded"), ("intake", "household_registered"), ("intake", "application_submitted"),
         ("intake", "investigation_recorded"), ("review", "review_step_opened"), ("review", "community_evaluated"),
         ("review", "review_step_opened"), ("review", "township_reviewed"), ("review", "case_approved"),
         ("intake", "file_viewed")]


def synthetic(seed: int = 4):
    """The records, in chain order, with their hashes; and what to query."""
    rng = random.Random(seed)
    units = [f"420115{t:03d}{c:03d}" for t in range(1, 11) for c in range(1, 6)]
    operators = [(f"op{i:03d}", f"操作员{i}", "community_officer", units[i % len(units)]) for i in range(500)]
    homes = [(str(uuid.UUID(int=rng.getrandbits(128))), str(uuid.UUID(int=rng.getrandbits(128))),
              str(uuid.UUID(int=rng.getrandbits(128))) if rng.random() < 0.6 else None)
             for _ in range(N_HOUSEHOLDS)]
    order = [h for h in range(N_HOUSEHOLDS) for _ in range(PER_HOUSEHOLD)]
    rng.shuffle(order)
    step = [0] * N_HOUSEHOLDS
    start = datetime(2024, 1, 1, tzinfo=timezone.utc)
    span = 2 * 365 * 24 * 3600 / len(order)
    prev, rows = chain.GENESIS, []
    for seq, h in enumerate(order, 1):
        household_id, application_id, case_id = homes[h]
        source, kind = KINDS[step[h]]
        step[h] += 1
        user, name, role, unit = operators[h % len(operators)]
        subject = {"household_id": household_id}
        if kind not in ("command_recorded", "household_registered", "file_viewed"):
            subject["application_id"] = application_id
        if kind == "case_approved" and case_id:
            subject["case_id"] = case_id
        when = (start + timedelta(seconds=seq * span)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        rec = {"event_id": str(uuid.UUID(int=rng.getrandbits(128))), "type": kind, "source": source, "version": 1,
               "occurred_at": when, "recorded_at": when, "actor_user": user, "actor_name": name,
               "actor_role": role, "actor_unit": unit, "household_id": household_id,
               "application_id": subject.get("application_id"), "case_id": subject.get("case_id"),
               "correlation_id": "bench", "subject": subject,
               "payload": {"community_code": unit, "step": kind, "outcome": "ok"}}
        digest = chain.link(prev, rec)
        rows.append((seq, *[rec[k] for k in chain.CHAINED], prev, digest))
        prev = digest
    return rows, homes, operators, units


def load_sqlite(db: ServiceDatabase, rows) -> None:
    raw = db.engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute("BEGIN")
        marks = ",".join("?" * len(COLUMNS))
        cur.executemany(f"INSERT INTO audit_records ({','.join(COLUMNS)}) VALUES ({marks})",
                        [r[:15] + (json.dumps(r[15], ensure_ascii=False), json.dumps(r[16], ensure_ascii=False))
                         + r[17:] for r in rows])
        cur.execute("COMMIT")
        cur.execute("ANALYZE")
    finally:
        raw.close()


def load_postgres(db: ServiceDatabase, rows) -> None:
    def text(v):
        if v is None:
            return "\\N"
        if isinstance(v, dict):
            v = json.dumps(v, ensure_ascii=False)
        return str(v).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")

    import psycopg2.extensions

    callback = psycopg2.extensions.get_wait_callback()   # psycogreen's: COPY needs a plain blocking connection
    psycopg2.extensions.set_wait_callback(None)
    raw = psycopg2.connect(db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False))
    try:
        cur = raw.cursor()
        for i in range(0, len(rows), 200_000):
            buf = io.StringIO("".join("\t".join(text(v) for v in r) + "\n" for r in rows[i:i + 200_000]))
            cur.copy_expert(f"COPY audit_records ({','.join(COLUMNS)}) FROM STDIN", buf)
        raw.commit()
        cur.execute("ANALYZE audit_records")
        raw.commit()
    finally:
        raw.close()
        psycopg2.extensions.set_wait_callback(callback)


def measure(db: ServiceDatabase, homes, operators, units) -> dict:
    rng = random.Random(7)
    cased = [h for h in homes if h[2]]
    queries = {
        "household": lambda c: trace.by_subject(c, "household_id", rng.choice(homes)[0]),
        "application": lambda c: trace.by_subject(c, "application_id", rng.choice(homes)[1]),
        "case": lambda c: trace.by_subject(c, "case_id", rng.choice(cased)[2]),
        "operator_month": lambda c: (lambda d: trace.by_operator(c, rng.choice(operators)[0], d,
                                                                 d + timedelta(days=30), "420115"))(
            date(2024, 1, 1) + timedelta(days=rng.randrange(690))),
        "unit_week": lambda c: (lambda d: trace.by_unit(c, rng.choice(units), d, d + timedelta(days=7)))(
            date(2024, 1, 1) + timedelta(days=rng.randrange(720))),
    }
    out = {}
    with db.engine.connect() as conn:
        for name, query in queries.items():
            times, lines = [], 0
            for _ in range(QUERIES):
                t = time.perf_counter()
                lines += len(query(conn))
                times.append(time.perf_counter() - t)
            out[name] = {**summary_ms(times), "mean_lines": round(lines / QUERIES, 1)}
    return out


def test_audit_trace_latency_on_a_million_records(pg_databases, tmp_path):
    t = time.perf_counter()
    rows, homes, operators, units = synthetic()
    build_s = time.perf_counter() - t
    assert len(rows) == N_HOUSEHOLDS * PER_HOUSEHOLD
    figures = {"records": len(rows), "queries_each": QUERIES, "build_s": round(build_s, 1)}
    for backend, uri, load in (("sqlite", f"sqlite:///{tmp_path}/audit.db", load_sqlite),
                               ("postgresql", pg_databases.create("audit"), load_postgres)):
        db = ServiceDatabase("audit", uri, Base.metadata, MIGRATIONS)
        db.migrate()
        t = time.perf_counter()
        load(db, rows)
        figures[f"{backend}_load_s"] = round(time.perf_counter() - t, 1)
        with db.engine.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(audit_records)).scalar() == len(rows)
        figures[backend] = measure(db, homes, operators, units)
        print(backend, figures[backend])
        db.dispose()
    worst = max(q["p95_ms"] for b in ("sqlite", "postgresql") for q in figures[b].values())
    figures["worst_p95_ms"] = worst
    met = worst <= TARGET_MS
    record("audit_trace", figures, f"trace p95 ≤ {TARGET_MS:g} ms with 1,000,000 records", met)
    assert met
