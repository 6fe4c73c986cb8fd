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

With broker users on, the service replays as its own broker user through
``dibao.retry`` (nobody may publish to the default exchange), keeping the
publisher it had recorded when it parked the event (``x-dibao-publisher``):
its inbox accepts a replay exactly when the event's original publisher was
its source — a parked forgery is parked again, never laundered.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from kombu import Connection
from amqp import Message
from nameko.extensions import DependencyProvider

from shared.broker import connection_user, restricted, ssl_options, uri_for
from shared.bus import DEAD_LETTER_QUEUE, RETRY_EXCHANGE, dead_letter_queue
from shared.errors import ValidationFailed
from shared.identity import Identity, Role, authorize
from shared.inbox import ATTEMPTS_HEADER, PUBLISHER_HEADER, ReliableEventHandler
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


def _reader(where: str | dict) -> tuple[str, bool, object]:
    """(URI, passive?, kombu ssl) of a URI, or of a config: as the tools' user."""
    if isinstance(where, str):
        return where, False, False
    return uri_for(where, "cli"), restricted(where), ssl_options(where)


def _declare(channel, passive: bool) -> None:
    if passive:
        channel.queue_declare(DEAD_LETTER_QUEUE, passive=True)
    else:
        dead_letter_queue()(channel).declare()


def list_parked(where: str | dict, limit: int = 100) -> list[ParkedEvent]:
    """Read parked events without removing them (``where``: a URI, or the config)."""
    out = []
    uri, passive, ssl = _reader(where)
    with Connection(uri, ssl=ssl) as conn:
        channel = conn.channel()
        _declare(channel, passive)
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


def replay(amqp_uri: str, queues, message_id: str | None = None, passive: bool = False, ssl=False) -> int:
    """Send parked events (all, or the one with ``message_id``) whose queue is
    one of ``queues`` back to it, through ``dibao.retry`` as ``amqp_uri``'s
    user; every other parked event stays parked. Only what is parked when it
    begins: an event parked again meanwhile waits for the next replay."""
    queues = frozenset(queues)
    replayed = 0
    user = connection_user(amqp_uri)
    with Connection(amqp_uri, ssl=ssl) as conn:
        channel = conn.channel()
        channel.confirm_select()
        _declare(channel, passive)
        keep = []
        remaining = channel.queue_declare(DEAD_LETTER_QUEUE, passive=True).message_count
        while remaining > 0:
            remaining -= 1
            msg = channel.basic_get(DEAD_LETTER_QUEUE, no_ack=False)
            if msg is None:
                break
            headers = dict(msg.headers or {})
            target = headers.get("x-dibao-queue")
            if target not in queues or (message_id and msg.properties.get("message_id") != message_id):
                keep.append(msg.delivery_tag)
                continue
            for key in [k for k in headers if k.startswith("x-dibao-") and k != PUBLISHER_HEADER]:
                headers.pop(key)
            props = {k: v for k, v in msg.properties.items() if k in ("content_type", "content_encoding", "message_id")}
            channel.basic_publish_confirm(Message(msg.body, application_headers=headers, delivery_mode=2,
                                                  user_id=user, **props),
                                          exchange=RETRY_EXCHANGE, routing_key=target)
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
        config = self.container.config
        uri, queues, passive = config["AMQP_URI"], handler_queues(self.container), restricted(config)
        return lambda message_id=None: replay(uri, queues, message_id, passive, ssl_options(config))


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
