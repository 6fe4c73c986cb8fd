"""The demo's people as accounts at the identity service (issue #12).

Every person the demo acts as — officers, signers, the finance officer, the
system administrator… — is an account that identity made, with a password
and a TOTP secret, and acts through a session identity signed at login.
Nothing here signs a token.

- The security administrator (安全管理员) comes first: ``identity.bootstrap``
  while no account exists (a fresh deployment, or the demo's own services);
  else the one ``accounts.json`` names from an earlier demo run on the same
  data; else the CLI's logged-in session when it is a security
  administrator's.
- Each person: ``add_account`` (their role in their unit; identity answers a
  one-time password and the TOTP secret, once), the first ``login`` with
  the one-time password and a code computed from the secret (pyotp), then
  ``change_password`` to a new generated password — which answers the
  person's full session. An account that exists already is logged in with
  the password and secret on file; when the file has none (or they no
  longer work) the security administrator resets both first.
- One session per person for the whole run: a TOTP code counts once per
  30-second step, so a person is never logged in twice in a step.
- ``<DATA_DIR>/demo/accounts.json`` (mode 0600, demo data only) lists
  ``{user, name, role, unit, password, totp_secret}`` for each, so that
  anyone can ``dibao login`` as any of them while the services run.
- The staff registries (intake's and review's ``staff`` projections) fill
  from identity's ``account_created``/``role_granted`` events:
  :meth:`DemoAccounts.ensure` waits for them.
"""
from __future__ import annotations

import json
import os
import secrets
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from cli.common import fail
from demo.people import Person

ACCOUNTS_FILE = "accounts.json"
SECURITY_ADMIN = "security_admin"
#: who may read both staff registries (intake's and review's ``list_staff``) for the wait
REGISTRY_READERS = ("district_officer", "centre_director", "deputy_director", "auditor")
#: people logged in at once (identity hashes in its thread pool; the machine has 2 cores)
CONCURRENT_LOGINS = 4


def accounts_path(config: dict) -> Path:
    """``<DATA_DIR>/demo/accounts.json``."""
    from shared.config import data_dir

    return (data_dir(config) / "demo" / ACCOUNTS_FILE).resolve()


def new_password() -> str:
    """A generated password meeting the login policy (≥ 12 characters of 4 classes)."""
    return f"Demo-{secrets.token_hex(6)}-{secrets.randbelow(10 ** 4):04d}Q"


def one_time_code(secret: str, steps_ahead: int = 0) -> str:
    """The TOTP code of the current 30-second step (or one ahead: identity
    takes the neighbouring steps too)."""
    import pyotp

    totp = pyotp.TOTP(secret)
    return totp.generate_otp(totp.timecode(datetime.now(timezone.utc)) + steps_ahead)


def security_admin_of(district: str) -> Person:
    return Person(f"secadmin-{district}", "安全管理员", SECURITY_ADMIN, district)


class DemoAccounts:
    """The demo's accounts and their sessions (one per person for the run)."""

    def __init__(self, config: dict, district: str, path: Path | None = None):
        self.config = config
        self.district = district
        self.path = Path(path) if path is not None else accounts_path(config)
        self.known: dict[str, dict] = {e["user"]: e for e in self._read()}
        self.tokens: dict[str, str] = {}
        self.people: dict[str, Person] = {}
        self.admin: str | None = None          # the security administrator's token

    # --- acting as a person ----------------------------------------------------------

    def context(self, person: Person) -> dict:
        """RPC context data acting as ``person`` (their account made and logged in if need be)."""
        from shared.identity import AUTH_TOKEN_KEY

        if person.user not in self.tokens:
            self.ensure([person])
        return {AUTH_TOKEN_KEY: self.tokens[person.user]}

    def rpc(self, person: Person, timeout: float | None = None):
        """A cluster RPC proxy acting as ``person`` (a context manager)."""
        from shared.client import rpc_with

        return rpc_with(self.config, self.context(person), timeout)

    def ensure(self, people, wait_registries: bool = True) -> None:
        """Accounts and sessions for ``people`` (``.user .name .role .unit``),
        the file written; then wait until intake's and review's staff
        registries show them."""
        import eventlet

        wanted = [p for p in dict((p.user, p) for p in people).values() if p.user not in self.tokens]
        if not wanted:
            return
        self._security_admin()
        existing = {a["user"] for a in self._identity(self.admin, lambda i: i.list_accounts(None, None))}
        pool = eventlet.GreenPool(CONCURRENT_LOGINS)
        for person, token in zip(wanted, pool.imap(lambda p: self._log_in(p, p.user in existing), wanted)):
            self.tokens[person.user] = token
            self.people[person.user] = person
        self._write()
        if wait_registries:
            self.wait_for_registries(wanted)

    # --- identity ------------------------------------------------------------------------

    @contextmanager
    def _proxy(self, token: str | None = None):
        from shared.client import rpc_with
        from shared.identity import AUTH_TOKEN_KEY

        with rpc_with(self.config, {AUTH_TOKEN_KEY: token} if token else {}) as proxy:
            yield proxy.identity

    def _identity(self, token: str | None, call):
        with self._proxy(token) as identity:
            return call(identity)

    def _security_admin(self) -> None:
        """The security administrator's session: bootstrapped on a deployment
        without accounts, else the one on file, else the CLI's session."""
        from shared.errors import Conflict

        if self.admin is not None:
            return
        admin = security_admin_of(self.district)
        try:
            made = self._identity(None, lambda i: i.bootstrap(admin.user, admin.name, admin.unit))
        except Conflict:
            on_file = [e for e in self.known.values() if e["role"] == SECURITY_ADMIN]
            for entry in on_file:
                token = self._login_on_file(entry)
                if token:
                    self.admin = token
                    self.people[entry["user"]] = Person(entry["user"], entry["name"], entry["role"], entry["unit"])
                    self.tokens[entry["user"]] = token
                    return
            self.admin = self._cli_security_admin()
            if self.admin is None:
                fail(f"identity has accounts already and the demo cannot manage them: {self.path} names no "
                     "security administrator who can still log in. Log in as a security administrator "
                     "(`dibao login --user U`) and run the demo again, or run it on its own services "
                     "(stop the running ones)")
            return
        # a fresh identity: whatever the file listed belongs to accounts that no longer exist
        self.known = {}
        self.admin = self._first_login(admin, made)
        self.tokens[admin.user] = self.admin
        self.people[admin.user] = admin

    def _cli_security_admin(self) -> str | None:
        from cli.auth import read_session

        session = read_session()
        if not session:
            return None
        try:
            me = self._identity(session["token"], lambda i: i.whoami())
        except Exception:  # noqa: BLE001 - an expired or foreign session: not usable
            return None
        return session["token"] if SECURITY_ADMIN in me.get("roles", ()) else None

    def _log_in(self, person: Person, exists: bool) -> str:
        """The person's session: their account made (or reset) and logged in."""
        entry = self.known.get(person.user)
        if exists and entry is not None:
            token = self._login_on_file(entry)
            if token:
                return token
        if exists:   # no usable password and code on file: a new password and a new TOTP secret
            made = dict(self._identity(self.admin, lambda i: i.reset_credentials(person.user, "password")))
            made["totp_secret"] = self._identity(self.admin,
                                                 lambda i: i.reset_credentials(person.user, "totp"))["totp_secret"]
        else:
            made = self._identity(self.admin, lambda i: i.add_account(
                {"user": person.user, "name": person.name, "unit": person.unit, "roles": [person.role]}))
        return self._first_login(person, made)

    def _first_login(self, person: Person, made: dict) -> str:
        """Log in with the one-time password and set a new one: the full session."""
        secret, password = made["totp_secret"], made["one_time_password"]
        answer = self._identity(None, lambda i: i.login(person.user, password, one_time_code(secret)))
        if answer["must_change_password"]:
            chosen = new_password()
            answer = self._identity(answer["token"], lambda i: i.change_password(password, chosen))
            password = chosen
        self.known[person.user] = {"user": person.user, "name": person.name, "role": person.role,
                                   "unit": person.unit, "password": password, "totp_secret": secret}
        return answer["token"]

    def _login_on_file(self, entry: dict) -> str | None:
        """Log in with the password and secret on file; the code of the next
        step when this step's was used already (an earlier run within 30 s)."""
        from shared.errors import Forbidden

        for ahead in (0, 1):
            try:
                answer = self._identity(None, lambda i: i.login(entry["user"], entry["password"],
                                                                one_time_code(entry["totp_secret"], ahead)))
            except Forbidden:
                continue
            if answer["must_change_password"]:    # the password grew too old: a new one
                chosen = new_password()
                answer = self._identity(answer["token"], lambda i: i.change_password(entry["password"], chosen))
                entry["password"] = chosen
            return answer["token"]
        return None

    # --- the file --------------------------------------------------------------------------

    def _read(self) -> list[dict]:
        try:
            entries = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return []
        keys = {"user", "name", "role", "unit", "password", "totp_secret"}
        return [e for e in entries if isinstance(e, dict) and keys <= set(e)] if isinstance(entries, list) else []

    def _write(self) -> None:
        """``accounts.json``: readable by its owner only (0600), replaced atomically."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(sorted(self.known.values(), key=lambda e: (e["unit"], e["role"], e["user"])), fh,
                      ensure_ascii=False, indent=2)
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.path)

    # --- the staff registries ----------------------------------------------------------------

    def wait_for_registries(self, people, timeout: float = 30.0) -> None:
        """Until intake's and review's staff registries show ``people`` (a
        service that does not run, or refuses the reader, is skipped)."""
        wanted = {(p.user, p.role) for p in people}
        readers = [p for p in list(people) + list(self.people.values())
                   if p.role in REGISTRY_READERS and p.unit == self.district and p.user in self.tokens]
        if not readers:
            return
        deadline = time.monotonic() + timeout
        with self.rpc(readers[0]) as rpc:
            for service in ("intake", "review"):
                while True:
                    try:
                        have = {(s["user"], s["role"]) for s in getattr(rpc, service).list_staff(self.district)}
                    except Exception:  # noqa: BLE001 - the service may not run (review in a partial demo)
                        break
                    if wanted <= have or time.monotonic() > deadline:
                        break
                    time.sleep(0.2)
