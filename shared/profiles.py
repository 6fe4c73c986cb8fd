"""Crypto profiles (密码配置): which algorithms the deployment uses, chosen once.

``CRYPTO_PROFILE`` (config.yml) names one :class:`CryptoProfile`:

=============================  ==========================  ===============================
what                           ``intl`` (the default)      ``gm`` (国密, for 密评)
=============================  ==========================  ===============================
fields at rest                 AES-256-GCM                 SM4-GCM (GB/T 32907)
key derivation                 HKDF-SHA256                 HKDF-SM3
blind index                    HMAC-SHA256                 HMAC-SM3
audit hash chain               SHA-256                     SM3 (GB/T 32905)
audit checkpoint signature     Ed25519                     SM2 with SM3 (GB/T 32918, ID 1234567812345678)
=============================  ==========================  ===============================

Everything that encrypts, hashes or signs asks the profile (``profile.aead``,
``profile.chain_hash``, ``profile.signer``…); nothing else looks at its
name. SM3, SM4 and HMAC/HKDF with SM3 come from ``cryptography`` (OpenSSL);
SM2 from ``gmssl`` (pure Python), used with a CSPRNG nonce and strict
range checks (:class:`Sm2Signer`).

The profile is a property of the data: a database written under one profile
cannot be read under the other. Each service database records the profile
it was made with (table ``crypto_profile``, written on its first start,
``intl`` for a database older than profiles) and a service configured with
the other one refuses to start (:class:`ProfileMismatch`, naming
``CRYPTO_PROFILE``) — see :func:`check_database_profile`.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets as _random
from dataclasses import dataclass

import sqlalchemy as sa
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives import hmac as crypto_hmac
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = ["CryptoProfile", "INTL", "GM", "PROFILES", "profile_named", "profile_of", "ProfileMismatch",
           "check_database_profile", "Unsealable"]

SETTING = "CRYPTO_PROFILE"
NONCE_BYTES = 12
TAG_BYTES = 16


class Unsealable(ValueError):
    """An AEAD ciphertext that does not open: wrong key, wrong associated data, or altered."""


class ProfileMismatch(RuntimeError):
    """The configured CRYPTO_PROFILE is not the one a database (or a checkpoint) was made with."""


# --- signatures ------------------------------------------------------------------

class Ed25519Signer:
    """The international profile's checkpoint signature."""

    algorithm = "ed25519"

    def __init__(self, seed: bytes | Ed25519PrivateKey):
        self._key = seed if isinstance(seed, Ed25519PrivateKey) else Ed25519PrivateKey.from_private_bytes(seed)

    def public_key_text(self) -> str:
        raw = self._key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return base64.b64encode(raw).decode()

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message)

    @staticmethod
    def verify(public_key_text: str, signature: bytes, message: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key_text, validate=True)).verify(
                signature, message)
            return True
        except (InvalidSignature, ValueError, binascii.Error, TypeError):
            return False


#: the SM2 curve order n (GB/T 32918.5)
_SM2_N = int("FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123", 16)


class Sm2Signer:
    """The 国密 profile's checkpoint signature: SM2 over SM3(Z_A ‖ M) with the
    default user ID ``1234567812345678`` (gmssl's ``sign_with_sm3``).

    The private key is the 32-byte seed of ``AUDIT_SIGNING_KEY`` reduced to
    ``[1, n-2]``; the public key text is base64 of the 64-byte point x ‖ y.
    gmssl draws its signing nonce from ``random`` (not a CSPRNG) and strips a
    leading ``04`` with ``str.lstrip`` (which eats any leading 0s and 4s):
    both are avoided here — the nonce comes from :mod:`secrets`, the public
    key is set after construction, and r, s are range-checked on verify."""

    algorithm = "sm2-sm3"

    def __init__(self, seed: bytes):
        from gmssl import sm2

        d = int.from_bytes(seed, "big") % (_SM2_N - 2) + 1
        self._private_hex = f"{d:064x}"
        probe = sm2.CryptSM2(private_key=self._private_hex, public_key="00" * 64)
        self._public_hex = probe._kg(d, sm2.default_ecc_table["g"])
        self._sm2 = self._crypt(self._public_hex, self._private_hex)

    @staticmethod
    def _crypt(public_hex: str, private_hex: str | None = None):
        from gmssl import sm2

        crypt = sm2.CryptSM2(private_key=private_hex, public_key="00" * 64)
        crypt.public_key = public_hex   # not through gmssl's lstrip("04")
        return crypt

    def public_key_text(self) -> str:
        return base64.b64encode(bytes.fromhex(self._public_hex)).decode()

    def sign(self, message: bytes) -> bytes:
        while True:
            k = _random.randbelow(_SM2_N - 1) + 1
            signature = self._sm2.sign_with_sm3(message, f"{k:064x}")
            if signature:   # None for the rare k that gives r = 0 or s = 0
                return bytes.fromhex(signature)

    @classmethod
    def verify(cls, public_key_text: str, signature: bytes, message: bytes) -> bool:
        try:
            point = base64.b64decode(public_key_text, validate=True)
        except (binascii.Error, ValueError, TypeError):
            return False
        if len(point) != 64 or len(signature) != 64:
            return False
        r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
        if not (0 < r < _SM2_N and 0 < s < _SM2_N):
            return False
        try:
            return bool(cls._crypt(point.hex()).verify_with_sm3(signature.hex(), message))
        except (ValueError, TypeError, ZeroDivisionError):
            return False


# --- AEADs ------------------------------------------------------------------------

class _AesGcm:
    def __init__(self, key: bytes):
        self._aead = AESGCM(key)

    def encrypt(self, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
        return self._aead.encrypt(nonce, plaintext, aad)

    def decrypt(self, nonce: bytes, sealed: bytes, aad: bytes | None) -> bytes:
        try:
            return self._aead.decrypt(nonce, sealed, aad)
        except InvalidTag:
            raise Unsealable("wrong key, another row or column, or altered") from None


class _Sm4Gcm:
    """SM4 in GCM mode (cryptography's ``Cipher(algorithms.SM4, modes.GCM)``), 16-byte tag."""

    def __init__(self, key: bytes):
        self._algorithm = algorithms.SM4(key)

    def encrypt(self, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
        encryptor = Cipher(self._algorithm, modes.GCM(nonce)).encryptor()
        encryptor.authenticate_additional_data(aad)
        body = encryptor.update(plaintext) + encryptor.finalize()
        return body + encryptor.tag

    def decrypt(self, nonce: bytes, sealed: bytes, aad: bytes | None) -> bytes:
        if len(sealed) < TAG_BYTES:
            raise Unsealable("too short")
        decryptor = Cipher(self._algorithm, modes.GCM(nonce, sealed[-TAG_BYTES:])).decryptor()
        if aad:
            decryptor.authenticate_additional_data(aad)
        try:
            return decryptor.update(sealed[:-TAG_BYTES]) + decryptor.finalize()
        except InvalidTag:
            raise Unsealable("wrong key, another row or column, or altered") from None


def as_signer(key):
    """A checkpoint signer: one of ours as it is, a ``cryptography`` Ed25519 private key wrapped."""
    return Ed25519Signer(key) if isinstance(key, Ed25519PrivateKey) else key


# --- the profiles ------------------------------------------------------------------

@dataclass(frozen=True)
class CryptoProfile:
    """One set of algorithms. The subclasses differ only in the primitives."""

    name: str
    label: str
    cipher_name: str
    key_bytes: int
    chain_name: str         # the audit chain's hash, as a bundle's manifest names it
    signature_name: str     # the checkpoint signature's algorithm, as a checkpoint names it (signed)

    def hash_algorithm(self) -> hashes.HashAlgorithm:
        raise NotImplementedError

    def derive(self, key: bytes, info: bytes, length: int | None = None) -> bytes:
        """HKDF with the profile's hash (no salt): a sub-key for one purpose."""
        return HKDF(algorithm=self.hash_algorithm(), length=length or self.key_bytes, salt=None,
                    info=info).derive(key)

    def mac(self, key: bytes, message: bytes) -> str:
        """Hex HMAC with the profile's hash (the blind index)."""
        h = crypto_hmac.HMAC(key, self.hash_algorithm())
        h.update(message)
        return h.finalize().hex()

    def chain_hash(self, data: bytes) -> str:
        """Hex digest of the audit chain's hash (64 hex digits in both profiles)."""
        h = hashes.Hash(self.hash_algorithm())
        h.update(data)
        return h.finalize().hex()

    def aead(self, key: bytes):
        """The AEAD under ``key``: ``encrypt(nonce, plaintext, aad)`` → ciphertext ‖
        16-byte tag; ``decrypt(nonce, sealed, aad)`` raises :class:`Unsealable`."""
        raise NotImplementedError

    def signer(self, seed: bytes):
        raise NotImplementedError

    def verify_signature(self, public_key_text: str, signature: bytes, message: bytes) -> bool:
        raise NotImplementedError


class _Intl(CryptoProfile):
    def hash_algorithm(self):
        return hashes.SHA256()

    def mac(self, key: bytes, message: bytes) -> str:
        return hmac.new(key, message, hashlib.sha256).hexdigest()   # the stdlib is quicker for SHA-256

    def chain_hash(self, data: bytes) -> str:
        return hashlib.sha256(data).hexdigest()

    def aead(self, key: bytes):
        return _AesGcm(key)

    def signer(self, seed: bytes):
        return Ed25519Signer(seed)

    def verify_signature(self, public_key_text, signature, message):
        return Ed25519Signer.verify(public_key_text, signature, message)


class _Gm(CryptoProfile):
    def hash_algorithm(self):
        return hashes.SM3()

    def aead(self, key: bytes):
        return _Sm4Gcm(key)

    def signer(self, seed: bytes):
        return Sm2Signer(seed)

    def verify_signature(self, public_key_text, signature, message):
        return Sm2Signer.verify(public_key_text, signature, message)


INTL: CryptoProfile = _Intl("intl", "international (AES-256-GCM, SHA-256, Ed25519)", "aes-256-gcm", 32,
                            "sha256", Ed25519Signer.algorithm)
GM: CryptoProfile = _Gm("gm", "国密 (SM4-GCM, SM3, SM2)", "sm4-gcm", 16, "sm3", Sm2Signer.algorithm)
PROFILES: dict[str, CryptoProfile] = {p.name: p for p in (INTL, GM)}


def profile_signing_with(algorithm: str) -> CryptoProfile | None:
    """The profile whose checkpoints are signed with ``algorithm`` (``ed25519``, ``sm2-sm3``)."""
    return next((p for p in PROFILES.values() if p.signature_name == algorithm), None)


def profile_hashing_with(chain_name: str | None) -> CryptoProfile | None:
    """The profile whose audit chain hashes with ``chain_name`` (``sha256``, ``sm3``; None: ``sha256``)."""
    return next((p for p in PROFILES.values() if p.chain_name == (chain_name or "sha256")), None)


def profile_named(name: str | None) -> CryptoProfile:
    """The profile of that name (empty: the default, ``intl``).

    :raises ValueError: naming CRYPTO_PROFILE and the choices."""
    key = (name or "intl").strip().lower()
    if key not in PROFILES:
        raise ValueError(f"{SETTING} is {name!r}: expected one of {', '.join(PROFILES)}")
    return PROFILES[key]


def profile_of(config: dict) -> CryptoProfile:
    """The deployment's profile, from ``CRYPTO_PROFILE``."""
    return profile_named(config.get(SETTING))


# --- the profile a database was made with -----------------------------------------

_META = sa.MetaData()
#: one row: the profile this database's ciphertexts, indexes and hashes were made with
PROFILE_TABLE = sa.Table(
    "crypto_profile", _META,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("profile", sa.String(16), nullable=False),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
)


def database_profile(conn) -> str | None:
    """The profile recorded in this database, or None (no record)."""
    if not sa.inspect(conn).has_table(PROFILE_TABLE.name):
        return None
    return conn.execute(sa.select(PROFILE_TABLE.c.profile).where(PROFILE_TABLE.c.id == 1)).scalar()


def check_database_profile(engine, service: str, profile: CryptoProfile) -> str:
    """Record the profile in a new database, or refuse one made with another.

    Kept outside the service's Alembic scripts (a platform table every
    service database has, like the lock it guards): checked before migrating.
    A database with tables but no record predates the profiles: it is
    ``intl``. Returns the recorded profile's name.

    :raises ProfileMismatch: naming CRYPTO_PROFILE, the service and both profiles."""
    from datetime import datetime, timezone

    try:
        with engine.begin() as conn:
            recorded = database_profile(conn)
            if recorded is None:
                existing = [t for t in sa.inspect(conn).get_table_names() if t != PROFILE_TABLE.name]
                recorded = "intl" if existing else profile.name
                PROFILE_TABLE.create(conn, checkfirst=True)
                conn.execute(PROFILE_TABLE.insert().values(id=1, profile=recorded,
                                                           recorded_at=datetime.now(timezone.utc)))
    except (sa.exc.IntegrityError, sa.exc.ProgrammingError, sa.exc.OperationalError):
        # a replica starting at the same moment recorded it first (or made the table): read theirs
        with engine.connect() as conn:
            recorded = database_profile(conn)
        if recorded is None:
            raise
    if recorded != profile.name:
        raise ProfileMismatch(
            f"{service} refuses to start: its database was made with {SETTING}={recorded}, "
            f"this deployment is configured with {SETTING}={profile.name}; one database keeps one profile "
            f"(set {SETTING}: {recorded}, or start from an empty database)")
    return recorded


# --- the process's profile ------------------------------------------------------------

_current: CryptoProfile = INTL


def use(profile: CryptoProfile | dict) -> CryptoProfile:
    """Choose the process's profile once, from the config (``shared.db``, the
    CLI) or a profile (tests); what :func:`current` gives from then on."""
    global _current
    _current = profile if isinstance(profile, CryptoProfile) else profile_of(profile)
    return _current


def current() -> CryptoProfile:
    """The profile this process was configured with (``intl`` until :func:`use`)."""
    return _current
