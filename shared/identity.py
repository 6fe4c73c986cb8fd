"""Who is calling: the actor carried by every RPC.

A caller puts a signed token (HS256, key ``TOKEN_KEY``) in nameko's context
data under ``auth_token``; nameko propagates context data along RPC chains,
so a service acting for an operator keeps that operator's identity.

Roles follow the seed's organisation (the "three-level network"); the unit
is the actor's administrative division code, and jurisdiction is by code
prefix: a district officer of 420115 acts on 420115001002, a community
officer only on their own community.
"""
from __future__ import annotations

import enum
import time
from functools import lru_cache
from dataclasses import asdict, dataclass

import jwt
from nameko.extensions import DependencyProvider

from shared.errors import Forbidden

AUTH_TOKEN_KEY = "auth_token"


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
    ADMIN = "admin"                              # 系统管理员
    SYSTEM = "system"                            # a Dibao service acting on its own


#: Roles that are the bureau's case-working staff (may be named as investigators).
STAFF_ROLES = frozenset({
    Role.COMMUNITY_OFFICER, Role.TOWNSHIP_OFFICER, Role.DISTRICT_OFFICER,
    Role.CENTRE_DIRECTOR, Role.DEPUTY_DIRECTOR,
})


@dataclass(frozen=True)
class Actor:
    user: str
    name: str
    role: Role
    unit: str

    def covers(self, division_code: str) -> bool:
        """Jurisdiction: the actor's unit is a prefix of the division."""
        return bool(division_code) and division_code.startswith(self.unit)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["role"] = self.role.value
        return data


def issue_token(key: str, user: str, name: str, role: Role | str, unit: str,
                ttl_seconds: int = 12 * 3600) -> str:
    now = int(time.time())
    claims = {"sub": user, "name": name, "role": Role(role).value, "unit": unit,
              "iat": now, "exp": now + ttl_seconds}
    return jwt.encode(claims, key, algorithm="HS256")


@lru_cache(maxsize=4096)
def _verified(key: str, token: str) -> tuple[Actor, int]:
    """Signature check and decoding, once per token (expiry is checked per call)."""
    claims = jwt.decode(token, key, algorithms=["HS256"],
                        options={"require": ["sub", "role", "unit", "exp"], "verify_exp": False})
    actor = Actor(user=claims["sub"], name=claims.get("name", claims["sub"]),
                  role=Role(claims["role"]), unit=str(claims["unit"]))
    return actor, int(claims["exp"])


def verify_token(key: str, token: str) -> Actor:
    try:
        actor, expires = _verified(key, token)
    except (jwt.PyJWTError, ValueError, KeyError, TypeError) as exc:
        raise Forbidden("a valid actor token is required", {"reason": type(exc).__name__}) from None
    if expires < time.time():
        raise Forbidden("a valid actor token is required", {"reason": "ExpiredSignatureError"})
    return actor


def authorize(actor: Actor, roles=(), division_code: str | None = None) -> Actor:
    """The actor's role is one of ``roles`` (admin always is) and, when a
    division is given, it lies within the actor's unit; else Forbidden."""
    if roles and actor.role is not Role.ADMIN and actor.role not in roles:
        raise Forbidden(f"role {actor.role.value} may not do this",
                        {"role": actor.role.value, "allowed": sorted(r.value for r in roles)})
    if division_code is not None and not actor.covers(division_code):
        # names no division outside the caller's unit: only their own
        raise Forbidden("outside your jurisdiction", {"unit": actor.unit})
    return actor


class Caller:
    """What a worker sees of its caller; checks roles and jurisdiction."""

    def __init__(self, key: str, token: str | None):
        self._key = key
        self._token = token
        self._actor: Actor | None = None

    @property
    def actor(self) -> Actor:
        if self._actor is None:
            if not self._token:
                raise Forbidden("a valid actor token is required", {"reason": "missing"})
            self._actor = verify_token(self._key, self._token)
        return self._actor

    @property
    def actor_or_none(self) -> Actor | None:
        try:
            return self.actor
        except Forbidden:
            return None

    def require(self, roles=(), division_code: str | None = None) -> Actor:
        return authorize(self.actor, roles, division_code)


class Identity(DependencyProvider):
    """Injects a :class:`Caller` for the worker's context data."""

    def setup(self):
        self.key = self.container.config["TOKEN_KEY"]

    def get_dependency(self, worker_ctx):
        return Caller(self.key, worker_ctx.context_data.get(AUTH_TOKEN_KEY))


def context_for(key: str, user: str, name: str, role: Role | str, unit: str) -> dict:
    """Context data for a standalone proxy (CLI, tests, partner scripts)."""
    return {AUTH_TOKEN_KEY: issue_token(key, user, name, role, unit)}
