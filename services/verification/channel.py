"""The answers' channel: a nameko entrypoint on ``dibao.verification.answers``.

Unlike an event handler it hands the worker the raw bytes and the
``user_id`` RabbitMQ validated (the bureau's broker user, kept by the
shovel, which is tagged ``impersonator``): the service decides on those,
never on what the message says about itself. Nothing is decoded by kombu
(a message that is not JSON, or of another content type, is refused by the
service like any malformed one instead of stopping the consumer).
"""
from __future__ import annotations

import logging
import uuid

import eventlet
from functools import partial

from amqp import Message
from kombu import Queue
from nameko.messaging import Consumer, QueueConsumer

from shared.broker import connection, connection_user, restricted, verification_bureaus
from shared.bus import (DEAD_LETTER_QUEUE, PARK_EXCHANGE, VERIFICATION_ANSWERS_QUEUE, answers_queue,
                        declare_retry_and_park, declare_verification_topology)

log = logging.getLogger(__name__)


class RawQueueConsumer(QueueConsumer):
    """nameko's queue consumer, giving its providers the undecoded message; its prefetch is a batch's
    worth per worker (config VERIFICATION_ANSWERS_BATCH), not one message per worker."""

    @property
    def prefetch_count(self):
        return self.container.max_workers * answers_batch(self.container.config)

    def get_consumers(self, consumer_cls, channel):
        consumers = super().get_consumers(consumer_cls, channel)
        for provider, consumer in self._consumers.items():
            consumer.on_message = partial(self.handle_message, provider, None)
        return consumers


def answers_batch(config: dict) -> int:
    """How many of the bureaus' messages one worker takes in one transaction (at most)."""
    return max(1, int(config.get("VERIFICATION_ANSWERS_BATCH", 200)))


class BureauChannel(Consumer):
    """Delivers the messages in batches: what arrived within ``LINGER`` seconds, up to
    VERIFICATION_ANSWERS_BATCH, to one worker — ``(raw, user_id, message_id)`` each — acked
    together when it returns (requeued together if it fails). At most VERIFICATION_ANSWERS_WORKERS
    batches run at once (more would wait on each other's locks: the 7 answers of a round come in
    different batches); what arrives meanwhile makes the next batch bigger."""

    queue_consumer = RawQueueConsumer()
    LINGER = 0.02

    def __init__(self, **kwargs):
        super().__init__(queue=None, requeue_on_error=True, **kwargs)
        self._pending: list = []
        self._timer = None
        self._running = 0

    def setup(self):
        config = self.container.config
        self.batch = answers_batch(config)
        self.workers = max(1, int(config.get("VERIFICATION_ANSWERS_WORKERS", 2)))
        if restricted(config):      # declared at deploy time (dibao broker setup); the binding is not ours
            self.queue = Queue(VERIFICATION_ANSWERS_QUEUE, durable=True)
        else:
            self.queue = answers_queue()
            with connection(config) as conn:
                declare_verification_topology(conn.default_channel, verification_bureaus(config))
                declare_retry_and_park(conn.default_channel)
        super().setup()

    def handle_message(self, body, message):
        self._pending.append(message)
        if len(self._pending) >= self.batch and self._running < self.workers:
            self._flush()
        elif self._timer is None:
            self._timer = eventlet.spawn_after(self.LINGER, self._flush, True)

    def _flush(self, from_timer: bool = False):
        if self._timer is not None and not from_timer:
            self._timer.cancel()
        self._timer = None
        if not self._pending or self._running >= self.workers:
            return              # a worker's end takes what waits (handle_batch_result)
        messages, self._pending = self._pending[:self.batch], self._pending[self.batch:]
        self._running += 1
        items = [(m.body if isinstance(m.body, bytes) else str(m.body).encode("utf-8"),
                  m.properties.get("user_id"), m.properties.get("message_id")) for m in messages]
        # the events it commits are correlated by a short id of their own (outbox: 64 characters)
        context = {"correlation_id": f"bureau-message-{uuid.uuid4().hex[:16]}"}
        try:
            self.container.spawn_worker(self, (items,), {}, context_data=context,
                                        handle_result=partial(self.handle_batch_result, messages))
        except Exception:
            self._running -= 1
            raise
        if self._pending and self._timer is None:
            self._timer = eventlet.spawn_after(self.LINGER, self._flush, True)

    def handle_batch_result(self, messages, worker_ctx, result=None, exc_info=None):
        for message in messages:
            self.handle_message_processed(message, result, exc_info)
        self._running -= 1
        if self._pending:
            eventlet.spawn_n(self._flush)       # not from inside this worker's result handling
        return result, exc_info

    def stop(self):
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._pending = []      # not acked: the broker delivers them again
        super().stop()


bureau_channel = BureauChannel.decorator


def park(config: dict, raw: bytes, user_id: str | None, reason: str, detail: str) -> None:
    """The refused message onto dibao.dead-letter, with the reason (confirmed by the broker)."""
    own = connection_user(config["AMQP_URI"])
    headers = {"x-dibao-reason": f"{reason}: {detail}"[:1000], "x-dibao-queue": VERIFICATION_ANSWERS_QUEUE,
               "x-dibao-source": "partner", "x-dibao-event-type": "bureau_message",
               "x-dibao-handler": "verification.on_bureau_message",
               "x-dibao-refused-publisher": str(user_id or ""), "x-dibao-attempts": 0}
    with connection(config, connect_timeout=10) as conn:
        channel = conn.channel()
        channel.confirm_select()
        channel.basic_publish_confirm(Message(raw, content_type="application/json", delivery_mode=2,
                                              application_headers=headers, user_id=own),
                                      exchange=PARK_EXCHANGE, routing_key="")
    log.warning("verification refused a bureau message (%s) and parked it on %s", reason, DEAD_LETTER_QUEUE)
