"""Operator tools for the dead-letter queue: list parked events, replay them.

A replayed event goes back to the queue of the handler that failed it, with
its attempt count reset; the handler's inbox makes a replay of an event it
did after all process a no-op.

Replay is a command of the service whose handler failed (``<service>.
replay_dead_letters``, :class:`DeadLetterReplay`): only the system
administrator may call it, the command record (:mod:`shared.commands`) puts
it in the audit, and it sends events only to that service's own handler
queues — the queues of its ``@consume_event`` entrypoints, read from the
running container, never a list kept by hand. A parked message naming any
other queue (an RPC queue, the audit's queue, a queue nobody consumes) stays
parked.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from kombu import Connection
from amqp import Message
from nameko.extensions import DependencyProvider

from shared.bus import DEAD_LETTER_QUEUE, dead_letter_queue
from shared.errors import ValidationFailed
from shared.identity import Identity, Role, authorize
from shared.inbox import ATTEMPTS_HEADER, ReliableEventHandler
from shared.rpc import rpc


@dataclass
class ParkedEvent:
    message_id: str | None
    queue: str
    handler: str
    event_type: str
    reason: str
    attempts: int
    body: dict


def _parked(msg) -> ParkedEvent:
    headers = msg.headers or {}
    body = msg.body
    try:
        body = json.loads(body)
    except (TypeError, ValueError):
        body = {"raw": body if isinstance(body, str) else repr(body)}
    return ParkedEvent(msg.properties.get("message_id"), headers.get("x-dibao-queue", ""),
                       headers.get("x-dibao-handler", ""), headers.get("x-dibao-event-type", ""),
                       headers.get("x-dibao-reason", ""), int(headers.get(ATTEMPTS_HEADER, 0)), body)


def list_parked(amqp_uri: str, limit: int = 100) -> list[ParkedEvent]:
    """Read parked events without removing them."""
    out = []
    with Connection(amqp_uri) as conn:
        channel = conn.channel()
        dead_letter_queue()(channel).declare()
        held = []
        while len(out) < limit:
            msg = channel.basic_get(DEAD_LETTER_QUEUE, no_ack=False)
            if msg is None:
                break
            held.append(msg.delivery_tag)
            out.append(_parked(msg))
        for tag in held:
            channel.basic_reject(tag, requeue=True)
        channel.close()
    return out


def replay(amqp_uri: str, queues, message_id: str | None = None) -> int:
    """Send parked events (all, or the one with ``message_id``) whose queue is
    one of ``queues`` back to it; every other parked event stays parked."""
    queues = frozenset(queues)
    replayed = 0
    with Connection(amqp_uri) as conn:
        channel = conn.channel()
        channel.confirm_select()
        dead_letter_queue()(channel).declare()
        keep = []
        while True:
            msg = channel.basic_get(DEAD_LETTER_QUEUE, no_ack=False)
            if msg is None:
                break
            headers = dict(msg.headers or {})
            target = headers.get("x-dibao-queue")
            if target not in queues or (message_id and msg.properties.get("message_id") != message_id):
                keep.append(msg.delivery_tag)
                continue
            for key in [k for k in headers if k.startswith("x-dibao-")]:
                headers.pop(key)
            props = {k: v for k, v in msg.properties.items() if k in ("content_type", "content_encoding", "message_id")}
            channel.basic_publish_confirm(Message(msg.body, application_headers=headers, delivery_mode=2, **props),
                                          exchange="", routing_key=target)
            channel.basic_ack(msg.delivery_tag)
            replayed += 1
        for tag in keep:
            channel.basic_reject(tag, requeue=True)
        channel.close()
    return replayed


def handler_queues(container) -> frozenset[str]:
    """The queues a running service consumes and parks failures from: its
    inbox consumers' (``@consume_event``) and any dependency that names its
    ``handler_queue`` (the audit's batch ingest)."""
    queues = {ext.queue.name for ext in container.entrypoints if isinstance(ext, ReliableEventHandler)}
    queues.update(q for q in (getattr(dep, "handler_queue", None) for dep in container.dependencies) if q)
    return frozenset(queues)


class DeadLetters(DependencyProvider):
    """``replay(message_id=None)``: this service's parked events back to its own handler queues."""

    def get_dependency(self, worker_ctx):
        uri, queues = self.container.config["AMQP_URI"], handler_queues(self.container)
        return lambda message_id=None: replay(uri, queues, message_id)


class DeadLetterReplay:
    """Mixed into every service with inbox consumers: its dead-letter replay as a recorded command."""

    caller = Identity()
    dead_letters = DeadLetters()

    @rpc(record_reads=True)   # recorded even though it writes nothing to the service's database
    def replay_dead_letters(self, message_id=None):
        """Parked events back to this service's handler queues (all, or one by message id)."""
        if message_id is not None and not isinstance(message_id, str):
            raise ValidationFailed.field("message_id", "a message id (text)")
        authorize(self.caller.actor, (Role.SYSTEM_ADMIN,))  # the system administrator only
        return {"replayed": self.dead_letters(message_id)}
