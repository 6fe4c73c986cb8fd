"""Signed checkpoints of the audit chain (issue 13 item 6): made automatically
every M records or N seconds, published to the partners as
``audit.checkpoint_signed`` (partner-safe), and — kept by a holder — they
catch what the chain alone cannot: a superuser who rewrites a record and
rehashes the tail, or removes the tail, is named at the first changed record
or the missing range."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import eventlet
import pytest
import sqlalchemy as sa

from contracts import audit_chain as chain
from contracts import audit_checkpoints as signed
from contracts.audit import CheckpointSigned
from services.audit.checkpoints import checkpoint_due
from services.audit.ingest import to_record, utc_text
from services.audit.service import AuditService
from shared.testing import publish_event, wait_for
from tests.audit_helpers import (PartnerTap, command_event, count, execute_sql, public_keys, recorded, rehash_from,
                                 scalar_sql, write_chain)

pytestmark = pytest.mark.integration


# --- the rule ---------------------------------------------------------------------------

@pytest.mark.parametrize("new, seconds, due", [
    (0, 9999, False),        # nothing new: never, however long
    (9, 10, False), (10, 0, True), (1, 300, True), (1, 299.9, False)])
def test_a_checkpoint_is_due_after_m_records_or_n_seconds_with_something_new(new, seconds, due):
    assert checkpoint_due(new, seconds, every_records=10, every_seconds=300) is due
    assert not checkpoint_due(new, seconds, every_records=0, every_seconds=0)


# --- the chain as the writer keeps it, attacked by a superuser ---------------------------

@pytest.fixture
def written(config, crypto_profile):
    """A chain written as the audit writer writes it (:func:`write_chain`):
    checkpoints at records 15 and 30; (db, the checkpoint events a partner keeps)."""
    db, kept, writer = write_chain(config)
    db.checkpoints = writer          # the writer's state, for the tests of what it notices
    yield db, kept
    db.dispose()


def test_the_writer_signs_what_it_wrote_and_each_range_starts_with_an_anchor(written, config):
    db, kept = written
    assert [(e["source"], e["type"], e["actor"], e["subject"]) for e in kept] == [
        ("audit", "checkpoint_signed", None, {})] * 2
    first, second = (e["payload"] for e in kept)
    assert (first["previous_seq"], first["seq"], second["previous_seq"], second["seq"]) == (0, 15, 15, 30)
    assert second["previous_hash"] == first["head_hash"] and first["previous_hash"] == chain.GENESIS
    assert len(signed.locator_of(first)) == 15 and len(signed.locator_of(second)) == 15
    anchors = [r for r in chain.read_records(db.engine) if chain.is_anchor(r)]
    assert [a["seq"] for a in anchors] == [1, 16, 31]            # a new chain's first record, and after each
    assert len({a["payload"]["nonce"] for a in anchors}) == 3
    report = signed.verify_database(db.engine, [e["payload"] for e in kept], public_keys(config))
    assert report.ok and len(report.held) == 2                   # the stored and the kept (the same two)


def test_a_rewrite_rehashed_after_the_last_checkpoint_is_named_at_its_first_changed_record(written, config):
    db, kept = written
    uri, keys = config["DB_URIS"]["audit"], public_keys(config)
    rehash_from(uri, 22, actor_name="伪造")
    assert chain.verify(db.engine)[0].ok                         # the chain alone is fooled
    report = signed.verify_database(db.engine, [], keys)         # the database's own checkpoints are not
    assert (report.first.kind, report.first.seq) == ("rewritten", 22)
    execute_sql(uri, "DELETE FROM audit_checkpoints WHERE seq >= 16")   # the superuser covers the tracks
    assert signed.verify_database(db.engine, [], keys).ok
    report = signed.verify_database(db.engine, [kept[-1]["payload"]], keys)   # what the partner kept
    assert (report.first.kind, report.first.seq) == ("rewritten", 22), report.findings
    assert "the kept checkpoint of record 30" in report.first.detail


def test_a_rewrite_before_the_last_range_is_named_with_the_earlier_checkpoints(written, config):
    db, kept = written
    uri, keys = config["DB_URIS"]["audit"], public_keys(config)
    rehash_from(uri, 5, payload={"outcome": "forbidden"})
    execute_sql(uri, "DELETE FROM audit_checkpoints")
    last_only = signed.verify_database(db.engine, [kept[-1]["payload"]], keys)
    assert (last_only.first.kind, last_only.first.seq) == ("rewritten", 15)
    assert "rewritten at or before record 15" in last_only.first.detail
    every = signed.verify_database(db.engine, [e["payload"] for e in kept], keys)
    assert (every.first.kind, every.first.seq) == ("rewritten", 5)


def test_a_tail_removed_after_a_checkpoint_is_named_as_the_missing_range(written, config):
    db, kept = written
    uri, keys = config["DB_URIS"]["audit"], public_keys(config)
    execute_sql(uri, "DELETE FROM audit_records WHERE seq > 26")
    execute_sql(uri, "DELETE FROM audit_checkpoints WHERE seq > 15")
    assert chain.verify(db.engine)[0].ok and signed.verify_database(db.engine, [], keys).ok
    report = signed.verify_database(db.engine, [kept[-1]["payload"]], keys)
    assert (report.first.kind, report.first.seq) == ("missing", 27)
    assert "records 27–30 are missing: the log ends at record 26" in report.first.detail


def _batch(db, first: int, n: int):
    """The writer's next batch: (the checkpoint it signed, if any)."""
    writer, now = db.checkpoints, utc_text(datetime.now(timezone.utc))
    with db.engine.begin() as conn:
        writer.prepare(conn, adding=True)
        writer.appended(chain.append_rows(conn, [to_record(command_event(first + i), now) for i in range(n)]))
        return writer.sign(conn)


@pytest.mark.parametrize("k, noticed", [
    (18, "record 30 no longer has the hash its checkpoint signed (rewritten)"),   # before its last checkpoint
    (34, "record 34 was rewritten behind the writer"),                             # among what it wrote since
])
def test_the_writer_signs_nothing_over_a_record_rewritten_behind_its_back(written, config, k, noticed):
    db, _ = written
    assert _batch(db, 100, 5) is None                            # records 32–36, not yet due
    rehash_from(config["DB_URIS"]["audit"], k, actor_name="伪造")
    assert _batch(db, 200, 12) is None                           # due (17 new), yet not signed
    assert noticed in db.checkpoints.broken
    assert scalar_sql(config["DB_URIS"]["audit"], "SELECT max(seq) FROM audit_checkpoints") == 30


def test_a_forged_or_foreign_checkpoint_is_not_taken(written, config):
    db, kept = written
    uri, keys = config["DB_URIS"]["audit"], public_keys(config)
    rehash_from(uri, 20, actor_unit="420115")
    with db.engine.connect() as conn:
        new_head = conn.execute(sa.text("SELECT hash FROM audit_records WHERE seq = 30")).scalar()
    execute_sql(uri, "UPDATE audit_checkpoints SET head_hash = :h WHERE seq = 30", h=new_head)
    report = signed.verify_database(db.engine, [], keys)
    assert [f.kind for f in report.findings] == ["unsigned"] and report.first.seq == 30
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    stranger = Ed25519PrivateKey.generate()                       # a key that is not the deployment's
    forged = signed.sign(stranger, 30, new_head, 15, kept[0]["payload"]["head_hash"])
    assert "does not verify with the public key given" in signed.verify_database(db.engine, [forged], keys).first.detail


# --- the service signs and publishes ---------------------------------------------------------

def test_after_m_records_a_checkpoint_is_published_to_partners_and_verifies_with_the_public_key(
        container_factory, sqlite_config, tmp_path):
    from typer.testing import CliRunner

    from cli.root import app
    from tests.integration.test_reliability import write_config

    config = dict(sqlite_config, AUDIT_CHECKPOINT_EVERY_RECORDS=10, AUDIT_CHECKPOINT_EVERY_SECONDS=0)
    uri = config["DB_URIS"]["audit"]
    tap = PartnerTap(config)
    try:
        container_factory(AuditService, config).start()
        events = [command_event(n) for n in range(10)]
        for env in events[:9]:
            publish_event(config, env)
        wait_for(lambda: count(config) == 9, timeout=20, message="nine records")
        assert scalar_sql(uri, "SELECT count(*) FROM audit_checkpoints") == 0     # not yet
        publish_event(config, events[9])
        [event] = tap.wait(1)
    finally:
        tap.close()
    cp = event["payload"]
    assert (event["source"], event["type"], event["subject"], event["actor"]) == ("audit", "checkpoint_signed", {},
                                                                                 None)
    assert set(cp) == set(CheckpointSigned().fields)               # figures and hashes, nothing else
    assert (cp["seq"], cp["records"], cp["previous_seq"]) == (11, 11, 0)   # the anchor and the ten events
    assert "王专干" not in json.dumps(event, ensure_ascii=False) and "household_id" not in json.dumps(event)
    path = write_config(config, tmp_path / "cli.yml")
    public = CliRunner().invoke(app, ["--config", path, "audit", "public-key"]).output.strip()
    assert signed.check_signature(cp, signed.public_keys(public))
    assert not signed.check_signature(dict(cp, head_hash="0" * 64), signed.public_keys(public))
    stored = CliRunner().invoke(app, ["--config", path, "audit", "checkpoint"])
    assert stored.exit_code == 0 and json.loads(stored.output) == cp
    recorded(config, "type = 'checkpoint_signed'")                 # the chain records its own checkpoints too
    assert json.loads(CliRunner().invoke(app, ["--config", path, "audit", "checkpoint"]).output)["seq"] == 11


def test_an_idle_chain_is_signed_once_when_its_time_comes(container_factory, sqlite_config):
    config = dict(sqlite_config, AUDIT_CHECKPOINT_EVERY_RECORDS=1000, AUDIT_CHECKPOINT_EVERY_SECONDS=1)
    tap = PartnerTap(config)
    try:
        container_factory(AuditService, config).start()
        for n in range(3):
            publish_event(config, command_event(n))
        [event] = tap.wait(1, timeout=20)
        assert event["payload"]["seq"] == 4
        recorded(config, "type = 'checkpoint_signed'")             # its own event came back into the chain
        eventlet.sleep(2.5)                                        # more than the period: nothing new, no checkpoint
        assert len(tap.drain()) == 1
    finally:
        tap.close()


def test_a_partner_bureau_receives_and_keeps_the_checkpoints(container_factory, broker_users_config, tmp_path):
    """Through the real partner space (dibao broker partner-add, the shovel):
    a plain nameko handler of audit.checkpoint_signed."""
    from nameko.events import event_handler

    from cli.broker import partner_events
    from shared.broker import service_config
    from tests.integration.test_bus_boundary import dibao, relay_as

    assert "checkpoint_signed" in partner_events()["audit"]
    kept: list = []

    class Province:
        name = "province"

        @event_handler("audit", "checkpoint_signed")
        def on_checkpoint(self, event):
            kept.append(event)

    bus = dict(broker_users_config, AUDIT_CHECKPOINT_EVERY_RECORDS=3, AUDIT_CHECKPOINT_EVERY_SECONDS=0)
    added = dibao(bus, tmp_path, "broker", "partner-add", "province",
                  "--handler", "audit.checkpoint_signed=province.on_checkpoint")
    assert added.exit_code == 0, added.output
    container_factory(AuditService, service_config(bus, "audit")).start()
    for n in range(3):
        relay_as(bus, "intake", command_event(n))
    container_factory(Province, {"AMQP_URI": added.output.strip().splitlines()[-1], "serializer": "json"}).start()
    [event] = wait_for(lambda: kept[:], timeout=30, message="the province's checkpoint")
    assert event["payload"]["seq"] == 4 and signed.check_signature(event["payload"], public_keys(bus))
