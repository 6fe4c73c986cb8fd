"""Operator tools for the dead-letter queue: list parked events, replay them.

A replayed event goes back to the queue of the handler that failed it
(through ``dibao.retry``), with its attempt count reset; the handler's inbox
makes a replay of an event it did after all process a no-op.

With broker users on (pass the config, not a URI), the list is read as the
operators' tool user, and each event is replayed *as the service that
parked it* — the broker user that may publish to ``dibao.retry`` and whose
``x-dibao-publisher`` header that service trusts — so a replay is accepted
exactly when the event's original publisher was its source.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from kombu import Connection
from amqp import Message

from shared.broker import connection_user, restricted, uri_for
from shared.bus import AUDIT_QUEUE, DEAD_LETTER_QUEUE, RETRY_EXCHANGE, dead_letter_queue
from shared.inbox import ATTEMPTS_HEADER, PUBLISHER_HEADER


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


def _reader(where: str | dict) -> tuple[str, bool]:
    if isinstance(where, str):
        return where, False
    return uri_for(where, "cli"), restricted(where)


def _declare(channel, passive: bool) -> None:
    if passive:
        channel.queue_declare(DEAD_LETTER_QUEUE, passive=True)
    else:
        dead_letter_queue()(channel).declare()


def list_parked(where: str | dict, limit: int = 100) -> list[ParkedEvent]:
    """Read parked events without removing them (``where``: a URI, or the config)."""
    out = []
    uri, passive = _reader(where)
    with Connection(uri) as conn:
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


class _Publishers:
    """One confirming channel per broker user that replays (see the module doc)."""

    def __init__(self, where: str | dict):
        self.where = where
        self.open: dict[str, tuple] = {}

    def channel_for(self, handler: str):
        if isinstance(self.where, str):
            uri = self.where
        else:
            service = "audit" if handler == "audit.ingest" else handler.split(".", 1)[0]
            uri = uri_for(self.where, service)
        if uri not in self.open:
            conn = Connection(uri)
            conn.connect()
            channel = conn.channel()
            channel.confirm_select()
            self.open[uri] = (conn, channel, connection_user(uri))
        return self.open[uri][1:]

    def close(self):
        for conn, _, _ in self.open.values():
            conn.release()


def replay(where: str | dict, message_id: str | None = None) -> int:
    """Send parked events (all, or the one with ``message_id``) back to their
    queue (``where``: a URI, or the config)."""
    replayed = 0
    uri, passive = _reader(where)
    publishers = _Publishers(where)
    try:
        with Connection(uri) as conn:
            channel = conn.channel()
            _declare(channel, passive)
            keep = []
            # only what is parked now: an event parked again while we replay comes after them
            remaining = channel.queue_declare(DEAD_LETTER_QUEUE, passive=True).message_count
            while remaining > 0:
                remaining -= 1
                msg = channel.basic_get(DEAD_LETTER_QUEUE, no_ack=False)
                if msg is None:
                    break
                headers = dict(msg.headers or {})
                target = headers.get("x-dibao-queue")
                if not target or (message_id and msg.properties.get("message_id") != message_id):
                    keep.append(msg.delivery_tag)
                    continue
                out, user = publishers.channel_for(str(headers.get("x-dibao-handler") or
                                                       ("audit.ingest" if target == AUDIT_QUEUE else "")))
                for key in [k for k in headers if k.startswith("x-dibao-") and k != PUBLISHER_HEADER]:
                    headers.pop(key)
                props = {k: v for k, v in msg.properties.items()
                         if k in ("content_type", "content_encoding", "message_id")}
                out.basic_publish_confirm(Message(msg.body, application_headers=headers, delivery_mode=2,
                                                  user_id=user, **props),
                                          exchange=RETRY_EXCHANGE, routing_key=target)
                channel.basic_ack(msg.delivery_tag)
                replayed += 1
            for tag in keep:
                channel.basic_reject(tag, requeue=True)
            channel.close()
    finally:
        publishers.close()
    return replayed
