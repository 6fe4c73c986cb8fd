"""Calling another Dibao service from inside a service, with a timeout.

nameko's own ``RpcProxy`` dependency waits forever for an answer; this one
gives up after ``RPC_TIMEOUT`` seconds (``nameko.exceptions.RpcTimeout``) and
acts as the calling service itself (role ``system``), which is what an event
handler needs: it has no operator's token to pass on. Typed errors arrive
as themselves (shared.errors). Proxies are pooled, one per concurrent worker.
"""
from __future__ import annotations

import time

import eventlet.pools
from nameko.extensions import DependencyProvider

from shared.broker import rpc_proxy

from shared.client import context
from shared.identity import Role


class _Borrowed:
    def __init__(self, provider, worker_ctx):
        self._provider = provider
        self._worker_ctx = worker_ctx
        self._proxy = None

    def __getattr__(self, service_name):
        if self._proxy is None:
            self._proxy = self._provider.pool.get()
            self._provider.borrowed[self._worker_ctx] = self._proxy
            # a fresh system token and this worker's correlation id on every borrow
            data = self._proxy[0]._worker_ctx.context_data
            data.update(self._provider.context())
            data["correlation_id"] = (self._worker_ctx.context_data.get("correlation_id")
                                      or self._worker_ctx.call_id)
        return getattr(self._proxy[1], service_name)


class ServiceRpc(DependencyProvider):
    """``remote = ServiceRpc()`` then ``self.remote.intake.get_household(id)``."""

    def setup(self):
        config = self.container.config
        self.config = config
        self.timeout = float(config.get("RPC_TIMEOUT", 30))
        self._token = (0.0, {})
        self.pool = eventlet.pools.Pool(max_size=int(config.get("max_workers", 10)), create=self._create)
        self.borrowed = {}
        self.created = []

    def context(self) -> dict:
        """The service's own actor token, renewed every half hour."""
        issued, data = self._token
        if time.time() - issued > 1800:
            name = self.container.service_name
            data = context(self.config, Role.SYSTEM, "", user=f"service:{name}", name=f"{name} service")
            self._token = (time.time(), data)
        return dict(data)

    def _create(self):
        # reply queues rpc.reply-<service>-<uuid>: only this service's broker user may read them
        standalone = rpc_proxy(self.config, self.container.service_name, context_data=self.context(),
                               timeout=self.timeout)
        entry = (standalone, standalone.start())
        self.created.append(entry)
        return entry

    def get_dependency(self, worker_ctx):
        return _Borrowed(self, worker_ctx)

    def worker_teardown(self, worker_ctx):
        entry = self.borrowed.pop(worker_ctx, None)
        if entry is not None:
            self.pool.put(entry)

    def stop(self):
        for standalone, _ in self.created:
            try:
                standalone.stop()
            except Exception:  # noqa: BLE001 - the broker may be gone already
                pass
        self.created.clear()

    kill = stop
