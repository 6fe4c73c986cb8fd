"""Reliable event consumption: retry with back-off, then the dead-letter queue.

nameko's ``@event_handler`` acks a message even when the handler raises, so
a failure is forgotten. ``@consume_event`` is a drop-in replacement (same
queue naming, same wire format) whose failure handling is:

- the handler raised ``AlreadyConsumed`` (the inbox saw this event id): ack,
  it is a redelivery;
- a permanent error (a malformed envelope, ``ValidationFailed``): park it on
  ``dibao.dead-letter`` at once, with the reason;
- any other error: republish to ``<queue>.retry`` with a per-message TTL of
  ``INBOX_BACKOFF_SECONDS × 2^(attempt-1)``; that queue dead-letters back to
  the handler's queue when the TTL expires. After ``INBOX_MAX_ATTEMPTS`` it
  is parked on ``dibao.dead-letter`` instead.

The original message is acked only after the retry or parked copy has been
confirmed by the broker, so a crash in between redelivers (at least once);
the inbox makes the redelivery a no-op.

The handler itself records the event id in the same transaction as its
effect: ``with self.db() as uow: uow.consume(event, CONSUMER); ...; uow.commit()``.
"""
from __future__ import annotations

import logging
import traceback

from amqp.exceptions import AMQPError
from kombu import Connection, Queue
from kombu.exceptions import ConnectionError as KombuConnectionError
from nameko.amqp.publish import Publisher
from nameko.events import EventHandler

from shared.bus import DEAD_LETTER_QUEUE, dead_letter_queue
from shared.db import AlreadyConsumed
from shared.errors import ValidationFailed

log = logging.getLogger(__name__)

ATTEMPTS_HEADER = "x-dibao-attempts"
PERMANENT_ERRORS = (ValidationFailed,)


class ReliableEventHandler(EventHandler):
    def __init__(self, source_service, event_type, **kwargs):
        kwargs.setdefault("expected_exceptions", (AlreadyConsumed,))
        super().__init__(source_service, event_type, **kwargs)

    def setup(self):
        super().setup()
        config = self.container.config
        self.max_attempts = int(config.get("INBOX_MAX_ATTEMPTS", 5))
        self.backoff = float(config.get("INBOX_BACKOFF_SECONDS", 1.0))
        self.retry_queue_name = f"{self.queue.name}.retry"
        self.publisher = Publisher(config["AMQP_URI"], use_confirms=True, serializer="json")
        with Connection(config["AMQP_URI"]) as conn:
            channel = conn.default_channel
            Queue(self.retry_queue_name, durable=True, queue_arguments={
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": self.queue.name,
            })(channel).declare()
            dead_letter_queue()(channel).declare()

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

    def _retry_or_park(self, message, exc_info):
        headers = dict(message.headers or {})
        attempts = int(headers.get(ATTEMPTS_HEADER, 0)) + 1
        headers[ATTEMPTS_HEADER] = attempts
        exc = exc_info[1]
        reason = f"{type(exc).__name__}: {exc}"
        if isinstance(exc, PERMANENT_ERRORS) or attempts >= self.max_attempts:
            headers.update({
                "x-dibao-reason": reason[:1000],
                "x-dibao-queue": self.queue.name,
                "x-dibao-source": self.source_service,
                "x-dibao-event-type": self.event_type,
                "x-dibao-handler": f"{self.container.service_name}.{self.method_name}",
            })
            log.error("event parked on %s after %d attempt(s): %s\n%s", DEAD_LETTER_QUEUE, attempts, reason,
                      "".join(traceback.format_exception(*exc_info)))
            self.publisher.publish(message.payload, exchange=None, routing_key=DEAD_LETTER_QUEUE,
                                   headers=headers, message_id=message.properties.get("message_id"))
        else:
            delay_ms = int(self.backoff * 1000 * (2 ** (attempts - 1)))
            log.warning("event handler %s failed (attempt %d), retrying in %d ms: %s",
                        self.method_name, attempts, delay_ms, reason)
            self.publisher.publish(message.payload, exchange=None, routing_key=self.retry_queue_name,
                                   headers=headers, expiration=delay_ms / 1000.0,
                                   message_id=message.properties.get("message_id"))


consume_event = ReliableEventHandler.decorator
