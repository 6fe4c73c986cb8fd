"""Attack tests (issue 13 item 6), end to end on SQLite and PostgreSQL: the
audit service records and publishes its checkpoints (on PostgreSQL as the
writer role that may only append); a partner keeps them; then a superuser
with the database rewrites the tail with direct SQL — a record changed and
every later hash recomputed, the stored checkpoints over it deleted — or
cuts it off. ``dibao audit verify`` against the partner's last checkpoint
names the first changed record (the missing range), on the database and on
an exported bundle offline; the writer notices too and signs nothing more."""
from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from cli.root import app
from services.audit.service import AuditService
from shared.identity import Role
from shared.testing import publish_event, rpc_as, wait_for
from tests.audit_helpers import PartnerTap, command_event, execute_sql, recorded, rehash_from, writer_roles
from tests.helpers import DISTRICT
from tests.integration.test_reliability import write_config

pytestmark = pytest.mark.integration

EVERY = 10


@pytest.fixture
def deployment(backend, config, request, tmp_path):
    """(config, the URI a superuser of the audit database uses): SQLite as it
    is; PostgreSQL behind `dibao db roles` (the service connects as the writer)."""
    config = dict(config, AUDIT_CHECKPOINT_EVERY_RECORDS=EVERY, AUDIT_CHECKPOINT_EVERY_SECONDS=0)
    if backend == "sqlite":
        yield config, config["DB_URIS"]["audit"]
        return
    roles = writer_roles(request.getfixturevalue("pg_databases"), config, tmp_path)
    config, superuser, _ = next(roles)
    yield config, superuser
    next(roles, None)


@pytest.fixture
def kept(deployment, container_factory):
    """The service ran: three checkpoints, each kept by a partner (the events as received)."""
    config, _ = deployment
    tap = PartnerTap(config)
    audit = container_factory(AuditService, config)
    audit.start()
    try:
        for group in range(3):
            for n in range(EVERY):
                publish_event(config, command_event(EVERY * group + n))
            tap.wait(group + 1)
        events = tap.drain()
    finally:
        tap.close()
    recorded(config, "type = 'checkpoint_signed'", n=3)          # quiet: the last one's event is in the chain
    yield events, audit
    audit.stop()                                                 # before its database goes


def dibao(config, tmp_path, *args):
    return CliRunner().invoke(app, ["--config", write_config(config, tmp_path / "cli.yml"), *args],
                              env={"COLUMNS": "250"})


def files(config, tmp_path, events) -> tuple[str, str]:
    """The partner's last checkpoint and the deployment's public key, as files."""
    last = tmp_path / "last-checkpoint.json"
    last.write_text(json.dumps(events[-1], ensure_ascii=False), encoding="utf-8")    # the event as received
    key = tmp_path / "audit-public-key.txt"
    key.write_text(dibao(config, tmp_path, "audit", "public-key").output)
    return str(last), str(key)


def test_a_superuser_rewriting_and_rehashing_the_tail_is_named_at_the_first_changed_record(
        deployment, kept, tmp_path):
    config, superuser = deployment
    events, audit = kept
    last_checkpoint, key = files(config, tmp_path, events)
    last = events[-1]["payload"]
    k = last["previous_seq"] + 3                                  # an event in the last checkpoint's range
    assert dibao(config, tmp_path, "audit", "verify").exit_code == 0

    rehash_from(superuser, k, actor_name="伪造", actor_user="nobody")
    execute_sql(superuser, "DELETE FROM audit_checkpoints WHERE seq >= :k", k=k)   # the tracks covered
    fooled = dibao(config, tmp_path, "audit", "verify")
    assert fooled.exit_code == 0, fooled.output                   # what the database keeps agrees with itself
    caught = dibao(config, tmp_path, "audit", "verify", "--checkpoint", last_checkpoint, "--public-key", key)
    assert caught.exit_code == 2, caught.output
    assert f"verify FAILED: record {k} rewritten" in caught.output and f"checkpoint of record {last['seq']}" in \
        caught.output

    bundle = tmp_path / "bundle.zip"
    assert dibao(config, tmp_path, "audit", "export", "--out", str(bundle)).exit_code == 0
    offline = dict(config, DB_URIS={"audit": "postgresql://nobody@127.0.0.1:1/no_database"})
    caught = dibao(offline, tmp_path, "audit", "verify", "--bundle", str(bundle), "--checkpoint", last_checkpoint,
                   "--public-key", key)
    assert caught.exit_code == 2 and f"verify FAILED: record {k} rewritten" in caught.output, caught.output

    # the writer, appending after the rewrite, sees it and signs nothing over it
    for n in range(EVERY):
        publish_event(config, command_event(1000 + n))
    with rpc_as(config, Role.SYSTEM_ADMIN, DISTRICT, user="sys.admin") as rpc:
        health = wait_for(lambda: rpc.audit.ping()["checkpoints"]["broken"], timeout=20,
                          message="the writer noticing the rewrite")
    assert f"the checkpoint of record {last['seq']} is gone from the database" in health
    assert execute_sql(superuser, "SELECT max(seq) FROM audit_checkpoints")[0][0] < k


def test_a_superuser_cutting_off_the_tail_is_named_as_the_missing_range(deployment, kept, tmp_path):
    config, superuser = deployment
    events, _ = kept
    last_checkpoint, key = files(config, tmp_path, events)
    last = events[-1]["payload"]
    cut = last["seq"] - 4
    execute_sql(superuser, "DELETE FROM audit_records WHERE seq > :s", s=cut)
    execute_sql(superuser, "DELETE FROM audit_checkpoints WHERE seq > :s", s=cut)
    assert dibao(config, tmp_path, "audit", "verify").exit_code == 0
    caught = dibao(config, tmp_path, "audit", "verify", "--checkpoint", last_checkpoint, "--public-key", key)
    assert caught.exit_code == 2, caught.output
    assert f"record {cut + 1} missing: records {cut + 1}–{last['seq']} are missing" in caught.output
