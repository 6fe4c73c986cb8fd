"""Revocations travel as identity's events (TOKENS.md): each service process
follows them and its token verifier drops a revoked session, a disabled
account's tokens and tokens claiming a revoked role within seconds.

Each process has its own exclusive, auto-delete queue bound to
``identity.events`` for ``session_revoked``, ``account_disabled`` and
``role_revoked`` — every replica hears every revocation (a shared queue
would give each event to one replica only). A process that starts late asks
``identity.revocations(since)`` once, best effort: identity may not be up,
and the events keep coming either way.
"""
from __future__ import annotations

import logging
import socket
import time
import uuid
from datetime import datetime, timezone

from kombu import Queue, binding

from shared.broker import connection, restricted
from shared.bus import event_exchange
from shared.identity import MAX_TTL_SECONDS, Revocations

log = logging.getLogger(__name__)

SOURCE = "identity"
REVOCATION_EVENTS = ("session_revoked", "account_disabled", "role_revoked")


def _seconds(value) -> float:
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return datetime.fromisoformat(str(value)).timestamp()
    except (TypeError, ValueError):
        return time.time()


def apply_revocation(revocations: Revocations, envelope: dict) -> bool:
    """One identity event applied; False when it is not a revocation."""
    if not isinstance(envelope, dict) or envelope.get("source") != SOURCE:
        return False
    kind, payload = envelope.get("type"), envelope.get("payload") or {}
    at = _seconds(envelope.get("occurred_at"))
    if kind == "session_revoked" and payload.get("session_id"):
        revocations.revoke_session(str(payload["session_id"]), at)
    elif kind == "account_disabled" and payload.get("user"):
        revocations.disable_account(str(payload["user"]), at)
    elif kind == "role_revoked" and payload.get("user") and payload.get("role"):
        revocations.revoke_role(str(payload["user"]), str(payload["role"]), at)
    else:
        return False
    return True


def apply_listed(revocations: Revocations, entries) -> int:
    """``identity.revocations(since)``'s answer: ``{session_id | user, revoked_at}``."""
    n = 0
    for entry in entries or ():
        at = _seconds(entry.get("revoked_at"))
        if entry.get("session_id"):
            revocations.revoke_session(str(entry["session_id"]), at)
        elif entry.get("user"):
            revocations.disable_account(str(entry["user"]), at)
        else:
            continue
        n += 1
    return n


class RevocationListener:
    """The consumer inside each service process (started by ``Identity``)."""

    def __init__(self, config: dict, verification, service: str = "dibao"):
        self.config = config
        self.verification = verification
        self.service = service
        self.running = False
        self.ready = None

    @property
    def revocations(self) -> Revocations:
        return self.verification.verifier.revocations

    def queue(self) -> Queue:
        exchange = event_exchange(SOURCE, passive=restricted(self.config))   # declared at deploy time
        # named as the service's own event queues are (shared.broker: evt-<source>-<type>--<service>.<name>)
        return Queue(f"evt-identity-revocations--{self.service}.{uuid.uuid4().hex[:12]}", exclusive=True,
                     auto_delete=True, durable=False,
                     bindings=[binding(exchange, routing_key=name) for name in REVOCATION_EVENTS])

    def start(self, container) -> None:
        import eventlet.event

        self.service = container.service_name
        self.running = True
        self.ready = eventlet.event.Event()
        container.spawn_managed_thread(self._listen, identifier=f"{self.service}.revocations")
        container.spawn_managed_thread(self._catch_up, identifier=f"{self.service}.revocations_catch_up")
        # the queue is bound before the service takes calls (a revocation
        # published from then on is heard); a broker that is away does not
        # hold the service up for more than a few seconds
        with eventlet.Timeout(10, False):
            self.ready.wait()

    def stop(self) -> None:
        self.running = False

    def _on_message(self, body, message) -> None:
        try:
            if isinstance(body, (bytes, str)):
                import json
                body = json.loads(body)
            apply_revocation(self.revocations, body)
        except Exception:  # noqa: BLE001 - a malformed event must not stop the listener
            log.exception("could not apply an identity event")
        message.ack()

    def _listen(self) -> None:
        import eventlet

        while self.running:
            try:
                with connection(self.config, heartbeat=30) as conn:
                    with conn.Consumer(self.queue(), callbacks=[self._on_message], accept=["json"]):
                        if not self.ready.ready():
                            self.ready.send(True)
                        while self.running:
                            try:
                                conn.drain_events(timeout=1)
                            except socket.timeout:
                                conn.heartbeat_check()
            except Exception as exc:  # noqa: BLE001 - the broker went away: reconnect
                if self.running:
                    log.warning("revocation listener lost the broker (%s); reconnecting", exc)
                    eventlet.sleep(1)

    def _catch_up(self) -> None:
        """Best effort: the revocations still in force, from identity."""
        from shared.broker import rpc_proxy
        from shared.remote import service_context

        try:
            context = service_context(self.config, self.service)
            with rpc_proxy(self.config, self.service, context_data=context, timeout=3) as proxy:
                since = datetime.fromtimestamp(time.time() - MAX_TTL_SECONDS, timezone.utc).isoformat()
                entries = proxy.identity.revocations(since)
            log.info("%d revocation(s) in force from identity", apply_listed(self.revocations, entries))
        except Exception as exc:  # noqa: BLE001 - identity may not run (yet); events still arrive
            log.info("identity.revocations() not available at start-up (%s: %s)", type(exc).__name__, exc)
