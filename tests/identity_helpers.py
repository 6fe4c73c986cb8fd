"""Driving the identity service in tests and benchmarks: secrets for the
test deployment, one-time codes that are never reused, the first security
administrator, accounts that have set their own password."""
from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone

import pyotp

from shared.identity import AUTH_TOKEN_KEY
from shared.secrets import ensure_secrets

DISTRICT = "420115"
COMMUNITY = "420115001001"
ADMIN_PASSWORD = "Security-Admin-2026"
WRONG_CODE = "123456"   # for attempts refused before the code is looked at

_last_step: dict[str, int] = {}

#: Test deployments accept codes this many 30-second steps either side (the
#: deployment default is 1): a test that logs one person in several times
#: then takes the next steps' codes instead of sleeping until a step passes.
TEST_TOTP_WINDOW = 4


def with_secrets(config: dict) -> dict:
    """The test deployment's generated secrets (in its own DATA_DIR)."""
    ensure_secrets(config)
    config["TOTP_VALID_WINDOW"] = TEST_TOTP_WINDOW
    return config


def code(secret: str) -> str:
    """A valid one-time code of a later step than any used before by these
    tests (identity takes each code once): the current step's or the
    following ones within the test deployment's window (TEST_TOTP_WINDOW,
    keeping one step's margin for a boundary passing before identity
    checks) — else wait for the next step."""
    totp = pyotp.TOTP(secret)
    while True:
        now = totp.timecode(datetime.now(timezone.utc))
        for step in range(now, now + TEST_TOTP_WINDOW):
            if step > _last_step.get(secret, -1):
                _last_step[secret] = step
                return totp.generate_otp(step)
        time.sleep(1)


@contextmanager
def rpc_with(config: dict, token: str | None = None, timeout: float | None = None):
    """A cluster proxy carrying ``token`` (or none)."""
    from nameko.standalone.rpc import ClusterRpcProxy

    context = {AUTH_TOKEN_KEY: token} if token else {}
    with ClusterRpcProxy(config, context_data=context, timeout=timeout or float(config.get("RPC_TIMEOUT", 30))) as p:
        yield p


@dataclass
class Person:
    user: str
    password: str
    totp_secret: str
    token: str = ""

    def login(self, config: dict) -> dict:
        with rpc_with(config) as rpc:
            answer = rpc.identity.login(self.user, self.password, code(self.totp_secret))
        self.token = answer["token"]
        return answer


def first_login(config: dict, user: str, credentials: dict, new_password: str) -> Person:
    """Log in with the one-time password, set one's own: the person with a full session."""
    person = Person(user, credentials["one_time_password"], credentials["totp_secret"])
    answer = person.login(config)
    assert answer["must_change_password"] is True
    with rpc_with(config, person.token) as rpc:
        changed = rpc.identity.change_password(person.password, new_password)
    person.password, person.token = new_password, changed["token"]
    return person


def bootstrap_admin(config: dict, user: str = "sec.admin") -> Person:
    with rpc_with(config) as rpc:
        credentials = rpc.identity.bootstrap(user, "安全管理员", DISTRICT)
    return first_login(config, user, credentials, ADMIN_PASSWORD)


def add_person(config: dict, admin: Person, user: str, roles: list[str], unit: str = COMMUNITY,
               name: str = "王芳", password: str = "Officer-Pass-2026") -> Person:
    with rpc_with(config, admin.token) as rpc:
        credentials = rpc.identity.add_account({"user": user, "name": name, "unit": unit, "roles": roles})
    return first_login(config, user, credentials, password)
