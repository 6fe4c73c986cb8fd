"""The broker topology Dibao relies on, declared in one place.

- ``<service>.events``: each service's durable topic exchange, declared
  exactly as nameko declares it, so nameko's own ``@event_handler`` and our
  relay agree (a mismatch would be a PRECONDITION_FAILED channel error).
- ``dibao.audit``: the audit service's queue, bound to every service's
  exchange with ``#``. Every producer declares it at start-up, before it
  publishes anything, so no event is lost to the audit trail even when the
  audit service has never run yet (DESIGN §3.3).
- ``dibao.dead-letter``: where an event handler that keeps failing parks
  the event, with the reason, for an operator to list and replay.
"""
from __future__ import annotations

from kombu import Exchange, Queue

from shared.config import SERVICES

AUDIT_QUEUE = "dibao.audit"
DEAD_LETTER_QUEUE = "dibao.dead-letter"
RETRY_EXCHANGE = "dibao.retry"


def event_exchange(service: str) -> Exchange:
    # Same arguments as nameko.standalone.events.get_event_exchange
    # (topic, durable, not auto-delete, persistent delivery).
    return Exchange(f"{service}.events", type="topic", durable=True, delivery_mode=2, auto_delete=False)


def audit_queue(service: str) -> Queue:
    return Queue(AUDIT_QUEUE, exchange=event_exchange(service), routing_key="#", durable=True)


def dead_letter_queue() -> Queue:
    return Queue(DEAD_LETTER_QUEUE, durable=True)


def declare_producer_topology(channel, service: str) -> None:
    """What every producer declares before it publishes (idempotent)."""
    event_exchange(service)(channel).declare()
    # The audit queue hears every service; binding it to all known exchanges
    # here makes the audit trail complete from the first event on.
    q = Queue(AUDIT_QUEUE, durable=True)(channel)
    q.declare()
    for name in SERVICES:
        ex = event_exchange(name)(channel)
        ex.declare()
        q.bind_to(exchange=ex, routing_key="#")
    dead_letter_queue()(channel).declare()
