"""``dibao db create``: the services' PostgreSQL databases, made when missing.

District IT points ``DIBAO_<SERVICE>_DB_URI`` at a PostgreSQL server; this
creates each database named there that does not exist yet (SQLite files need
nothing: the services create them). The schema itself is the services' own:
their migrations run when they start (or ``dibao migrate``).
"""
from __future__ import annotations

from typing import List, Optional

import typer

from cli.common import cli_command, console, existing_service_names, fail, get_config, hide_password, one_line

app = typer.Typer(help="The services' databases.", no_args_is_help=True)


def register(app_: typer.Typer) -> None:
    app_.add_typer(app, name="db")


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
