"""IT's commands: ``dibao migrate``, ``dibao health``. (Tokens come from
``dibao login`` only: nothing in the CLI signs one.)"""
from __future__ import annotations

import importlib
from typing import List

import typer
from rich.markup import escape

from cli.common import (SERVICES_DIR, cli_command, console, fail, get_config, hide_password, ping,
                        require_service)


def register(app: typer.Typer) -> None:
    app.command("migrate")(migrate)
    app.command("health")(health)


def migrate_service(config: dict, service: str) -> tuple[str, str, dict]:
    """Migrate ``service``'s database as its owner (``DB_MIGRATE_URIS.<service>``
    when set, else ``DB_URIS.<service>``) and, with an owner, grant the
    service's role again; (the URI used, the revision, the service role's
    privileges on its append-only tables)."""
    from alembic.runtime.migration import MigrationContext

    from cli.databases import grant_service_role, migrate_uri
    from shared.config import db_uri
    from shared.db import ServiceDatabase

    migrations = SERVICES_DIR / service / "migrations"
    if not migrations.is_dir():
        fail(f"{service} has no migrations folder ({migrations})")
    try:
        app_uri = db_uri(config, service)
    except KeyError as exc:
        fail(exc.args[0])
    owner_uri = migrate_uri(config, service)
    uri = owner_uri or app_uri
    models = importlib.import_module(f"services.{service}.models")
    database = ServiceDatabase(service, uri, models.Base.metadata, migrations)
    try:
        database.migrate()
        with database.engine.connect() as conn:
            revision = MigrationContext.configure(conn).get_current_revision()
    finally:
        database.dispose()
    from shared.db_roles import RolesError

    try:
        granted = grant_service_role(service, app_uri, owner_uri) if owner_uri else {}
    except RolesError as exc:
        fail(f"{service}: {exc}")
    return uri, revision, granted


@cli_command
def migrate(
    ctx: typer.Context,
    services: List[str] = typer.Argument(..., metavar="SERVICE...", help="service(s) whose database to migrate"),
) -> None:
    """Apply a service's Alembic migrations to its database, as its owner
    (DB_MIGRATE_URIS.<service> when set, then the service's role is granted
    again; else DB_URIS.<service>)."""
    config = get_config(ctx)
    for service in services:
        require_service(service)
        uri, revision, granted = migrate_service(config, service)
        console.print(f"{service}: {hide_password(uri)} is at revision [bold]{revision}[/bold] (head)")
        for table, allowed in granted.items():
            console.print(f"{service}: the service's role on {table}: {', '.join(allowed)}")


@cli_command
def web_health(config: dict, timeout: float) -> dict:
    """The gateway's ``GET /healthz`` (at 127.0.0.1 when it listens on every address)."""
    import json
    import urllib.request

    from cli.up import console_url

    url = console_url(config) + "healthz"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            body = json.loads(answer.read().decode("utf-8"))
    except (OSError, ValueError) as exc:
        fail(f"the gateway does not answer at {url}: {exc}")
    return {"service": "gateway", "at": url.removesuffix("healthz"), **{k: v for k, v in body.items() if k != "service"}}


def health(
    ctx: typer.Context,
    service: str = typer.Argument(..., help="the service to ask"),
    timeout: float = typer.Option(5.0, "--timeout", "-t", min=0.1, help="seconds to wait for the answer"),
) -> None:
    """Ask a service's ping RPC: exit 0 when it answers (docker healthchecks);
    the gateway, which serves HTTP only: its /healthz at WEB_SERVER_ADDRESS."""
    require_service(service)
    config = get_config(ctx)
    answer = (web_health(config, timeout) if service == "gateway" else ping(config, service, timeout)) or {}
    problems = answer.get("problems") or []
    details = ", ".join(f"{k} {v}" for k, v in answer.items() if k not in ("service", "problems"))
    console.print(f"{service}: [green]ok[/green]{' (' + details + ')' if details else ''}"
                  + (f", [yellow]{len(problems)} problem{'s' if len(problems) != 1 else ''}[/yellow] "
                     f"(it runs; these wait for a fix and are retried):" if problems else ""))
    for p in problems:
        console.print(f"  [yellow]{escape(p['kind'])} {escape(p['target'])}[/yellow]: {escape(p['code'])} since "
                      f"{escape(p['since'][:19])}, {p['attempts']} attempt(s) — {escape(p['detail'])}")

