"""Field encryption at rest (字段加密) and a blind index (盲索引).

Resident ID numbers and incomes are stored encrypted with AES-256-GCM.  The
key comes from the ``DATA_KEY`` secret (base64 of exactly 32 bytes, see
:func:`key_from_config`; the deployment's own, never a shipped default:
``shared.secrets.load_secret``).  Two independent sub-keys are derived from it with
HKDF-SHA256: one for encryption (info ``b"dibao-aes-gcm-v1"``), one for the
blind index (info ``b"dibao-blind-index-v1"``).

A ciphertext token is ``"v1:" + urlsafe_b64(nonce[12] + ciphertext+tag)``;
the random nonce makes every encryption different, so encrypted columns
cannot be compared in SQL.  For equality lookups ("is this ID number
already on file?") store :meth:`FieldCipher.blind_index` next to the
ciphertext: a keyed HMAC-SHA256 that is deterministic but reveals nothing
without the key.  Normalise the value first (e.g. with
``shared.resident_id.validate_resident_id``) so equal values index equally.

Services call :func:`configure` once at start-up; the SQLAlchemy types
:class:`EncryptedString` and :class:`EncryptedDecimal` use
:func:`get_cipher`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from decimal import Decimal
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy.engine import Dialect
from sqlalchemy.types import Text, TypeDecorator

__all__ = [
    "key_from_config",
    "FieldCipher",
    "configure",
    "get_cipher",
    "EncryptedString",
    "EncryptedDecimal",
]

KEY_BYTES = 32
NONCE_BYTES = 12
_TAG_BYTES = 16
_PREFIX = "v1:"
_INFO_ENCRYPTION = b"dibao-aes-gcm-v1"
_INFO_INDEX = b"dibao-blind-index-v1"


def key_from_config(value: str) -> bytes:
    """Decode the ``DATA_KEY`` setting: standard base64 of exactly 32 bytes.

    :raises ValueError: (naming DATA_KEY) if it is not valid base64 or not 32 bytes.
    """
    if not isinstance(value, str):
        raise ValueError("DATA_KEY must be a base64 string of exactly 32 bytes")
    try:
        key = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("DATA_KEY is not valid base64 (expected base64 of 32 bytes)") from exc
    if len(key) != KEY_BYTES:
        raise ValueError(f"DATA_KEY must decode to exactly {KEY_BYTES} bytes, got {len(key)}")
    return key


def _derive(key: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=info).derive(key)


class FieldCipher:
    """Encrypts/decrypts field values and computes blind indexes with one master key."""

    def __init__(self, key: bytes) -> None:
        """:param key: the 32-byte master key (see :func:`key_from_config`)."""
        if not isinstance(key, bytes) or len(key) != KEY_BYTES:
            raise ValueError(f"field cipher key must be exactly {KEY_BYTES} bytes")
        self._aead = AESGCM(_derive(key, _INFO_ENCRYPTION))
        self._index_key = _derive(key, _INFO_INDEX)

    def encrypt(self, plaintext: str) -> str:
        """Encrypt a string; returns ``"v1:" + urlsafe-base64(nonce + ciphertext)``."""
        if not isinstance(plaintext, str):
            raise TypeError(f"can only encrypt str, not {type(plaintext).__name__}")
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext.encode("utf-8"), None)
        return _PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode("ascii")

    def decrypt(self, token: str) -> str:
        """Decrypt a token made by :meth:`encrypt`.

        :raises ValueError: for a malformed token, a wrong key, or tampering.
        """
        if not isinstance(token, str) or not token.startswith(_PREFIX):
            raise ValueError("not an encrypted field value (expected a 'v1:' token)")
        try:
            raw = base64.b64decode(token[len(_PREFIX):], altchars=b"-_", validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError("encrypted field value is not valid base64") from exc
        if len(raw) < NONCE_BYTES + _TAG_BYTES:
            raise ValueError("encrypted field value is too short")
        try:
            plain = self._aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], None)
        except InvalidTag as exc:
            raise ValueError("cannot decrypt field value: wrong key or tampered data") from exc
        return plain.decode("utf-8")

    def seal_bytes(self, data: bytes, bound_to: str) -> bytes:
        """Encrypt a file's bytes (a scanned document): ``nonce + ciphertext+tag``.

        ``bound_to`` (e.g. the record's id) is authenticated with it, so one
        record's file put in place of another's does not decrypt."""
        if not isinstance(data, bytes):
            raise TypeError(f"can only seal bytes, not {type(data).__name__}")
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, data, bound_to.encode("utf-8"))

    def open_bytes(self, sealed: bytes, bound_to: str) -> bytes:
        """The bytes :meth:`seal_bytes` sealed for ``bound_to``.

        :raises ValueError: for a short blob, a wrong key, another record's file, or tampering.
        """
        if len(sealed) < NONCE_BYTES + _TAG_BYTES:
            raise ValueError("sealed file is too short")
        try:
            return self._aead.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], bound_to.encode("utf-8"))
        except InvalidTag as exc:
            raise ValueError("cannot open sealed file: wrong key, another record's file or tampered") from exc

    def blind_index(self, value: str, purpose: str) -> str:
        """Deterministic keyed index (hex HMAC-SHA256 of ``purpose + "\\x00" + value``).

        ``purpose`` (e.g. ``"resident_id"``) separates indexes of different
        fields, so equal values in different fields do not index equally.
        """
        if not isinstance(value, str) or not isinstance(purpose, str):
            raise TypeError("blind_index needs str value and purpose")
        if not purpose or "\x00" in purpose:
            raise ValueError("blind index purpose must be non-empty and contain no NUL")
        message = purpose.encode("utf-8") + b"\x00" + value.encode("utf-8")
        return hmac.new(self._index_key, message, hashlib.sha256).hexdigest()


_cipher: FieldCipher | None = None


def configure(cipher: FieldCipher) -> None:
    """Install the process-wide cipher used by the encrypted column types."""
    global _cipher
    if not isinstance(cipher, FieldCipher):
        raise TypeError("configure() needs a FieldCipher")
    _cipher = cipher


def get_cipher() -> FieldCipher:
    """The configured cipher; :raises RuntimeError: if :func:`configure` was not called."""
    if _cipher is None:
        raise RuntimeError("field cipher not configured")
    return _cipher


class EncryptedString(TypeDecorator[str]):
    """A ``str`` column stored as ciphertext (``Text``); ``None`` stays ``None``.

    Not comparable in SQL (each encryption differs): query a blind index instead.
    """

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str):
            raise TypeError(f"EncryptedString needs str, not {type(value).__name__}")
        return get_cipher().encrypt(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return get_cipher().decrypt(value)


class EncryptedDecimal(TypeDecorator[Decimal]):
    """A ``Decimal`` column (e.g. an income, 收入) stored as ciphertext of its
    string form; loads back as ``Decimal`` with the same digits (``"12.50"``
    stays ``Decimal("12.50")``).  ``None`` stays ``None``; floats are refused.
    """

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (Decimal, int)):
            raise TypeError(f"EncryptedDecimal needs Decimal or int, not {type(value).__name__}")
        return get_cipher().encrypt(str(Decimal(value)))

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return Decimal(get_cipher().decrypt(value))
