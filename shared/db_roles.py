"""PostgreSQL roles for a service that must not be able to change what it wrote.

A service connects with ``DB_URIS.<service>`` (its *app role*); when
``DB_MIGRATE_URIS.<service>`` names another role (the *owner*), that one
owns the schema and runs the migrations, and the app role gets only what
the service needs: SELECT, INSERT, UPDATE and DELETE on its tables — but
only SELECT and INSERT on its *append-only* tables (the audit's record and
checkpoints) — and the sequences; never TRUNCATE, never ownership, never
membership of the owner. The database then refuses an UPDATE, DELETE or
TRUNCATE of the record from the service's own credentials, whoever holds
them. ``dibao db roles`` (cli/databases.py) creates the roles and the
database, migrates as the owner and grants (idempotent); ``dibao migrate``
grants again after it migrates. SQLite has no roles: there, only the signed
checkpoints protect the record.
"""
from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

#: what an app role may do on an ordinary table, and on an append-only one
ALL_DML = ("SELECT", "INSERT", "UPDATE", "DELETE")
APPEND_ONLY_DML = ("SELECT", "INSERT")
ALEMBIC_TABLE = "alembic_version"


class RolesError(ValueError):
    """The configured roles cannot be set up as asked (the message says why)."""


@dataclass(frozen=True)
class Role:
    name: str
    password: str | None


def role_of(uri: str) -> Role:
    url = sa.make_url(uri)
    if not url.username:
        raise RolesError(f"{url.render_as_string(hide_password=True)} names no user")
    return Role(url.username, url.password)


def check_pair(service: str, app_uri: str, owner_uri: str) -> tuple[Role, Role]:
    """The app and owner roles of a service, or RolesError naming what is wrong."""
    app, owner = sa.make_url(app_uri), sa.make_url(owner_uri)
    for name, url in (("DB_URIS", app), ("DB_MIGRATE_URIS", owner)):
        if url.get_backend_name() != "postgresql":
            raise RolesError(f"{name}.{service} is {url.get_backend_name()}: database roles need PostgreSQL "
                             f"(SQLite has none; the record is then protected by its signed checkpoints only)")
    if (app.host, app.port, app.database) != (owner.host, owner.port, owner.database):
        raise RolesError(f"DB_URIS.{service} and DB_MIGRATE_URIS.{service} must name the same database")
    app_role, owner_role = role_of(app_uri), role_of(owner_uri)
    if app_role.name == owner_role.name:
        raise RolesError(f"DB_URIS.{service} and DB_MIGRATE_URIS.{service} are the same role ({app_role.name}): "
                         f"the service's role must not own its tables")
    return app_role, owner_role


def _quote(conn, name: str) -> str:
    return conn.dialect.identifier_preparer.quote(name)


def ensure_login_role(conn, role: Role, may_be_superuser: bool = True) -> str:
    """Create ``role`` (LOGIN, its password when the URI has one) or update it;
    'created' or 'updated'. An app role that is a superuser is refused."""
    exists = conn.execute(sa.text("SELECT rolsuper FROM pg_roles WHERE rolname = :n"), {"n": role.name}).first()
    if exists is not None and exists.rolsuper and not may_be_superuser:
        raise RolesError(f"role {role.name} is a superuser: it could change anything; give the service a plain role")
    verb = "ALTER" if exists is not None else "CREATE"
    statement = f"{verb} ROLE {_quote(conn, role.name)} LOGIN"
    if not may_be_superuser:
        statement += " NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS"
    if role.password:
        conn.execute(sa.text(statement + " PASSWORD :p"), {"p": role.password})   # psycopg2 quotes it
    else:
        conn.execute(sa.text(statement))
    return "updated" if exists is not None else "created"


def separate(conn, app: Role, owner: Role) -> None:
    """The app role is no member of the owner (it would have the owner's rights)."""
    member = conn.execute(sa.text("SELECT pg_has_role(:a, :o, 'MEMBER')"), {"a": app.name, "o": owner.name}).scalar()
    if member:
        conn.execute(sa.text(f"REVOKE {_quote(conn, owner.name)} FROM {_quote(conn, app.name)}"))
        if conn.execute(sa.text("SELECT pg_has_role(:a, :o, 'MEMBER')"), {"a": app.name, "o": owner.name}).scalar():
            raise RolesError(f"role {app.name} is still a member of {owner.name} (through another role): "
                             f"revoke that membership")


def hand_over(conn, database: str, app: Role, owner: Role) -> list[str]:
    """As the administrator, in ``database``: the database and every table and
    sequence the app role (or anyone else) owns there go to the owner, and
    PUBLIC may not create in its schema. The objects moved."""
    quote = lambda n: _quote(conn, n)   # noqa: E731
    moved = []
    current = conn.execute(sa.text("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = :d"),
                           {"d": database}).scalar()
    if current != owner.name:
        conn.execute(sa.text(f"ALTER DATABASE {quote(database)} OWNER TO {quote(owner.name)}"))
        moved.append(f"database {database}")
    # tables first: a sequence a table's column owns follows the table (and cannot be moved alone)
    for kinds, what in ((("r", "p"), "TABLE"), (("v",), "VIEW"), (("S",), "SEQUENCE")):
        names = conn.execute(sa.text(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind = ANY(:k) AND pg_get_userbyid(c.relowner) <> :o "
            "ORDER BY c.relname"), {"k": list(kinds), "o": owner.name}).scalars().all()
        for name in names:
            conn.execute(sa.text(f"ALTER {what} public.{quote(name)} OWNER TO {quote(owner.name)}"))
            moved.append(f"{what.lower()} {name}")
    conn.execute(sa.text("REVOKE CREATE ON SCHEMA public FROM PUBLIC"))
    return moved


def grant(conn, database: str, app: Role, owner: Role, append_only: tuple[str, ...]) -> None:
    """As the owner, in ``database``: the app role's privileges, reset to exactly what the service needs."""
    quote = lambda n: _quote(conn, n)   # noqa: E731
    a = quote(app.name)
    tables = set(conn.execute(sa.text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")).scalars())
    statements = [
        f"GRANT CONNECT ON DATABASE {quote(database)} TO {a}",
        f"GRANT USAGE ON SCHEMA public TO {a}",
        f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {a}",
        f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {a}",
        f"GRANT {', '.join(ALL_DML)} ON ALL TABLES IN SCHEMA public TO {a}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {a}",
        # a table a later migration adds: readable and appendable until `dibao migrate` grants again
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {quote(owner.name)} IN SCHEMA public "
        f"GRANT {', '.join(APPEND_ONLY_DML)} ON TABLES TO {a}",
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {quote(owner.name)} IN SCHEMA public "
        f"GRANT USAGE, SELECT ON SEQUENCES TO {a}",
    ]
    for table in sorted(set(append_only) & tables):
        statements.append(f"REVOKE UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON public.{quote(table)} FROM {a}")
    if ALEMBIC_TABLE in tables:
        statements.append(f"REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON public.{ALEMBIC_TABLE} FROM {a}")
    for statement in statements:
        conn.execute(sa.text(statement))


def privileges(conn, app: Role, tables: tuple[str, ...]) -> dict[str, list[str]]:
    """What the app role may do on each of ``tables`` (as the database says)."""
    out = {}
    for table in tables:
        out[table] = [p for p in ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE")
                      if conn.execute(sa.text("SELECT has_table_privilege(:r, :t, :p)"),
                                      {"r": app.name, "t": f"public.{table}", "p": p}).scalar()]
    return out
