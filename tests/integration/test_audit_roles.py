"""The audit record beyond the operators' reach, on PostgreSQL (issue 13 item 6):
the audit writer's database role may only append to the record — deleting,
updating or truncating the last records with the writer's credentials is
refused by the database — while the service records, signs and publishes as
that writer; migrations run as another role (``dibao db roles``)."""
from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import ProgrammingError
from typer.testing import CliRunner

from cli.root import app
from services.audit.service import AuditService
from shared.db import make_engine
from tests.audit_helpers import PartnerTap, command_event, count, execute_sql, scalar_sql, writer_roles
from tests.integration.test_reliability import write_config
from shared.testing import publish_event, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def roles(pg_databases, sqlite_config, tmp_path):
    """The test deployment with its audit database on PostgreSQL behind the writer role."""
    yield from writer_roles(pg_databases, dict(sqlite_config, AUDIT_CHECKPOINT_EVERY_RECORDS=5,
                                               AUDIT_CHECKPOINT_EVERY_SECONDS=0), tmp_path)


def refused(uri: str, sql: str) -> str:
    """The database's refusal of ``sql`` run with ``uri``'s role."""
    with pytest.raises(ProgrammingError) as caught:
        execute_sql(uri, sql)
    assert caught.value.orig.pgcode == "42501", caught.value   # insufficient_privilege
    return str(caught.value.orig)


def test_db_roles_sets_up_an_owner_and_a_writer_that_may_only_append_and_again_changes_nothing(roles, tmp_path):
    config, superuser, first = roles
    writer, owner = config["DB_URIS"]["audit"], config["DB_MIGRATE_URIS"]["audit"]
    assert "(owner, migrates): created" in first and "(the service's): created" in first
    assert "on audit_records: SELECT, INSERT (no UPDATE, DELETE, TRUNCATE)" in first
    assert "on audit_checkpoints: SELECT, INSERT (no UPDATE, DELETE, TRUNCATE)" in first
    path = write_config(config, tmp_path / "again.yml")
    again = CliRunner().invoke(app, ["--config", path, "db", "roles", "--admin", superuser],
                               env={"COLUMNS": "200"})
    assert again.exit_code == 0, again.output
    assert "created" not in again.output.replace("database", "") and "exists" in again.output
    engine = make_engine(superuser)
    with engine.connect() as conn:
        owners = dict(conn.execute(sa.text("SELECT tablename, tableowner FROM pg_tables "
                                           "WHERE schemaname = 'public'")).all())
        writer_role = sa.make_url(writer).username
        assert set(owners.values()) == {sa.make_url(owner).username}
        assert not conn.execute(sa.text("SELECT rolsuper FROM pg_roles WHERE rolname = :r"), {"r": writer_role}).scalar()
        assert not conn.execute(sa.text("SELECT pg_has_role(:w, :o, 'MEMBER')"),
                                {"w": writer_role, "o": sa.make_url(owner).username}).scalar()
    engine.dispose()
    # `dibao migrate` runs as the owner and grants again
    migrated = CliRunner().invoke(app, ["--config", path, "migrate", "audit"], env={"COLUMNS": "200"})
    assert migrated.exit_code == 0 and "at revision" in migrated.output, migrated.output
    assert "on audit_records: SELECT, INSERT" in migrated.output


def test_the_writer_records_signs_and_publishes_but_cannot_delete_update_or_truncate_the_record(
        roles, container_factory):
    config, superuser, _ = roles
    writer = config["DB_URIS"]["audit"]
    tap = PartnerTap(config)
    try:
        audit = container_factory(AuditService, config)
        audit.start()                                              # the service connects as the writer
        for n in range(5):
            publish_event(config, command_event(n))
        [checkpoint] = [e["payload"] for e in tap.wait(1)]
    finally:
        tap.close()
    assert checkpoint["seq"] == 6                                  # the chain's anchor and the five events
    wait_for(lambda: scalar_sql(superuser, "SELECT count(*) FROM outbox WHERE sent_at IS NULL") == 0,
             timeout=20, message="the checkpoint event marked sent (the writer updates its outbox)")
    assert count(config) == 5

    # as the writer (the service's own credentials): the last records cannot be removed or rewritten
    for table in ("audit_records", "audit_checkpoints"):
        assert "permission denied" in refused(writer, f"DELETE FROM {table} WHERE seq >= 5")
        refused(writer, f"UPDATE {table} SET seq = seq WHERE seq >= 5")
        refused(writer, f"TRUNCATE {table}")
        refused(writer, f"ALTER TABLE {table} DISABLE TRIGGER ALL")
        refused(writer, f"DROP TABLE {table}")
    refused(writer, "UPDATE audit_records SET actor_name = '伪造' WHERE seq = 3")
    execute_sql(writer, f"GRANT DELETE ON audit_records TO {sa.make_url(writer).username}")   # a no-op warning
    refused(writer, "DELETE FROM audit_records WHERE seq >= 5")
    with pytest.raises(ProgrammingError):
        execute_sql(writer, f"SET ROLE {sa.make_url(config['DB_MIGRATE_URIS']['audit']).username}")
    assert scalar_sql(superuser, "SELECT count(*) FROM audit_records") >= 7   # nothing was removed

    # and it goes on recording as the writer
    event = command_event(99)
    publish_event(config, event)
    wait_for(lambda: scalar_sql(superuser, "SELECT count(*) FROM audit_records WHERE event_id = :e",
                                e=event["event_id"]) == 1, timeout=20, message="recorded after")
    audit.stop()                                                   # before its database goes


def test_sqlite_has_no_roles_and_db_roles_says_so(sqlite_config, tmp_path):
    config = dict(sqlite_config, DB_MIGRATE_URIS={"audit": "sqlite:///elsewhere.db"})
    path = write_config(config, tmp_path / "sqlite.yml")
    said = CliRunner().invoke(app, ["--config", path, "db", "roles", "audit"], env={"COLUMNS": "200"})
    assert said.exit_code == 0 and "SQLite has no database roles" in said.output, said.output
    nothing = CliRunner().invoke(app, ["--config", write_config(sqlite_config, tmp_path / "none.yml"), "db", "roles"],
                                 env={"COLUMNS": "200"})
    assert nothing.exit_code == 1 and "no service has DB_MIGRATE_URIS" in nothing.output
