"""One configuration loader for services, the CLI, tests and benchmarks.

The file is nameko's own ``config.yml`` with ``${VAR:default}``; we parse
it with nameko's loader so ``nameko run --config config.yml`` and
``load_config()`` agree exactly.
"""
from __future__ import annotations

import os
import ssl
from pathlib import Path
from urllib.parse import urlsplit

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = REPO_ROOT / "config.yml"
SERVICES = ("intake", "review", "payments", "audit", "notify", "identity")


def load_config(path: str | os.PathLike | None = None, **overrides) -> dict:
    from nameko.cli.main import setup_yaml_parser

    setup_yaml_parser()
    path = Path(path or os.environ.get("DIBAO_CONFIG") or DEFAULT_CONFIG)
    with open(path, encoding="utf-8") as fh:
        config = yaml.safe_load(fh)
    config.update(overrides)
    complete_amqp_ssl(config)
    return config


class ConfigError(ValueError):
    """A setting that cannot work, named."""


#: the PEM files AMQP_SSL may name (nameko's / kombu's keys)
AMQP_SSL_FILES = ("ca_certs", "certfile", "keyfile")


def complete_amqp_ssl(config: dict) -> dict | None:
    """TLS to the broker: ``AMQP_SSL`` (nameko's key, passed as it is to kombu's
    ``ssl``) completed in place so that every connection — nameko's and ours —
    verifies the broker: its certificate against ``ca_certs`` (the system's
    CAs when none is named) and its name against ``AMQP_URI``'s host (kombu
    fills in ``server_hostname: null`` with it), TLS 1.2 at least; and
    presents ``certfile``/``keyfile`` when given. ``amqps://`` without
    ``AMQP_SSL`` gets the same checks. Idempotent; returns the value. Refuses
    (ConfigError naming the key) a file that is not there, a key without its
    certificate, and ``cert_reqs`` other than required."""
    value = config.get("AMQP_SSL")
    amqps = urlsplit(str(config.get("AMQP_URI") or "")).scheme == "amqps"
    if value in (None, "", False) and not amqps:
        config["AMQP_SSL"] = None
        return None
    if value in (None, "", True, False):
        value = {}
    if not isinstance(value, dict) or "context" in value:
        raise ConfigError("AMQP_SSL: a mapping {ca_certs: PEM, certfile: PEM, keyfile: PEM}, or empty")
    for key in AMQP_SSL_FILES:
        if value.get(key) in (None, ""):
            value.pop(key, None)
        elif not os.path.isfile(str(value[key])):
            raise ConfigError(f"AMQP_SSL.{key}: no such file {value[key]}")
    if "keyfile" in value and "certfile" not in value:
        raise ConfigError("AMQP_SSL.keyfile without AMQP_SSL.certfile")
    if value.get("cert_reqs", ssl.CERT_REQUIRED) != ssl.CERT_REQUIRED:
        raise ConfigError("AMQP_SSL.cert_reqs: the broker's certificate is always verified (leave it out)")
    value["cert_reqs"] = int(ssl.CERT_REQUIRED)     # plain ints: the config stays YAML
    value.setdefault("server_hostname", None)       # kombu: AMQP_URI's host, which the certificate must name
    minimum = value.get("tls_minimum_version", ssl.TLSVersion.TLSv1_2)
    try:
        minimum = ssl.TLSVersion[minimum] if isinstance(minimum, str) else ssl.TLSVersion(minimum)
    except (KeyError, ValueError):
        raise ConfigError(f"AMQP_SSL.tls_minimum_version: {minimum!r} is not TLSv1_2 or TLSv1_3") from None
    if minimum < ssl.TLSVersion.TLSv1_2:
        raise ConfigError("AMQP_SSL.tls_minimum_version: TLS 1.2 at least")
    value["tls_minimum_version"] = int(minimum)
    config["AMQP_SSL"] = value
    return value


def db_uri(config: dict, service: str) -> str:
    try:
        return config["DB_URIS"][service]
    except KeyError:
        raise KeyError(f"config has no DB_URIS.{service}") from None


def data_dir(config: dict) -> Path:
    path = Path(config.get("DATA_DIR") or "var")
    path.mkdir(parents=True, exist_ok=True)
    return path


def repo_path(value: str | None) -> Path | None:
    """A path from config: absolute, relative to the cwd, or to the repo."""
    if not value:
        return None
    path = Path(value)
    if path.is_absolute() or path.exists():
        return path
    return REPO_ROOT / path
