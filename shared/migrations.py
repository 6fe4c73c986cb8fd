"""Alembic per service, applied at start-up (and by ``dibao migrate``).

Each service keeps its scripts in ``services/<name>/migrations``; their
``env.py`` calls :func:`run_env` with the service's metadata (the platform
imports no service).

Start-up migration is safe however many services one process runs and
however many processes start at once:

- **one migration at a time in a process.** Alembic keeps the running
  migration in module globals (the ``alembic.context`` and ``alembic.op``
  proxies): two migrations in one process at the same time — ``dibao up``
  sets up its five containers in parallel green threads, and psycogreen lets
  them switch on every query — overwrite each other's context, run one
  service's scripts on another's connection ("execute cannot be used while
  an asynchronous query is underway") and remove each other's proxy
  (``KeyError: 'config'``). :func:`one_migration_at_a_time` serialises them;
- **one migration at a time per database**, across processes (replicas
  racing their first start): on PostgreSQL a session advisory lock, taken
  and released on the connection the migration runs on. The second replica
  waits, then finds the schema at head and does nothing;
- the migration's connection is its own, used by the one thread that runs it.

The process lock is taken before the advisory lock, and a process holds at
most one advisory lock at a time, so two processes cannot deadlock.
"""
from __future__ import annotations

import threading
import zlib
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config


_GREEN_LOCK = None
_REAL_LOCK = threading.Lock()


@contextmanager
def one_migration_at_a_time():
    """The process-wide lock every migration holds, respected by every thread.

    Under eventlet's monkey-patching (nameko, ``dibao``, the tests) a waiting
    green thread must yield to the hub, not block it: an eventlet semaphore.
    Without patching, an ordinary lock."""
    global _GREEN_LOCK
    import eventlet.patcher

    if eventlet.patcher.is_monkey_patched("thread"):
        from eventlet.semaphore import Semaphore

        if _GREEN_LOCK is None:   # no switch between the test and the assignment
            _GREEN_LOCK = Semaphore(1)
        lock = _GREEN_LOCK
    else:
        lock = _REAL_LOCK
    with lock:
        yield


def alembic_config(migrations: Path, service: str, connection=None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations))
    cfg.set_main_option("dibao_service", service)
    cfg.attributes["connection"] = connection
    return cfg


def advisory_lock_key(service: str) -> int:
    """The PostgreSQL advisory lock a service's migration holds (per database)."""
    return zlib.crc32(f"dibao-migrate-{service}".encode())


@contextmanager
def _database_lock(conn: sa.Connection, service: str):
    """Only one process migrates this database at a time (PostgreSQL:
    a session advisory lock on ``conn``; on SQLite the migration's
    transaction begins IMMEDIATE, holding the file's write lock)."""
    if conn.dialect.name != "postgresql":
        yield
        return
    key = advisory_lock_key(service)
    conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": key})
    conn.commit()
    try:
        yield
    finally:
        conn.rollback()   # whatever a failed migration left open, so the unlock can run
        conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
        conn.commit()


def upgrade(engine: sa.Engine, migrations: Path | None, service: str) -> None:
    """``service``'s database to head: one migration at a time in this
    process, one at a time per database across processes."""
    if migrations is None:
        return
    with one_migration_at_a_time(), engine.connect() as conn, _database_lock(conn, service):
        command.upgrade(alembic_config(migrations, service, conn), "head")
        conn.commit()


def create_platform_tables() -> None:
    """The outbox and inbox every service database has (shared.db.platform_tables),
    created in each service's first migration from that one definition."""
    from alembic import op

    from shared.db import platform_tables
    metadata = sa.MetaData()
    platform_tables(metadata)
    metadata.create_all(op.get_bind())


def drop_platform_tables() -> None:
    from alembic import op

    from shared.db import platform_tables
    metadata = sa.MetaData()
    platform_tables(metadata)
    metadata.drop_all(op.get_bind())


def run_env(context, metadata: sa.MetaData) -> None:
    """Body of every service's migrations/env.py (``metadata``: the service's models')."""
    service = context.config.get_main_option("dibao_service")
    if not service:  # alembic CLI: `alembic -c services/intake/alembic.ini ...`
        service = Path(context.config.get_main_option("script_location")).parent.name
    connection = context.config.attributes.get("connection")
    if connection is None:
        from shared.config import load_config
        url = load_config()["DB_URIS"][service]
        from shared.db import make_engine
        engine = make_engine(url)
        with engine.connect() as connection:
            _run(context, connection, metadata)
            connection.commit()
        return
    _run(context, connection, metadata)


def _run(context, connection, metadata) -> None:
    context.configure(connection=connection, target_metadata=metadata,
                      render_as_batch=connection.dialect.name == "sqlite",
                      compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


def add_seal_id(op, table: str) -> None:
    """Give ``table`` a ``seal_id`` (UUID text, unique, not null): the row id its
    encrypted columns are bound to (shared/sealing.py), for a table whose own
    id the database numbers. Existing rows get one each; their tokens (v1,
    bound to no row) are re-bound by ``dibao keys rotate``."""
    import uuid

    with op.batch_alter_table(table) as batch:
        batch.add_column(sa.Column("seal_id", sa.String(36), nullable=True))
    bind = op.get_bind()
    ids = [row[0] for row in bind.execute(sa.text(f"SELECT id FROM {table} WHERE seal_id IS NULL"))]
    if ids:
        bind.execute(sa.text(f"UPDATE {table} SET seal_id = :seal WHERE id = :id"),
                     [{"seal": str(uuid.uuid4()), "id": i} for i in ids])
    with op.batch_alter_table(table) as batch:
        batch.alter_column("seal_id", existing_type=sa.String(36), nullable=False)
        batch.create_unique_constraint(f"uq_{table}_seal_id", ["seal_id"])
