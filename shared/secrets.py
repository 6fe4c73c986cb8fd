"""The deployment's secrets: given to it, or generated for it — never shipped.

A secret is a config setting (``DATA_KEY``, ``AUDIT_SIGNING_KEY``,
``IDENTITY_SIGNING_KEY``, ``SERVICE_SECRET_<SERVICE>``,
``BROKER_PASSWORD_<SERVICE>``) whose value comes
from, in order:

1. the setting itself (the environment variable named in config.yml,
   ``DIBAO_<SETTING>``), when it is not empty;
2. the file ``<SECRETS_DIR>/<setting lower-cased>`` — ``SECRETS_DIR`` is
   ``<DATA_DIR>/secrets`` unless set (``/run/secrets`` for Docker secrets) —
   which :func:`ensure_secrets` generates on a deployment's first start
   (``dibao up``, ``dibao secrets init``; mode 0600 in a 0700 directory)
   and keeps.

A value that appears in the repository or its history (the old development
defaults) is refused, naming the setting: a deployment must not run on a key
everyone has. So is a malformed one. Every service checks the secrets it
holds when its container starts (:func:`require_secrets`, called by
``shared.db.Database.setup``): missing, published or malformed, it does not
start. Which service holds which secret is :func:`required_secrets`
(docs/security.md has the table).
"""
from __future__ import annotations

import base64
import binascii
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


def _check_seed32(setting: str, value: str) -> None:
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise SecretError(f"{setting} is not valid base64 (expected base64 of 32 random bytes, "
                          f"e.g. `openssl rand -base64 32`)") from None
    if len(raw) != 32:
        raise SecretError(f"{setting} must be base64 of exactly 32 bytes, not {len(raw)}")


def _check_password(setting: str, value: str) -> None:
    if len(value) < 16:
        raise SecretError(f"{setting} is too short ({len(value)} characters; at least 16 random ones, "
                          f"e.g. `openssl rand -base64 32`)")


@dataclass(frozen=True)
class SecretSpec:
    setting: str                              # the config key, e.g. DATA_KEY
    generate: Callable[[], str]               # a fresh value for a new deployment
    doc: str
    check: Callable[[str, str], None] = _check_seed32   # raises SecretError naming the setting

    @property
    def file_name(self) -> str:
        return self.setting.lower()

    @property
    def env_var(self) -> str:
        return f"DIBAO_{self.setting}"


#: The services that act on their own with an identity of their own.
SERVICE_NAMES = ("intake", "review", "payments", "audit", "notify", "identity", "gateway", "verification")
#: Broker users that are not services: the operators' tools (shared/broker.py).
BROKER_TOOLS = ("cli",)

SECRETS: dict[str, SecretSpec] = {spec.setting: spec for spec in (
    SecretSpec("DATA_KEY", _seed32, "base64 of 32 bytes: encrypts ID numbers, incomes, accounts at rest"),
    SecretSpec("AUDIT_SIGNING_KEY", _seed32, "base64 Ed25519 seed: signs the audit chain's checkpoints"),
    SecretSpec("IDENTITY_SIGNING_KEY", _seed32, "base64 Ed25519 seed: identity signs tokens (held by identity only)"),
    *(SecretSpec(f"SERVICE_SECRET_{name.upper()}", _password,
                 f"the {name} service's credential for its own identity (service:{name})", _check_password)
      for name in SERVICE_NAMES),
    *(SecretSpec(f"BROKER_PASSWORD_{name.upper()}", _password,
                 f"the password of the {name} broker user (dibao broker setup)", _check_password)
      for name in SERVICE_NAMES + BROKER_TOOLS + ("shovel",)),
)}

#: The public half of IDENTITY_SIGNING_KEY, written beside the secrets (not a secret: mode 0644).
IDENTITY_PUBLIC_KEY_FILE = "identity_public_key"

#: Secrets a service holds beyond DATA_KEY (when it encrypts) and its own SERVICE_SECRET_<NAME>.
SERVICE_EXTRA_SECRETS: dict[str, tuple[str, ...]] = {
    "audit": ("AUDIT_SIGNING_KEY",),
    # identity signs tokens and checks each service's credential against its own copy
    "identity": ("IDENTITY_SIGNING_KEY", *(f"SERVICE_SECRET_{n.upper()}" for n in SERVICE_NAMES if n != "identity")),
}


def required_secrets(service: str, encrypts: bool = True) -> tuple[str, ...]:
    """The secrets ``service`` holds and checks at start: DATA_KEY if its
    database has encrypted columns, its own service credential, and its
    extras (audit: the checkpoint key; identity: the token key and the
    service credentials it checks)."""
    needed = ["DATA_KEY"] if encrypts else []
    own = f"SERVICE_SECRET_{service.upper()}"
    if own in SECRETS:
        needed.append(own)
    needed += [s for s in SERVICE_EXTRA_SECRETS.get(service, ()) if s not in needed]
    return tuple(needed)


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


#: sha256 of every secret value the repository has ever shipped as a default
#: (config.yml's ``${DIBAO_TOKEN_KEY:…}``, ``${DIBAO_DATA_KEY:…}``,
#: ``${DIBAO_AUDIT_SIGNING_KEY:…}`` until 2026-12; see git history). Only the
#: digests are kept, so the values themselves no longer appear in the tree;
#: tests/unit/test_secrets.py checks the history against this list.
KNOWN_VALUES = frozenset((
    "aa61842a59db27fff7e059cbb0126192e0d9ee42b5a607bb67fce22f576dbeeb",  # TOKEN_KEY (HS256), first default
    "d1f88b236d38abdd7cf3465d91a131d6633b5d5feabb2977f790994923f1ac93",  # TOKEN_KEY (HS256), second default
    "6297f795f79ff5ce886ab028d60f3855591d12e57658703615c01b976c6690af",  # DATA_KEY
    "b1bdbe34769cbb8665fd43c422e254fac7a36a196a9c44c7fca7263d3e622dd2",  # AUDIT_SIGNING_KEY
))


def is_known(value: str) -> bool:
    """Whether ``value`` is one the repository has published."""
    return _sha256(value.strip()) in KNOWN_VALUES


def secrets_dir(config: dict) -> Path:
    """Where the deployment's secret files are: SECRETS_DIR, else <DATA_DIR>/secrets."""
    given = config.get("SECRETS_DIR")
    if given:
        return Path(given)
    return Path(config.get("DATA_DIR") or "var") / "secrets"


def refuse_known(setting: str, value: str) -> str:
    if is_known(value):
        raise SecretError(f"{setting} is a value published in the repository; "
                          f"generate one for this deployment (dibao secrets init) or set DIBAO_{setting}")
    return value


def source_of(config: dict, setting: str) -> str:
    """Where a secret comes from: ``environment``, ``config`` (a value in the
    config file itself), ``file`` or ``missing`` — never the value."""
    if config.get(setting) not in (None, ""):
        return "environment" if os.environ.get(f"DIBAO_{setting}") else "config"
    return "file" if (secrets_dir(config) / setting.lower()).is_file() else "missing"


def load_secret(config: dict, setting: str) -> str:
    """The value of one secret setting (see the module doc), refused when
    missing, published in the repository, or malformed — naming the setting."""
    value = config.get(setting)
    if value in (None, ""):
        path = secrets_dir(config) / setting.lower()
        try:
            value = path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            raise SecretError(f"{setting} is not set: set DIBAO_{setting} or run `dibao secrets init` "
                              f"to generate {path}") from None
        except PermissionError:
            raise SecretError(f"{setting}: cannot read {path} (permission denied)") from None
        if not value:
            raise SecretError(f"{setting}: {path} is empty")
    value = str(value).strip()
    refuse_known(setting, value)
    spec = SECRETS.get(setting)
    if spec is not None:
        spec.check(setting, value)
    return value


def check_secrets(config: dict, settings: Iterable[str]) -> list[str]:
    """One line per secret of ``settings`` that :func:`load_secret` refuses."""
    problems = []
    for setting in settings:
        try:
            load_secret(config, setting)
        except SecretError as exc:
            problems.append(str(exc))
    return problems


def require_secrets(config: dict, service: str, encrypts: bool = True) -> None:
    """Refuse to start ``service`` unless every secret it holds is usable:
    one :class:`SecretError` naming each setting that is missing, published
    in the repository or malformed."""
    problems = check_secrets(config, required_secrets(service, encrypts))
    if problems:
        raise SecretError(f"{service} refuses to start: " + "; ".join(problems))


def _write(path: Path, text: str, mode: int, replace: bool = False) -> bool:
    """Write a whole file atomically (a temporary file linked into place), so a
    reader never sees it half written. Two processes making the same secret at
    once (replicas sharing a secrets directory on their first start): the first
    link wins and the other keeps it. Returns whether this call's text is the
    file now."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{_random.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.fchmod(fd, mode)   # whatever the umask
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fd = None
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        if replace:
            os.replace(tmp, path)
            return True
        try:
            os.link(tmp, path)
            return True
        except FileExistsError:
            return False
    finally:
        if fd is not None:
            os.close(fd)
        if tmp.exists():
            tmp.unlink()


def identity_public_key_pem(seed_b64: str) -> str:
    """The PEM (SubjectPublicKeyInfo) public key of an IDENTITY_SIGNING_KEY seed."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.from_private_bytes(base64.b64decode(seed_b64, validate=True))
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii")


def write_identity_public_key(config: dict, replace: bool = False) -> Path | None:
    """Write ``<SECRETS_DIR>/identity_public_key`` (PEM, 0644) from the
    IDENTITY_SIGNING_KEY this process can read; ``None`` when it cannot.
    An existing file is kept unless ``replace`` (it is rewritten if it no
    longer matches the seed)."""
    try:
        seed = load_secret(config, "IDENTITY_SIGNING_KEY")
    except SecretError:
        return None
    path = secrets_dir(config) / IDENTITY_PUBLIC_KEY_FILE
    pem = identity_public_key_pem(seed)
    if path.exists() and not replace and path.read_text(encoding="ascii") == pem:
        return path
    _write(path, pem, 0o644, replace=True)
    return path


def ensure_secrets(config: dict, settings: Iterable[str] | None = None) -> list[str]:
    """Generate the secrets this deployment lacks (neither set nor on file).

    Files are written with mode 0600 in a 0700 directory; existing files are
    kept (a second start reuses them; a looser mode is tightened to 0600). When the identity signing key is
    available, its public key is written beside (``identity_public_key``,
    0644). Returns the settings generated."""
    directory = secrets_dir(config)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(directory, 0o700)
    made = []
    for setting in SECRETS if settings is None else settings:
        if config.get(setting) not in (None, ""):
            continue
        path = directory / setting.lower()
        if path.exists():
            if path.stat().st_mode & 0o077:
                os.chmod(path, 0o600)   # kept, but readable by its owner only
            continue
        if _write(path, SECRETS[setting].generate() + "\n", 0o600):
            made.append(setting)
    write_identity_public_key(config, replace="IDENTITY_SIGNING_KEY" in made)
    return made
