"""Operator tools for the dead-letter queue: list parked events, replay them.

A replayed event goes back to the queue of the handler that failed it, with
its attempt count reset; the handler's inbox makes a replay of an event it
did after all process a no-op.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from kombu import Connection
from amqp import Message

from shared.bus import DEAD_LETTER_QUEUE, dead_letter_queue
from shared.inbox import ATTEMPTS_HEADER


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


def replay(amqp_uri: str, message_id: str | None = None) -> int:
    """Send parked events (all, or the one with ``message_id``) back to their queue."""
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
            if not target or (message_id and msg.properties.get("message_id") != message_id):
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
