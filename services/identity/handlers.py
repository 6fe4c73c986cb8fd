"""Identity's handlers: plain functions over a unit of work.

Login is in two steps so that no transaction (on SQLite: the database's
write lock) is held while argon2 runs: :func:`login_candidate` reads the
account, the service checks the password off the event loop, then
:func:`complete_login` re-reads the account under a row lock and records the
outcome — the failure count, the lock, the session — with its event. A
refused login commits its count and raises the one answer every failure
gets: Forbidden ``login_failed``, for an unknown user as for a wrong
password or code, a locked or a disabled account.
"""
from __future__ import annotations

import hmac
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa

from services.identity import rules
from services.identity.credentials import FreshCredentials, provisioning_uri
from services.identity.models import Account, BootstrapMark, LoginSession, StaffRole
from services.identity.rules import LoginPolicy
from services.identity.tokens import PASSWORD_CHANGE_AUDIENCE, TokenKeys
from shared.db import UnitOfWork
from shared.errors import Conflict, Forbidden, NotFound
from shared.events import ActorSchema, Event

SOURCE = "identity"
SERVICE_PREFIX = "service:"
SESSION_RETENTION = timedelta(days=1)   # expired sessions kept this long, then pruned


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def aware(value: datetime | None) -> datetime | None:
    """SQLite gives naive datetimes back: they are UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value


def login_refused() -> Forbidden:
    return Forbidden("login failed: check the user id, password and one-time code (after repeated failures "
                     "the account is locked for a while; the security administrator can unlock it)",
                     {"reason": "login_failed"})


@dataclass(frozen=True)
class Caller:
    """Who calls identity, from a token identity signed and a live session."""

    user: str
    name: str
    unit: str
    roles: tuple[str, ...]
    kind: str
    session_id: str
    purpose: str
    expires_at: datetime
    idle_deadline: datetime | None


def envelope_actor(user: str, name: str, unit: str, roles, kind: str = "person") -> dict:
    """The envelope's actor for identity's events, in whatever shape the
    platform's ActorSchema has (identity signs; it does not use the verifier)."""
    roles = sorted(roles)
    full = {"user": user, "name": name, "unit": unit, "roles": roles, "kind": kind,
            "role": roles[0] if roles else kind}
    return {key: full[key] for key in ActorSchema().fields if key in full}


def emit(uow: UnitOfWork, name: str, user: str, payload: dict) -> None:
    uow.emit(Event(SOURCE, name, {"user": user}, payload))


def current_roles(uow: UnitOfWork, user: str) -> list[str]:
    return sorted(uow.session.scalars(sa.select(StaffRole.role).where(
        StaffRole.user_id == user, StaffRole.until.is_(None))))


def load_account(uow: UnitOfWork, user: str, for_update: bool = False) -> Account:
    account = uow.session.get(Account, user, with_for_update=for_update) if user else None
    if account is None:
        raise NotFound(f"no account {user}", {"user": user})
    return account


# --- sessions and tokens -------------------------------------------------------------

def open_session(uow: UnitOfWork, keys: TokenKeys, policy: LoginPolicy, now: datetime, *, user: str, name: str,
                 unit: str, roles, kind: str = "person", purpose: str = "session") -> dict:
    """A new session and its signed token (TOKENS.md's claims)."""
    jti = uuid.uuid4().hex
    ttl = policy.password_change_ttl_seconds if purpose == "password_change" else policy.token_ttl_seconds
    issued = int(now.timestamp())
    expires_at = datetime.fromtimestamp(issued + ttl, timezone.utc)
    idle = now + timedelta(seconds=policy.session_idle_seconds) if kind == "person" else None
    claims = {"aud": keys.audience if purpose == "session" else PASSWORD_CHANGE_AUDIENCE, "sub": user,
              "name": name, "unit": unit, "roles": sorted(roles) if purpose == "session" else [],
              "kind": kind, "jti": jti, "iat": issued, "exp": issued + ttl}
    uow.session.add(LoginSession(jti=jti, user_id=user, kind=kind, purpose=purpose, issued_at=now,
                                 expires_at=expires_at, idle_deadline=idle))
    return {"token": keys.sign(claims), "expires_at": expires_at, "session_id": jti,
            "must_change_password": purpose == "password_change"}


def authenticate(uow: UnitOfWork, keys: TokenKeys, policy: LoginPolicy, token: str | None, now: datetime,
                 password_change: bool = False, touch: bool = True) -> Caller:
    """The caller of an identity RPC: the token's signature, issuer, audience
    and expiry, then its session — not revoked, not idle too long — and the
    account still active. Each call pushes the idle deadline on. A token of
    a login that must change its password serves only where
    ``password_change`` is allowed."""
    claims = keys.decode(token, [keys.audience, PASSWORD_CHANGE_AUDIENCE])   # the session says which it is
    session = uow.session.get(LoginSession, str(claims["jti"]))
    if session is None or session.user_id != claims["sub"]:
        raise Forbidden("a valid actor token is required", {"reason": "unknown_session"})
    refusal = rules.session_refusal(session.revoked_at, aware(session.expires_at), aware(session.idle_deadline),
                                    now)
    if refusal:
        raise Forbidden("the session no longer works; log in again", {"reason": refusal})
    if session.purpose != "session" and not password_change:
        raise Forbidden("change the password first (dibao login)", {"reason": "password_change_required"})
    if session.kind == "person":
        account = uow.session.get(Account, session.user_id)
        if account is None or account.status != "active":
            raise Forbidden("the account is disabled", {"reason": "account_disabled"})
    if touch and session.idle_deadline is not None:
        session.idle_deadline = now + timedelta(seconds=policy.session_idle_seconds)
    caller = Caller(user=claims["sub"], name=str(claims.get("name", "")), unit=str(claims.get("unit", "")),
                    roles=tuple(claims.get("roles") or ()), kind=str(claims.get("kind", "person")),
                    session_id=session.jti, purpose=session.purpose, expires_at=aware(session.expires_at),
                    idle_deadline=session.idle_deadline)
    uow.actor = envelope_actor(caller.user, caller.name, caller.unit, caller.roles, caller.kind)
    return caller


def revoke_sessions(uow: UnitOfWork, user: str, reason: str, now: datetime, only: str | None = None) -> int:
    """Revoke the user's live sessions (or just ``only``), one ``session_revoked`` each."""
    stmt = sa.select(LoginSession).where(LoginSession.user_id == user, LoginSession.revoked_at.is_(None),
                                         LoginSession.expires_at > now)
    if only is not None:
        stmt = stmt.where(LoginSession.jti == only)
    sessions = list(uow.session.scalars(stmt))
    for session in sessions:
        session.revoked_at = now
        session.revoked_reason = reason
        emit(uow, "session_revoked", user, {"session_id": session.jti, "user": user, "reason": reason})
    return len(sessions)


def whoami(uow: UnitOfWork, caller: Caller) -> dict:
    must_change = caller.purpose == "password_change"
    uow.commit()   # the idle deadline moved
    return {"user": caller.user, "name": caller.name, "unit": caller.unit, "roles": list(caller.roles),
            "kind": caller.kind, "session_id": caller.session_id, "expires_at": caller.expires_at,
            "idle_deadline": caller.idle_deadline, "must_change_password": must_change}


def logout(uow: UnitOfWork, caller: Caller, now: datetime) -> dict:
    revoke_sessions(uow, caller.user, "logout", now, only=caller.session_id)
    uow.commit()
    return {"session_id": caller.session_id, "revoked": True}


def touch_session(uow: UnitOfWork, caller: Caller) -> dict:
    """The gateway's check of a web session on each request (30 minutes idle)."""
    uow.commit()
    return {"session_id": caller.session_id, "user": caller.user, "idle_deadline": caller.idle_deadline}


def revocations(uow: UnitOfWork, caller: Caller, since: datetime | None, now: datetime) -> list[dict]:
    """Revocations still in force: revoked sessions not yet expired, and
    disabled accounts (for a service that starts late)."""
    uow.commit()
    stmt = sa.select(LoginSession.jti, LoginSession.revoked_at).where(
        LoginSession.revoked_at.is_not(None), LoginSession.expires_at > now)
    accounts = sa.select(Account.user_id, Account.disabled_at).where(Account.status == "disabled")
    if since is not None:
        stmt = stmt.where(LoginSession.revoked_at >= since)
        accounts = accounts.where(Account.disabled_at >= since)
    out = [{"session_id": jti, "revoked_at": aware(at)} for jti, at in uow.session.execute(stmt)]
    out += [{"user": user, "revoked_at": aware(at)} for user, at in uow.session.execute(accounts)]
    return sorted(out, key=lambda r: r["revoked_at"])


def prune_sessions(uow: UnitOfWork, now: datetime) -> int:
    result = uow.session.execute(sa.delete(LoginSession).where(LoginSession.expires_at < now - SESSION_RETENTION))
    uow.commit()
    return result.rowcount or 0


# --- login ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Candidate:
    """What the password is checked against, read before the check."""

    user: str
    password_hash: str | None


def login_candidate(uow: UnitOfWork, user: str) -> Candidate:
    password_hash = uow.session.scalar(sa.select(Account.password_hash).where(Account.user_id == user))
    return Candidate(user, password_hash)


def _refuse(uow: UnitOfWork, user: str, reason: str, account: Account | None = None):
    emit(uow, "login_failed", user, {
        "user": user, "reason": reason, "failed_attempts": account.failed_attempts if account else 0,
        "locked_until": aware(account.locked_until) if account else None})
    exc = login_refused()
    uow.commit_refused(exc)
    raise exc


def _count_failure(uow: UnitOfWork, account: Account, reason: str, now: datetime, policy: LoginPolicy):
    account.failed_attempts += 1
    lock = rules.lock_after_failure(account.failed_attempts, now, policy)
    if lock is not None:
        account.locked_until = lock
    _refuse(uow, account.user_id, reason, account)


def complete_login(uow: UnitOfWork, keys: TokenKeys, policy: LoginPolicy, data: dict, candidate: Candidate,
                   password_ok: bool, now: datetime) -> dict:
    """Record the outcome of a login whose password was checked: the token,
    or the failure counted (5 → locked 15 minutes) and the one refusal."""
    user = data["user"]
    account = uow.session.get(Account, user, with_for_update=True)
    if account is None:
        _refuse(uow, "", "unknown_user")
    if account.status != "active":
        _refuse(uow, user, "disabled", account)
    if rules.is_locked(aware(account.locked_until), now):
        _refuse(uow, user, "locked", account)
    if account.locked_until is not None:       # the lock ran out: a fresh count
        account.locked_until = None
        account.failed_attempts = 0
    if not password_ok or account.password_hash != candidate.password_hash:
        _count_failure(uow, account, "wrong_password", now, policy)
    roles = current_roles(uow, user)
    if rules.totp_required(roles, policy):
        step = rules.totp_step(account.totp_secret or "", data.get("otp"), now, policy.totp_valid_window)
        if step is None:
            _count_failure(uow, account, "wrong_code", now, policy)
        if not rules.code_not_replayed(step, account.totp_last_step):
            _count_failure(uow, account, "code_reused", now, policy)
        account.totp_last_step = step
    account.failed_attempts = 0
    account.last_login_at = now
    if rules.password_expired(aware(account.password_set_at), now, policy):
        account.must_change_password = True
    purpose = "password_change" if account.must_change_password else "session"
    opened = open_session(uow, keys, policy, now, user=user, name=account.name, unit=account.unit, roles=roles,
                          purpose=purpose)
    uow.actor = envelope_actor(user, account.name, account.unit, roles)
    emit(uow, "login_succeeded", user, {"user": user, "session_id": opened["session_id"], "kind": "person",
                                        "must_change_password": opened["must_change_password"]})
    uow.commit()
    return opened


def store_rehash(uow: UnitOfWork, user: str, old_hash: str, new_hash: str) -> None:
    """The password hashed again with the deployment's current argon2
    parameters (after a login proved it), unless it changed meanwhile."""
    uow.session.execute(sa.update(Account).where(Account.user_id == user, Account.password_hash == old_hash)
                        .values(password_hash=new_hash))
    uow.commit()


def service_login(uow: UnitOfWork, keys: TokenKeys, policy: LoginPolicy, data: dict, expected_secret,
                  now: datetime) -> dict:
    """A service's token for its own identity (``service:<name>``), for the
    secret ``SERVICE_SECRET_<NAME>`` (constant-time comparison)."""
    name = data["service"]
    expected = expected_secret(name)
    given = data["secret"].encode("utf-8")
    if expected is None or not hmac.compare_digest(expected.encode("utf-8"), given):
        user = f"{SERVICE_PREFIX}{name}" if expected is not None else ""
        _refuse(uow, user, "bad_service_secret")
    user = f"{SERVICE_PREFIX}{name}"
    opened = open_session(uow, keys, policy, now, user=user, name=f"{name} service", unit="",
                          roles=[rules.SERVICE_ROLE], kind="service")
    uow.actor = envelope_actor(user, f"{name} service", "", [rules.SERVICE_ROLE], "service")
    emit(uow, "login_succeeded", user, {"user": user, "session_id": opened["session_id"], "kind": "service",
                                        "must_change_password": False})
    uow.commit()
    return opened


def new_password_acceptable(caller: Caller, data: dict, policy: LoginPolicy) -> None:
    """Checked before the new password is hashed."""
    rules.password_meets_policy(data["new_password"], caller.user, policy)
    rules.password_differs(data["old_password"], data["new_password"])


def change_password(uow: UnitOfWork, keys: TokenKeys, policy: LoginPolicy, caller: Caller, data: dict, old_ok: bool,
                    candidate: Candidate, new_hash: str, now: datetime) -> dict:
    """The user sets a new password (checked against the policy); every
    session of theirs is revoked and a new full session is opened."""
    account = load_account(uow, caller.user, for_update=True)
    if not old_ok or account.password_hash != candidate.password_hash:
        _count_failure(uow, account, "wrong_password", now, policy)
    new_password_acceptable(caller, data, policy)
    account.password_hash = new_hash
    account.password_set_at = now
    account.must_change_password = False
    account.failed_attempts = 0
    revoke_sessions(uow, account.user_id, "password_changed", now)
    emit(uow, "password_changed", account.user_id, {"user": account.user_id})
    roles = current_roles(uow, account.user_id)
    opened = open_session(uow, keys, policy, now, user=account.user_id, name=account.name, unit=account.unit,
                          roles=roles)
    emit(uow, "login_succeeded", account.user_id, {"user": account.user_id, "session_id": opened["session_id"],
                                                   "kind": "person", "must_change_password": False})
    uow.commit()
    return opened


# --- the security administrator's work ---------------------------------------------------

def _new_account(uow: UnitOfWork, fresh: FreshCredentials, data: dict, roles: list[str], by: str,
                 now: datetime) -> dict:
    rules.user_id_is_valid(data["user"])
    for role in roles:
        rules.role_is_known(role)
    rules.roles_compatible(roles)
    if uow.session.get(Account, data["user"]) is not None:
        raise Conflict(f"the account {data['user']} exists already", {"user": data["user"]})
    password, secret = fresh.password, fresh.totp_secret
    account = Account(user_id=data["user"], name=data["name"], unit=data["unit"], status="active",
                      password_hash=fresh.password_hash, password_set_at=now, must_change_password=True,
                      totp_secret=secret, failed_attempts=0, created_at=now, created_by=by)
    uow.session.add(account)
    uow.session.flush()
    for role in sorted(set(roles)):
        uow.session.add(StaffRole(user_id=account.user_id, unit=account.unit, role=role, since=now,
                                  granted_by=by))
    emit(uow, "account_created", account.user_id, {"user": account.user_id, "name": account.name,
                                                   "unit": account.unit, "roles": sorted(set(roles))})
    for role in sorted(set(roles)):
        emit(uow, "role_granted", account.user_id, {"user": account.user_id, "unit": account.unit, "role": role})
    return {"user": account.user_id, "one_time_password": password, "totp_secret": secret,
            "totp_uri": provisioning_uri(secret, account.user_id)}


def not_bootstrapped(uow: UnitOfWork) -> None:
    rules.no_account_exists(uow.session.scalar(sa.select(sa.func.count()).select_from(Account)))


def require_security_admin(caller: Caller) -> None:
    rules.may_administer(caller.roles, caller.unit, caller.user, None, None)


def bootstrap(uow: UnitOfWork, fresh: FreshCredentials, data: dict, now: datetime) -> dict:
    """The first security administrator, only while no account exists; a
    one-time password (changed at first login) and the TOTP secret, once."""
    not_bootstrapped(uow)
    uow.actor = envelope_actor(data["user"], data["name"], data["unit"], [rules.SECURITY_ADMIN])
    uow.session.add(BootstrapMark(id=1, user_id=data["user"], done_at=now))
    try:
        uow.session.flush()
    except sa.exc.IntegrityError:
        uow.rollback()
        rules.no_account_exists(1)
    made = _new_account(uow, fresh, data, [rules.SECURITY_ADMIN], "bootstrap", now)
    uow.commit()
    return made


def add_account(uow: UnitOfWork, fresh: FreshCredentials, caller: Caller, data: dict, now: datetime) -> dict:
    rules.may_administer(caller.roles, caller.unit, caller.user, data["user"], data["unit"])
    made = _new_account(uow, fresh, data, data["roles"], caller.user, now)
    uow.commit()
    return made


def _administered(uow: UnitOfWork, caller: Caller, user: str) -> Account:
    require_security_admin(caller)
    account = load_account(uow, user, for_update=True)
    rules.may_administer(caller.roles, caller.unit, caller.user, account.user_id, account.unit)
    return account


def _other_active_security_admins(uow: UnitOfWork, user: str) -> int:
    return uow.session.scalar(
        sa.select(sa.func.count()).select_from(StaffRole).join(Account, Account.user_id == StaffRole.user_id)
        .where(StaffRole.role == rules.SECURITY_ADMIN, StaffRole.until.is_(None), Account.status == "active",
               Account.user_id != user))


def disable_account(uow: UnitOfWork, caller: Caller, user: str, now: datetime) -> Account:
    account = _administered(uow, caller, user)
    if account.status == "disabled":
        return account
    if rules.SECURITY_ADMIN in current_roles(uow, user):
        rules.keeps_a_security_admin(_other_active_security_admins(uow, user))
    account.status = "disabled"
    account.disabled_at = now
    emit(uow, "account_disabled", user, {"user": user})
    revoke_sessions(uow, user, "account_disabled", now)
    uow.commit()
    return account


def enable_account(uow: UnitOfWork, caller: Caller, user: str, now: datetime) -> Account:
    account = _administered(uow, caller, user)
    if account.status == "active":
        return account
    account.status = "active"
    account.disabled_at = None
    emit(uow, "account_enabled", user, {"user": user})
    uow.commit()
    return account


def unlock_account(uow: UnitOfWork, caller: Caller, user: str, now: datetime) -> Account:
    account = _administered(uow, caller, user)
    account.failed_attempts = 0
    account.locked_until = None
    emit(uow, "account_unlocked", user, {"user": user})
    uow.commit()
    return account


def grant_role(uow: UnitOfWork, caller: Caller, data: dict, now: datetime) -> Account:
    """Only the security administrator grants a role (an administrator role
    too), in the account's own unit, keeping 三员分立."""
    rules.role_is_known(data["role"])
    account = _administered(uow, caller, data["user"])
    roles = current_roles(uow, account.user_id)
    if data["role"] in roles:
        return account
    rules.roles_compatible(roles + [data["role"]])
    uow.session.add(StaffRole(user_id=account.user_id, unit=account.unit, role=data["role"], since=now,
                              granted_by=caller.user))
    emit(uow, "role_granted", account.user_id, {"user": account.user_id, "unit": account.unit,
                                                "role": data["role"]})
    uow.commit()
    return account


def revoke_role(uow: UnitOfWork, caller: Caller, data: dict, now: datetime) -> Account:
    """The role ends now; the account's sessions are revoked (their tokens name the role)."""
    account = _administered(uow, caller, data["user"])
    held = uow.session.scalars(sa.select(StaffRole).where(
        StaffRole.user_id == account.user_id, StaffRole.role == data["role"], StaffRole.until.is_(None))).all()
    if not held:
        raise NotFound(f"{account.user_id} does not hold the role {data['role']}",
                       {"user": account.user_id, "role": data["role"]})
    if data["role"] == rules.SECURITY_ADMIN and account.status == "active":
        rules.keeps_a_security_admin(_other_active_security_admins(uow, account.user_id))
    for row in held:
        row.until = now
        row.revoked_by = caller.user
    emit(uow, "role_revoked", account.user_id, {"user": account.user_id, "unit": account.unit,
                                                "role": data["role"]})
    revoke_sessions(uow, account.user_id, "role_revoked", now)
    uow.commit()
    return account


def reset_credentials(uow: UnitOfWork, fresh: FreshCredentials, caller: Caller, data: dict, now: datetime) -> dict:
    """A new one-time password (to be changed at next login) or a new TOTP
    secret, given once; the account's sessions are revoked."""
    account = _administered(uow, caller, data["user"])
    out = {"user": account.user_id, "one_time_password": None, "totp_secret": None, "totp_uri": None}
    if data["what"] == "password":
        account.password_hash = fresh.password_hash
        account.password_set_at = now
        account.must_change_password = True
        out["one_time_password"] = fresh.password
    else:
        secret = fresh.totp_secret
        account.totp_secret = secret
        account.totp_last_step = None
        out.update(totp_secret=secret, totp_uri=provisioning_uri(secret, account.user_id))
    account.failed_attempts = 0
    account.locked_until = None
    emit(uow, "credentials_reset", account.user_id, {"user": account.user_id, "what": data["what"]})
    revoke_sessions(uow, account.user_id, "credentials_reset", now)
    uow.commit()
    return out


def account_view(uow: UnitOfWork, account: Account, now: datetime, roles: list[str] | None = None) -> dict:
    locked = rules.is_locked(aware(account.locked_until), now)
    return {"user": account.user_id, "name": account.name, "unit": account.unit,
            "roles": roles if roles is not None else current_roles(uow, account.user_id),
            "status": "disabled" if account.status == "disabled" else ("locked" if locked else "active"),
            "must_change_password": account.must_change_password, "password_set_at": aware(account.password_set_at),
            "totp": account.totp_secret is not None, "failed_attempts": account.failed_attempts,
            "locked_until": aware(account.locked_until) if locked else None,
            "last_login_at": aware(account.last_login_at)}


def list_accounts(uow: UnitOfWork, caller: Caller, data: dict, now: datetime) -> list[dict]:
    """The accounts within the caller's unit (security or audit administrator)."""
    if not set(caller.roles) & rules.ACCOUNT_READERS:
        raise Forbidden("only the security or audit administrator lists accounts", {"reason": "not_admin"})
    unit = data["unit"] or caller.unit
    if not unit.startswith(caller.unit):
        raise Forbidden("the unit is outside the administrator's unit", {"reason": "jurisdiction"})
    uow.commit()   # the idle deadline moved
    accounts = list(uow.session.scalars(sa.select(Account).where(
        Account.unit.startswith(unit, autoescape=True)).order_by(Account.unit, Account.user_id)))
    roles: dict[str, list[str]] = {}
    for user, role in uow.session.execute(sa.select(StaffRole.user_id, StaffRole.role).where(
            StaffRole.until.is_(None), StaffRole.user_id.in_([a.user_id for a in accounts])).order_by(
            StaffRole.role)):
        roles.setdefault(user, []).append(role)
    views = [account_view(uow, a, now, roles.get(a.user_id, [])) for a in accounts]
    return [v for v in views if data["status"] is None or v["status"] == data["status"]]
