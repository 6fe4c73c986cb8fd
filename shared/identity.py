"""Who is calling: the actor carried by every RPC (DESIGN §3.4, TOKENS.md).

A caller puts a token in nameko's context data under ``auth_token``;
nameko propagates context data along RPC chains, so a service acting for an
operator keeps that operator's identity. Only the identity service signs
tokens (EdDSA, Ed25519: :func:`sign_token`); every other component holds the
public key only (:func:`identity_public_key`) and checks signature, issuer,
audience, expiry and revocation (:class:`TokenVerifier`). The signature is
checked once per token (its ``jti``, the session id); expiry and revocation
on every call. Revocations arrive as identity's events
(:mod:`shared.revocation`).

Roles follow the seed's organisation (the "three-level network"); the unit
is the actor's administrative division code, and jurisdiction is by code
prefix: a district officer of 420115 acts on 420115001002, a community
officer only on their own community. No role passes every check: the three
administrators (三员分立) do no case work, and a service acting on its own
(``kind == "service"``) may call only the methods named for it in
:data:`shared.permissions.SERVICE_PERMISSIONS`.
"""
from __future__ import annotations

import base64
import enum
import hashlib
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from nameko.extensions import DependencyProvider, SharedExtension

from shared.errors import Forbidden

AUTH_TOKEN_KEY = "auth_token"
DEFAULT_ISSUER = "dibao-identity"
DEFAULT_AUDIENCE = "dibao"
DEFAULT_TTL_SECONDS = 8 * 3600
#: the longest lifetime a token may claim (exp − iat): 8 hours
MAX_TTL_SECONDS = 8 * 3600
SERVICE_PREFIX = "service:"
#: the refusal every caller sees; ``details.reason`` says which check failed
TOKEN_REFUSED = "a valid actor token is required"


class Role(str, enum.Enum):
    COMMUNITY_OFFICER = "community_officer"      # 社区低保专干
    COMMUNITY_PANEL = "community_panel"          # 社区低保评议小组成员
    TOWNSHIP_OFFICER = "township_officer"        # 乡镇街低保办
    TOWNSHIP_COMMITTEE = "township_committee"    # 乡镇街低保评审委员会成员
    DISTRICT_OFFICER = "district_officer"        # 区低保中心低保专干
    CENTRE_DIRECTOR = "centre_director"          # 低保中心主任
    DEPUTY_DIRECTOR = "deputy_director"          # 分管局长
    FINANCE_OFFICER = "finance_officer"          # 财务
    AUDITOR = "auditor"                          # 监督/审计
    PARTNER_BUREAU = "partner_bureau"            # 协作部门 (财政、公安、人社、省厅)
    SYSTEM_ADMIN = "system_admin"                # 系统管理员: runs services, dead-letter replay; no case data
    SECURITY_ADMIN = "security_admin"            # 安全管理员: accounts and roles; no case data
    AUDIT_ADMIN = "audit_admin"                  # 安全审计员: reads the audit; changes nothing
    SERVICE = "service"                          # a Dibao service acting on its own (service:<name>)


#: 三员分立: an account holds at most one of these.
ADMIN_ROLES = frozenset({Role.SYSTEM_ADMIN, Role.SECURITY_ADMIN, Role.AUDIT_ADMIN})

#: Roles that are the bureau's case-working staff (may be named as investigators).
STAFF_ROLES = frozenset({
    Role.COMMUNITY_OFFICER, Role.TOWNSHIP_OFFICER, Role.DISTRICT_OFFICER,
    Role.CENTRE_DIRECTOR, Role.DEPUTY_DIRECTOR,
})


@dataclass(frozen=True)
class Actor:
    """Who calls: an account (``kind`` person) or a service acting on its own."""

    user: str
    name: str
    unit: str
    roles: frozenset = field(default_factory=frozenset)
    kind: str = "person"
    session_id: str = ""

    def __post_init__(self):
        if isinstance(self.roles, (str, Role)):
            raise TypeError("Actor.roles is a set of roles: Actor(user, name, unit, frozenset({Role.X}))")
        object.__setattr__(self, "roles", frozenset(Role(r) for r in self.roles))

    def has(self, role: Role | str) -> bool:
        return Role(role) in self.roles

    @property
    def is_service(self) -> bool:
        return self.kind == "service"

    @property
    def service_name(self) -> str | None:
        return self.user[len(SERVICE_PREFIX):] if self.is_service else None

    def covers(self, division_code: str) -> bool:
        """Jurisdiction: the actor's unit is a prefix of the division. An
        empty unit covers nothing (a service's jurisdiction comes from the
        calls it is allowed, not from its unit)."""
        return bool(division_code) and bool(self.unit) and division_code.startswith(self.unit)

    def role_text(self) -> str:
        """The roles as one string (events' ``actor.role``, logs): ``a,b``."""
        return ",".join(sorted(r.value for r in self.roles))

    def to_dict(self) -> dict:
        """The actor as events carry it (the envelope's four fields; the roles
        as one string of at most 40 characters, the audit's column)."""
        return {"user": self.user, "name": self.name, "role": self.role_text()[:40], "unit": self.unit}


def authorize(actor: Actor, roles=(), division_code: str | None = None) -> Actor:
    """The actor holds one of ``roles`` and, when a division is given, it
    lies within the actor's unit; else Forbidden. The refusal names only the
    caller's own unit and roles, never the division asked about.

    A service actor passes when ``Role.SERVICE`` is among ``roles``: the
    entrypoint has already refused it every method its table does not name
    (shared.permissions), so its jurisdiction is that of the calls it may make."""
    if actor.is_service:
        if Role.SERVICE in roles:
            return actor
        raise Forbidden("a service may not do this", {"reason": "service_not_allowed", "user": actor.user})
    if roles and not (actor.roles & frozenset(roles)):
        raise Forbidden("your role may not do this",
                        {"roles": sorted(r.value for r in actor.roles), "allowed": sorted(Role(r).value for r in roles)})
    if division_code is not None and not actor.covers(division_code):
        raise Forbidden("outside your jurisdiction", {"unit": actor.unit})
    return actor


# --- keys -------------------------------------------------------------------------

def _raw(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(public_key: Ed25519PublicKey) -> str:
    """``kid``: the first 16 hex digits of sha256 of the raw public key."""
    return hashlib.sha256(_raw(public_key)).hexdigest()[:16]


def private_key_from_seed(seed_b64: str) -> Ed25519PrivateKey:
    """The signing key from its base64 32-byte seed (``IDENTITY_SIGNING_KEY``)."""
    seed = base64.b64decode(seed_b64.strip(), validate=True)
    if len(seed) != 32:
        raise ValueError("an Ed25519 seed is 32 bytes")
    return Ed25519PrivateKey.from_private_bytes(seed)


def public_key_from_text(text: str) -> Ed25519PublicKey:
    """A PEM public key, or base64 of its 32 raw bytes."""
    text = text.strip()
    if text.startswith("-----BEGIN"):
        key = serialization.load_pem_public_key(text.encode("ascii"))
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError("IDENTITY_PUBLIC_KEY is not an Ed25519 key")
        return key
    raw = base64.b64decode(text, validate=True)
    if len(raw) != 32:
        raise ValueError("IDENTITY_PUBLIC_KEY: base64 of 32 raw bytes expected")
    return Ed25519PublicKey.from_public_bytes(raw)


def public_key_text(public_key: Ed25519PublicKey) -> str:
    """base64 of the 32 raw bytes (what ``IDENTITY_PUBLIC_KEY`` takes)."""
    return base64.b64encode(_raw(public_key)).decode("ascii")


def public_key_pem(public_key: Ed25519PublicKey) -> str:
    return public_key.public_bytes(serialization.Encoding.PEM,
                                   serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii")


def identity_public_key(config: dict) -> Ed25519PublicKey:
    """The key every component verifies tokens with (TOKENS.md): the setting
    ``IDENTITY_PUBLIC_KEY``; else derived from the seed file
    ``<DATA_DIR>/secrets/identity_signing_key`` when this process can read it
    (single host); else ``<DATA_DIR>/secrets/identity_public_key``."""
    from shared.secrets import SecretError, secrets_dir

    text = config.get("IDENTITY_PUBLIC_KEY")
    if text:
        return public_key_from_text(str(text))
    directory = secrets_dir(config)
    try:
        seed = (directory / "identity_signing_key").read_text(encoding="utf-8")
    except OSError:
        seed = None
    if seed and seed.strip():
        return private_key_from_seed(seed).public_key()
    try:
        return public_key_from_text((directory / "identity_public_key").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SecretError("IDENTITY_PUBLIC_KEY is not set and no identity key is on file under "
                          f"{directory}: set DIBAO_IDENTITY_PUBLIC_KEY (identity's public_key())") from None


def sign_token(private_key: Ed25519PrivateKey, claims: dict) -> str:
    """A signed token (identity and the test harness only)."""
    return jwt.encode(claims, private_key, algorithm="EdDSA",
                      headers={"kid": key_id(private_key.public_key()), "typ": "JWT"})


def token_claims(user: str, name: str, unit: str, roles, kind: str = "person", session_id: str | None = None,
                 ttl_seconds: int = DEFAULT_TTL_SECONDS, issuer: str = DEFAULT_ISSUER,
                 audience: str = DEFAULT_AUDIENCE, now: float | None = None) -> dict:
    """The claims of TOKENS.md for one session."""
    import uuid

    issued = int(now if now is not None else time.time())
    return {"iss": issuer, "aud": audience, "sub": user, "name": name, "unit": unit,
            "roles": sorted(Role(r).value for r in roles), "kind": kind,
            "jti": session_id or uuid.uuid4().hex, "iat": issued, "exp": issued + int(ttl_seconds)}


# --- verification ---------------------------------------------------------------------

def refused(reason: str) -> Forbidden:
    """The one refusal of a token, with its reason code."""
    return Forbidden(TOKEN_REFUSED, {"reason": reason})


class Revocations:
    """What identity revoked (from its events): sessions by id, accounts
    disabled at a time, roles revoked at a time. Thread-safe; grows only
    with revocations (a token lives ≤ 8 h: entries older than that are
    dropped)."""

    def __init__(self):
        self._lock = threading.Lock()
        self.sessions: dict[str, float] = {}
        self.disabled: dict[str, float] = {}
        self.roles: dict[tuple[str, str], float] = {}

    def revoke_session(self, session_id: str, at: float | None = None) -> None:
        with self._lock:
            self.sessions[session_id] = at or time.time()
            self._prune()

    def disable_account(self, user: str, at: float) -> None:
        with self._lock:
            self.disabled[user] = max(at, self.disabled.get(user, 0.0))
            self._prune()

    def revoke_role(self, user: str, role: str, at: float) -> None:
        with self._lock:
            self.roles[(user, role)] = max(at, self.roles.get((user, role), 0.0))
            self._prune()

    def _prune(self) -> None:
        horizon = time.time() - MAX_TTL_SECONDS - 60
        for table in (self.sessions, self.disabled, self.roles):
            if len(table) > 10000:
                for key in [k for k, at in table.items() if at < horizon]:
                    del table[key]

    def reason_refused(self, actor: Actor, issued_at: int) -> str | None:
        """``revoked`` / ``account_disabled`` when the token no longer counts, else None.
        A token issued before its account was disabled (or a role it claims
        was revoked) stays refused after the account is enabled again: the
        person logs in anew."""
        if actor.session_id in self.sessions:
            return "revoked"
        disabled_at = self.disabled.get(actor.user)
        if disabled_at is not None and issued_at <= disabled_at:
            return "account_disabled"
        for role in actor.roles:
            at = self.roles.get((actor.user, role.value))
            if at is not None and issued_at <= at:
                return "revoked"
        return None


@dataclass(frozen=True)
class _Verified:
    actor: Actor
    issued_at: int
    expires: int


class TokenVerifier:
    """Checks tokens against identity's public key: signature (EdDSA only),
    issuer, audience and claims once per token; expiry and revocation on
    every call. The cache is keyed by the whole token (so a token reusing
    another's ``jti`` is checked on its own)."""

    def __init__(self, public_key: Ed25519PublicKey, issuer: str = DEFAULT_ISSUER,
                 audience: str = DEFAULT_AUDIENCE, revocations: Revocations | None = None,
                 cache_size: int = 4096, clock=time.time):
        self.public_key = public_key
        self.issuer = issuer
        self.audience = audience
        self.revocations = revocations or Revocations()
        self.cache_size = cache_size
        self.clock = clock
        self._cache: OrderedDict[str, _Verified] = OrderedDict()
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, config: dict, revocations: Revocations | None = None) -> "TokenVerifier":
        return cls(identity_public_key(config), str(config.get("TOKEN_ISSUER") or DEFAULT_ISSUER),
                   str(config.get("TOKEN_AUDIENCE") or DEFAULT_AUDIENCE), revocations)

    def verify(self, token) -> Actor:
        if not token or not isinstance(token, str):
            raise refused("missing")
        verified = self._cache.get(token)
        if verified is None:
            verified = self._check(token)
            with self._lock:
                self._cache[token] = verified
                if len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
        if verified.expires <= self.clock():
            raise refused("expired")
        reason = self.revocations.reason_refused(verified.actor, verified.issued_at)
        if reason:
            raise refused(reason)
        return verified.actor

    def _check(self, token: str) -> _Verified:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise refused("malformed") from None
        if header.get("alg") != "EdDSA":
            raise refused("algorithm_refused")
        try:
            claims = jwt.decode(token, self.public_key, algorithms=["EdDSA"], audience=self.audience,
                                issuer=self.issuer,
                                options={"require": ["iss", "aud", "sub", "exp", "iat", "jti"],
                                         "verify_exp": False, "verify_iat": False})
        except jwt.InvalidSignatureError:
            raise refused("bad_signature") from None
        except jwt.InvalidAudienceError:
            raise refused("wrong_audience") from None
        except jwt.InvalidIssuerError:
            raise refused("wrong_issuer") from None
        except jwt.InvalidAlgorithmError:
            raise refused("algorithm_refused") from None
        except jwt.PyJWTError:
            raise refused("malformed") from None
        return _Verified(self._actor(claims), int(claims["iat"]), int(claims["exp"]))

    @staticmethod
    def _actor(claims: dict) -> Actor:
        try:
            issued, expires = int(claims["iat"]), int(claims["exp"])
            roles = frozenset(Role(r) for r in claims.get("roles") or ())
            kind = claims.get("kind", "person")
            user, unit = str(claims["sub"]), str(claims.get("unit") or "")
        except (ValueError, TypeError, KeyError):
            raise refused("malformed") from None
        if expires - issued > MAX_TTL_SECONDS or expires <= issued:
            raise refused("lifetime_too_long")
        if kind == "service":
            if not user.startswith(SERVICE_PREFIX) or roles != {Role.SERVICE} or unit:
                raise refused("malformed")
        elif kind == "person":
            if (Role.SERVICE in roles or user.startswith(SERVICE_PREFIX) or len(roles & ADMIN_ROLES) > 1
                    or not unit.isdigit()):
                raise refused("malformed")
        else:
            raise refused("malformed")
        return Actor(user=user, name=str(claims.get("name") or user), unit=unit, roles=roles, kind=kind,
                     session_id=str(claims["jti"]))


class TokenVerification(SharedExtension):
    """One :class:`TokenVerifier` per service container, shared by the
    entrypoint (shared.rpc), ``Identity`` and ``Database``; its revocations
    are fed by identity's events (shared.revocation)."""

    verifier: TokenVerifier | None = None

    def setup(self):
        if self.verifier is None:
            self.verifier = TokenVerifier.from_config(self.container.config)


_UNSET = object()


def actor_of(worker_ctx, verification: TokenVerification) -> Actor | None:
    """The verified actor of a worker's call (memoised on the worker): None
    without a token; a refused token is remembered as ``dibao_refusal``."""
    actor = getattr(worker_ctx, "dibao_actor", _UNSET)
    if actor is not _UNSET:
        return actor
    token = worker_ctx.context_data.get(AUTH_TOKEN_KEY)
    actor = None
    worker_ctx.dibao_refusal = None
    if token:
        try:
            actor = verification.verifier.verify(token)
        except Forbidden as exc:
            worker_ctx.dibao_refusal = exc
    worker_ctx.dibao_actor = actor
    return actor


class Caller:
    """What a worker sees of its caller; checks roles and jurisdiction."""

    def __init__(self, actor: Actor | None, refusal: Forbidden | None = None):
        self._actor = actor
        self._refusal = refusal

    @property
    def actor(self) -> Actor:
        if self._actor is None:
            raise self._refusal or refused("missing")
        return self._actor

    @property
    def actor_or_none(self) -> Actor | None:
        return self._actor

    def require(self, roles=(), division_code: str | None = None) -> Actor:
        return authorize(self.actor, roles, division_code)


class Identity(DependencyProvider):
    """Injects a :class:`Caller` for the worker's token. Each service process
    also follows identity's revocations (shared.revocation)."""

    verification = TokenVerification()

    def setup(self):
        from shared.revocation import RevocationListener

        self.listener = RevocationListener(self.container.config, self.verification)

    def start(self):
        self.listener.start(self.container)

    def stop(self):
        self.listener.stop()

    kill = stop

    def get_dependency(self, worker_ctx):
        actor = actor_of(worker_ctx, self.verification)
        return Caller(actor, getattr(worker_ctx, "dibao_refusal", None))

    def worker_setup(self, worker_ctx):
        from shared.permissions import gate

        gate(worker_ctx, self.verification)
