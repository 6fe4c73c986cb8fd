"""Calling Dibao from outside a service: the CLI, scripts, partner tools.

``rpc_with(config, context)`` is a cluster RPC proxy that carries the given
context data (a logged-in person's token: ``{"auth_token": ...}``) and never
waits forever (``RPC_TIMEOUT``). Nothing here makes a token: only the
identity service signs them (``dibao login``).
"""
from __future__ import annotations

from contextlib import contextmanager


@contextmanager
def rpc_with(config: dict, context: dict | None = None, timeout: float | None = None):
    """A cluster RPC proxy acting with ``context`` (a logged-in person's token;
    None: anonymous, e.g. a ping), with a timeout; on the broker it connects as
    the operators' tools user (``<prefix>cli``) when broker users are on
    (:mod:`shared.broker`) — or, inside a service's container (the
    gateway's), as that service's own user."""
    from shared.broker import rpc_proxy

    with rpc_proxy(config, config.get("BROKER_SERVICE") or "cli", context_data=dict(context or {}),
                   timeout=timeout or float(config.get("RPC_TIMEOUT", 30))) as proxy:
        yield proxy
