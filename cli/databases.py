"""``dibao db create`` / ``dibao db roles``: the services' PostgreSQL databases and roles.

District IT points ``DIBAO_<SERVICE>_DB_URI`` at a PostgreSQL server;
``db create`` creates each database named there that does not exist yet
(SQLite files need nothing: the services create them). The schema itself is
the services' own: their migrations run when they start (or ``dibao migrate``).

``db roles`` is for a service whose own role must not own its tables — the
audit, whose writer may only INSERT into the record: with
``DB_MIGRATE_URIS.<service>`` naming the owner, it creates both login roles
and the database (owned by the owner), moves what the service's role owned
there to the owner, migrates as the owner and grants the service's role
exactly what it needs (:mod:`shared.db_roles`). Idempotent: run it again
after an upgrade, or let ``dibao migrate`` grant again.
"""
from __future__ import annotations

from typing import List, Optional

import typer

from rich.markup import escape

from cli.common import cli_command, console, existing_service_names, fail, get_config, hide_password, one_line

app = typer.Typer(help="The services' databases.", no_args_is_help=True)


def register(app_: typer.Typer) -> None:
    app_.add_typer(app, name="db")


def append_only_tables(service: str) -> tuple[str, ...]:
    """The tables a service's role may only read and append to (the audit's record; no other)."""
    from contracts.audit_chain import APPEND_ONLY_TABLES

    return {"audit": APPEND_ONLY_TABLES}.get(service, ())


def migrate_uri(config: dict, service: str) -> str | None:
    """``DB_MIGRATE_URIS.<service>`` when set (the owner that migrates)."""
    return (config.get("DB_MIGRATE_URIS") or {}).get(service) or None


def _engine(url, **kwargs):
    import sqlalchemy as sa

    from shared.db import normalize_url

    return sa.create_engine(normalize_url(url) if isinstance(url, str) else url, poolclass=sa.pool.NullPool,
                            **kwargs)


def grant_service_role(service: str, app_uri: str, owner_uri: str) -> dict[str, list[str]]:
    """As the owner: the service role's privileges, reset (after a migration);
    what it may now do on its append-only tables."""
    import sqlalchemy as sa

    from shared import db_roles

    app, owner = db_roles.check_pair(service, app_uri, owner_uri)
    engine = _engine(owner_uri)
    try:
        with engine.begin() as conn:
            db_roles.grant(conn, sa.make_url(owner_uri).database, app, owner, append_only_tables(service))
            return db_roles.privileges(conn, app, append_only_tables(service))
    finally:
        engine.dispose()


def set_up_roles(config: dict, service: str, admin_uri: str | None) -> list[str]:
    """Roles, database, ownership, migration, grants for one service; the lines to print."""
    from cli.ops import migrate_service
    from shared import db_roles
    from shared.db import normalize_url

    owner_uri = migrate_uri(config, service)
    app, owner = db_roles.check_pair(service, config["DB_URIS"][service], owner_uri)
    database = normalize_url(owner_uri).database
    admin = normalize_url(admin_uri) if admin_uri else normalize_url(owner_uri).set(database="postgres")
    lines = []
    engine = _engine(admin, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            lines.append(f"role {owner.name} (owner, migrates): {db_roles.ensure_login_role(conn, owner)}")
            lines.append(f"role {app.name} (the service's): "
                         f"{db_roles.ensure_login_role(conn, app, may_be_superuser=False)}")
            db_roles.separate(conn, app, owner)
    finally:
        engine.dispose()
    made = create_database(owner_uri, admin_uri)
    lines.append(f"database {database}: {'created' if made else 'exists'}")
    engine = _engine(admin.set(database=database), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            moved = db_roles.hand_over(conn, database, app, owner)
    finally:
        engine.dispose()
    if moved:
        lines.append(f"now owned by {owner.name}: {', '.join(moved)}")
    _, revision, granted = migrate_service(config, service)
    lines.append(f"migrated as {owner.name} to revision {revision}")
    for table, allowed in granted.items():
        refused = [p for p in ("UPDATE", "DELETE", "TRUNCATE") if p not in allowed]
        lines.append(f"{app.name} on {table}: {', '.join(allowed) or 'nothing'}"
                     + (f" (no {', '.join(refused)})" if refused else ""))
    return lines


def create_database(uri: str, admin_uri: str | None = None) -> bool:
    """Create the PostgreSQL database ``uri`` names unless it exists; True when
    created. Connects to ``admin_uri`` (a user allowed to CREATE DATABASE),
    else to the same server as ``uri``'s user, maintenance database ``postgres``.
    When the admin is another user, ``uri``'s user owns the new database."""
    import sqlalchemy as sa
    from sqlalchemy.exc import ProgrammingError

    from shared.db import normalize_url

    target = normalize_url(uri)
    admin = normalize_url(admin_uri) if admin_uri else target.set(database="postgres")
    engine = sa.create_engine(admin, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            if conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"),
                            {"n": target.database}).first():
                return False
            quote = conn.dialect.identifier_preparer.quote
            statement = f"CREATE DATABASE {quote(target.database)}"
            if target.username and admin.username != target.username:
                statement += f" OWNER {quote(target.username)}"
            try:
                conn.execute(sa.text(statement))
            except ProgrammingError as exc:
                if getattr(exc.orig, "pgcode", None) == "42P04":   # duplicate_database: created meanwhile
                    return False
                raise
            return True
    finally:
        engine.dispose()


@app.command("create")
@cli_command
def create(
    ctx: typer.Context,
    services: Optional[List[str]] = typer.Argument(
        None, metavar="[SERVICE...]", help="whose databases (default: every service in DB_URIS)"),
    admin: Optional[str] = typer.Option(
        None, "--admin", metavar="URI",
        help="connect here to create them (a user with CREATEDB, e.g. postgresql://postgres@db/postgres); "
             "default: each database's own user, maintenance database postgres"),
) -> None:
    """Create each service's PostgreSQL database (DB_URIS.<service>) that is missing."""
    import sqlalchemy as sa

    config = get_config(ctx)
    uris = config.get("DB_URIS") or {}
    known = existing_service_names()
    names = services or [name for name in known if name in uris]
    unknown = [n for n in names if n not in known]
    if unknown:
        fail(f"unknown service(s) {', '.join(unknown)}; existing services: {', '.join(known)}")
    missing = [n for n in names if n not in uris]
    if missing:
        fail(f"config has no DB_URIS for {', '.join(missing)}")
    for name in names:
        uri = uris[name]
        try:
            backend = sa.make_url(uri).get_backend_name()
        except Exception as exc:  # noqa: BLE001 - a malformed URI is the user's to fix
            fail(f"{name}: DB_URIS.{name} is not a database URI: {one_line(exc)}")
        shown = hide_password(uri)
        if backend != "postgresql":
            console.print(f"{name}: {shown} — {backend}, created when the service starts", soft_wrap=True)
            continue
        try:
            made = create_database(uri, admin)
        except sa.exc.SQLAlchemyError as exc:
            fail(f"{name}: cannot create {shown}: {one_line(getattr(exc, 'orig', None) or exc)}")
        console.print(f"{name}: {shown} {'[green]created[/green]' if made else 'exists'}", soft_wrap=True)


@app.command("roles")
@cli_command
def roles(
    ctx: typer.Context,
    services: Optional[List[str]] = typer.Argument(
        None, metavar="[SERVICE...]", help="whose roles (default: every service with DB_MIGRATE_URIS)"),
    admin: Optional[str] = typer.Option(
        None, "--admin", metavar="URI",
        help="connect here to create roles and databases (a superuser, e.g. postgresql://postgres@db/postgres); "
             "default: the owner's own role, maintenance database postgres"),
) -> None:
    """PostgreSQL roles: an owner that migrates (DB_MIGRATE_URIS.<service>) and the
    service's own (DB_URIS.<service>) with only what it needs — the audit's may
    only INSERT into the record. Idempotent."""
    import sqlalchemy as sa

    from shared.db_roles import RolesError

    config = get_config(ctx)
    uris = config.get("DB_URIS") or {}
    owners = {k: v for k, v in (config.get("DB_MIGRATE_URIS") or {}).items() if v}
    known = existing_service_names()
    names = services or sorted(owners)
    unknown = [n for n in names if n not in known]
    if unknown:
        fail(f"unknown service(s) {', '.join(unknown)}; existing services: {', '.join(known)}")
    if not names:
        fail("no service has DB_MIGRATE_URIS: set e.g. DIBAO_AUDIT_DB_MIGRATE_URI to the owner role's URI "
             "(DIBAO_AUDIT_DB_URI is then the audit writer's)")
    for name in names:
        if name not in uris:
            fail(f"config has no DB_URIS for {name}")
        if sa.make_url(uris[name]).get_backend_name() == "sqlite":
            console.print(f"{name}: {hide_password(uris[name])} — SQLite has no database roles; the record is "
                          f"protected by its signed checkpoints only (docs/security.md)", soft_wrap=True)
            continue
        if name not in owners:
            fail(f"{name}: DB_MIGRATE_URIS.{name} is not set (the owner role that migrates)")
        try:
            lines = set_up_roles(config, name, admin)
        except (RolesError, sa.exc.SQLAlchemyError) as exc:
            fail(f"{name}: {one_line(getattr(exc, 'orig', None) or exc)}")
        for line in lines:
            console.print(f"{name}: {escape(line)}", soft_wrap=True)
