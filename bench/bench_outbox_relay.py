"""Outbox relay throughput vs raw kombu publishing, measured in the same run.

Target (issue): the relay confirms at least 5,000 events/s. nameko's own
event dispatch waits for each publisher confirm in turn (a few hundred per
second on a 2-core machine); the relay keeps a whole batch (OUTBOX_BATCH,
1,000) of confirms in flight.

20,000 outbox rows carrying a real ``intake.application_submitted``
envelope (about 620 bytes; event_id varies) are inserted directly into a
fresh, migrated intake database, then ``OutboxRelay.relay_once()`` runs
until nothing is pending. Every publisher in this file publishes the same
bodies to ``intake.events`` in the same vhost, where the relay's topology
routes them to the durable ``dibao.audit`` queue (purged between phases,
so each starts on an empty queue).

Baselines, interleaved with the relay to cancel drift:
  raw     kombu ``Producer.publish(delivery_mode=2)`` without confirms (the
          ceiling: no confirm, no database), timed up to a synchronous
          round trip on the same channel after the last publish;
  nameko  ``nameko.standalone.events.event_dispatcher`` (one confirm at a
          time), on 2,000 events;
  kombu   kombu with ``confirm_publish=True`` (one confirm at a time), on
          2,000 events.
The relay also runs on PostgreSQL (reported, not asserted).
"""
from __future__ import annotations

import time
import uuid
from datetime import date, timedelta

import pytest
from kombu import Connection, Producer
from nameko.standalone.events import event_dispatcher

from bench.support import Stopwatch, record
from contracts import intake as _intake_events  # noqa: F401 - registers the event contract
from services.intake.models import Base
from services.intake.service import MIGRATIONS
from shared.bus import AUDIT_QUEUE, declare_producer_topology, event_exchange
from shared.db import ServiceDatabase, utcnow
from shared.events import Event, encode, envelope
from shared.outbox import OutboxRelay

pytestmark = pytest.mark.integration

N = 20_000
N_CONFIRM = 2_000
TARGET = 5_000          # events/s
ROUTING_KEY = "application_submitted"


def sample_envelope() -> dict:
    today = date.today()
    ev = Event("intake", ROUTING_KEY, {"household_id": str(uuid.uuid4()), "application_id": str(uuid.uuid4())}, {
        "community_code": "420115001001", "township_code": "420115001", "area_type": "urban",
        "accepted_on": today, "investigation_deadline": today + timedelta(days=14), "policy": "jiangxia",
        "member_count": 3})
    actor = {"user": "wang.officer", "name": "王专干", "role": "community_officer", "unit": "420115001001"}
    return envelope(ev, actor, uuid.uuid4().hex, utcnow())


def make_messages(n: int) -> list[tuple[str, str, str, dict]]:
    """(event_id, body, correlation_id, envelope) with a fresh event_id each."""
    base = sample_envelope()
    out = []
    for _ in range(n):
        env = dict(base, event_id=str(uuid.uuid4()))
        out.append((env["event_id"], encode(env), env["correlation_id"], env))
    return out


def fill_outbox(db: ServiceDatabase, messages) -> None:
    now = utcnow()
    rows = [{"event_id": eid, "exchange": "intake.events", "routing_key": ROUTING_KEY, "body": body,
             "correlation_id": corr, "created_at": now} for eid, body, corr, _ in messages]
    with db.engine.begin() as conn:
        for i in range(0, len(rows), 5000):
            conn.execute(db.outbox.insert(), rows[i:i + 5000])


class Broker:
    """A plain connection to the vhost to declare, count and purge the audit queue."""

    def __init__(self, amqp_uri: str):
        self.conn = Connection(amqp_uri)
        self.channel = self.conn.channel()
        declare_producer_topology(self.channel, "intake")

    def queued(self) -> int:
        return self.channel.queue_declare(AUDIT_QUEUE, passive=True).message_count

    def wait_queued(self, n: int, timeout: float = 30.0) -> float:
        start = time.perf_counter()
        while self.queued() < n:
            if time.perf_counter() - start > timeout:
                raise AssertionError(f"{self.queued()} of {n} messages reached {AUDIT_QUEUE}")
            time.sleep(0.01)
        return time.perf_counter() - start

    def purge(self) -> None:
        self.channel.queue_purge(AUDIT_QUEUE)

    def close(self) -> None:
        self.conn.release()


def run_relay(uri: str, amqp_uri: str, messages, broker: Broker) -> dict:
    db = ServiceDatabase("intake", uri, Base.metadata, MIGRATIONS)
    db.migrate()
    fill_outbox(db, messages)
    relay = OutboxRelay(db, amqp_uri)   # batch=1000, the default of OUTBOX_BATCH
    relay.declare_topology()
    broker.purge()
    batches = 0
    with Stopwatch() as sw:
        while relay.relay_once():
            batches += 1
    pending = relay.pending()
    relay.stop()
    db.dispose()
    assert pending == 0 and relay.published == len(messages)
    assert broker.queued() == len(messages)
    return {"events": len(messages), "seconds": round(sw.seconds, 3), "batches": batches,
            "events_per_s": round(len(messages) / sw.seconds)}


def run_raw(amqp_uri: str, messages, broker: Broker) -> dict:
    broker.purge()
    with Connection(amqp_uri) as conn:
        channel = conn.channel()
        producer = Producer(channel, exchange=event_exchange("intake"), auto_declare=False)
        with Stopwatch() as sw:
            for eid, body, corr, _ in messages:
                producer.publish(body.encode("utf-8"), routing_key=ROUTING_KEY, delivery_mode=2,
                                 content_type="application/json", content_encoding="utf-8",
                                 message_id=eid, headers={"nameko.correlation_id": corr}, mandatory=True)
            # a synchronous round trip on the same channel: the broker has read every publish
            channel.queue_declare(AUDIT_QUEUE, passive=True)
    until_queued = sw.seconds + broker.wait_queued(len(messages))
    return {"events": len(messages), "seconds": round(sw.seconds, 3), "events_per_s": round(len(messages) / sw.seconds),
            "until_all_queued_s": round(until_queued, 3)}


def run_nameko_dispatch(config: dict, messages, broker: Broker) -> dict:
    broker.purge()
    dispatch = event_dispatcher(config)
    dispatch("intake", ROUTING_KEY, messages[0][3])          # connect and declare outside the timing
    with Stopwatch() as sw:
        for *_, env in messages[1:]:
            dispatch("intake", ROUTING_KEY, env)
    broker.wait_queued(len(messages))
    n = len(messages) - 1
    return {"events": n, "seconds": round(sw.seconds, 3), "events_per_s": round(n / sw.seconds)}


def run_kombu_confirm(amqp_uri: str, messages, broker: Broker) -> dict:
    broker.purge()
    with Connection(amqp_uri, transport_options={"confirm_publish": True}) as conn:
        producer = Producer(conn.channel(), exchange=event_exchange("intake"), auto_declare=False)
        with Stopwatch() as sw:
            for eid, body, corr, _ in messages:
                producer.publish(body.encode("utf-8"), routing_key=ROUTING_KEY, delivery_mode=2,
                                 content_type="application/json", content_encoding="utf-8",
                                 message_id=eid, headers={"nameko.correlation_id": corr}, mandatory=True)
    broker.wait_queued(len(messages))
    return {"events": len(messages), "seconds": round(sw.seconds, 3),
            "events_per_s": round(len(messages) / sw.seconds)}


def test_outbox_relay_throughput(amqp_uri, sqlite_config, pg_databases, tmp_path):
    config = sqlite_config
    broker = Broker(amqp_uri)
    try:
        messages = make_messages(N)
        body_bytes = len(messages[0][1].encode("utf-8"))
        confirm_sample = make_messages(N_CONFIRM)

        # ABABA: raw, relay, raw, relay, raw — then the one-at-a-time baselines and PostgreSQL
        raw, relay = [], []
        raw.append(run_raw(amqp_uri, messages, broker))
        for i in range(2):
            relay.append(run_relay(f"sqlite:///{tmp_path}/intake-{i}.db", amqp_uri, messages, broker))
            raw.append(run_raw(amqp_uri, messages, broker))
        nameko = run_nameko_dispatch(config, confirm_sample, broker)
        kombu_confirm = run_kombu_confirm(amqp_uri, confirm_sample, broker)
        pg = run_relay(pg_databases.create("intake"), amqp_uri, messages, broker)
        broker.purge()
    finally:
        broker.close()

    relay_rate = sum(r["events"] for r in relay) / sum(r["seconds"] for r in relay)
    raw_rate = sum(r["events"] for r in raw) / sum(r["seconds"] for r in raw)
    figures = {
        "events": N, "body_bytes": body_bytes, "batch": 1000,
        "relay_sqlite_events_per_s": round(relay_rate),
        "raw_kombu_no_confirm_events_per_s": round(raw_rate),
        "ratio_relay_vs_raw": round(relay_rate / raw_rate, 3),
        "nameko_dispatch_events_per_s": nameko["events_per_s"],
        "kombu_confirm_one_at_a_time_events_per_s": kombu_confirm["events_per_s"],
        "ratio_relay_vs_nameko_dispatch": round(relay_rate / nameko["events_per_s"], 2),
        "relay_postgres_events_per_s": pg["events_per_s"],
        "runs": {"raw": raw, "relay_sqlite": relay, "nameko_dispatch": nameko, "kombu_confirm": kombu_confirm,
                 "relay_postgres": pg},
    }
    met = relay_rate >= TARGET
    record("outbox_relay", figures, f"relay (SQLite) >= {TARGET} confirmed events/s", met)
    assert met, f"the relay confirmed {relay_rate:.0f} events/s (target >= {TARGET})"
