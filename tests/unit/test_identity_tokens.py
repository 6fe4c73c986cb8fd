"""Tokens only identity can sign (issue #12), tried as an insider would: every
forged, stale or foreign token is refused with a reason code."""
from __future__ import annotations

import base64
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared.errors import Forbidden
from shared.identity import (Actor, Revocations, Role, TokenVerifier, authorize, identity_public_key, key_id,
                             private_key_from_seed, public_key_pem, public_key_text, sign_token, token_claims)
from shared.secrets import KNOWN_VALUES, _sha256
from shared.testing import repository_token_key

KEY = Ed25519PrivateKey.generate()


def verifier(**kw) -> TokenVerifier:
    return TokenVerifier(KEY.public_key(), **kw)


def claims(**over) -> dict:
    body = token_claims("wang.fang", "王芳", "420115001001", [Role.COMMUNITY_OFFICER])
    body.update(over)
    return body


def reason(v: TokenVerifier, token) -> str:
    with pytest.raises(Forbidden) as err:
        v.verify(token)
    return err.value.details["reason"]


def b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_a_token_identity_signed_gives_the_actor_its_claims_say():
    token = sign_token(KEY, claims())
    assert jwt.get_unverified_header(token) == {"alg": "EdDSA", "typ": "JWT", "kid": key_id(KEY.public_key())}
    actor = verifier().verify(token)
    assert actor == Actor("wang.fang", "王芳", "420115001001", frozenset({Role.COMMUNITY_OFFICER}), "person",
                          actor.session_id)
    assert actor.has("community_officer") and not actor.has(Role.DISTRICT_OFFICER) and len(actor.session_id) == 32


def test_forged_stale_and_foreign_tokens_are_refused_with_a_reason_code():
    v = verifier()
    old_default = repository_token_key()   # the HS256 key the repository shipped
    assert _sha256(old_default) in KNOWN_VALUES or "no git history" in old_default
    now = int(time.time())
    cases = {
        "bad_signature": sign_token(Ed25519PrivateKey.generate(), claims()),              # another key
        "algorithm_refused": jwt.encode(claims(), old_default, algorithm="HS256"),      # the old default key
        "wrong_audience": sign_token(KEY, claims(aud="partner-portal")),
        "wrong_issuer": sign_token(KEY, claims(iss="someone-else")),
        "expired": sign_token(KEY, claims(iat=now - 7200, exp=now - 10)),
        "lifetime_too_long": sign_token(KEY, claims(exp=now + 9 * 3600)),
        "malformed": "not.a.token",
    }
    for expected, token in cases.items():
        assert reason(v, token) == expected, expected
    # alg none, and an EdDSA header over an HS256 body
    assert reason(v, f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims())}.") == "algorithm_refused"
    assert reason(v, None) == "missing"
    # a token without a jti (session id) or an audience is not identity's
    body = claims()
    del body["jti"]
    assert reason(v, sign_token(KEY, body)) == "malformed"


def test_no_token_claims_what_identity_never_issues():
    v = verifier()
    for bad in (claims(roles=["admin"]),                                    # the old all-powerful role
                claims(roles=["system_admin", "security_admin"]),          # two of the three administrators
                claims(roles=["service"]),                                 # a person as a service
                claims(kind="service", sub="wang.fang", roles=["service"], unit=""),
                claims(kind="service", sub="service:review", roles=["service"], unit="420115"),
                claims(unit="")):                                          # an empty unit would cover every division
        assert reason(v, sign_token(KEY, bad)) == "malformed", bad


def test_the_signature_is_checked_once_per_token_expiry_and_revocation_every_call(monkeypatch):
    v = verifier()
    token = sign_token(KEY, claims(exp=int(time.time()) + 60))
    v.verify(token)
    calls = []
    monkeypatch.setattr(jwt, "decode", lambda *a, **k: calls.append(1))
    for _ in range(100):
        v.verify(token)
    assert calls == []                                                     # cached by token
    monkeypatch.undo()
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")   # same jti, other signature
    assert reason(v, forged) == "bad_signature"
    v.clock = lambda: time.time() + 120                                    # expiry: per call, even when cached
    assert reason(v, token) == "expired"


def test_revoked_sessions_disabled_accounts_and_revoked_roles_stop_their_tokens():
    revocations = Revocations()
    v = verifier(revocations=revocations)
    a, b = sign_token(KEY, claims(jti="s-a")), sign_token(KEY, claims(jti="s-b"))
    v.verify(a), v.verify(b)
    revocations.revoke_session("s-a")
    assert reason(v, a) == "revoked"
    v.verify(b)
    revocations.disable_account("wang.fang", time.time())
    assert reason(v, b) == "account_disabled"
    later = sign_token(KEY, claims(iat=int(time.time()) + 2, exp=int(time.time()) + 3600))
    assert v.verify(later).user == "wang.fang"                             # logged in again after being enabled
    other = sign_token(KEY, token_claims("li.na", "李娜", "420115", [Role.DISTRICT_OFFICER, Role.AUDITOR]))
    v.verify(other)
    revocations.revoke_role("li.na", "auditor", time.time())
    assert reason(v, other) == "revoked"


def test_no_role_passes_every_check_and_refusals_name_only_the_callers_unit():
    for role in (Role.SYSTEM_ADMIN, Role.SECURITY_ADMIN, Role.AUDIT_ADMIN):
        admin = Actor("root", "管理员", "420115", frozenset({role}))
        with pytest.raises(Forbidden):
            authorize(admin, (Role.COMMUNITY_OFFICER, Role.DISTRICT_OFFICER), "420115001001")
    officer = Actor("wang.fang", "王芳", "420115001001", frozenset({Role.COMMUNITY_OFFICER}))
    with pytest.raises(Forbidden) as err:
        authorize(officer, (Role.COMMUNITY_OFFICER,), "420115002001")
    assert "420115002001" not in str(err.value.message) + json.dumps(err.value.details)
    assert authorize(officer, (Role.COMMUNITY_OFFICER,), "420115001001") is officer
    service = Actor("service:review", "review service", "", frozenset({Role.SERVICE}), "service")
    assert not service.covers("420115001001")                              # an empty unit covers nothing
    with pytest.raises(Forbidden):
        authorize(service, (Role.COMMUNITY_OFFICER,), "420115001001")
    assert authorize(service, (Role.COMMUNITY_OFFICER, Role.SERVICE), "420115001001") is service


def test_the_public_key_comes_from_the_setting_or_the_deployments_secrets(tmp_path):
    assert key_id(identity_public_key({"IDENTITY_PUBLIC_KEY": public_key_text(KEY.public_key())})) == \
        key_id(KEY.public_key())
    assert key_id(identity_public_key({"IDENTITY_PUBLIC_KEY": public_key_pem(KEY.public_key())})) == \
        key_id(KEY.public_key())
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    seed = base64.b64encode(bytes(range(32))).decode()
    (secrets / "identity_signing_key").write_text(seed + "\n")
    derived = identity_public_key({"DATA_DIR": str(tmp_path), "IDENTITY_PUBLIC_KEY": ""})
    assert key_id(derived) == key_id(private_key_from_seed(seed).public_key())
    (secrets / "identity_signing_key").unlink()
    (secrets / "identity_public_key").write_text(public_key_text(KEY.public_key()))
    assert key_id(identity_public_key({"DATA_DIR": str(tmp_path)})) == key_id(KEY.public_key())
