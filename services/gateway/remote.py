"""Calling the services as the person who is logged in (never as a super-user).

``calls = PersonRpc()`` in the gateway; then ``self.calls.intake.get_household(id)``
carries the token of the request (the worker's context data ``auth_token``:
the API client's bearer token or the console's session cookie), so the
service checks that person's roles and jurisdiction and records the command
as theirs. ``self.calls.anonymous`` calls without a token (a login, a
health check); ``self.calls.with_token(t)`` with another token of the same
person (the password-change token identity gives a login that must change
its password). There is no way to call with the gateway's own identity
here: ``service:gateway`` may call ``identity.revocations`` only
(shared/permissions.py), which the platform does by itself.

Proxies are pooled (one per concurrent worker) and connect as the gateway's
own broker user; every call gives up after ``RPC_TIMEOUT`` seconds.
"""
from __future__ import annotations

from shared.identity import AUTH_TOKEN_KEY
from shared.remote import ServiceRpc


class _Acting:
    """A borrowed proxy acting with one token (or none)."""

    def __init__(self, provider: "PersonRpc", worker_ctx, token: str | None):
        self._provider = provider
        self._worker_ctx = worker_ctx
        self._token = token
        self._proxy = None

    def __getattr__(self, service_name):
        if service_name.startswith("_"):
            raise AttributeError(service_name)
        if self._proxy is None:
            self._proxy = self._provider.pool.get()
            self._provider.borrowed.setdefault(self._worker_ctx, []).append(self._proxy)
        data = self._proxy[0]._worker_ctx.data
        data.pop(AUTH_TOKEN_KEY, None)
        if self._token:
            data[AUTH_TOKEN_KEY] = self._token
        data["correlation_id"] = self._worker_ctx.call_id
        return getattr(self._proxy[1], service_name)


class Calls:
    """What a gateway worker sees: the services, called as the request's person."""

    def __init__(self, provider: "PersonRpc", worker_ctx):
        self._provider = provider
        self._worker_ctx = worker_ctx
        self._person = None

    @property
    def token(self) -> str | None:
        return self._worker_ctx.context_data.get(AUTH_TOKEN_KEY)

    def __getattr__(self, service_name):
        if service_name.startswith("_"):
            raise AttributeError(service_name)
        if self._person is None:
            self._person = _Acting(self._provider, self._worker_ctx, self.token)
        return getattr(self._person, service_name)

    @property
    def how_authenticated(self) -> str | None:
        """``bearer`` | ``cookie`` | None: how the request's token came (services.gateway.http)."""
        return self._worker_ctx.context_data.get("dibao_token_from")

    @property
    def anonymous(self) -> _Acting:
        return _Acting(self._provider, self._worker_ctx, None)

    def with_token(self, token: str | None) -> _Acting:
        return _Acting(self._provider, self._worker_ctx, token)


class PersonRpc(ServiceRpc):
    """``ServiceRpc``'s pool of timed proxies, lent out acting as the request's person."""

    def get_dependency(self, worker_ctx):
        return Calls(self, worker_ctx)

    def worker_teardown(self, worker_ctx):
        for entry in self.borrowed.pop(worker_ctx, ()):
            entry[0]._worker_ctx.data.pop(AUTH_TOKEN_KEY, None)   # no token stays on a pooled proxy
            self.pool.put(entry)
