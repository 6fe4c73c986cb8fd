"""Calling another Dibao service from inside a service, with a timeout, as
the calling service itself.

nameko's own ``RpcProxy`` dependency waits forever for an answer; this one
gives up after ``RPC_TIMEOUT`` seconds (``nameko.exceptions.RpcTimeout``) and
acts as the calling service (``service:<name>``), which is what an event
handler needs: it has no operator's token to pass on. The service's token
comes from identity — ``identity.service_token(service, SERVICE_SECRET_<NAME>)``
— and is kept until shortly before it expires; what that identity may call
is :data:`shared.permissions.SERVICE_PERMISSIONS`. Typed errors arrive as
themselves (shared.errors). Proxies are pooled, one per concurrent worker.
"""
from __future__ import annotations

import threading
import time
from typing import Callable

import eventlet.pools
from nameko.extensions import DependencyProvider

from shared.broker import rpc_proxy

from shared.identity import AUTH_TOKEN_KEY

#: renew a service token this many seconds before it expires
RENEW_BEFORE_SECONDS = 600

#: ``issuer(config, service) -> (token, expires_at)`` when something other than
#: the identity service issues service tokens: only the test harness (it plays
#: identity: shared.testing). None: ask identity (``dibao up``, the demo's own
#: services, a deployment).
_test_issuer: Callable[[dict, str], tuple[str, float]] | None = None
_cache: dict[tuple[str, str], tuple[str, float]] = {}
_lock = threading.Lock()


def install_test_issuer(issuer: Callable[[dict, str], tuple[str, float]] | None) -> None:
    """The test harness plays identity (shared.testing); see ``_test_issuer``."""
    global _test_issuer
    _test_issuer = issuer
    _cache.clear()


def from_identity(config: dict, service: str) -> tuple[str, float]:
    from shared.secrets import load_secret

    secret = load_secret(config, f"SERVICE_SECRET_{service.upper()}")
    with rpc_proxy(config, service, timeout=float(config.get("RPC_TIMEOUT", 30))) as proxy:
        answer = proxy.identity.service_token(service, secret)
    expires = answer.get("expires_at")
    if isinstance(expires, str):
        from datetime import datetime
        expires = datetime.fromisoformat(expires).timestamp()
    return answer["token"], float(expires)


def service_token(config: dict, service: str) -> str:
    """The service's own token (``service:<service>``), cached until near expiry."""
    key = (config.get("AMQP_URI", ""), service)
    with _lock:
        cached = _cache.get(key)
    if cached and cached[1] - RENEW_BEFORE_SECONDS > time.time():
        return cached[0]
    token, expires = (_test_issuer or from_identity)(config, service)
    with _lock:
        _cache[key] = (token, expires)
    return token


def service_context(config: dict, service: str) -> dict:
    """Context data for a standalone proxy acting as the service itself."""
    return {AUTH_TOKEN_KEY: service_token(config, service)}


class _Borrowed:
    def __init__(self, provider, worker_ctx):
        self._provider = provider
        self._worker_ctx = worker_ctx
        self._proxy = None

    def __getattr__(self, service_name):
        if self._proxy is None:
            self._proxy = self._provider.pool.get()
            self._provider.borrowed[self._worker_ctx] = self._proxy
            # the service's current token and this worker's correlation id on every borrow
            # (``.data``: ``context_data`` is a copy, an update to it would be lost)
            data = self._proxy[0]._worker_ctx.data
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
        self.pool = eventlet.pools.Pool(max_size=int(config.get("max_workers", 10)), create=self._create)
        self.borrowed = {}
        self.created = []

    def context(self) -> dict:
        """The service's own actor token (renewed shortly before it expires)."""
        return service_context(self.config, self.container.service_name)

    def _create(self):
        # reply queues rpc.reply-<service>-<uuid>: only this service's broker user may read them
        standalone = rpc_proxy(self.config, self.container.service_name, context_data={}, timeout=self.timeout)
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
