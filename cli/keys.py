"""``dibao keys``: each service's data keys (密钥管理) — list, rotate, retire.

- ``dibao keys list [SERVICE...]``: each service's keyring (key ids, the one
  that encrypts, where it comes from) and how many tokens each key id has in
  its database, per column — never a key.
- ``dibao keys rotate SERVICE [--batch N] [--resume]``: add a new key to the
  service's keyring file (it encrypts from now on), then re-encrypt every
  token under the older keys, in batches committed one by one, while the
  service runs (shared/rotation.py). ``--resume`` adds no key: it finishes a
  rotation (tokens the service wrote under the old key before it re-read
  its keyring, a run that was stopped).
- ``dibao keys add SERVICE``: only add the new key (no re-encryption) — for
  a service that cannot re-read its keyring file while it runs (a
  container's Docker secret is a bind mount of the old file): add, restart
  it, then ``rotate --resume``.
- ``dibao keys retire SERVICE KEY_ID``: drop a key from the keyring — refused
  while any token of the service's database still names it, and for the key
  that encrypts. ``v1`` is the old shared DATA_KEY (v1 tokens).
"""
from __future__ import annotations

import importlib
import time
from typing import List, Optional

import typer

from cli.common import SERVICES_DIR, cli_command, console, fail, get_config, require_service

app = typer.Typer(help="Each service's data keys: list them, rotate to a new one, retire an old one.",
                  no_args_is_help=True, rich_markup_mode="rich")


def _encrypting(service: str) -> None:
    from shared.secrets import ENCRYPTING_SERVICES

    require_service(service)
    if service not in ENCRYPTING_SERVICES:
        fail(f"{service} has no encrypted columns, so no data key (services with keys: "
             f"{', '.join(ENCRYPTING_SERVICES)})")


def _open(config: dict, service: str, migrate: bool = False):
    """The service's cipher (from its keyring as it is now) and its database
    (checked for its crypto profile; migrated to head when ``migrate``: a
    rotation needs the seal ids)."""
    from shared.profiles import check_database_profile

    from shared.config import db_uri
    from shared.db import ServiceDatabase, service_cipher

    cipher = service_cipher(config, service)   # not installed: a service in this process keeps its own
    models = importlib.import_module(f"services.{service}.models")
    migrations = SERVICES_DIR / service / "migrations"
    database = ServiceDatabase(service, db_uri(config, service), models.Base.metadata,
                               migrations if migrations.is_dir() else None)
    if migrate:
        database.migrate()
    else:
        check_database_profile(database.engine, service, database.profile)
    return cipher, database, models.Base.metadata


def _usage_lines(usage: dict, key_ids: list[str]) -> list[str]:
    lines = []
    for column, counts in usage.items():
        parts = [f"{kid} {counts[kid]}" for kid in key_ids if counts.get(kid)]
        if counts.get("other"):
            parts.append(f"[red]unknown key {counts['other']}[/red]")
        lines.append(f"  {column:<44} {', '.join(parts) or 'empty'}")
    return lines


@app.command("list")
@cli_command
def list_keys(
    ctx: typer.Context,
    services: Optional[List[str]] = typer.Argument(None, metavar="[SERVICE...]", help="default: every service with keys"),
) -> None:
    """Each service's key ids, the one that encrypts, and the tokens under each (never a key)."""
    from shared.rotation import key_usage
    from shared.secrets import ENCRYPTING_SERVICES, source_of

    config = get_config(ctx)
    for service in services or ENCRYPTING_SERVICES:
        _encrypting(service)
        cipher, database, metadata = _open(config, service)
        try:
            setting = f"DATA_KEY_{service.upper()}"
            ids = cipher.key_ids()
            shown = ", ".join(f"[bold]{k}[/bold] (encrypts)" if k == cipher.primary else k for k in ids)
            console.print(f"{service}: {setting} from {source_of(config, setting)}, {cipher.profile.cipher_name}: {shown}")
            for line in _usage_lines(key_usage(database.engine, metadata, ids), ids):
                console.print(line, soft_wrap=True)
        finally:
            database.dispose()


def _add_key(config: dict, service: str):
    from shared.crypto import Keyring
    from shared.secrets import SecretError, load_secret, replace_secret

    setting = f"DATA_KEY_{service.upper()}"
    try:
        fresh = Keyring.parse(load_secret(config, setting), setting).with_new_key()
        path = replace_secret(config, setting, fresh.render())
    except (SecretError, ValueError) as exc:
        fail(str(exc))
    console.print(f"{service}: new key [bold]{fresh.primary}[/bold] added to {path} (it encrypts from now on; "
                  f"older keys still decrypt)")
    return fresh


@app.command("add")
@cli_command
def add(ctx: typer.Context, service: str = typer.Argument(..., help="the service")) -> None:
    """Add a new key to the service's keyring without re-encrypting (then restart it, then rotate --resume)."""
    _encrypting(service)
    _add_key(get_config(ctx), service)


@app.command("rotate")
@cli_command
def rotate(
    ctx: typer.Context,
    service: str = typer.Argument(..., help="the service whose key to rotate"),
    batch: int = typer.Option(500, "--batch", min=1, max=50_000, help="rows per committed batch"),
    resume: bool = typer.Option(False, "--resume", help="add no key: re-encrypt what is not yet under the current one"),
) -> None:
    """Add a new key and re-encrypt every token under it, while the service runs."""
    from shared import crypto
    from shared.rotation import reseal

    _encrypting(service)
    config = get_config(ctx)
    if not resume:
        _add_key(config, service)
    started = time.monotonic()
    cipher, database, metadata = _open(config, service, migrate=True)
    try:
        report = reseal(database.engine, metadata, cipher, batch=batch,
                        settle_seconds=0 if resume else crypto.RELOAD_SECONDS + 1, started=started)
    finally:
        database.dispose()
    for column, count in report.resealed.items():
        console.print(f"  {column:<44} {count} re-encrypted")
    console.print(f"{service}: {sum(report.resealed.values())} tokens re-encrypted under {report.key_id} "
                  f"in {report.batches} batches, {report.passes} passes")
    if report.unreadable:
        bad = ", ".join(f"{column} {n}" for column, n in report.unreadable.items())
        fail(f"{service}: tokens that do not open where they are, left under their old key: {bad} "
             f"(moved from another row or column, or altered; the service's log names the rows)")
    if not report.done:
        left = ", ".join(f"{column} {n}" for column, n in report.remaining.items() if n)
        fail(f"{service}: still not under {report.key_id}: {left}; run `dibao keys rotate {service} --resume`")
    old = [k for k in cipher.key_ids() if k != report.key_id]
    if old:
        console.print(f"every token is under {report.key_id}; retire the old key(s) with "
                      + ", ".join(f"`dibao keys retire {service} {k}`" for k in old))


@app.command("retire")
@cli_command
def retire(
    ctx: typer.Context,
    service: str = typer.Argument(..., help="the service"),
    key_id: str = typer.Argument(..., help="the key id to drop (v1: the old shared DATA_KEY)"),
) -> None:
    """Drop a key from the service's keyring — refused while any token still uses it."""
    from shared.crypto import Keyring
    from shared.rotation import key_usage
    from shared.secrets import SecretError, load_secret, replace_secret

    _encrypting(service)
    config = get_config(ctx)
    setting = f"DATA_KEY_{service.upper()}"
    keyring = Keyring.parse(load_secret(config, setting), setting)
    if key_id not in keyring.keys:
        fail(f"{service} has no key {key_id} (its keys: {', '.join(keyring.keys)})")
    if key_id == keyring.primary:
        fail(f"{key_id} is the key {service} encrypts with: `dibao keys rotate {service}` first")
    cipher, database, metadata = _open(config, service)
    try:
        usage = key_usage(database.engine, metadata, [key_id])
    finally:
        database.dispose()
    still = {column: counts[key_id] for column, counts in usage.items() if counts[key_id]}
    if still:
        fail(f"refused: {sum(still.values())} tokens of {service} still use key {key_id} ("
             + ", ".join(f"{column} {n}" for column, n in still.items())
             + f"); `dibao keys rotate {service} --resume` re-encrypts them")
    try:
        path = replace_secret(config, setting, keyring.without(key_id).render())
    except (SecretError, ValueError) as exc:
        fail(str(exc))
    console.print(f"{service}: key {key_id} retired from {path}; keys now {', '.join(keyring.without(key_id).keys)}")
