"""The identity service over real RabbitMQ, on SQLite and PostgreSQL.

Tried as an insider would: the token verifies with the public key only and
carries the contract's claims; failures are counted and lock the account;
an unknown user and a wrong password get the same answer in about the same
time; a disabled account, a revoked session, a forged or foreign token stop
working; bootstrap works once; 三员分立 holds; the TOTP secret is encrypted
in the database and no secret reaches an event.
"""
from __future__ import annotations

import json
import statistics
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import jwt
import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from services.identity.service import IdentityService
from shared.db import make_engine
from shared.errors import Conflict, Forbidden, NotFound, ValidationFailed
from tests.identity_helpers import (ADMIN_PASSWORD, COMMUNITY, DISTRICT, WRONG_CODE, Person, add_person,
                                    bootstrap_admin, code, rpc_with, with_secrets)

pytestmark = pytest.mark.integration

OFFICER_PASSWORD = "Officer-Pass-2026"
OLD_TOKEN_KEY = "dev-only-token-key-change-me-in-deployment"  # secret-scan: known (the old HS256 default)


@pytest.fixture
def identity(container_factory, config):
    with_secrets(config)
    container = container_factory(IdentityService, config)
    container.start()
    return config


def rows(config: dict, sql: str, **params) -> list:
    engine = make_engine(config["DB_URIS"]["identity"])
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(sql), params)]
    finally:
        engine.dispose()


def events(config: dict, kind: str | None = None) -> list[dict]:
    bodies = [json.loads(r[0]) for r in rows(config, "SELECT body FROM outbox ORDER BY id")]
    return [b for b in bodies if kind is None or b["type"] == kind]


def public_key(config: dict):
    path = Path(config["DATA_DIR"]) / "secrets" / "identity_public_key"
    return load_pem_public_key(path.read_bytes())


def refused(call, *args) -> Forbidden:
    with pytest.raises(Forbidden) as caught:
        call(*args)
    return caught.value


def test_login_token_verifies_with_the_public_key_and_carries_the_contract(identity):
    config = identity
    admin = bootstrap_admin(config)
    officer = add_person(config, admin, "wang.fang", ["community_officer"])
    answer = officer.login(config)
    assert answer["must_change_password"] is False
    token = answer["token"]
    header = jwt.get_unverified_header(token)
    with rpc_with(config) as rpc:
        published = rpc.identity.public_key()
    assert header["alg"] == "EdDSA" and header["typ"] == "JWT" and header["kid"] == published["kid"]
    assert published["public_key_pem"] == (Path(config["DATA_DIR"]) / "secrets" / "identity_public_key").read_text()
    claims = jwt.decode(token, public_key(config), algorithms=["EdDSA"], audience="dibao", issuer="dibao-identity")
    assert claims["sub"] == "wang.fang" and claims["name"] == "王芳" and claims["unit"] == COMMUNITY
    assert claims["roles"] == ["community_officer"] and claims["kind"] == "person"
    assert len(claims["jti"]) == 32 and 0 < claims["exp"] - claims["iat"] <= 8 * 3600
    with rpc_with(config, token) as rpc:
        me = rpc.identity.whoami()
    assert me["user"] == "wang.fang" and me["session_id"] == claims["jti"] and me["roles"] == ["community_officer"]
    succeeded = [e for e in events(config, "login_succeeded") if e["payload"]["session_id"] == claims["jti"]]
    assert succeeded and succeeded[0]["subject"] == {"user": "wang.fang"}


def test_first_login_must_change_password_and_its_token_serves_nothing_else(identity):
    config = identity
    with rpc_with(config) as rpc:
        credentials = rpc.identity.bootstrap("sec.admin", "安全管理员", DISTRICT)
        answer = rpc.identity.login("sec.admin", credentials["one_time_password"], code(credentials["totp_secret"]))
    assert answer["must_change_password"] is True
    claims = jwt.decode(answer["token"], public_key(config), algorithms=["EdDSA"], audience="dibao-identity")
    assert claims["roles"] == []
    with pytest.raises(jwt.InvalidAudienceError):   # no other service accepts it
        jwt.decode(answer["token"], public_key(config), algorithms=["EdDSA"], audience="dibao")
    with rpc_with(config, answer["token"]) as rpc:
        error = refused(rpc.identity.add_account, {"user": "x.y", "name": "某", "unit": COMMUNITY, "roles": []})
        assert error.details["reason"] == "password_change_required"
        with pytest.raises(ValidationFailed) as weak:
            rpc.identity.change_password(credentials["one_time_password"], "sec.admin-Pass-1")
        assert "new_password" in weak.value.fields
        changed = rpc.identity.change_password(credentials["one_time_password"], ADMIN_PASSWORD)
    assert changed["must_change_password"] is False
    with rpc_with(config, changed["token"]) as rpc:
        assert rpc.identity.list_accounts()[0]["user"] == "sec.admin"
    with rpc_with(config, answer["token"]) as rpc:   # the old session was revoked by the change
        assert refused(rpc.identity.whoami).details["reason"] == "revoked"


def test_bootstrap_only_once(identity):
    config = identity
    bootstrap_admin(config)
    with rpc_with(config) as rpc:
        with pytest.raises(Conflict):
            rpc.identity.bootstrap("second.admin", "又一个", DISTRICT)
    assert [r[0] for r in rows(config, "SELECT user_id FROM account")] == ["sec.admin"]


def test_failures_are_counted_lock_after_five_and_unlock(identity):
    config = identity
    admin = bootstrap_admin(config)
    officer = add_person(config, admin, "wang.fang", ["community_officer"])
    with rpc_with(config) as rpc:
        for attempt in range(4):
            refused(rpc.identity.login, "wang.fang", "Wrong-Password-1", WRONG_CODE)
        refused(rpc.identity.login, "wang.fang", OFFICER_PASSWORD, "000000")   # a wrong code counts too
        # locked now: the right password and code get the same answer
        error = refused(rpc.identity.login, "wang.fang", OFFICER_PASSWORD, code(officer.totp_secret))
        assert error.details == {"reason": "login_failed"}
    failed = [e["payload"] for e in events(config, "login_failed") if e["subject"]["user"] == "wang.fang"]
    assert [f["reason"] for f in failed] == ["wrong_password"] * 4 + ["wrong_code", "locked"]
    assert [f["failed_attempts"] for f in failed[:5]] == [1, 2, 3, 4, 5]
    assert failed[4]["locked_until"] is not None
    with rpc_with(config, admin.token) as rpc:
        [listed] = rpc.identity.list_accounts(COMMUNITY, "locked")
        assert listed["user"] == "wang.fang"
        assert rpc.identity.unlock_account("wang.fang")["status"] == "active"
    assert officer.login(config)["must_change_password"] is False
    assert rows(config, "SELECT failed_attempts FROM account WHERE user_id = 'wang.fang'") == [(0,)]
    # a refused login commits its count, and its command record says it was refused
    outcomes = [e["payload"]["outcome"] for e in events(config, "command_recorded")
                if e["payload"]["method"] == "login"]
    assert outcomes.count("forbidden") == 6 and outcomes.count("ok") == 3


def test_unknown_user_and_wrong_password_answer_the_same_in_about_the_same_time(identity):
    config = identity
    admin = bootstrap_admin(config)
    officer = add_person(config, admin, "wang.fang", ["community_officer"])
    with rpc_with(config, admin.token) as rpc:   # more failures than the lock allows: keep it open
        rpc.identity.unlock_account("wang.fang")
    timings: dict[str, list[float]] = {"unknown": [], "wrong": []}
    answers = {}
    with rpc_with(config) as rpc:
        for i in range(8):
            for kind, user in (("unknown", "nobody.here"), ("wrong", "wang.fang")):
                start = time.perf_counter()
                error = refused(rpc.identity.login, user, "Wrong-Password-1", WRONG_CODE)
                timings[kind].append(time.perf_counter() - start)
                answers[kind] = (type(error), error.message, error.details)
            if i == 3:
                with rpc_with(config, admin.token) as admin_rpc:
                    admin_rpc.identity.unlock_account("wang.fang")
    assert answers["unknown"] == answers["wrong"]
    unknown, wrong = statistics.median(timings["unknown"]), statistics.median(timings["wrong"])
    assert 0.5 < unknown / wrong < 2.0, timings   # both pay for one argon2 check
    reasons = {e["payload"]["reason"] for e in events(config, "login_failed") if e["subject"]["user"] == ""}
    assert reasons == {"unknown_user"}


def test_disabled_account_cannot_log_in_and_its_sessions_are_revoked(identity):
    config = identity
    admin = bootstrap_admin(config)
    officer = add_person(config, admin, "wang.fang", ["community_officer"])
    session = jwt.decode(officer.token, options={"verify_signature": False})["jti"]
    with rpc_with(config, admin.token) as rpc:
        assert rpc.identity.disable_account("wang.fang")["status"] == "disabled"
        revoked = rpc.identity.revocations()
    assert {"user": "wang.fang"} in [{k: v for k, v in r.items() if k == "user"} for r in revoked]
    assert session in [r.get("session_id") for r in revoked]
    with rpc_with(config, officer.token) as rpc:
        assert refused(rpc.identity.whoami).details["reason"] in ("revoked", "account_disabled")
        error = refused(rpc.identity.login, "wang.fang", OFFICER_PASSWORD, code(officer.totp_secret))
        assert error.details == {"reason": "login_failed"}
    assert [e["subject"] for e in events(config, "account_disabled")] == [{"user": "wang.fang"}]
    assert [e["payload"]["session_id"] for e in events(config, "session_revoked")
            if e["payload"]["reason"] == "account_disabled"] == [session]
    with rpc_with(config, admin.token) as rpc:
        rpc.identity.enable_account("wang.fang")
    assert officer.login(config)["token"]
    assert len(events(config, "account_enabled")) == 1


def test_logout_and_role_revocation_revoke_sessions(identity):
    config = identity
    admin = bootstrap_admin(config)
    officer = add_person(config, admin, "wang.fang", ["community_officer", "community_panel"])
    first = officer.token
    with rpc_with(config, first) as rpc:
        rpc.identity.logout()
        assert refused(rpc.identity.whoami).details["reason"] == "revoked"
    officer.login(config)
    with rpc_with(config, admin.token) as rpc:
        view = rpc.identity.revoke_role("wang.fang", "community_panel")
        assert view["roles"] == ["community_officer"]
        with pytest.raises(NotFound):
            rpc.identity.revoke_role("wang.fang", "community_panel")
    with rpc_with(config, officer.token) as rpc:
        assert refused(rpc.identity.whoami).details["reason"] == "revoked"
    reasons = [e["payload"]["reason"] for e in events(config, "session_revoked")
               if e["subject"]["user"] == "wang.fang"]
    assert reasons.count("logout") == 1 and reasons.count("role_revoked") == 1
    assert [e["payload"] for e in events(config, "role_revoked")] == [
        {"user": "wang.fang", "unit": COMMUNITY, "role": "community_panel"}]
    claims = jwt.decode(officer.login(config)["token"], public_key(config), algorithms=["EdDSA"], audience="dibao")
    assert claims["roles"] == ["community_officer"]


def test_separation_of_the_three_administrators(identity):
    config = identity
    admin = bootstrap_admin(config)
    officer = add_person(config, admin, "wang.fang", ["community_officer"])
    with rpc_with(config, admin.token) as rpc:
        with pytest.raises(Conflict):
            rpc.identity.add_account({"user": "two.hats", "name": "某", "unit": DISTRICT,
                                      "roles": ["system_admin", "audit_admin"]})
        rpc.identity.add_account({"user": "audit.admin", "name": "审计员", "unit": DISTRICT,
                                  "roles": ["audit_admin"]})
        for role in ("system_admin", "security_admin", "auditor"):
            with pytest.raises(Conflict):
                rpc.identity.grant_role("audit.admin", role)
        with pytest.raises(Conflict):   # an officer does not become an administrator on the side
            rpc.identity.grant_role("wang.fang", "system_admin")
        assert refused(rpc.identity.grant_role, "sec.admin", "deputy_director").details["reason"] == "own_account"
        assert refused(rpc.identity.disable_account, "sec.admin").details["reason"] == "own_account"
        with pytest.raises(ValidationFailed):
            rpc.identity.grant_role("wang.fang", "admin")
    with rpc_with(config, officer.token) as rpc:   # only the security administrator grants
        assert refused(rpc.identity.grant_role, "wang.fang", "deputy_director").details["reason"] == \
            "not_security_admin"
        refused(rpc.identity.add_account, {"user": "x.y", "name": "某", "unit": COMMUNITY, "roles": ["system_admin"]})
        refused(rpc.identity.list_accounts)
    assert [r[0] for r in rows(config, "SELECT role FROM staff_role WHERE user_id = 'audit.admin'")] == ["audit_admin"]
    assert rows(config, "SELECT role FROM staff_role WHERE user_id = 'wang.fang'") == [("community_officer",)]


def test_the_last_security_admin_stays(identity):
    config = identity
    admin = bootstrap_admin(config)
    second = add_person(config, admin, "sec.two", ["security_admin"], unit=DISTRICT, name="安全员二",
                        password="Second-Admin-2026")
    with rpc_with(config, second.token) as rpc:
        rpc.identity.revoke_role("sec.admin", "security_admin")   # another one remains: allowed
    with rpc_with(config, second.token) as rpc:
        assert refused(rpc.identity.revoke_role, "sec.two", "security_admin").details["reason"] == "own_account"


def test_secrets_are_encrypted_at_rest_and_never_in_an_event(identity):
    config = identity
    admin = bootstrap_admin(config)
    with rpc_with(config, admin.token) as rpc:
        credentials = rpc.identity.add_account({"user": "wang.fang", "name": "王芳", "unit": COMMUNITY,
                                                "roles": ["community_officer"]})
        reset = rpc.identity.reset_totp("wang.fang")
        again = rpc.identity.reset_password("wang.fang")
    assert credentials["totp_uri"].startswith("otpauth://totp/") and reset["totp_secret"] != credentials["totp_secret"]
    person = Person("wang.fang", again["one_time_password"], reset["totp_secret"])
    assert person.login(config)["must_change_password"] is True
    with rpc_with(config, person.token) as rpc:
        rpc.identity.change_password(again["one_time_password"], OFFICER_PASSWORD)
    with rpc_with(config) as rpc:
        refused(rpc.identity.login, "wang.fang", "Typed-Wrongly-77", WRONG_CODE)
    [(stored_secret, stored_hash)] = rows(config, "SELECT totp_secret, password_hash FROM account "
                                                  "WHERE user_id = 'wang.fang'")
    assert stored_secret.startswith("v2:") and reset["totp_secret"] not in stored_secret
    assert stored_hash.startswith("$argon2id$v=19$m=19456,t=3,p=1$")
    secrets = [credentials["one_time_password"], credentials["totp_secret"], reset["totp_secret"],
               again["one_time_password"], OFFICER_PASSWORD, ADMIN_PASSWORD, "Typed-Wrongly-77", stored_hash,
               stored_secret, "$argon2"]
    bodies = [r[0] for r in rows(config, "SELECT body FROM outbox")]
    assert len(bodies) > 10
    for body in bodies:
        for secret in secrets:
            assert secret not in body
    assert {e["type"] for e in map(json.loads, bodies)} >= {
        "account_created", "role_granted", "credentials_reset", "login_succeeded", "login_failed",
        "password_changed", "session_revoked", "command_recorded"}


def test_forged_and_foreign_tokens_are_refused(identity):
    config = identity
    admin = bootstrap_admin(config)
    claims = jwt.decode(admin.token, public_key(config), algorithms=["EdDSA"], audience="dibao")
    now = int(time.time())
    forged = {
        "bad_signature": jwt.encode(claims, Ed25519PrivateKey.generate(), algorithm="EdDSA"),
        "bad_algorithm": jwt.encode(claims, OLD_TOKEN_KEY, algorithm="HS256"),
        "none": jwt.encode(claims, None, algorithm="none"),
        "malformed": "not-a-token",
    }
    for reason, token in forged.items():
        with rpc_with(config, token) as rpc:
            error = refused(rpc.identity.list_accounts)
        assert error.details["reason"] in (reason, "bad_algorithm", "malformed"), reason
    with rpc_with(config) as rpc:
        assert refused(rpc.identity.whoami).details["reason"] == "missing"
    # a token identity never issued a session for (signed with the real key: a stolen seed) is refused too
    from services.identity.tokens import TokenKeys
    keys = TokenKeys.from_config(config)
    unknown = keys.sign({**claims, "jti": "f" * 32, "iat": now, "exp": now + 60})
    with rpc_with(config, unknown) as rpc:
        assert refused(rpc.identity.whoami).details["reason"] == "unknown_session"
    expired = keys.sign({**claims, "iat": now - 120, "exp": now - 60})
    with rpc_with(config, expired) as rpc:
        assert refused(rpc.identity.whoami).details["reason"] == "expired"
    nothing = rows(config, "SELECT count(*) FROM account")
    assert nothing == [(1,)]


def test_service_tokens_for_their_own_secret_only(identity):
    config = identity
    from shared.secrets import load_secret
    secret = load_secret(config, "SERVICE_SECRET_REVIEW")
    with rpc_with(config) as rpc:
        answer = rpc.identity.service_token("review", secret)
        error = refused(rpc.identity.service_token, "review", secret + "x")
        assert error.details == {"reason": "login_failed"}
        refused(rpc.identity.service_token, "intake", secret)
        refused(rpc.identity.service_token, "nosuch", secret)
    claims = jwt.decode(answer["token"], public_key(config), algorithms=["EdDSA"], audience="dibao")
    assert claims["sub"] == "service:review" and claims["kind"] == "service" and claims["unit"] == ""
    assert claims["roles"] == ["service"]
    with rpc_with(config, answer["token"]) as rpc:
        assert rpc.identity.revocations() == []
        refused(rpc.identity.add_account, {"user": "x.y", "name": "某", "unit": COMMUNITY, "roles": []})
    reasons = [e["payload"]["reason"] for e in events(config, "login_failed")]
    assert reasons == ["bad_service_secret"] * 3


def test_idle_session_expires(container_factory, config):
    config = with_secrets(config)
    config["SESSION_IDLE_SECONDS"] = 60
    container_factory(IdentityService, config).start()
    admin = bootstrap_admin(config)
    jti = jwt.decode(admin.token, options={"verify_signature": False})["jti"]
    past = datetime.now(timezone.utc) - timedelta(seconds=1)
    engine = make_engine(config["DB_URIS"]["identity"])
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE login_session SET idle_deadline = :t WHERE jti = :j"), {"t": past, "j": jti})
    engine.dispose()
    with rpc_with(config, admin.token) as rpc:
        assert refused(rpc.identity.whoami).details["reason"] == "idle_timeout"
