"""Reliable event consumption: retry with back-off, then the dead-letter queue.

nameko's ``@event_handler`` acks a message even when the handler raises, so
a failure is forgotten. ``@consume_event`` is a drop-in replacement (same
queue naming, same wire format) whose failure handling is:

- the handler raised ``AlreadyConsumed`` (the inbox saw this event id): ack,
  it is a redelivery;
- a permanent error (a malformed envelope, ``ValidationFailed``): park it on
  ``dibao.dead-letter`` at once, with the reason;
- any other error: republish to ``<queue>.delay`` (through ``dibao.retry``)
  with a per-message TTL of ``INBOX_BACKOFF_SECONDS × 2^(attempt-1)``; that
  queue dead-letters back to the handler's queue when the TTL expires. After
  ``INBOX_MAX_ATTEMPTS`` it is parked on ``dibao.dead-letter`` instead.

Before any of that, the publisher is checked (DESIGN §3.4a): the handler
acts only on an event whose ``user_id`` — validated by RabbitMQ against the
publishing connection — is the broker user of the event's source service,
or which this service itself re-published for a retry (its own user, with
the publisher it had verified in ``x-dibao-publisher``). Anything else is
parked at once with the reason, counted (:data:`ALARMS`, the services'
``ping`` shows it) and logged at WARNING; nothing is applied.

The original message is acked only after the retry or parked copy has been
confirmed by the broker, so a crash in between redelivers (at least once);
the inbox makes the redelivery a no-op.

The handler itself records the event id in the same transaction as its
effect: ``with self.db() as uow: uow.consume(event, CONSUMER); ...; uow.commit()``.
"""
from __future__ import annotations

import errno
import logging
import traceback
from collections import Counter

import eventlet
from amqp.exceptions import AMQPError
from kombu.exceptions import ConnectionError as KombuConnectionError
from nameko.amqp.publish import Publisher
from nameko.events import EventHandler

from shared.broker import connection, connection_user, expected_publisher, restricted, ssl_options
from shared.bus import (DEAD_LETTER_QUEUE, DELAY_SUFFIX, PARK_EXCHANGE, RETRY_EXCHANGE, declare_retry_and_park,
                        delay_queue, handler_queue)
from shared.db import AlreadyConsumed
from shared.errors import ValidationFailed

log = logging.getLogger(__name__)

ATTEMPTS_HEADER = "x-dibao-attempts"
#: the publisher a consumer verified, on an event it re-published (retry, park)
PUBLISHER_HEADER = "x-dibao-publisher"
PERMANENT_ERRORS = (ValidationFailed,)

#: events refused because their publisher is not their source, per consuming service
ALARMS: Counter = Counter()


def publisher_problem(user_id: str | None, headers: dict, expected: str | None, own_user: str) -> str | None:
    """Why an event may not be acted on (None: it was published by ``expected``,
    the source service's broker user — or re-published by this consumer's own
    user after it had verified that). ``expected`` None: broker users are off."""
    if expected is None or user_id == expected:
        return None
    if user_id == own_user and user_id and headers.get(PUBLISHER_HEADER) == expected:
        return None
    return f"publisher {user_id or '(no user_id)'} is not {expected}, the broker user of the source service"


def publisher_of_record(user_id: str | None, headers: dict, own_user: str) -> str:
    """The publisher to write on a copy this consumer re-publishes (retry,
    park): the ``user_id`` RabbitMQ validated — or, on a copy this consumer
    had re-published itself, what it wrote then. Never a header someone
    else set."""
    if user_id and user_id == own_user:
        return str(headers.get(PUBLISHER_HEADER) or "")
    return str(user_id or "")


def raise_alarm(service: str, message_id, reason: str) -> None:
    """An event whose publisher is not its source: counted and logged (never applied)."""
    ALARMS[service] += 1
    log.warning("bus alarm: %s refused event %s and parked it on %s: %s", service, message_id,
                DEAD_LETTER_QUEUE, reason)


def bus_health(service: str) -> dict:
    """What a service's ping adds: the events it refused since it started."""
    return {"bus_alarms": ALARMS[service]}


class ReliableEventHandler(EventHandler):
    def __init__(self, source_service, event_type, **kwargs):
        kwargs.setdefault("expected_exceptions", (AlreadyConsumed,))
        super().__init__(source_service, event_type, **kwargs)

    def setup(self):
        super().setup()
        config = self.container.config
        self.max_attempts = int(config.get("INBOX_MAX_ATTEMPTS", 5))
        self.backoff = float(config.get("INBOX_BACKOFF_SECONDS", 1.0))
        own = restricted(config)
        # nameko's queue, bound also to dibao.retry; a restricted user declares
        # the source's exchange passively (it may not configure it)
        q = self.queue
        self.queue = handler_queue(q.name, self.source_service, self.event_type, own, durable=q.durable,
                                   auto_delete=q.auto_delete, exclusive=q.exclusive)
        self.retry_queue_name = q.name + DELAY_SUFFIX
        self.expected_user = expected_publisher(config, self.source_service)
        self.own_user = connection_user(config["AMQP_URI"])
        self.publisher = Publisher(config["AMQP_URI"], use_confirms=True, serializer="json",
                                   ssl=ssl_options(config))
        with connection(config) as conn:
            channel = conn.default_channel
            if not own:
                declare_retry_and_park(channel)
            delay_queue(q.name, own)(channel).declare()

    def handle_message(self, body, message):
        headers = message.headers or {}
        user_id = message.properties.get("user_id")
        problem = publisher_problem(user_id, headers, self.expected_user, self.own_user)
        source = body.get("source", self.source_service) if isinstance(body, dict) else self.source_service
        if problem is None and source != self.source_service:   # (no source: malformed, the handler parks it)
            problem = f"envelope source {body.get('source')!r} is not {self.source_service!r}"
        if problem is None:
            return super().handle_message(body, message)
        try:
            self._park(message, headers, problem, int(headers.get(ATTEMPTS_HEADER, 0)),
                       {"x-dibao-refused-publisher": str(user_id or ""),
                        PUBLISHER_HEADER: publisher_of_record(user_id, headers, self.own_user)})
        except Exception:  # noqa: BLE001 - broker trouble: let it redeliver
            log.exception("could not park a refused event; requeueing it")
            self._settle(self.queue_consumer.requeue_message, message)
            return
        raise_alarm(self.container.service_name, message.properties.get("message_id"), problem)
        self._settle(self.queue_consumer.ack_message, message)

    def handle_message_processed(self, message, result=None, exc_info=None):
        if exc_info is None or isinstance(exc_info[1], AlreadyConsumed):
            self._settle(self.queue_consumer.ack_message, message)
            return
        try:
            self._retry_or_park(message, exc_info)
        except Exception:  # noqa: BLE001 - broker trouble: let it redeliver
            log.exception("could not park or retry a failed event; requeueing it")
            self._settle(self.queue_consumer.requeue_message, message)
            return
        self._settle(self.queue_consumer.ack_message, message)

    def _settle(self, settle, message):
        """Ack or requeue; if the connection died meanwhile the broker has
        already taken the message back and will redeliver it (the inbox makes
        that a no-op). nameko would let the socket error kill the container."""
        try:
            settle(message)
        except (OSError, AMQPError, KombuConnectionError) as exc:
            log.warning("connection lost before the ack (%s); the broker will redeliver", exc)
            self._reconnect_consumer(message.channel, exc)

    def _reconnect_consumer(self, channel, exc):
        """The ack found the consumer's connection dead: make the queue
        consumer reconnect now. Its own read loop may not notice — a write
        that meets the reset leaves py-amqp's reader waiting on the dead
        socket, the consumer gone from the queue and the queue filling until
        the heartbeat check fails minutes later (seen: 1841 events ready, no
        consumer, 2 minutes after a broker restart). A connection error
        thrown into its loop is what kombu's ConsumerMixin reconnects on."""
        consumer = self.queue_consumer
        thread = getattr(consumer, "_gt", None)          # nameko 2.14 QueueConsumer internals
        current = [c.channel for c in getattr(consumer, "_consumers", {}).values()]
        if thread is None or thread.dead or thread is eventlet.getcurrent() or channel not in current:
            return                                      # reconnected already (or stopping)
        log.warning("restarting the event consumer's broker connection")
        thread.kill(ConnectionResetError(errno.ECONNRESET, f"broker connection lost under an ack: {exc}"))

    def _park(self, message, headers: dict, reason: str, attempts: int, extra: dict | None = None):
        headers = dict(headers)
        headers.update({
            ATTEMPTS_HEADER: attempts,
            "x-dibao-reason": reason[:1000],
            "x-dibao-queue": self.queue.name,
            "x-dibao-source": self.source_service,
            "x-dibao-event-type": self.event_type,
            "x-dibao-handler": f"{self.container.service_name}.{self.method_name}",
            **(extra or {}),
        })
        self.publisher.publish(message.payload, exchange=PARK_EXCHANGE, routing_key="", headers=headers,
                               message_id=message.properties.get("message_id"), user_id=self.own_user)

    def _retry_or_park(self, message, exc_info):
        headers = dict(message.headers or {})
        headers[PUBLISHER_HEADER] = publisher_of_record(message.properties.get("user_id"), headers, self.own_user)
        attempts = int(headers.get(ATTEMPTS_HEADER, 0)) + 1
        exc = exc_info[1]
        reason = f"{type(exc).__name__}: {exc}"
        if isinstance(exc, PERMANENT_ERRORS) or attempts >= self.max_attempts:
            log.error("event parked on %s after %d attempt(s): %s\n%s", DEAD_LETTER_QUEUE, attempts, reason,
                      "".join(traceback.format_exception(*exc_info)))
            self._park(message, headers, reason, attempts)
        else:
            headers[ATTEMPTS_HEADER] = attempts
            delay_ms = int(self.backoff * 1000 * (2 ** (attempts - 1)))
            log.warning("event handler %s failed (attempt %d), retrying in %d ms: %s",
                        self.method_name, attempts, delay_ms, reason)
            self.publisher.publish(message.payload, exchange=RETRY_EXCHANGE, routing_key=self.retry_queue_name,
                                   headers=headers, expiration=delay_ms / 1000.0,
                                   message_id=message.properties.get("message_id"), user_id=self.own_user)


consume_event = ReliableEventHandler.decorator
