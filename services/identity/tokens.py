"""Identity's signing key and the tokens it signs (the contract: TOKENS.md).

Only this service holds ``IDENTITY_SIGNING_KEY`` (an Ed25519 seed, read with
:func:`shared.secrets.load_secret`); every other component holds the public
key, which identity publishes by RPC (``public_key``) and writes at start-up
to ``<SECRETS_DIR>/identity_public_key`` (PEM, :func:`shared.secrets.write_identity_public_key`).

A token is an EdDSA JWT: header ``alg: EdDSA``, ``typ: JWT``, ``kid`` (the
first 16 hex digits of sha256 of the raw public key); claims ``iss``,
``aud``, ``sub``, ``name``, ``unit``, ``roles``, ``kind``, ``jti``, ``iat``,
``exp``. A login that must change its password first gets a token for the
audience :data:`PASSWORD_CHANGE_AUDIENCE` with no roles: no other service
accepts it, identity accepts it for ``change_password`` (and ``whoami``,
``logout``) only.

:func:`sign_token` is private to identity until ``shared.identity.sign_token``
exists; the format is the same.
"""
from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from shared.errors import Forbidden
from shared.secrets import load_secret


DEFAULT_ISSUER = "dibao-identity"
DEFAULT_AUDIENCE = "dibao"
PASSWORD_CHANGE_AUDIENCE = "dibao-identity"
REQUIRED_CLAIMS = ["iss", "aud", "sub", "jti", "iat", "exp"]


def raw_public_key(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(public_key: Ed25519PublicKey) -> str:
    """``kid``: the first 16 hex digits of sha256 of the raw 32-byte public key."""
    return hashlib.sha256(raw_public_key(public_key)).hexdigest()[:16]


def public_key_pem(public_key: Ed25519PublicKey) -> str:
    return public_key.public_bytes(serialization.Encoding.PEM,
                                   serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii")


def private_key_from_seed(seed_b64: str) -> Ed25519PrivateKey:
    try:
        seed = base64.b64decode(seed_b64.strip(), validate=True)
    except ValueError:
        raise ValueError("IDENTITY_SIGNING_KEY is not valid base64 (expected base64 of a 32-byte seed)") from None
    if len(seed) != 32:
        raise ValueError(f"IDENTITY_SIGNING_KEY must decode to 32 bytes, not {len(seed)}")
    return Ed25519PrivateKey.from_private_bytes(seed)


def sign_token(private_key: Ed25519PrivateKey, claims: dict) -> str:
    """An EdDSA JWT of ``claims`` with the contract's header (kid)."""
    return jwt.encode(claims, private_key, algorithm="EdDSA",
                      headers={"kid": key_id(private_key.public_key()), "typ": "JWT"})


@dataclass(frozen=True)
class TokenKeys:
    """The signing key and the settings every token of this deployment carries."""

    private_key: Ed25519PrivateKey
    issuer: str = DEFAULT_ISSUER
    audience: str = DEFAULT_AUDIENCE

    @classmethod
    def from_config(cls, config: dict) -> "TokenKeys":
        return cls(private_key_from_seed(load_secret(config, "IDENTITY_SIGNING_KEY")),
                   config.get("TOKEN_ISSUER") or DEFAULT_ISSUER, config.get("TOKEN_AUDIENCE") or DEFAULT_AUDIENCE)

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()

    @property
    def kid(self) -> str:
        return key_id(self.public_key)

    def sign(self, claims: dict) -> str:
        return sign_token(self.private_key, {"iss": self.issuer, **claims})

    def decode(self, token: str, audience: str | None = None) -> dict:
        """The claims of a token this deployment signed, or Forbidden with a
        reason code (signature, algorithm, issuer, audience, expiry)."""
        if not isinstance(token, str) or not token:
            raise Forbidden("a valid actor token is required", {"reason": "missing"})
        try:
            header = jwt.get_unverified_header(token)
            if header.get("alg") != "EdDSA":
                raise Forbidden("a valid actor token is required", {"reason": "bad_algorithm"})
            return jwt.decode(token, self.public_key, algorithms=["EdDSA"], audience=audience or self.audience,
                              issuer=self.issuer, options={"require": REQUIRED_CLAIMS}, leeway=5)
        except jwt.ExpiredSignatureError:
            raise Forbidden("the token has expired", {"reason": "expired"}) from None
        except jwt.InvalidAudienceError:
            raise Forbidden("a valid actor token is required", {"reason": "bad_audience"}) from None
        except jwt.InvalidIssuerError:
            raise Forbidden("a valid actor token is required", {"reason": "bad_issuer"}) from None
        except jwt.InvalidSignatureError:
            raise Forbidden("a valid actor token is required", {"reason": "bad_signature"}) from None
        except (jwt.PyJWTError, ValueError, TypeError):
            raise Forbidden("a valid actor token is required", {"reason": "malformed"}) from None
