"""Calling Dibao from outside a service: the CLI, scripts, partner tools.

``rpc_as(config, role, unit)`` is a cluster RPC proxy that carries a signed
actor token and never waits forever (``RPC_TIMEOUT``).
"""
from __future__ import annotations

from contextlib import contextmanager

from shared.identity import AUTH_TOKEN_KEY, Role, issue_token


def context(config: dict, role: Role | str, unit: str, user: str | None = None, name: str | None = None) -> dict:
    role = Role(role)
    user = user or f"{role.value}-{unit}"
    return {AUTH_TOKEN_KEY: issue_token(config["TOKEN_KEY"], user, name or user, role, unit)}


@contextmanager
def rpc_as(config: dict, role: Role | str, unit: str, user: str | None = None, name: str | None = None,
           timeout: float | None = None):
    """A cluster RPC proxy acting as the given actor, with a timeout; on the
    broker it connects as the operators' tools user (``<prefix>cli``) when
    broker users are on (:mod:`shared.broker`) — or, inside a service's
    container (the gateway's), as that service's own user."""
    from shared.broker import rpc_proxy

    with rpc_proxy(config, config.get("BROKER_SERVICE") or "cli", context_data=context(config, role, unit, user, name),
                   timeout=timeout or float(config.get("RPC_TIMEOUT", 30))) as proxy:
        yield proxy
