"""Field encryption at rest (字段加密), per-service keyrings and a blind index (盲索引).

Resident ID numbers, incomes, bank accounts and TOTP secrets are stored
encrypted with the deployment's AEAD (``CRYPTO_PROFILE``: AES-256-GCM, or
SM4-GCM under ``gm``; :mod:`shared.profiles`).

**Tokens.** ``"v2:<key id>:" + urlsafe_b64(nonce[12] ‖ ciphertext ‖ tag[16])``.
The associated data binds each token to where it belongs — the profile, the
table, the column and the row — so a token copied to another row or column
does not open (:class:`FieldUnreadable`). How the row gets into the
associated data: :mod:`shared.sealing`. The random nonce makes every
encryption different, so encrypted columns cannot be compared in SQL.
``"v1:" + urlsafe_b64(nonce ‖ ciphertext ‖ tag)`` is the format before key
ids (AES-GCM under an HKDF-SHA256 sub-key of the old shared ``DATA_KEY``, no
associated data): still read, under the key id ``v1``, until ``dibao keys
rotate`` has re-encrypted them and ``dibao keys retire SERVICE v1`` drops it.

**Keys.** Each service has its own keyring, the secret ``DATA_KEY_<SERVICE>``
(:mod:`shared.secrets`): entries ``<key id>:<base64 of 32 bytes>`` separated
by whitespace (one a line in the file), the **last** one encrypting, every
one decrypting; ``v1:<base64>`` is the old ``DATA_KEY`` (v1 tokens only).
A key's AEAD key is derived from its 32 bytes with the profile's HKDF
(info ``dibao-field-v2``). While ``dibao keys rotate`` runs, a service keeps
running: a token under a key id it does not know makes it re-read its
keyring (:class:`FieldCipher` with a ``source``), and it re-reads the file
every :data:`RELOAD_SECONDS` anyway, so it encrypts under the new key soon
after it is added.

**Blind index.** For equality lookups ("is this ID number already on
file?") intake stores :meth:`FieldCipher.blind_index` next to the
ciphertext: a keyed HMAC (SHA-256 or SM3) that is deterministic but reveals
nothing without the key. Its key is a separate secret,
``BLIND_INDEX_KEY_<SERVICE>``, which key rotation does **not** change: the
indexes (and the unique constraint on them) stay valid while tokens are
re-encrypted, and no index has to be recomputed from the plaintexts. A
deployment from before per-service keys gets as its index key the old
``DATA_KEY``'s index sub-key, so its indexes stay as they are. Normalise the
value first (e.g. ``shared.resident_id.validate_resident_id``).

Services install their cipher with :func:`configure` (``shared.db``: one per
service, found by the tables' service name); :func:`get_cipher` gives it.
"""
from __future__ import annotations

import base64
import binascii
import logging
import os
import re
import secrets as _random
import threading
import time
from typing import Callable

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from shared.profiles import INTL, NONCE_BYTES, TAG_BYTES, CryptoProfile, Unsealable

__all__ = [
    "key_from_config",
    "Keyring",
    "FieldCipher",
    "FieldUnreadable",
    "Unsealable",
    "configure",
    "get_cipher",
    "EncryptedString",
    "EncryptedDecimal",
]

log = logging.getLogger(__name__)

KEY_BYTES = 32
LEGACY_KEY_ID = "v1"
_V1 = "v1:"
_V2 = "v2:"
_INFO_FIELD = b"dibao-field-v2"
_INFO_LEGACY_ENCRYPTION = b"dibao-aes-gcm-v1"
_INFO_LEGACY_INDEX = b"dibao-blind-index-v1"
_KEY_ID = re.compile(r"^[a-z0-9]{1,16}$")
#: how often a service re-reads its keyring file (to encrypt under a key rotation added)
RELOAD_SECONDS = 5.0


class FieldUnreadable(ValueError):
    """An encrypted field that does not open where it is: moved from another
    row or column, altered, or under a key this service does not have. The
    message names the table, column, row and key id — never the plaintext
    or the token."""

    def __init__(self, message: str, table: str = "", column: str = "", row: str = "", key_id: str = ""):
        super().__init__(message)
        self.table, self.column, self.row, self.key_id = table, column, row, key_id


def key_from_config(value: str, setting: str = "DATA_KEY") -> bytes:
    """Decode one 32-byte key: standard base64 of exactly 32 bytes.

    :raises ValueError: (naming ``setting``) if it is not valid base64 or not 32 bytes."""
    if not isinstance(value, str):
        raise ValueError(f"{setting} must be a base64 string of exactly 32 bytes")
    try:
        key = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"{setting} is not valid base64 (expected base64 of 32 bytes)") from exc
    if len(key) != KEY_BYTES:
        raise ValueError(f"{setting} must decode to exactly {KEY_BYTES} bytes, got {len(key)}")
    return key


def legacy_index_key(data_key: bytes) -> bytes:
    """The blind-index key the old shared DATA_KEY implied (HKDF-SHA256, info
    ``dibao-blind-index-v1``): a deployment's indexes stay valid."""
    return HKDF(hashes.SHA256(), KEY_BYTES, None, _INFO_LEGACY_INDEX).derive(data_key)


# --- keyrings ----------------------------------------------------------------------

class Keyring:
    """Key ids → 32-byte keys, in order; the last (not ``v1``) encrypts."""

    def __init__(self, keys: dict[str, bytes]):
        if not keys:
            raise ValueError("a keyring needs at least one key")
        for kid, key in keys.items():
            if not _KEY_ID.match(kid):
                raise ValueError(f"key id {kid!r} is not 1–16 lower-case letters and digits")
            if len(key) != KEY_BYTES:
                raise ValueError(f"key {kid} is not {KEY_BYTES} bytes")
        current = [kid for kid in keys if kid != LEGACY_KEY_ID]
        if not current:
            raise ValueError("a keyring needs a key besides v1 (the old DATA_KEY reads v1 tokens only)")
        self.keys = dict(keys)
        self.primary = current[-1]

    @classmethod
    def parse(cls, text: str, setting: str = "DATA_KEY_<SERVICE>") -> "Keyring":
        """``<key id>:<base64>`` entries separated by whitespace.

        :raises ValueError: naming ``setting`` (never a key)."""
        keys: dict[str, bytes] = {}
        for n, entry in enumerate(str(text).split(), 1):
            kid, sep, encoded = entry.partition(":")
            if not sep:
                raise ValueError(f"{setting}: entry {n} is not <key id>:<base64 of 32 bytes>")
            if kid in keys:
                raise ValueError(f"{setting}: key id {kid} appears twice")
            try:
                keys[kid] = key_from_config(encoded, f"{setting} (key {kid})")
            except ValueError as exc:
                raise ValueError(str(exc)) from None
        try:
            return cls(keys)
        except ValueError as exc:
            raise ValueError(f"{setting}: {exc}") from None

    def render(self) -> str:
        return "\n".join(f"{kid}:{base64.b64encode(key).decode('ascii')}" for kid, key in self.keys.items())

    @staticmethod
    def new_key_id() -> str:
        return _random.token_hex(4)

    @classmethod
    def generate(cls, legacy: bytes | None = None) -> "Keyring":
        """A new keyring of one fresh key (after the old DATA_KEY as ``v1``, if given)."""
        keys = {LEGACY_KEY_ID: legacy} if legacy else {}
        keys[cls.new_key_id()] = _random.token_bytes(KEY_BYTES)
        return cls(keys)

    def with_new_key(self) -> "Keyring":
        kid = self.new_key_id()
        while kid in self.keys:
            kid = self.new_key_id()
        return Keyring({**self.keys, kid: _random.token_bytes(KEY_BYTES)})

    def without(self, kid: str) -> "Keyring":
        if kid not in self.keys:
            raise KeyError(kid)
        if kid == self.primary:
            raise ValueError(f"key {kid} is the one that encrypts: rotate to a new key first")
        return Keyring({k: v for k, v in self.keys.items() if k != kid})


def key_id_of(token: str) -> str:
    """The key id a token names (``v1`` for the old format); ``""`` if it is none of ours."""
    if not isinstance(token, str):
        return ""
    if token.startswith(_V1):
        return LEGACY_KEY_ID
    if token.startswith(_V2):
        kid, sep, _ = token[len(_V2):].partition(":")
        return kid if sep else ""
    return ""


def token_prefix(kid: str) -> str:
    """What every token under key ``kid`` starts with (for SQL ``LIKE``)."""
    return _V1 if kid == LEGACY_KEY_ID else f"{_V2}{kid}:"


def associated_data(profile: CryptoProfile, table: str, column: str, row: str) -> bytes:
    """What a v2 token is bound to: the profile, the table, the column, the row."""
    for part in (table, column, row):
        if "\x00" in part:
            raise ValueError("a table, column or row id with NUL cannot be bound")
    return b"\x00".join(p.encode("utf-8") for p in ("dibao-field-v2", profile.name, table, column, row))


class FieldCipher:
    """Encrypts and decrypts field values under a keyring; computes blind indexes.

    ``FieldCipher(key)`` with 32 bytes is a one-key keyring (tests, tools)
    whose index key is derived from it; services build one from their
    secrets (:func:`shared.db.configure_cipher`), with ``source`` re-reading
    the keyring."""

    def __init__(self, keyring: Keyring | bytes, profile: CryptoProfile = INTL, index_key: bytes | None = None,
                 source: Callable[[], Keyring] | None = None, key_id: str = "k1"):
        if isinstance(keyring, (bytes, bytearray)):
            if len(keyring) != KEY_BYTES:
                raise ValueError(f"field cipher key must be exactly {KEY_BYTES} bytes")
            if index_key is None:
                index_key = legacy_index_key(bytes(keyring))
            keyring = Keyring({key_id: bytes(keyring)})
        if not isinstance(keyring, Keyring):
            raise TypeError("FieldCipher needs a Keyring or 32 bytes")
        self.profile = profile
        self._index_key = index_key
        self._source = source
        self._lock = threading.Lock()
        self._checked = time.monotonic()
        self._install(keyring)

    def _install(self, keyring: Keyring) -> None:
        aeads = {}
        for kid, key in keyring.keys.items():
            if kid == LEGACY_KEY_ID:
                aeads[kid] = INTL.aead(HKDF(hashes.SHA256(), KEY_BYTES, None, _INFO_LEGACY_ENCRYPTION).derive(key))
            else:
                aeads[kid] = self.profile.aead(self.profile.derive(key, _INFO_FIELD))
        self.keyring, self._aeads = keyring, aeads

    @property
    def primary(self) -> str:
        return self.keyring.primary

    def key_ids(self) -> list[str]:
        return list(self.keyring.keys)

    def reload(self) -> bool:
        """Re-read the keyring from its source (if any); whether it changed."""
        if self._source is None:
            return False
        with self._lock:
            self._checked = time.monotonic()
            fresh = self._source()
            if fresh.keys == self.keyring.keys:
                return False
            self._install(fresh)
        log.info("field keyring reloaded: keys %s, encrypting under %s", ", ".join(fresh.keys), fresh.primary)
        return True

    def _maybe_reload(self) -> None:
        if self._source is not None and time.monotonic() - self._checked > RELOAD_SECONDS:
            try:
                self.reload()
            except Exception:   # a keyring file being replaced: keep the one we have
                log.warning("field keyring could not be re-read; keeping the current one", exc_info=True)

    # --- tokens ---

    def encrypt(self, plaintext: str, aad: bytes, key_id: str | None = None) -> str:
        """A v2 token of ``plaintext`` bound to ``aad`` (:func:`associated_data`),
        under the primary key or ``key_id``."""
        if not isinstance(plaintext, str):
            raise TypeError(f"can only encrypt str, not {type(plaintext).__name__}")
        if key_id is None:
            self._maybe_reload()
        kid = key_id or self.keyring.primary
        if kid == LEGACY_KEY_ID:
            raise ValueError("v1 (the old DATA_KEY) only decrypts")
        aead = self._aeads[kid]
        nonce = os.urandom(NONCE_BYTES)
        sealed = aead.encrypt(nonce, plaintext.encode("utf-8"), aad)
        return f"{_V2}{kid}:" + base64.urlsafe_b64encode(nonce + sealed).decode("ascii")

    def decrypt(self, token: str, aad: bytes) -> str:
        """The plaintext of a token made for ``aad`` (v2) or of a v1 token.

        :raises ValueError: a malformed token, an unknown key id, or
            :class:`shared.profiles.Unsealable` (wrong key, other row or column, altered)."""
        kid = key_id_of(token)
        if not kid:
            raise ValueError("not an encrypted field value (expected a 'v2:<key id>:' or 'v1:' token)")
        body = token[len(_V1):] if kid == LEGACY_KEY_ID else token[len(_V2) + len(kid) + 1:]
        try:
            raw = base64.b64decode(body, altchars=b"-_", validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError("encrypted field value is not valid base64") from exc
        if len(raw) < NONCE_BYTES + TAG_BYTES:
            raise ValueError("encrypted field value is too short")
        aead = self._aeads.get(kid)
        if aead is None and self.reload():   # a key rotation added it since we read the keyring
            aead = self._aeads.get(kid)
        if aead is None:
            raise ValueError(f"encrypted under key {kid}, which this service's keyring does not have")
        plain = aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], None if kid == LEGACY_KEY_ID else aad)
        return plain.decode("utf-8")

    # --- files (scanned documents) ---

    def seal_bytes(self, data: bytes, bound_to: str) -> bytes:
        """Encrypt a file's bytes (a scanned document) under the primary key:
        ``b"v2:<key id>:" + nonce + ciphertext+tag``.

        ``bound_to`` (e.g. the record's id) is the associated data, so one
        record's file put in place of another's does not open."""
        if not isinstance(data, bytes):
            raise TypeError(f"can only seal bytes, not {type(data).__name__}")
        self._maybe_reload()
        kid = self.keyring.primary
        if kid == LEGACY_KEY_ID:
            raise ValueError("v1 (the old DATA_KEY) only decrypts")
        nonce = os.urandom(NONCE_BYTES)
        return f"{_V2}{kid}:".encode("ascii") + nonce + self._aeads[kid].encrypt(nonce, data, bound_to.encode("utf-8"))

    def open_bytes(self, sealed: bytes, bound_to: str) -> bytes:
        """The bytes :meth:`seal_bytes` sealed for ``bound_to`` (under any key of the keyring).

        :raises ValueError: for a malformed or short blob, an unknown key, another record's file, or tampering.
        """
        head, sep, rest = sealed.partition(b":")
        kid, sep2, body = rest.partition(b":")
        if head + b":" != _V2.encode("ascii") or not sep or not sep2 or len(body) < NONCE_BYTES + TAG_BYTES:
            raise ValueError("not a sealed file (expected 'v2:<key id>:' and nonce, ciphertext, tag)")
        key_id = kid.decode("ascii", "replace")
        aead = self._aeads.get(key_id)
        if aead is None and self.reload():
            aead = self._aeads.get(key_id)
        if aead is None:
            raise ValueError(f"sealed under key {key_id}, which this service's keyring does not have")
        try:
            return aead.decrypt(body[:NONCE_BYTES], body[NONCE_BYTES:], bound_to.encode("utf-8"))
        except Unsealable as exc:
            raise ValueError("cannot open sealed file: wrong key, another record's file or tampered") from exc

    # --- blind index ---

    def blind_index(self, value: str, purpose: str) -> str:
        """Deterministic keyed index (hex HMAC of ``purpose + "\\x00" + value``).

        ``purpose`` (e.g. ``"resident_id"``) separates indexes of different
        fields, so equal values in different fields do not index equally."""
        if not isinstance(value, str) or not isinstance(purpose, str):
            raise TypeError("blind_index needs str value and purpose")
        if not purpose or "\x00" in purpose:
            raise ValueError("blind index purpose must be non-empty and contain no NUL")
        if self._index_key is None:
            raise RuntimeError("this service has no blind-index key (BLIND_INDEX_KEY_<SERVICE>)")
        return self.profile.mac(self._index_key, purpose.encode("utf-8") + b"\x00" + value.encode("utf-8"))


# --- one cipher per service --------------------------------------------------------

_ciphers: dict[str | None, FieldCipher] = {}


def configure(cipher: FieldCipher, service: str | None = None) -> None:
    """Install ``service``'s cipher (``None``: the one for tables of no service)."""
    if not isinstance(cipher, FieldCipher):
        raise TypeError("configure() needs a FieldCipher")
    _ciphers[service] = cipher


def get_cipher(service: str | None = None) -> FieldCipher:
    """The cipher of ``service`` (else the one configured without a service).

    :raises RuntimeError: if none was configured."""
    cipher = _ciphers.get(service) or _ciphers.get(None)
    if cipher is None:
        raise RuntimeError(f"field cipher not configured{f' for {service}' if service else ''}")
    return cipher


def reset() -> None:
    """Forget every configured cipher (tests)."""
    _ciphers.clear()


def __getattr__(name: str):
    """``EncryptedString`` / ``EncryptedDecimal`` live in :mod:`shared.sealing`
    (the models import them from here)."""
    if name in ("EncryptedString", "EncryptedDecimal"):
        from shared import sealing
        return getattr(sealing, name)
    raise AttributeError(f"module 'shared.crypto' has no attribute {name!r}")
