"""One configuration loader for services, the CLI, tests and benchmarks.

The file is nameko's own ``config.yml`` with ``${VAR:default}``; we parse
it with nameko's loader so ``nameko run --config config.yml`` and
``load_config()`` agree exactly.
"""
from __future__ import annotations

import os
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = REPO_ROOT / "config.yml"
SERVICES = ("intake", "review", "payments", "audit", "notify", "identity", "verification")


def load_config(path: str | os.PathLike | None = None, **overrides) -> dict:
    from nameko.cli.main import setup_yaml_parser

    setup_yaml_parser()
    path = Path(path or os.environ.get("DIBAO_CONFIG") or DEFAULT_CONFIG)
    with open(path, encoding="utf-8") as fh:
        config = yaml.safe_load(fh)
    config.update(overrides)
    return config


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
