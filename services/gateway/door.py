"""The public door: what the pages without a login (the notice boards, an
online objection, the status lookup: pages/public.py) call with, and how
often an address may use them.

- **The gateway's own identity.** A visitor has no token, so the public
  pages call as ``service:gateway`` (its token from identity, as every
  service's: shared.remote), and that identity may call exactly the public
  reads and the online objection — ``notify.public_board``,
  ``notify.public_sheet``, ``notify.file_public_objection``,
  ``intake.public_application_check``, ``review.public_status``, the online
  appeal ``review.file_public_appeal`` — besides
  ``identity.revocations`` (shared/permissions.py). No person's page uses it.
- **Rate limits per client address** (a sliding window, in this gateway
  process's memory): ``PUBLIC_OBJECTION_LIMIT`` online objections and
  ``PUBLIC_STATUS_LIMIT`` status lookups and ``PUBLIC_APPEAL_LIMIT`` online
  appeals (复核, every attempt counted), each ``"<count>/<seconds>"``
  (defaults ``5/3600``, ``10/600`` and ``5/3600``). The address is the connection's,
  or — only when ``WEB_CLIENT_ADDRESS_HEADER`` names one (behind a
  reverse proxy that sets it) — the last entry of that header. Addresses
  are kept in memory only, never logged or stored.

The service hands the door to the console's pages in the request's WSGI
environment (``DOOR_KEY``): :func:`door_of`.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

from nameko.extensions import DependencyProvider

from shared.remote import service_token

DOOR_KEY = "dibao.public_door"
DEFAULT_LIMITS = {"objection": "5/3600", "status": "10/600", "appeal": "5/3600"}
LIMIT_KEYS = {"objection": "PUBLIC_OBJECTION_LIMIT", "status": "PUBLIC_STATUS_LIMIT", "appeal": "PUBLIC_APPEAL_LIMIT"}
#: addresses remembered per limit before the idle ones are dropped
MAX_ADDRESSES = 20000


@dataclass(frozen=True)
class Limit:
    count: int
    seconds: float

    @classmethod
    def parse(cls, text: str, key: str) -> "Limit":
        try:
            count, _, seconds = str(text).partition("/")
            limit = cls(int(count), float(seconds))
        except ValueError:
            raise ValueError(f"{key} is '<count>/<seconds>', e.g. 5/3600; got {text!r}") from None
        if limit.count < 1 or limit.seconds <= 0:
            raise ValueError(f"{key}: the count and the seconds are positive; got {text!r}")
        return limit


class SlidingWindow:
    """At most ``limit.count`` uses per address within any ``limit.seconds``."""

    def __init__(self, limit: Limit, clock=time.monotonic):
        self.limit = limit
        self.clock = clock
        self._uses: dict[str, deque] = {}
        self._lock = threading.Lock()

    def take(self, address: str) -> float:
        """0 if the address may go on (the use is counted), else the seconds until it may."""
        now = self.clock()
        with self._lock:
            uses = self._uses.setdefault(address, deque())
            while uses and now - uses[0] >= self.limit.seconds:
                uses.popleft()
            if len(uses) >= self.limit.count:
                return max(1.0, self.limit.seconds - (now - uses[0]))
            uses.append(now)
            if len(self._uses) > MAX_ADDRESSES:
                self._prune(now)
            return 0.0

    def _prune(self, now: float) -> None:
        for address in [a for a, u in self._uses.items() if not u or now - u[-1] >= self.limit.seconds]:
            del self._uses[address]


class PublicDoor(DependencyProvider):
    """One per gateway container: the limits' windows and the client-address rule."""

    def setup(self):
        config = self.container.config
        self.config = config
        self.windows = {name: SlidingWindow(Limit.parse(config.get(key) or DEFAULT_LIMITS[name], key))
                        for name, key in LIMIT_KEYS.items()}
        self.address_header = (config.get("WEB_CLIENT_ADDRESS_HEADER") or "").strip() or None

    def get_dependency(self, worker_ctx):
        return Door(self)


class Door:
    def __init__(self, provider: PublicDoor):
        self._provider = provider

    def token(self) -> str:
        """``service:gateway``'s token (cached until shortly before it expires)."""
        return service_token(self._provider.config, "gateway")

    def client_address(self, request) -> str:
        header = self._provider.address_header
        if header:
            forwarded = [part.strip() for part in request.headers.get(header, "").split(",") if part.strip()]
            if forwarded:
                return forwarded[-1]
        return request.remote_addr or "?"

    def wait_before(self, limit: str, request) -> float:
        """Seconds this address must wait before another ``limit`` use (0: go on; the use is counted)."""
        return self._provider.windows[limit].take(self.client_address(request))


def door_of(request) -> Door:
    return request.environ[DOOR_KEY]
