"""The deployment's secrets: given to it, or generated for it — never shipped.

A secret is a config setting (``DATA_KEY``, ``AUDIT_SIGNING_KEY``,
``IDENTITY_SIGNING_KEY``, ``SERVICE_SECRET_<SERVICE>``) whose value comes
from, in order:

1. the setting itself (the environment variable named in config.yml), when
   it is not empty;
2. the file ``<DATA_DIR>/secrets/<name lower-cased>`` (mode 0600), which
   :func:`ensure_secrets` generates on a deployment's first start and keeps.

A value that appears in the repository (the old development defaults) is
refused, naming the setting: a deployment must not run on a key everyone has.
"""
from __future__ import annotations

import base64
import hashlib
import os
import secrets as _random
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable


class SecretError(RuntimeError):
    """A secret is missing, malformed, or one the repository publishes."""


def _seed32() -> str:
    return base64.b64encode(_random.token_bytes(32)).decode("ascii")


def _password() -> str:
    return _random.token_urlsafe(32)


@dataclass(frozen=True)
class SecretSpec:
    setting: str                      # the config key, e.g. DATA_KEY
    generate: Callable[[], str]       # a fresh value for a new deployment
    doc: str

    @property
    def file_name(self) -> str:
        return self.setting.lower()


#: The services that act on their own with an identity of their own.
SERVICE_NAMES = ("intake", "review", "payments", "audit", "notify", "identity", "gateway")

SECRETS: dict[str, SecretSpec] = {spec.setting: spec for spec in (
    SecretSpec("DATA_KEY", _seed32, "base64 of 32 bytes: encrypts ID numbers, incomes, accounts at rest"),
    SecretSpec("AUDIT_SIGNING_KEY", _seed32, "base64 Ed25519 seed: signs the audit chain's checkpoints"),
    SecretSpec("IDENTITY_SIGNING_KEY", _seed32, "base64 Ed25519 seed: identity signs tokens (held by identity only)"),
    *(SecretSpec(f"SERVICE_SECRET_{name.upper()}", _password,
                 f"the {name} service's credential for its own identity (service:{name})")
      for name in SERVICE_NAMES),
)}

def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


_SHIPPED_DEFAULTS = (
    # The development defaults config.yml carried until 2026-12 (git history).
    "dev-only-token-key-change-me-in-deployment",
    "ZGV2LWRhdGEta2V5LWNoYW5nZS1tZS0zMi1ieXRlcyE=",
    "ZGV2LW9ubHktYXVkaXQtc2lnbmluZy1rZXktMzJieSE=",
)
#: sha256 of every secret value the repository has ever shipped as a default.
KNOWN_VALUES = frozenset(_sha256(v) for v in _SHIPPED_DEFAULTS)


def secrets_dir(config: dict) -> Path:
    return Path(config.get("DATA_DIR") or "var") / "secrets"


def refuse_known(setting: str, value: str) -> str:
    if _sha256(value.strip()) in KNOWN_VALUES:
        raise SecretError(f"{setting} is a value published in the repository; "
                          f"generate one for this deployment (dibao secrets init) or set DIBAO_{setting}")
    return value


def load_secret(config: dict, setting: str) -> str:
    """The value of one secret setting (see the module doc), refused when known."""
    value = config.get(setting)
    if value in (None, ""):
        path = secrets_dir(config) / setting.lower()
        try:
            value = path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            raise SecretError(f"{setting} is not set: set DIBAO_{setting} or run `dibao secrets init` "
                              f"to generate {path}") from None
    return refuse_known(setting, str(value))


def ensure_secrets(config: dict, settings: Iterable[str] | None = None) -> list[str]:
    """Generate the secrets this deployment lacks (neither set nor on file).

    Files are written with mode 0600 in a 0700 directory; existing files are
    kept. Returns the settings generated."""
    directory = secrets_dir(config)
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    made = []
    for setting in settings or SECRETS:
        if config.get(setting) not in (None, ""):
            continue
        path = directory / setting.lower()
        if path.exists():
            continue
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(SECRETS[setting].generate() + "\n")
        made.append(setting)
    return made
