"""The broker topology Dibao relies on, declared in one place.

- ``<service>.events``: each service's durable topic exchange, declared
  exactly as nameko declares it, so nameko's own ``@event_handler`` and our
  relay agree (a mismatch would be a PRECONDITION_FAILED channel error).
- ``<service>.partner-events``: the same events in the form partner bureaus
  may see, for the partner-safe types only (:mod:`shared.partners` shovels
  them into each partner's own vhost).
- ``dibao.audit``: the audit service's queue, bound to every service's
  exchange with ``#``, so no event is lost to the audit trail even when the
  audit service has never run yet (DESIGN §3.3).
- ``dibao.dead-letter``: where an event handler that keeps failing, or an
  event whose publisher is not its source, is parked with the reason for an
  operator to list and replay; events reach it through the ``dibao.park``
  exchange.
- ``nameko-rpc``: nameko's RPC exchange, declared here as nameko declares it
  (topic, durable), so no service needs the right to declare — or delete —
  it (:mod:`shared.rpc_queues`).
- ``dibao.retry``: a direct exchange; routing key ``<queue>.delay`` reaches a
  handler's delay queue (a retry waiting out its back-off), ``<queue>`` the
  handler's queue itself (the delay's dead-lettering, an operator's replay).

Nobody publishes through the default exchange: with per-service broker
users (:mod:`shared.broker`) no user may, so no one can put a message
straight into another service's queue.

``dibao broker setup`` declares all of it at deploy time
(:func:`declare_core_topology`); a service that connects as its own user
declares only what is its own and the rest passively. With broker users
off (one user for everything, the test suite's default), every producer
declares the core topology itself at start-up, as before.
"""
from __future__ import annotations

from kombu import Exchange, Queue, binding

from shared.secrets import SERVICE_NAMES

AUDIT_QUEUE = "dibao.audit"
DEAD_LETTER_QUEUE = "dibao.dead-letter"
RETRY_EXCHANGE = "dibao.retry"
PARK_EXCHANGE = "dibao.park"
DELAY_SUFFIX = ".delay"
RPC_EXCHANGE = "nameko-rpc"


def event_exchange(service: str, passive: bool = False) -> Exchange:
    # Same arguments as nameko.standalone.events.get_event_exchange
    # (topic, durable, not auto-delete, persistent delivery).
    return Exchange(f"{service}.events", type="topic", durable=True, delivery_mode=2, auto_delete=False,
                    passive=passive)


def partner_exchange(service: str, passive: bool = False) -> Exchange:
    return Exchange(f"{service}.partner-events", type="topic", durable=True, delivery_mode=2, auto_delete=False,
                    passive=passive)


def retry_exchange(passive: bool = False) -> Exchange:
    return Exchange(RETRY_EXCHANGE, type="direct", durable=True, passive=passive)


def park_exchange(passive: bool = False) -> Exchange:
    return Exchange(PARK_EXCHANGE, type="fanout", durable=True, passive=passive)


def rpc_exchange() -> Exchange:
    # Same arguments as nameko.rpc.get_rpc_exchange (its default name).
    return Exchange(RPC_EXCHANGE, type="topic", durable=True)


def audit_queue(service: str) -> Queue:
    return Queue(AUDIT_QUEUE, exchange=event_exchange(service), routing_key="#", durable=True)


def dead_letter_queue() -> Queue:
    return Queue(DEAD_LETTER_QUEUE, durable=True)


def declare_core_topology(channel, services=SERVICE_NAMES) -> None:
    """Every exchange, the audit and dead-letter queues and their bindings
    (idempotent): what ``dibao broker setup`` declares as the administrator."""
    audit = Queue(AUDIT_QUEUE, durable=True)(channel)
    audit.declare()
    for name in services:
        ex = event_exchange(name)(channel)
        ex.declare()
        partner_exchange(name)(channel).declare()
        audit.bind_to(exchange=ex, routing_key="#")
    declare_retry_and_park(channel)
    rpc_exchange()(channel).declare()
    audit.bind_to(exchange=RETRY_EXCHANGE, routing_key=AUDIT_QUEUE)     # replays of parked audit records


def declare_retry_and_park(channel) -> None:
    """``dibao.retry``, ``dibao.park`` and the dead-letter queue (idempotent)."""
    retry_exchange()(channel).declare()
    park = park_exchange()(channel)
    park.declare()
    dlq = dead_letter_queue()(channel)
    dlq.declare()
    dlq.bind_to(exchange=park, routing_key="")


def declare_producer_topology(channel, service: str, restricted: bool = False) -> None:
    """What every producer declares before it publishes (idempotent). A
    restricted user (its own broker user) only checks that its exchanges
    exist — declared by ``dibao broker setup``, or a clear NOT_FOUND error."""
    if restricted:
        event_exchange(service, passive=True)(channel).declare()
        partner_exchange(service, passive=True)(channel).declare()
        return
    declare_core_topology(channel, tuple(dict.fromkeys((service,) + tuple(SERVICE_NAMES))))


def handler_queue(name: str, source: str, event_type: str, restricted: bool, **options) -> Queue:
    """An event handler's queue: bound to the source's exchange (declared
    passively by a restricted user) and, by its own name, to ``dibao.retry``."""
    return Queue(name, bindings=[binding(event_exchange(source, passive=restricted), routing_key=event_type),
                                 binding(retry_exchange(passive=restricted), routing_key=name)], **options)


def delay_queue(handler_queue_name: str, restricted: bool) -> Queue:
    """Where a failed event waits out its back-off (per-message TTL), then
    dead-letters back to the handler's queue through ``dibao.retry``."""
    name = handler_queue_name + DELAY_SUFFIX
    return Queue(name, exchange=retry_exchange(passive=restricted), routing_key=name, durable=True,
                 queue_arguments={"x-dead-letter-exchange": RETRY_EXCHANGE,
                                  "x-dead-letter-routing-key": handler_queue_name})
