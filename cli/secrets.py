"""``dibao secrets``: the deployment's own secrets (shared/secrets.py).

- ``dibao secrets init [--dir PATH]`` generates the secrets this deployment
  lacks into ``<SECRETS_DIR>`` (default ``<DATA_DIR>/secrets``; mode 0600 in
  a 0700 directory) and keeps the ones it has; ``--dir`` writes them
  elsewhere, e.g. the files a docker-compose deployment gives its
  containers as Docker secrets.
- ``dibao secrets list`` says, for each secret, which services hold it and
  where it comes from (environment, config file, file, missing) and whether
  it is usable — never a value.
- ``dibao secrets check SERVICE...`` exits non-zero, naming each setting,
  when a service lacks a secret it holds or has one the repository
  published (what the service itself does at start; a container runs it
  first for a one-line refusal).
"""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import List, Optional

import typer
from rich.markup import escape

from cli.common import SERVICES_DIR, cli_command, console, existing_service_names, fail, get_config, require_service

app = typer.Typer(help="The deployment's secrets: generate the missing ones, list where each comes from.",
                  no_args_is_help=True, rich_markup_mode="rich")


def service_encrypts(service: str) -> bool:
    """Whether the service's database has encrypted columns (so it holds DATA_KEY_<SERVICE>)."""
    from shared.db import encrypts

    if (SERVICES_DIR / service / "service.py").is_file() and not (SERVICES_DIR / service / "models.py").is_file():
        return False   # a service without a database (the gateway) stores nothing
    try:
        models = importlib.import_module(f"services.{service}.models")
    except ImportError:
        return True   # no models module to tell: assume it does
    return encrypts(models.Base.metadata)


def holders() -> dict[str, list[str]]:
    """setting → the existing services that hold it."""
    from shared.secrets import SECRETS, required_secrets

    held: dict[str, list[str]] = {setting: [] for setting in SECRETS}
    for service in existing_service_names():
        for setting in required_secrets(service, service_encrypts(service)):
            held.setdefault(setting, []).append(service)
    return held


@app.command("init")
@cli_command
def init(
    ctx: typer.Context,
    directory: Optional[Path] = typer.Option(
        None, "--dir", metavar="PATH",
        help="write the files here instead of SECRETS_DIR (e.g. ./secrets for docker compose)"),
) -> None:
    """Generate the secrets this deployment lacks (0600 files) and keep the existing ones."""
    from shared.secrets import SECRETS, ensure_secrets, secrets_dir, source_of

    config = get_config(ctx)
    if directory is not None:
        # every secret goes to the files (the environment of this shell is not the deployment's)
        config = {**config, "SECRETS_DIR": str(directory), **{setting: "" for setting in SECRETS}}
    made = ensure_secrets(config)
    where = secrets_dir(config)
    for setting in SECRETS:
        if setting in made:
            state = "[green]generated[/green]"
        elif not SECRETS[setting].generated and source_of(config, setting) == "missing":
            state = "none (not needed by a new deployment)"
        else:
            state = {"environment": "set by the environment", "config": "set in the config file",
                     "file": "kept (on file)"}.get(source_of(config, setting), "missing")
        console.print(f"{setting}: {state}")
    public = where / "identity_public_key"
    if public.is_file():
        console.print(f"identity public key (not secret): {public}")
    console.print(f"{len(made)} generated in {where.resolve()}")


@app.command("list")
@cli_command
def list_secrets(ctx: typer.Context) -> None:
    """Each secret: who holds it, where it comes from, whether it is usable (never the value)."""
    from shared.secrets import SECRETS, SecretError, load_secret, secrets_dir, source_of

    config = get_config(ctx)
    held = holders()
    console.print(f"secrets of this deployment (files in {secrets_dir(config)}):")
    for setting, spec in SECRETS.items():
        source = source_of(config, setting)
        shown = {"environment": f"environment {spec.env_var}", "config": "config file",
                 "file": f"file {spec.file_name}"}.get(source, "—")
        if source == "missing" and not spec.generated:
            state = "not used (a new deployment has none)"
        elif source == "missing":
            state = "[yellow]missing[/yellow]"
        else:
            try:
                load_secret(config, setting)
                state = "[green]ok[/green]"
            except SecretError as exc:
                state = "[red]refused[/red]: " + escape(str(exc).split(";")[0])
        holders_text = ", ".join(held.get(setting) or ["no service yet"])
        console.print(f"{setting:<24} {shown:<38} {state} (held by {holders_text})", soft_wrap=True)


@app.command("check")
@cli_command
def check(
    ctx: typer.Context,
    services: List[str] = typer.Argument(..., metavar="SERVICE...", help="the service(s) about to start"),
) -> None:
    """Exit non-zero, naming each setting, unless the services' secrets are usable."""
    from shared.secrets import check_secrets, secrets_to_check

    config = get_config(ctx)
    problems = []
    for service in services:
        require_service(service)
        problems += [f"{service}: {p}" for p in check_secrets(config, secrets_to_check(config, service,
                                                                                      service_encrypts(service)))]
    if problems:
        fail("refusing to start — " + "; ".join(problems))
    console.print(f"{', '.join(services)}: secrets ok")
