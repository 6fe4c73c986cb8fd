"""Who is at the door: the person of a request, their web session, CSRF.

- The **person** is the actor of the request's token (:mod:`shared.identity`
  verifies it: signature, expiry, identity's revocations). A service's token
  is no login here. The session is identity's: on a person's request the
  gateway asks ``identity.touch_session`` (at most every
  ``WEB_SESSION_TOUCH_SECONDS``), which refuses a session that was revoked,
  ended or idle longer than ``SESSION_IDLE_SECONDS`` — and pushes the idle
  deadline on.
- The **session cookie** ``dibao_session`` holds the token identity signed
  at login: ``HttpOnly``, ``SameSite=Strict``, ``Path=/``, ``Secure`` when
  ``WEB_SECURE_COOKIES`` is true (or ``auto`` and the request came over
  https), expiring with the token. A login that must change its password
  gets ``dibao_password_change`` instead (10 minutes, for ``/password`` only).
- **CSRF**: every form carries ``csrf_token``, an HMAC (a key derived from
  the gateway's own ``SERVICE_SECRET_GATEWAY`` with HKDF) of the session id —
  or, before login, of a random ``dibao_csrf`` cookie. An API call made with
  the cookie (not a bearer token) that changes something sends the same
  token in ``X-CSRF-Token``. SameSite=Strict already keeps the cookie off
  other sites' requests; the token is the second lock.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from datetime import datetime

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from nameko.extensions import DependencyProvider
from werkzeug.wrappers import Request, Response

from services.gateway.exceptions import Unauthenticated
from services.gateway.http import SESSION_COOKIE, secure_cookies
from shared.errors import Forbidden
from shared.identity import Actor
from shared.secrets import load_secret

PASSWORD_CHANGE_COOKIE = "dibao_password_change"
CSRF_COOKIE = "dibao_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def csrf_key(config: dict) -> bytes:
    """The CSRF key: HKDF-SHA256 of the gateway's own secret, for this purpose only."""
    secret = load_secret(config, "SERVICE_SECRET_GATEWAY").encode("utf-8")
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"dibao gateway csrf v1").derive(secret)


class WebSessions(DependencyProvider):
    """One per gateway container: the CSRF key, the cookie settings, and when
    each session was last confirmed with identity."""

    def setup(self):
        config = self.container.config
        self.key = csrf_key(config)
        self.secure = secure_cookies(config)
        self.touch_every = float(config.get("WEB_SESSION_TOUCH_SECONDS") or 60)
        self._confirmed: dict[str, float] = {}
        self._lock = threading.Lock()

    def get_dependency(self, worker_ctx):
        return Sessions(self)

    # the sessions identity confirmed lately (bounded: pruned by age)
    def confirmed_lately(self, session_id: str) -> bool:
        at = self._confirmed.get(session_id)
        return at is not None and time.monotonic() - at < self.touch_every

    def confirm(self, session_id: str) -> None:
        now = time.monotonic()
        with self._lock:
            self._confirmed[session_id] = now
            if len(self._confirmed) > 10000:
                for sid in [s for s, at in self._confirmed.items() if now - at >= self.touch_every]:
                    del self._confirmed[sid]

    def forget(self, session_id: str) -> None:
        with self._lock:
            self._confirmed.pop(session_id, None)


class Sessions:
    """What a worker uses: the person, the cookies, the CSRF tokens."""

    def __init__(self, provider: WebSessions):
        self._provider = provider

    # --- the person -----------------------------------------------------------------

    def person(self, caller, calls) -> Actor:
        """The logged-in person of this request, confirmed with identity;
        else Unauthenticated (the reason says why)."""
        actor = caller.actor_or_none
        if actor is None:
            try:
                caller.actor
            except Forbidden as exc:
                raise Unauthenticated("log in first: a valid login is required",
                                      {"reason": (exc.details or {}).get("reason", "missing")}) from None
            raise Unauthenticated("log in first: a valid login is required", {"reason": "missing"})
        if actor.is_service:
            raise Unauthenticated("a service's token is no login at the front door", {"reason": "not_a_person"})
        if not self._provider.confirmed_lately(actor.session_id):
            try:
                calls.identity.touch_session()
            except Forbidden as exc:
                self._provider.forget(actor.session_id)
                raise Unauthenticated("the session has ended; log in again",
                                      {"reason": (exc.details or {}).get("reason", "revoked")}) from None
            self._provider.confirm(actor.session_id)
        return actor

    def ended(self, actor: Actor | None) -> None:
        if actor is not None:
            self._provider.forget(actor.session_id)

    # --- cookies ------------------------------------------------------------------------

    def secure_for(self, request: Request) -> bool:
        setting = self._provider.secure
        return request.scheme == "https" if setting == "auto" else bool(setting)

    def set_session(self, response: Response, request: Request, token: str, expires_at) -> None:
        expires = _when(expires_at)
        response.set_cookie(SESSION_COOKIE, token, expires=expires, path="/", secure=self.secure_for(request),
                            httponly=True, samesite="Strict")
        response.delete_cookie(PASSWORD_CHANGE_COOKIE, path="/password", secure=self.secure_for(request),
                               httponly=True, samesite="Strict")

    def set_password_change(self, response: Response, request: Request, token: str) -> None:
        response.set_cookie(PASSWORD_CHANGE_COOKIE, token, max_age=600, path="/password",
                            secure=self.secure_for(request), httponly=True, samesite="Strict")

    def clear(self, response: Response, request: Request) -> None:
        for name, path in ((SESSION_COOKIE, "/"), (PASSWORD_CHANGE_COOKIE, "/password")):
            response.delete_cookie(name, path=path, secure=self.secure_for(request), httponly=True,
                                   samesite="Strict")

    # --- CSRF ---------------------------------------------------------------------------

    def _mac(self, binding: str) -> str:
        return hmac.new(self._provider.key, binding.encode("utf-8"), hashlib.sha256).hexdigest()

    def csrf_token(self, request: Request, actor: Actor | None, response_cookies: dict | None = None) -> str:
        """The form token of this browser: bound to the session, or (no login
        yet) to the ``dibao_csrf`` cookie — made now when there is none
        (``response_cookies`` receives it, for the answer to set)."""
        if actor is not None:
            return self._mac(f"session:{actor.session_id}")
        nonce = request.cookies.get(CSRF_COOKIE)
        if not nonce or len(nonce) > 64:
            nonce = secrets.token_urlsafe(24)
            if response_cookies is not None:
                response_cookies[CSRF_COOKIE] = nonce
        return self._mac(f"browser:{nonce}")

    def set_csrf_cookie(self, response: Response, request: Request, nonce: str) -> None:
        response.set_cookie(CSRF_COOKIE, nonce, path="/", secure=self.secure_for(request), httponly=True,
                            samesite="Strict")

    def check_csrf(self, request: Request, actor: Actor | None, given: str | None) -> None:
        """Forbidden (reason ``csrf``) unless ``given`` is this browser's token."""
        if actor is not None:
            expected = self._mac(f"session:{actor.session_id}")
        else:
            nonce = request.cookies.get(CSRF_COOKIE)
            expected = self._mac(f"browser:{nonce}") if nonce else None
        if not expected or not given or not hmac.compare_digest(expected, str(given)):
            raise Forbidden("the form has expired or did not come from this site; reload it and try again",
                            {"reason": "csrf"})


def _when(value):
    if isinstance(value, datetime) or value is None:
        return value
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None
