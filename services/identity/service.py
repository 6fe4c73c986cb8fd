"""The identity service: accounts, passwords and one-time codes, sessions,
the staff registry — and the only component that signs tokens (DESIGN §3.4,
TOKENS.md).

Run alone: ``nameko run --config config.yml services.identity.service``.
Each method loads its input with a schema, calls a handler, dumps the answer.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from nameko.extensions import DependencyProvider

import contracts.identity  # noqa: F401 - registers identity's event contract
from contracts.rpc import identity as schemas
from services.identity import handlers
from services.identity.credentials import FreshCredentials, Passwords
from services.identity.handlers import utcnow
from services.identity.models import Base
from services.identity.rules import LoginPolicy
from services.identity.tokens import TokenKeys, public_key_pem
from shared.db import Database
from shared.identity import AUTH_TOKEN_KEY
from shared.reference import Reference
from shared.rpc import load, rpc
from shared.secrets import SERVICE_NAMES, SecretError, load_secret, write_identity_public_key
from shared.timer import config_timer

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"

TOKEN_OUT = schemas.TokenOut()
SERVICE_TOKEN_OUT = schemas.ServiceTokenOut()
ACCOUNT_OUT = schemas.AccountOut()
ACCOUNT_OUTS = schemas.AccountOut(many=True)
CREDENTIALS_OUT = schemas.CredentialsOut()
WHOAMI_OUT = schemas.WhoamiOut()
REVOCATION_OUTS = schemas.RevocationOut(many=True)


@dataclass(frozen=True)
class Authority:
    """What a worker of identity holds: the signing key, the login policy,
    the password hasher, the caller's token, the services' secrets."""

    keys: TokenKeys
    policy: LoginPolicy
    passwords: Passwords
    token: str | None
    config: dict

    def service_secret(self, name: str) -> str | None:
        """``SERVICE_SECRET_<NAME>`` of a known service, or None."""
        if name not in SERVICE_NAMES:
            return None
        try:
            return load_secret(self.config, f"SERVICE_SECRET_{name.upper()}")
        except SecretError:
            return None


class SigningAuthority(DependencyProvider):
    """Loads IDENTITY_SIGNING_KEY (Database.setup has refused a missing or
    published one) and writes its public key beside the secrets at start-up
    (when that directory is writable; ``public_key()`` serves it too)."""

    def setup(self):
        config = self.container.config
        self.keys = TokenKeys.from_config(config)
        self.policy = LoginPolicy.from_config(config)
        self.passwords = Passwords.from_config(config)
        try:
            write_identity_public_key(config)
        except OSError as exc:   # e.g. read-only Docker secrets: verifiers take IDENTITY_PUBLIC_KEY or the RPC
            log.warning("the public key file was not written beside the secrets: %s", exc)

    def get_dependency(self, worker_ctx):
        return Authority(self.keys, self.policy, self.passwords, worker_ctx.context_data.get(AUTH_TOKEN_KEY),
                         self.container.config)


class IdentityService:
    name = "identity"
    #: every call that takes a token authenticates it here (handlers.authenticate: signature,
    #: session, idle deadline, account status), the platform's gate stands aside (shared.permissions)
    authenticates_callers = True

    db = Database("identity", Base.metadata, MIGRATIONS)
    ref = Reference()
    auth = SigningAuthority()

    @rpc
    def ping(self):
        """Health check: the service answers and its database is reachable."""
        self.db.answers()
        return {"service": self.name, "kid": self.auth.keys.kid}

    @rpc
    def public_key(self):
        """The key every component verifies tokens with (no secret)."""
        return {"kid": self.auth.keys.kid, "public_key_pem": public_key_pem(self.auth.keys.public_key)}

    # --- logging in ------------------------------------------------------------------

    @rpc
    def login(self, user, password, otp=None):
        """登录: password and one-time code → a session token. Every failure
        answers the same Forbidden (reason ``login_failed``)."""
        data = load(schemas.LoginSchema, {"user": user, "password": password, "otp": otp})
        with self.db.read() as uow:
            candidate = handlers.login_candidate(uow, data["user"])
        passwords = self.auth.passwords
        password_ok = passwords.verify(candidate.password_hash, data["password"])
        with self.db() as uow:
            answer = TOKEN_OUT.dump(handlers.complete_login(uow, self.auth.keys, self.auth.policy, data, candidate,
                                                            password_ok, utcnow()))
        if passwords.needs_rehash(candidate.password_hash):
            new_hash = passwords.hash(data["password"])
            with self.db() as uow:
                handlers.store_rehash(uow, data["user"], candidate.password_hash, new_hash)
        return answer

    @rpc
    def service_token(self, service, secret):
        """A service's token for its own identity (``service:<name>``)."""
        data = load(schemas.ServiceTokenSchema, {"service": service, "secret": secret})
        with self.db() as uow:
            return SERVICE_TOKEN_OUT.dump(handlers.service_login(uow, self.auth.keys, self.auth.policy, data,
                                                                 self.auth.service_secret, utcnow()))

    @rpc
    def change_password(self, old_password, new_password):
        data = load(schemas.ChangePasswordSchema, {"old_password": old_password, "new_password": new_password})
        with self.db.read() as uow:
            caller = self._caller(uow, password_change=True, touch=False)
            candidate = handlers.login_candidate(uow, caller.user)
        handlers.new_password_acceptable(caller, data, self.auth.policy)
        old_ok = self.auth.passwords.verify(candidate.password_hash, data["old_password"])
        new_hash = self.auth.passwords.hash(data["new_password"]) if old_ok else ""
        with self.db() as uow:
            caller = self._caller(uow, password_change=True)
            return TOKEN_OUT.dump(handlers.change_password(uow, self.auth.keys, self.auth.policy, caller, data, old_ok,
                                                           candidate, new_hash, utcnow()))

    @rpc
    def whoami(self):
        with self.db() as uow:
            return WHOAMI_OUT.dump(handlers.whoami(uow, self._caller(uow, password_change=True)))

    @rpc
    def logout(self):
        with self.db() as uow:
            return handlers.logout(uow, self._caller(uow, password_change=True), utcnow())

    @rpc
    def touch_session(self):
        """The gateway, on each request of a web session: alive? (idle 30 min)."""
        with self.db() as uow:
            return handlers.touch_session(uow, self._caller(uow))

    @rpc
    def revocations(self, since=None):
        """Revocations still in force (a service that starts late), for any valid token."""
        data = load(schemas.RevocationsSchema, {"since": since})
        with self.db() as uow:
            caller = self._caller(uow)
            return REVOCATION_OUTS.dump(handlers.revocations(uow, caller, data["since"], utcnow()))

    # --- the security administrator ----------------------------------------------------

    @rpc
    def bootstrap(self, user, name, unit):
        """The first security administrator, only while no account exists."""
        data = load(schemas.BootstrapSchema, {"user": user, "name": name, "unit": unit})
        self.ref.division(data["unit"], "unit")
        with self.db.read() as uow:
            handlers.not_bootstrapped(uow)   # before the cost of a hash
        fresh = FreshCredentials.make(self.auth.passwords)
        with self.db() as uow:
            return CREDENTIALS_OUT.dump(handlers.bootstrap(uow, fresh, data, utcnow()))

    @rpc
    def add_account(self, data):
        data = load(schemas.AddAccountSchema, data)
        self.ref.division(data["unit"], "unit")
        fresh = self._fresh_credentials()
        with self.db() as uow:
            caller = self._caller(uow)
            return CREDENTIALS_OUT.dump(handlers.add_account(uow, fresh, caller, data, utcnow()))

    @rpc
    def disable_account(self, user):
        return self._administer(handlers.disable_account, user)

    @rpc
    def enable_account(self, user):
        return self._administer(handlers.enable_account, user)

    @rpc
    def unlock_account(self, user):
        return self._administer(handlers.unlock_account, user)

    @rpc
    def grant_role(self, user, role):
        data = load(schemas.RoleSchema, {"user": user, "role": role})
        with self.db() as uow:
            caller = self._caller(uow)
            account = handlers.grant_role(uow, caller, data, utcnow())
            return ACCOUNT_OUT.dump(handlers.account_view(uow, account, utcnow()))

    @rpc
    def revoke_role(self, user, role):
        data = load(schemas.RoleSchema, {"user": user, "role": role})
        with self.db() as uow:
            caller = self._caller(uow)
            account = handlers.revoke_role(uow, caller, data, utcnow())
            return ACCOUNT_OUT.dump(handlers.account_view(uow, account, utcnow()))

    @rpc
    def reset_credentials(self, user, what="password"):
        """A new one-time password, or a new TOTP secret (``what``: password | totp)."""
        data = load(schemas.ResetSchema, {"user": user, "what": what})
        fresh = self._fresh_credentials()
        with self.db() as uow:
            caller = self._caller(uow)
            return CREDENTIALS_OUT.dump(handlers.reset_credentials(uow, fresh, caller, data, utcnow()))

    @rpc
    def reset_password(self, user):
        return self.reset_credentials(user, "password")

    @rpc
    def reset_totp(self, user):
        return self.reset_credentials(user, "totp")

    @rpc
    def list_accounts(self, unit=None, status=None):
        data = load(schemas.ListAccountsSchema, {"unit": unit, "status": status})
        with self.db() as uow:
            caller = self._caller(uow)
            return ACCOUNT_OUTS.dump(handlers.list_accounts(uow, caller, data, utcnow()))

    # --- upkeep -----------------------------------------------------------------------

    @config_timer("SESSION_PRUNE_SECONDS", default=3600)
    def prune_sessions(self):
        """Sessions expired more than a day ago are deleted."""
        with self.db() as uow:
            handlers.prune_sessions(uow, utcnow())

    def _caller(self, uow, password_change: bool = False, touch: bool = True) -> handlers.Caller:
        return handlers.authenticate(uow, self.auth.keys, self.auth.policy, self.auth.token, utcnow(),
                                     password_change=password_change, touch=touch)

    def _fresh_credentials(self) -> FreshCredentials:
        """New credentials, hashed outside the transaction — for a caller
        who is a security administrator (checked first: a hash costs)."""
        with self.db.read() as uow:
            handlers.require_security_admin(self._caller(uow, touch=False))
        return FreshCredentials.make(self.auth.passwords)

    def _administer(self, handler, user):
        data = load(schemas.UserSchema, {"user": user})
        with self.db() as uow:
            caller = self._caller(uow)
            account = handler(uow, caller, data["user"], utcnow())
            return ACCOUNT_OUT.dump(handlers.account_view(uow, account, utcnow()))
