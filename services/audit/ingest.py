"""Batch ingest of ``dibao.audit`` into the hash chain (批量入账).

A green thread inside the audit service consumes the audit queue (bound
``#`` to every service's exchange, declared by every producer) with a
prefetch window, collects a batch (``AUDIT_BATCH`` messages or
``AUDIT_BATCH_SECONDS``), appends it to the chain in ONE transaction,
commits, and only then acks the batch (``multiple=True`` up to its last
delivery tag). A crash before the ack redelivers the batch; the records
already committed are skipped by event id, so each event is recorded once.

An event that is malformed, of an unknown type, of a newer version than
this deployment knows, or whose publisher (the broker-validated ``user_id``)
is not the broker user of its source service (:mod:`shared.inbox`: that one
also raises a bus alarm) is parked on ``dibao.dead-letter`` (with the reason in
the ``x-dibao-*`` headers, as :mod:`shared.inbox` does) before the batch is
acked; ingest goes on. ``dibao dlq replay`` sends it back here after an
upgrade.

One writer: on PostgreSQL the ingest holds an advisory lock (the chain's
lease) while it consumes, so a second replica stands by instead of
interleaving; the single consumer also keeps each household's events in
queue order.

The writer also signs the chain's head on a schedule, in the transaction
of the batch that makes one due (or, when nothing comes, after the time
limit): :mod:`services.audit.checkpoints`.
"""
from __future__ import annotations

import json
import logging
import socket
import time
import uuid
from datetime import datetime, timezone

import eventlet
from amqp import Message
from kombu import Connection
from nameko.extensions import DependencyProvider

from shared.broker import connection_user, expected_publisher, restricted, ssl_options
from shared.bus import AUDIT_QUEUE, DEAD_LETTER_QUEUE, PARK_EXCHANGE, RETRY_EXCHANGE, declare_producer_topology
from shared.db import Database, ServiceDatabase
from shared.events import CATALOGUE
from shared.inbox import PUBLISHER_HEADER, publisher_of_record, publisher_problem, raise_alarm
from shared.outbox import RelayLease
from contracts import audit_chain as chain
from contracts import audit as _contracts  # noqa: F401 - every service's event schemas, registered
from services.audit.checkpoints import Checkpointer

log = logging.getLogger(__name__)


class Unrecordable(ValueError):
    """This message cannot go into the chain: the reason is in the message."""


def utc_text(value: datetime) -> str:
    """Fixed-width UTC text, which sorts like the time it names."""
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _text(env: dict, key: str) -> str:
    value = env.get(key)
    if not isinstance(value, str) or not value or len(value) > 100:
        raise Unrecordable(f"malformed envelope: {key}")
    return value


def to_record(body, recorded_at: str) -> dict:
    """The chain record of one message body, or Unrecordable naming why."""
    try:
        env = json.loads(body) if isinstance(body, (bytes, bytearray, str)) else body
    except (UnicodeDecodeError, ValueError):
        raise Unrecordable("malformed envelope: not JSON") from None
    if not isinstance(env, dict):
        raise Unrecordable("malformed envelope: not an object")
    event_id, kind, source = _text(env, "event_id"), _text(env, "type"), _text(env, "source")
    try:
        event_id = str(uuid.UUID(event_id))
    except ValueError:
        raise Unrecordable("malformed envelope: event_id") from None
    version = env.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise Unrecordable("malformed envelope: version")
    spec = CATALOGUE.get((source, kind))
    if spec is None:
        raise Unrecordable(f"unknown event type {source}.{kind}")
    if version > spec.version:
        raise Unrecordable(f"unknown version {version} of {source}.{kind} (this deployment knows {spec.version})")
    try:
        occurred_at = utc_text(datetime.fromisoformat(env["occurred_at"]))
    except (KeyError, TypeError, ValueError):
        raise Unrecordable("malformed envelope: occurred_at") from None
    actor, subject, payload = env.get("actor", False), env.get("subject"), env.get("payload")
    if actor is not None and not (isinstance(actor, dict) and all(
            isinstance(actor.get(k), str) for k in ("user", "name", "role", "unit"))):
        raise Unrecordable("malformed envelope: actor")
    if not isinstance(subject, dict) or not all(isinstance(v, str) for v in subject.values()):
        raise Unrecordable("malformed envelope: subject")
    if not isinstance(payload, dict):
        raise Unrecordable("malformed envelope: payload")
    correlation_id = env.get("correlation_id")
    if not isinstance(correlation_id, str) or len(correlation_id) > 64:
        raise Unrecordable("malformed envelope: correlation_id")
    if version == spec.version:
        missing = _required(spec) - payload.keys()
        if missing:
            raise Unrecordable(f"malformed {source}.{kind} payload: missing {sorted(missing)}")
    actor = actor or {}
    return {
        "event_id": event_id, "type": kind, "source": source, "version": version,
        "occurred_at": occurred_at, "recorded_at": recorded_at,
        "actor_user": actor.get("user"), "actor_name": actor.get("name"), "actor_role": actor.get("role"),
        "actor_unit": actor.get("unit"), "household_id": _id(subject, "household_id"),
        "application_id": _id(subject, "application_id"), "case_id": _id(subject, "case_id"),
        "correlation_id": correlation_id, "subject": subject, "payload": payload,
    }


_REQUIRED: dict = {}


def _required(spec) -> frozenset:
    """The payload keys the type's schema requires. The ingest checks that
    they are there, not their types: a producer's ``envelope()`` validated the
    payload against the same schema when it was emitted, and a full
    marshmallow validation here would cost half the ingest's time."""
    keys = _REQUIRED.get(spec.schema)
    if keys is None:
        keys = _REQUIRED[spec.schema] = frozenset(f.data_key or name for name, f in spec.instance.fields.items()
                                           if f.required)
    return keys


def _id(subject: dict, key: str) -> str | None:
    value = subject.get(key)
    return value if value and len(value) <= 36 else None


class ChainIngest:
    """The consumer loop; ``run()`` in a green thread, ``stop()`` to end it."""

    def __init__(self, database: ServiceDatabase, amqp_uri: str, batch: int = 1000, prefetch: int = 2000,
                 batch_seconds: float = 0.2, publisher_of=lambda source: None, restricted_user: bool = False,
                 checkpoints: Checkpointer | None = None, on_checkpoint=lambda cp: None, ssl=False):
        self.db = database
        self.checkpoints = checkpoints if checkpoints is not None and checkpoints.enabled else None
        self.on_checkpoint = on_checkpoint     # after the commit: wake the outbox relay
        self.amqp_uri = amqp_uri
        self.ssl = ssl                          # kombu's ssl (shared.broker.ssl_options)
        self.publisher_of = publisher_of           # source service -> its broker user (None: not checked)
        self.own_user = connection_user(amqp_uri)
        self.restricted = restricted_user
        self.batch = batch
        self.prefetch = max(prefetch, batch)
        self.batch_seconds = batch_seconds
        self.conn = None
        self.channel = None
        self.dlq_channel = None
        self.buffer: list = []
        self._running = False
        self._finished = None    # set while run() goes on
        self.recorded = 0
        self.parked = 0

    @classmethod
    def from_config(cls, database: ServiceDatabase, config: dict, on_checkpoint=lambda cp: None) -> "ChainIngest":
        return cls(database, config["AMQP_URI"], int(config.get("AUDIT_BATCH", 1000)),
                   int(config.get("AUDIT_PREFETCH", 2000)), float(config.get("AUDIT_BATCH_SECONDS", 0.2)),
                   lambda source: expected_publisher(config, source), restricted(config),
                   Checkpointer.from_config(config, database.outbox), on_checkpoint, ssl_options(config))

    def connect(self) -> None:
        self.close()
        conn = Connection(self.amqp_uri, heartbeat=0, connect_timeout=5,
                          ssl=dict(self.ssl) if isinstance(self.ssl, dict) else self.ssl)
        conn.connect()
        channel = conn.channel()
        if self.restricted:
            channel.queue_declare(AUDIT_QUEUE, passive=True)   # declared by dibao broker setup
        else:
            declare_producer_topology(channel, "audit")   # the queue and its bindings, if nobody has yet
        channel.basic_qos(0, self.prefetch, False)
        channel.basic_consume(AUDIT_QUEUE, callback=self.buffer.append, no_ack=False)
        dlq = conn.channel()
        dlq.confirm_select()
        self.conn, self.channel, self.dlq_channel = conn, channel, dlq

    def close(self) -> None:
        self.buffer.clear()   # unacked: the broker redelivers them
        if self.conn is not None:
            try:
                self.conn.release()
            except Exception:  # noqa: BLE001 - closing a dead connection
                pass
        self.conn = self.channel = self.dlq_channel = None

    def stop(self, wait: float = 5.0) -> None:
        """Ask the loop to finish its batch and return (a batch is at most
        AUDIT_BATCH_SECONDS of waiting plus one transaction), rather than being
        killed in the middle of a database or broker call."""
        self._running = False
        if self._finished is not None:
            with eventlet.Timeout(wait, False):
                self._finished.wait()

    def run(self) -> None:
        self._running = True
        self._finished = eventlet.event.Event()
        lease = RelayLease(self.db, name="dibao-audit-chain")
        backoff = 0.5
        try:
            while self._running:
                try:
                    if not lease.held():
                        eventlet.sleep(1.0)
                        continue
                    if self.conn is None:
                        self.connect()
                    self.ingest_once()
                    self.checkpoint_if_due()
                    backoff = 0.5
                except Exception as exc:  # noqa: BLE001 - broker or database down: retry
                    log.warning("audit ingest: %s; retrying in %.1fs", exc, backoff)
                    self.close()
                    lease.release()
                    eventlet.sleep(backoff)
                    backoff = min(backoff * 2, 10.0)
        finally:
            self.close()
            lease.release()
            self._finished.send(True)

    def ingest_once(self) -> int:
        """Collect one batch (or what came within the time limit) and store it."""
        deadline = None
        while len(self.buffer) < self.batch and self._running:
            if self.buffer and deadline is None:
                deadline = time.monotonic() + self.batch_seconds
            timeout = self.batch_seconds if deadline is None else deadline - time.monotonic()
            if timeout <= 0:
                break
            try:
                self.conn.drain_events(timeout=timeout)
            except socket.timeout:
                if self.buffer or self.checkpoints:   # idle: back to the loop, whose checkpoint may be due
                    break
        if not self.buffer:
            return 0
        return self.store(self.buffer[:])

    def store(self, messages: list) -> int:
        recorded_at = utc_text(datetime.now(timezone.utc))
        records, parked = [], []
        for msg in messages:
            try:
                record = to_record(msg.body, recorded_at)
            except Unrecordable as exc:
                parked.append((msg, str(exc)))
                continue
            problem = self.publisher_problem(msg, record["source"])
            if problem:
                raise_alarm("audit", msg.properties.get("message_id"), problem)
                parked.append((msg, problem))
                continue
            records.append(record)
        made = None
        try:
            with self.db.engine.begin() as conn:
                if self.checkpoints:
                    self.checkpoints.prepare(conn, adding=bool(records))
                rows = chain.append_rows(conn, records)
                if self.checkpoints:
                    self.checkpoints.appended(rows)
                    made = self.checkpoints.sign(conn)
        except BaseException:
            if self.checkpoints:
                self.checkpoints.forget()
            raise
        inserted = len(rows)
        if made:
            self.published(made)
        for msg, reason in parked:
            self.park(msg, reason)
        self.channel.basic_ack(messages[-1].delivery_tag, multiple=True)
        del self.buffer[:len(messages)]
        self.recorded += inserted
        return inserted

    def checkpoint_if_due(self) -> None:
        """Sign the head when its time has come and no batch did (idle chain)."""
        cp = self.checkpoints
        if cp is None or (cp.loaded and not cp.due()):
            return
        try:
            with self.db.engine.begin() as conn:
                made = cp.sign(conn)
        except BaseException:
            cp.forget()
            raise
        if made:
            self.published(made)

    def published(self, cp: dict) -> None:
        log.info("audit checkpoint signed: record %s, hash %s…", cp["seq"], cp["head_hash"][:16])
        self.on_checkpoint(cp)

    def publisher_problem(self, msg, source: str) -> str | None:
        """Why the chain must not take this event as its source's (None: fine).
        It came through the source's exchange, or is a replay through
        ``dibao.retry``; its ``user_id`` is the source's broker user, or the
        audit's own for a replay of what it had verified."""
        exchange = msg.delivery_info.get("exchange")
        if exchange not in (f"{source}.events", RETRY_EXCHANGE):
            return f"an event of {source} that came through {exchange!r}"
        return publisher_problem(msg.properties.get("user_id"), msg.headers or {}, self.publisher_of(source),
                                 self.own_user)

    def park(self, msg, reason: str) -> None:
        headers = dict(msg.headers or {})
        user_id = msg.properties.get("user_id")
        headers[PUBLISHER_HEADER] = publisher_of_record(user_id, headers, self.own_user)
        headers.update({"x-dibao-reason": reason[:1000], "x-dibao-queue": AUDIT_QUEUE,
                        "x-dibao-refused-publisher": str(user_id or ""),
                        "x-dibao-source": str(headers.get("x-dibao-source", "")),
                        "x-dibao-event-type": str(msg.delivery_info.get("routing_key", "")),
                        "x-dibao-handler": "audit.ingest"})
        log.error("event %s parked on %s: %s", msg.properties.get("message_id"), DEAD_LETTER_QUEUE, reason)
        props = {k: v for k, v in msg.properties.items() if k in ("content_type", "content_encoding", "message_id")}
        self.dlq_channel.basic_publish_confirm(Message(msg.body, application_headers=headers, delivery_mode=2,
                                                       user_id=self.own_user, **props),
                                               exchange=PARK_EXCHANGE, routing_key="")
        self.parked += 1


class AuditIngest(DependencyProvider):
    """Runs :class:`ChainIngest` in the audit service's container, on the
    service's own ``Database``."""

    #: the queue it consumes and parks failures from (``dibao dlq replay`` sends them back here)
    handler_queue = AUDIT_QUEUE

    def __init__(self):
        self.ingest: ChainIngest | None = None

    def start(self):
        database = next(d for d in self.container.dependencies if isinstance(d, Database))
        relay = database.relay
        self.ingest = ChainIngest.from_config(database.database, self.container.config,
                                              lambda cp: relay.wake() if relay else None)
        self.container.spawn_managed_thread(self.ingest.run, identifier="audit.ingest")

    def stop(self):
        if self.ingest:
            self.ingest.stop()

    def kill(self):
        self.stop()

    def get_dependency(self, worker_ctx):
        return self.ingest
