"""The deployment's secrets: given to it, or generated for it — never shipped.

A secret is a config setting (``DATA_KEY_<SERVICE>``,
``BLIND_INDEX_KEY_INTAKE``, ``AUDIT_SIGNING_KEY``, ``IDENTITY_SIGNING_KEY``,
``SERVICE_SECRET_<SERVICE>``, ``BROKER_PASSWORD_<SERVICE>``) whose value comes
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


def _check_keyring(setting: str, value: str) -> None:
    from shared.crypto import Keyring

    try:
        ring = Keyring.parse(value, setting)
    except ValueError as exc:
        raise SecretError(str(exc)) from None
    for key in ring.keys.values():   # a key the repository published, inside a keyring
        refuse_known(setting, base64.b64encode(key).decode("ascii"))


def _keyring() -> str:
    from shared.crypto import Keyring

    return Keyring.generate().render()


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
    #: the value for a deployment that had the old shared DATA_KEY (its data stays readable), else None
    carried: Callable[[dict], str | None] | None = None
    #: ensure_secrets makes it for a new deployment (DATA_KEY: no longer; it is read while it exists)
    generated: bool = True

    @property
    def file_name(self) -> str:
        return self.setting.lower()

    @property
    def env_var(self) -> str:
        return f"DIBAO_{self.setting}"


#: The services that act on their own with an identity of their own.
SERVICE_NAMES = ("intake", "review", "payments", "audit", "notify", "identity", "gateway")
#: Broker users that are not services: the operators' tools (shared/broker.py).
BROKER_TOOLS = ("cli",)
#: The services whose databases have encrypted columns: each has its own keyring DATA_KEY_<SERVICE>.
ENCRYPTING_SERVICES = ("intake", "review", "payments", "notify", "identity")
#: ... and those that find rows by a blind index (BLIND_INDEX_KEY_<SERVICE>, not rotated with the keyring).
BLIND_INDEXED_SERVICES = ("intake",)


def legacy_data_key(config: dict) -> bytes | None:
    """The old shared DATA_KEY (before per-service keys), if this deployment has one."""
    if config.get("DATA_KEY") in (None, "") and not (secrets_dir(config) / "data_key").is_file():
        return None
    return base64.b64decode(load_secret(config, "DATA_KEY"))


def _carried_keyring(config: dict) -> str | None:
    from shared.crypto import Keyring

    legacy = legacy_data_key(config)
    return Keyring.generate(legacy).render() if legacy else None


def _carried_index_key(config: dict) -> str | None:
    from shared.crypto import legacy_index_key

    legacy = legacy_data_key(config)
    return base64.b64encode(legacy_index_key(legacy)).decode("ascii") if legacy else None

SECRETS: dict[str, SecretSpec] = {spec.setting: spec for spec in (
    SecretSpec("DATA_KEY", _seed32, "the old shared key (v1 tokens; before per-service keys): read while it "
                                    "exists, carried into each service's keyring as v1", generated=False),
    *(SecretSpec(f"DATA_KEY_{name.upper()}", _keyring,
                 f"the {name} service's keyring (<key id>:<base64 32 bytes> …, the last encrypts): its "
                 f"encrypted columns; dibao keys rotate {name}", _check_keyring, _carried_keyring)
      for name in ENCRYPTING_SERVICES),
    *(SecretSpec(f"BLIND_INDEX_KEY_{name.upper()}", _seed32,
                 f"base64 of 32 bytes: the {name} blind index (finds a household by ID number); not rotated",
                 carried=_carried_index_key)
      for name in BLIND_INDEXED_SERVICES),
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

#: Secrets a service holds beyond its keyring (when it encrypts) and its own SERVICE_SECRET_<NAME>.
SERVICE_EXTRA_SECRETS: dict[str, tuple[str, ...]] = {
    "audit": ("AUDIT_SIGNING_KEY",),
    **{name: (f"BLIND_INDEX_KEY_{name.upper()}",) for name in BLIND_INDEXED_SERVICES},
    # identity signs tokens and checks each service's credential against its own copy
    "identity": ("IDENTITY_SIGNING_KEY", *(f"SERVICE_SECRET_{n.upper()}" for n in SERVICE_NAMES if n != "identity")),
}


def required_secrets(service: str, encrypts: bool = True) -> tuple[str, ...]:
    """The secrets ``service`` holds and checks at start: its keyring
    DATA_KEY_<SERVICE> if its database has encrypted columns, its own service
    credential, and its extras (intake: its blind-index key; audit: the
    checkpoint key; identity: the token key and the service credentials it
    checks)."""
    keyring = f"DATA_KEY_{service.upper()}"
    needed = [keyring] if encrypts and keyring in SECRETS else []
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


def secrets_to_check(config: dict, service: str, encrypts: bool = True) -> tuple[str, ...]:
    """What ``service`` checks at start: :func:`required_secrets`, and the old
    shared DATA_KEY first while this deployment still has it (it must not be
    a published value either)."""
    held = required_secrets(service, encrypts)
    present = config.get("DATA_KEY") not in (None, "") or (secrets_dir(config) / "data_key").is_file()
    return (("DATA_KEY",) if encrypts and present else ()) + held


def require_secrets(config: dict, service: str, encrypts: bool = True) -> None:
    """Refuse to start ``service`` unless every secret it holds is usable:
    one :class:`SecretError` naming each setting that is missing, published
    in the repository or malformed."""
    problems = check_secrets(config, secrets_to_check(config, service, encrypts))
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

    A deployment that still has the old shared DATA_KEY gets keyrings that
    begin with it as ``v1`` (its v1 tokens stay readable until ``dibao keys
    rotate``) and the blind-index key it implied (its indexes stay valid).

    Files are written with mode 0600 in a 0700 directory; existing files are
    kept (a second start reuses them; a looser mode is tightened to 0600). When the identity signing key is
    available, its public key is written beside (``identity_public_key``,
    0644). Returns the settings generated."""
    directory = secrets_dir(config)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(directory, 0o700)
    made = []
    for setting in SECRETS if settings is None else settings:
        spec = SECRETS[setting]
        if config.get(setting) not in (None, ""):
            continue
        path = directory / setting.lower()
        if path.exists():
            if path.stat().st_mode & 0o077:
                os.chmod(path, 0o600)   # kept, but readable by its owner only
            continue
        if not spec.generated:
            continue
        value = (spec.carried(config) if spec.carried else None) or spec.generate()
        if _write(path, value + "\n", 0o600):
            made.append(setting)
    write_identity_public_key(config, replace="IDENTITY_SIGNING_KEY" in made)
    return made


def replace_secret(config: dict, setting: str, value: str) -> Path:
    """Rewrite a secret's file whole (a new keyring after ``dibao keys rotate``):
    0600, linked into place atomically, so a service re-reading it never sees
    half of it. Refused when the secret comes from the environment or the
    config file (the file would not be what the services read)."""
    where = source_of(config, setting)
    if where in ("environment", "config"):
        raise SecretError(f"{setting} is set by the {where} ({f'DIBAO_{setting}'}): change it there; "
                          f"dibao rewrites only the file {secrets_dir(config) / setting.lower()}")
    spec = SECRETS.get(setting)
    if spec is not None:
        spec.check(setting, value)
    directory = secrets_dir(config)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / setting.lower()
    _write(path, value + "\n", 0o600, replace=True)
    return path
