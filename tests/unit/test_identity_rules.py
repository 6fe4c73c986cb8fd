"""Identity's pure rules: password policy, lockout, TOTP window and replay,
sessions, 三员分立, the policy from config; the token format."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import jwt
import pyotp
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.identity import rules
from services.identity.credentials import Passwords, one_time_password
from services.identity.rules import LoginPolicy
from services.identity.tokens import TokenKeys, key_id, raw_public_key
from shared.errors import Conflict, Forbidden, ValidationFailed

POLICY = LoginPolicy()
OLD_TOKEN_KEY = "dev-only-token-key-change-me-in-deployment"  # secret-scan: known (the old HS256 default)
OLD_AUDIT_SIGNING_KEY = "ZGV2LW9ubHktYXVkaXQtc2lnbmluZy1rZXktMzJieSE="  # secret-scan: known (the old default)
NOW = datetime(2026, 12, 1, 8, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("password", [
    "Short1!",                  # too short
    "alllowercaseletters",      # one class
    "lowercase12345678",        # two classes
    "Wang.Fang-2026!x",         # contains the user id (case-insensitive)
    "x" * 129 + "A1!",          # too long
])
def test_weak_passwords_are_refused_naming_the_field(password):
    with pytest.raises(ValidationFailed) as caught:
        rules.password_meets_policy(password, "wang.fang", POLICY)
    assert "new_password" in caught.value.fields


@pytest.mark.parametrize("password", ["Correct-horse-9", "correct horse 9x", "低保中心Passw0rd"])
def test_passwords_of_twelve_characters_from_three_classes_pass(password):
    rules.password_meets_policy(password, "wang.fang", POLICY)


def test_generated_one_time_passwords_meet_the_policy():
    for _ in range(50):
        rules.password_meets_policy(one_time_password(), "wang.fang", POLICY)


def test_new_password_must_differ():
    with pytest.raises(ValidationFailed):
        rules.password_differs("Same-Password-1", "Same-Password-1")
    rules.password_differs("Same-Password-1", "Other-Password-1")


def test_password_age():
    assert not rules.password_expired(NOW - timedelta(days=90), NOW, POLICY)
    assert rules.password_expired(NOW - timedelta(days=90, seconds=1), NOW, POLICY)


def test_fifth_failure_locks_for_fifteen_minutes():
    assert rules.lock_after_failure(4, NOW, POLICY) is None
    until = rules.lock_after_failure(5, NOW, POLICY)
    assert until == NOW + timedelta(minutes=15)
    assert rules.is_locked(until, NOW + timedelta(minutes=14, seconds=59))
    assert not rules.is_locked(until, NOW + timedelta(minutes=15))
    assert not rules.is_locked(None, NOW)


def test_totp_accepts_one_step_either_side_and_no_further():
    secret = pyotp.random_base32(32)
    totp = pyotp.TOTP(secret)
    step = totp.timecode(NOW)
    for offset in (-1, 0, 1):
        code = totp.generate_otp(step + offset)
        assert rules.totp_step(secret, code, NOW, 1) == step + offset
    for offset in (-2, 2):
        assert rules.totp_step(secret, totp.generate_otp(step + offset), NOW, 1) is None
    assert rules.totp_step(secret, None, NOW, 1) is None
    assert rules.totp_step(secret, "abcdef", NOW, 1) is None
    assert rules.totp_step(pyotp.random_base32(32), totp.generate_otp(step), NOW, 1) is None


def test_a_code_counts_once():
    assert rules.code_not_replayed(10, None)
    assert rules.code_not_replayed(11, 10)
    assert not rules.code_not_replayed(10, 10)
    assert not rules.code_not_replayed(9, 10)
    assert not rules.code_not_replayed(None, None)


def test_totp_required_for_the_staff_roles_by_default():
    assert rules.totp_required(["community_officer"], POLICY)
    assert rules.totp_required(["security_admin"], POLICY)
    assert not rules.totp_required(["partner_bureau"], POLICY)
    assert not rules.totp_required([], POLICY)


def test_session_refusals():
    later = NOW + timedelta(hours=1)
    assert rules.session_refusal(None, later, later, NOW) is None
    assert rules.session_refusal(NOW, later, later, NOW) == "revoked"
    assert rules.session_refusal(None, NOW, later, NOW) == "expired"
    assert rules.session_refusal(None, later, NOW, NOW) == "idle_timeout"
    assert rules.session_refusal(None, later, None, NOW) is None


def test_administrator_roles_are_held_alone():
    rules.roles_compatible(["community_officer", "community_panel"])
    rules.roles_compatible(["security_admin"])
    for roles in (["system_admin", "security_admin"], ["security_admin", "audit_admin"],
                  ["system_admin", "audit_admin"], ["audit_admin", "auditor"], ["system_admin", "district_officer"]):
        with pytest.raises(Conflict):
            rules.roles_compatible(roles)


def test_only_a_security_admin_administers_within_their_unit_and_never_themselves():
    rules.may_administer(["security_admin"], "420115", "sec", "wang", "420115001001")
    for roles in (["system_admin"], ["audit_admin"], ["deputy_director"], []):
        with pytest.raises(Forbidden):
            rules.may_administer(roles, "420115", "sec", "wang", "420115001001")
    with pytest.raises(Forbidden):
        rules.may_administer(["security_admin"], "420115", "sec", "sec", "420115")
    with pytest.raises(Forbidden):
        rules.may_administer(["security_admin"], "420115", "sec", "wang", "420116001001")


def test_last_security_admin_and_bootstrap_once():
    with pytest.raises(Conflict):
        rules.keeps_a_security_admin(0)
    rules.keeps_a_security_admin(1)
    rules.no_account_exists(0)
    with pytest.raises(Conflict):
        rules.no_account_exists(1)


def test_user_ids_and_roles_are_validated():
    rules.user_id_is_valid("wang.fang")
    for bad in ("W", "Wang", "1abc", "a b", "a" * 65, ""):
        with pytest.raises(ValidationFailed):
            rules.user_id_is_valid(bad)
    with pytest.raises(ValidationFailed):
        rules.role_is_known("admin")
    with pytest.raises(ValidationFailed):
        rules.role_is_known("service")


def test_policy_from_config():
    policy = LoginPolicy.from_config({"PASSWORD_MIN_LENGTH": "14", "LOGIN_MAX_FAILURES": 3,
                                      "TOTP_REQUIRED_ROLES": "deputy_director, security_admin"})
    assert policy.password_min_length == 14 and policy.max_failures == 3
    assert policy.totp_required_roles == {"deputy_director", "security_admin"}
    assert LoginPolicy.from_config({"TOTP_REQUIRED_ROLES": "*"}).totp_required_roles == rules.PERSON_ROLES
    assert LoginPolicy.from_config({"TOTP_REQUIRED_ROLES": "none"}).totp_required_roles == frozenset()
    with pytest.raises(ValueError):
        LoginPolicy.from_config({"TOTP_REQUIRED_ROLES": "admin"})
    with pytest.raises(ValueError):
        LoginPolicy.from_config({"TOKEN_TTL_SECONDS": 9 * 3600})   # a token lives at most 8 h


def test_unknown_user_is_checked_against_a_dummy_hash_and_never_matches():
    passwords = Passwords(time_cost=1, memory_kib=8192)
    stored = passwords.hash("Correct-horse-9")
    assert stored.startswith("$argon2id$")
    assert passwords.verify(stored, "Correct-horse-9")
    assert not passwords.verify(stored, "Correct-horse-8")
    assert not passwords.verify(None, "Correct-horse-9")
    assert not passwords.verify("not a hash", "Correct-horse-9")


def test_token_header_and_claims_follow_the_contract():
    keys = TokenKeys(Ed25519PrivateKey.generate())
    token = keys.sign({"aud": "dibao", "sub": "wang.fang", "name": "王芳", "unit": "420115001001",
                       "roles": ["community_officer"], "kind": "person", "jti": "ab" * 16,
                       "iat": int(NOW.timestamp()), "exp": int(NOW.timestamp()) + 3600})
    header = jwt.get_unverified_header(token)
    assert header == {"alg": "EdDSA", "typ": "JWT", "kid": key_id(keys.public_key)}
    assert len(header["kid"]) == 16
    assert header["kid"] == __import__("hashlib").sha256(raw_public_key(keys.public_key)).hexdigest()[:16]
    claims = jwt.decode(token, keys.public_key, algorithms=["EdDSA"], audience="dibao",
                        options={"verify_exp": False, "verify_iat": False})
    assert claims["iss"] == "dibao-identity"


def test_decode_refuses_other_keys_algorithms_audiences_and_expiry():
    keys = TokenKeys(Ed25519PrivateKey.generate())
    now = int(datetime.now(timezone.utc).timestamp())
    claims = {"iss": "dibao-identity", "aud": "dibao", "sub": "x", "jti": "j", "iat": now, "exp": now + 60}
    forged = {
        "bad_signature": jwt.encode(claims, Ed25519PrivateKey.generate(), algorithm="EdDSA"),
        "bad_algorithm": jwt.encode(claims, OLD_TOKEN_KEY, algorithm="HS256"),
        "bad_audience": keys.sign({**claims, "aud": "elsewhere"}),
        "expired": keys.sign({**claims, "iat": now - 120, "exp": now - 60}),
        "bad_issuer": jwt.encode({**claims, "iss": "me"}, keys.private_key, algorithm="EdDSA"),
        "malformed": "not.a.token",
    }
    unsigned = jwt.encode(claims, None, algorithm="none")
    forged["bad_algorithm_none"] = unsigned
    for reason, token in forged.items():
        with pytest.raises(Forbidden) as caught:
            keys.decode(token)
        assert caught.value.details["reason"] == reason.replace("_none", ""), reason
    assert keys.decode(keys.sign(claims))["sub"] == "x"


def test_the_signing_seed_is_refused_when_the_repository_published_it(tmp_path):
    from shared.secrets import SecretError

    with pytest.raises(SecretError, match="IDENTITY_SIGNING_KEY"):
        TokenKeys.from_config({"IDENTITY_SIGNING_KEY": OLD_AUDIT_SIGNING_KEY,
                               "DATA_DIR": str(tmp_path)})
    with pytest.raises(SecretError, match="IDENTITY_SIGNING_KEY"):   # neither set nor on file
        TokenKeys.from_config({"IDENTITY_SIGNING_KEY": "", "DATA_DIR": str(tmp_path)})


def test_the_public_key_file_is_the_signing_keys(tmp_path):
    import base64

    from cryptography.hazmat.primitives import serialization

    from services.identity.tokens import private_key_from_seed, public_key_pem
    from shared.secrets import write_identity_public_key

    seed = base64.b64encode(Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())).decode()
    config = {"DATA_DIR": str(tmp_path), "IDENTITY_SIGNING_KEY": seed}
    (tmp_path / "secrets").mkdir()
    path = write_identity_public_key(config)
    keys = TokenKeys(private_key_from_seed(seed))
    assert path.read_text() == public_key_pem(keys.public_key) and "PRIVATE" not in path.read_text()
