"""Passwords (argon2id) and one-time-code secrets (TOTP) for identity.

Argon2id parameters (config ``ARGON2_TIME_COST``, ``ARGON2_MEMORY_KIB``,
``ARGON2_PARALLELISM``; documented in docs/security.md) are tuned so one
hash takes about 50–100 ms on the reference 2-core machine. A hash runs in
eventlet's thread pool (argon2's C code releases the GIL), so the service's
other workers go on meanwhile, at most ``ARGON2_CONCURRENCY`` at a time
(each holds its memory cost while it runs).

An unknown user's login is checked against a dummy hash of the same
parameters: it costs the same time as a wrong password.
"""
from __future__ import annotations

import secrets
import string
import threading
from dataclasses import dataclass

import pyotp
from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

DEFAULT_TIME_COST = 3
DEFAULT_MEMORY_KIB = 19456     # 19 MiB (OWASP: argon2id m=19 MiB, t=2 at least)
DEFAULT_PARALLELISM = 1
DEFAULT_CONCURRENCY = 4

TOTP_ISSUER = "Dibao"
_OTP_ALPHABET = string.ascii_letters + string.digits + "-_.!@#%+="


def _off_the_hub(fn, *args):
    """Run a CPU-bound call in a real thread when eventlet runs the process."""
    try:
        import eventlet.patcher
        import eventlet.tpool
    except ImportError:  # pragma: no cover - eventlet is a dependency
        return fn(*args)
    if eventlet.patcher.is_monkey_patched("thread"):
        return eventlet.tpool.execute(fn, *args)
    return fn(*args)


class Passwords:
    """argon2id hashing and checking with the deployment's parameters."""

    def __init__(self, time_cost: int = DEFAULT_TIME_COST, memory_kib: int = DEFAULT_MEMORY_KIB,
                 parallelism: int = DEFAULT_PARALLELISM, concurrency: int = DEFAULT_CONCURRENCY):
        self.hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism,
                                     hash_len=32, salt_len=16, type=Type.ID)
        self._slots = threading.BoundedSemaphore(concurrency)  # green under eventlet
        self.dummy_hash = self.hasher.hash(secrets.token_urlsafe(24))

    @classmethod
    def from_config(cls, config: dict) -> "Passwords":
        def number(key, default):
            value = config.get(key)
            return default if value in (None, "") else int(value)

        return cls(number("ARGON2_TIME_COST", DEFAULT_TIME_COST), number("ARGON2_MEMORY_KIB", DEFAULT_MEMORY_KIB),
                   number("ARGON2_PARALLELISM", DEFAULT_PARALLELISM),
                   number("ARGON2_CONCURRENCY", DEFAULT_CONCURRENCY))

    def hash(self, password: str) -> str:
        with self._slots:
            return _off_the_hub(self.hasher.hash, password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        """Whether ``password`` matches; with no hash (an unknown user) the
        dummy hash is checked instead, at the same cost, and the answer is False."""
        candidate = password_hash or self.dummy_hash
        with self._slots:
            try:
                ok = _off_the_hub(self.hasher.verify, candidate, password)
            except (VerifyMismatchError, VerificationError, InvalidHashError):
                ok = False
        return bool(ok) and password_hash is not None

    def needs_rehash(self, password_hash: str) -> bool:
        return self.hasher.check_needs_rehash(password_hash)


@dataclass(frozen=True)
class FreshCredentials:
    """A one-time password with its hash, and a TOTP secret, made before the
    transaction that stores them: argon2 runs in a thread, and a SQLite
    write transaction must not wait on a thread (its lock would block the
    event loop of every other writer in the process)."""

    password: str
    password_hash: str
    totp_secret: str

    @classmethod
    def make(cls, passwords: "Passwords") -> "FreshCredentials":
        password = one_time_password()
        return cls(password, passwords.hash(password), new_totp_secret())


def one_time_password(length: int = 20) -> str:
    """A random password meeting any policy's classes (lower, upper, digit, other)."""
    while True:
        value = "".join(secrets.choice(_OTP_ALPHABET) for _ in range(length))
        if (any(c.islower() for c in value) and any(c.isupper() for c in value)
                and any(c.isdigit() for c in value) and any(not c.isalnum() for c in value)):
            return value


def new_totp_secret() -> str:
    """A base32 TOTP secret of 160 bits (RFC 4226's recommendation)."""
    return pyotp.random_base32(32)


def provisioning_uri(secret: str, user: str) -> str:
    """The otpauth:// URI an authenticator app reads (often as a QR code)."""
    return pyotp.TOTP(secret).provisioning_uri(name=user, issuer_name=TOTP_ISSUER)
