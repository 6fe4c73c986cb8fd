"""The outbox relay: publishes committed events, marks them sent on confirm.

A unit of work writes each event into the ``outbox`` table in the same
transaction as the state it describes. The relay reads unsent rows in
commit order and publishes them in nameko's event wire format with
publisher confirms and ``mandatory``; only rows the broker confirmed (and
did not return as unroutable) are marked sent. A crash or a broker outage
between commit and confirm leaves rows unsent, so they are published again
later: delivery is at least once, and consumers dedupe on ``event_id``.

Every message carries the relay's broker user in ``user_id`` — RabbitMQ
refuses a ``user_id`` that is not the connection's user, so consumers know
who published it (:mod:`shared.inbox`). Partner-safe types reach
``<source>.partner-events`` (:mod:`shared.bus`) by an exchange binding the
relay makes at connect; an event with a *partner form* is published there
a second time, in that form (not mandatory: there
may be no partner), and its row is marked sent when both are confirmed.

Confirms are pipelined — a whole batch is in flight before we wait — which
is what makes the relay several times faster than nameko's own dispatcher,
that waits for each confirm in turn.

With several replicas on PostgreSQL one relay at a time holds an advisory
lock, which keeps events in commit order.
"""
from __future__ import annotations

import logging
import socket
import zlib

import eventlet
import sqlalchemy as sa
from amqp import Message
from kombu import Connection

from shared.broker import connection_user, restricted, ssl_options
from shared.bus import declare_producer_topology
from shared.db import ServiceDatabase, utcnow
from shared.events import CATALOGUE, partner_form

log = logging.getLogger(__name__)


class Unconfirmed(Exception):
    """The broker did not confirm every message of a batch."""


class ConfirmingPublisher:
    """py-amqp channel in confirm mode with many publishes in flight."""

    def __init__(self, amqp_uri: str, service: str, confirm_timeout: float = 30.0, restricted: bool = False,
                 ssl=False):
        self.amqp_uri = amqp_uri
        self.ssl = ssl                          # kombu's ssl (shared.broker.ssl_options)
        self.service = service
        self.confirm_timeout = confirm_timeout
        self.restricted = restricted
        self.user_id = connection_user(amqp_uri)
        self.conn: Connection | None = None
        self.channel = None

    def connect(self) -> None:
        self.close()
        conn = Connection(self.amqp_uri, heartbeat=0, connect_timeout=5,
                          ssl=dict(self.ssl) if isinstance(self.ssl, dict) else self.ssl)
        conn.connect()
        channel = conn.channel()
        declare_producer_topology(channel, self.service, self.restricted)
        # partner-safe types as they are reach <service>.partner-events by binding, at no cost to the relay
        for (source, name), spec in list(CATALOGUE.items()):
            if source == self.service and spec.partner_as_is:
                channel.exchange_bind(f"{source}.partner-events", f"{source}.events", routing_key=name)
        channel.confirm_select()
        channel.events["basic_ack"].add(self._on_ack)
        channel.events["basic_nack"].add(self._on_nack)
        channel.events["basic_return"].add(self._on_return)
        self.conn, self.channel = conn, channel
        self._next_tag = 0

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.release()
            except Exception:  # noqa: BLE001 - closing a dead connection
                pass
        self.conn = self.channel = None

    # confirm bookkeeping -------------------------------------------------
    def _settle(self, delivery_tag: int, multiple: bool, ok: bool) -> None:
        tags = [t for t in self._pending if t <= delivery_tag] if multiple else [delivery_tag]
        for tag in tags:
            key = self._pending.pop(tag, None)
            if key is not None:
                (self._acked if ok else self._failed).add(key)

    def _on_ack(self, delivery_tag, multiple):
        self._settle(delivery_tag, multiple, True)

    def _on_nack(self, delivery_tag, multiple):
        self._settle(delivery_tag, multiple, False)

    def _on_return(self, exc, exchange, routing_key, message):
        self._returned.add(message.properties.get("message_id"))

    def publish_batch(self, rows) -> set:
        """Publish rows (id, event_id, exchange, routing_key, body, correlation_id);
        return the ids of those the broker confirmed as routed."""
        if self.channel is None:
            self.connect()
        self._pending, self._acked, self._failed, self._returned = {}, set(), set(), set()
        by_event = {}
        for row in rows:
            self._next_tag += 1
            self._pending[self._next_tag] = row.event_id
            by_event[row.event_id] = row.id
            headers = {"nameko.correlation_id": row.correlation_id}
            msg = Message(
                row.body.encode("utf-8"), content_type="application/json", content_encoding="utf-8",
                delivery_mode=2, message_id=row.event_id, user_id=self.user_id, application_headers=headers,
            )
            self.channel.basic_publish(msg, exchange=row.exchange, routing_key=row.routing_key, mandatory=True)
            source = row.exchange[:-len(".events")] if row.exchange.endswith(".events") else None
            partner = partner_form(source, row.routing_key, row.body) if source else None
            if partner is not None:
                self._next_tag += 1
                self._pending[self._next_tag] = row.event_id
                self.channel.basic_publish(
                    Message(partner.encode("utf-8"), content_type="application/json", content_encoding="utf-8",
                            delivery_mode=2, message_id=row.event_id, user_id=self.user_id,
                            application_headers=headers),
                    exchange=f"{source}.partner-events", routing_key=row.routing_key)
        while self._pending:
            try:
                self.conn.drain_events(timeout=self.confirm_timeout)
            except socket.timeout:
                raise Unconfirmed(f"{len(self._pending)} messages unconfirmed after {self.confirm_timeout}s") from None
        if self._returned:
            log.error("%d events returned unroutable; they stay in the outbox", len(self._returned))
        good = self._acked - self._returned - self._failed
        return {by_event[e] for e in good}


class OutboxRelay:
    def __init__(self, database: ServiceDatabase, amqp_uri: str, batch: int = 1000, poll_seconds: float = 1.0,
                 restricted_user: bool = False, ssl=False):
        self.db = database
        self.batch = batch
        self.poll_seconds = poll_seconds
        self.publisher = ConfirmingPublisher(amqp_uri, database.service, restricted=restricted_user, ssl=ssl)
        self._wake = eventlet.event.Event()
        self._running = False
        self.published = 0

    @classmethod
    def from_config(cls, database: ServiceDatabase, config: dict) -> "OutboxRelay":
        return cls(database, config["AMQP_URI"], int(config.get("OUTBOX_BATCH", 1000)),
                   float(config.get("OUTBOX_POLL_SECONDS", 1.0)), restricted(config), ssl_options(config))

    def declare_topology(self) -> None:
        """Declare exchanges and the audit queue now (start-up), or fail loudly."""
        self.publisher.connect()

    def wake(self) -> None:
        if not self._wake.ready():
            self._wake.send(True)

    def stop(self) -> None:
        self._running = False
        self.wake()
        self.publisher.close()

    def run(self) -> None:
        self._running = True
        backoff = 0.5
        lease = RelayLease(self.db)
        try:
            while self._running:
                try:
                    if lease.held():
                        while self._running and self.relay_once():
                            pass
                    backoff = 0.5
                except Exception as exc:  # noqa: BLE001 - broker or DB down: retry
                    log.warning("outbox relay of %s: %s; retrying in %.1fs", self.db.service, exc, backoff)
                    self.publisher.close()
                    lease.release()
                    eventlet.sleep(backoff)
                    backoff = min(backoff * 2, 10.0)
                    continue
                self._wake.wait(self.poll_seconds)
                self._wake = eventlet.event.Event()
        finally:
            lease.release()

    def relay_once(self) -> int:
        """Publish one batch; return how many rows were confirmed."""
        ob = self.db.outbox
        with self.db.engine.connect() as conn:
            rows = conn.execute(
                sa.select(ob.c.id, ob.c.event_id, ob.c.exchange, ob.c.routing_key, ob.c.body, ob.c.correlation_id)
                .where(ob.c.sent_at.is_(None)).order_by(ob.c.id).limit(self.batch)
            ).all()
            conn.rollback()
        if not rows:
            return 0
        confirmed = self.publisher.publish_batch(rows)
        if confirmed:
            with self.db.engine.begin() as conn:
                conn.execute(ob.update().where(ob.c.id.in_(sorted(confirmed))).values(sent_at=utcnow()))
        self.published += len(confirmed)
        if len(confirmed) < len(rows):
            raise Unconfirmed(f"{len(rows) - len(confirmed)} of {len(rows)} events not confirmed")
        return len(confirmed)

    def pending(self) -> int:
        ob = self.db.outbox
        with self.db.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(ob).where(ob.c.sent_at.is_(None))).scalar()


class RelayLease:
    """On PostgreSQL, only the replica holding an advisory lock relays
    (``name``: another single-writer job, e.g. the audit chain, has its own)."""

    def __init__(self, database: ServiceDatabase, name: str | None = None):
        self.db = database
        self.key = zlib.crc32((name or f"dibao-relay-{database.service}").encode())
        self.conn = None
        self._held = False

    def held(self) -> bool:
        if self.db.engine.dialect.name != "postgresql":
            return True
        if not self._held:
            if self.conn is None:
                self.conn = self.db.engine.connect()
            self._held = bool(self.conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key}).scalar())
            self.conn.commit()
        return self._held

    def release(self) -> None:
        if self.conn is not None:
            try:
                if self._held:
                    self.conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
                    self.conn.commit()
                self.conn.close()
            except Exception:  # noqa: BLE001 - a dead connection: drop it from the pool
                self.conn.invalidate()
        self.conn, self._held = None, False
