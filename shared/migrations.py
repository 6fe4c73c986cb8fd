"""Alembic per service, applied at start-up (and by ``dibao migrate``).

Each service keeps its scripts in ``services/<name>/migrations``; their
``env.py`` calls :func:`run_env` with the service's metadata (the platform
imports no service). Start-up migration is
safe with several replicas: on PostgreSQL it holds an advisory lock.
"""
from __future__ import annotations

import zlib
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config


def alembic_config(migrations: Path, service: str, connection=None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations))
    cfg.set_main_option("dibao_service", service)
    cfg.attributes["connection"] = connection
    return cfg


def upgrade(engine: sa.Engine, migrations: Path | None, service: str) -> None:
    if migrations is None:
        return
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            key = zlib.crc32(f"dibao-migrate-{service}".encode())
            conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": key})
            conn.commit()
            try:
                command.upgrade(alembic_config(migrations, service, conn), "head")
                conn.commit()
            finally:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                conn.commit()
        else:
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
