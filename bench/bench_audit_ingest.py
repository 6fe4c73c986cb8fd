"""Audit ingest throughput: durable, hash-chained records/s vs a raw kombu
consumer of the same messages, measured in the same run.

Target (issue 4): ≥ 5,000 events/s and ≥ 1/3 of raw. nameko's own
per-message ``@event_handler`` does ~600–800/s on a 2-core machine.

20,000 real envelopes (intake.application_submitted, ~620 bytes, a fresh
event_id each) are published to ``intake.events`` and so queued on the
durable ``dibao.audit`` queue. Then, interleaved (raw, ingest, raw, ingest,
raw):
  raw     py-amqp ``basic_consume`` with the same prefetch (2,000), acking
          every 1,000 with ``multiple=True`` — no parsing, no database;
  ingest  :class:`services.audit.ingest.ChainIngest` (batch 1,000, prefetch
          2,000) into a fresh, migrated SQLite audit database: parse and
          check each envelope and its payload schema, chain (sha256), insert
          the batch in one transaction, commit, ack.
The ingest also runs on PostgreSQL (reported, not asserted).
"""
from __future__ import annotations

import socket
import uuid

import pytest
from amqp import Message
from kombu import Connection

from bench.bench_outbox_relay import Broker, make_messages
from bench.support import Stopwatch, record
from contracts.audit_chain import verify
from services.audit.ingest import ChainIngest
from services.audit.models import Base
from services.audit.service import MIGRATIONS
from shared.bus import AUDIT_QUEUE
from shared.db import ServiceDatabase

pytestmark = pytest.mark.integration

N = 20_000
PREFETCH, BATCH = 2000, 1000
TARGET = 5_000


def fill_queue(amqp_uri: str, messages, broker: Broker) -> None:
    broker.purge()
    with Connection(amqp_uri) as conn:
        channel = conn.channel()
        for _, body, _, _ in messages:
            channel.basic_publish(Message(body.encode("utf-8"), content_type="application/json",
                                          delivery_mode=2, message_id=str(uuid.uuid4())),
                                  exchange="intake.events", routing_key="application_submitted")
    broker.wait_queued(len(messages), timeout=120)


def run_raw(amqp_uri: str, n: int) -> dict:
    got = []
    with Connection(amqp_uri) as conn:
        channel = conn.channel()
        channel.basic_qos(0, PREFETCH, False)
        with Stopwatch() as sw:
            channel.basic_consume(AUDIT_QUEUE, callback=got.append, no_ack=False)
            acked = 0
            while acked < n:
                try:
                    conn.drain_events(timeout=5)
                except socket.timeout:
                    break
                if len(got) - acked >= BATCH or len(got) == n:
                    channel.basic_ack(got[-1].delivery_tag, multiple=True)
                    acked = len(got)
    assert acked == n
    return {"events": n, "seconds": round(sw.seconds, 3), "events_per_s": round(n / sw.seconds)}


def run_ingest(uri: str, amqp_uri: str, n: int) -> dict:
    db = ServiceDatabase("audit", uri, Base.metadata, MIGRATIONS)
    db.migrate()
    ingest = ChainIngest(db, amqp_uri, batch=BATCH, prefetch=PREFETCH, batch_seconds=0.2)
    ingest._running = True
    ingest.connect()
    batches = 0
    with Stopwatch() as sw:
        while ingest.recorded < n:
            ingest.ingest_once()
            batches += 1
    ingest.close()
    result, _ = verify(db.engine)
    db.dispose()
    assert result.ok and result.records == n
    return {"events": n, "seconds": round(sw.seconds, 3), "batches": batches, "events_per_s": round(n / sw.seconds)}


def test_audit_ingest_throughput(amqp_uri, pg_databases, tmp_path):
    broker = Broker(amqp_uri)
    messages = make_messages(N)
    raw, ingest = [], []
    try:
        for i in range(2):
            fill_queue(amqp_uri, messages, broker)
            raw.append(run_raw(amqp_uri, N))
            fill_queue(amqp_uri, messages, broker)
            ingest.append(run_ingest(f"sqlite:///{tmp_path}/audit-{i}.db", amqp_uri, N))
        fill_queue(amqp_uri, messages, broker)
        raw.append(run_raw(amqp_uri, N))
        fill_queue(amqp_uri, messages, broker)
        pg = run_ingest(pg_databases.create("audit"), amqp_uri, N)
    finally:
        broker.purge()
        broker.close()
    raw_rate = sum(r["events"] for r in raw) / sum(r["seconds"] for r in raw)
    ingest_rate = sum(r["events"] for r in ingest) / sum(r["seconds"] for r in ingest)
    figures = {"events": N, "prefetch": PREFETCH, "batch": BATCH,
               "ingest_sqlite_events_per_s": round(ingest_rate),
               "raw_kombu_consume_batch_ack_events_per_s": round(raw_rate),
               "ratio_ingest_vs_raw": round(ingest_rate / raw_rate, 3),
               "ingest_postgresql_events_per_s": pg["events_per_s"],
               "runs": {"raw": raw, "ingest": ingest, "postgresql": pg}}
    met = ingest_rate >= TARGET and ingest_rate >= raw_rate / 3
    record("audit_ingest", figures, f"≥ {TARGET}/s and ≥ 1/3 of raw consume+batch ack", met)
    assert met
