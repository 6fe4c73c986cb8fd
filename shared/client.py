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
    """A cluster RPC proxy acting with ``context`` (None: anonymous, e.g. a ping)."""
    from nameko.standalone.rpc import ClusterRpcProxy

    with ClusterRpcProxy(config, context_data=dict(context or {}),
                         timeout=timeout or float(config.get("RPC_TIMEOUT", 30))) as proxy:
        yield proxy
