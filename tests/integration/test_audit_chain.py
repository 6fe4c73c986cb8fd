"""The chain proves itself: tampering with stored records by raw SQL is
named by ``verify``; a signed checkpoint catches a rewritten history; a
malformed or unknown-version event is parked with the reason and ingest
goes on. The chain tests run under both crypto profiles (SHA-256 + Ed25519,
SM3 + SM2)."""
from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa

from contracts import audit_chain as chain
from contracts import audit_checkpoints as signed
from services.audit.checkpoints import Checkpointer
from services.audit.ingest import to_record, utc_text
from services.audit.models import Base
from services.audit.service import MIGRATIONS, AuditService
from shared import profiles
from shared.db import ServiceDatabase
from shared.deadletter import list_parked
from shared.testing import wait_for
from tests.audit_helpers import count, publish, records

pytestmark = pytest.mark.integration


def command(n: int) -> dict:
    """An intake.command_recorded envelope, as intake's relay sends it."""
    return {"event_id": str(uuid.uuid4()), "type": "command_recorded", "source": "intake", "version": 1,
            "occurred_at": datetime.now(timezone.utc).isoformat(),
            "actor": {"user": f"user{n % 7}", "name": "王专干", "role": "community_officer", "unit": "420115001001"},
            "subject": {"household_id": str(uuid.uuid4())}, "correlation_id": f"c{n}",
            "payload": {"service": "intake", "method": "register_household", "outcome": "ok", "error_fields": [],
                        "subject_ids": {}, "call_id": f"call-{n}"}}


@pytest.fixture
def log(config, crypto_profile):
    db = ServiceDatabase("audit", config["DB_URIS"]["audit"], Base.metadata, MIGRATIONS)
    db.migrate()
    now = utc_text(datetime.now(timezone.utc))
    with db.engine.begin() as conn:
        assert chain.append(conn, [to_record(command(n), now) for n in range(20)]) == 20
    yield db
    db.dispose()


def execute(db, sql: str, **params):
    with db.engine.begin() as conn:
        conn.execute(sa.text(sql), params)


def test_an_untouched_log_verifies_and_a_redelivered_batch_adds_nothing(log):
    result, _ = chain.verify(log.engine)
    assert result.ok and result.records == 20 and result.head_seq == 20
    with log.engine.begin() as conn:
        stored = conn.execute(sa.text("SELECT event_id FROM audit_records ORDER BY seq")).scalars().all()
        again = [dict(command(0), event_id=e) for e in stored[:5]]
        assert chain.append(conn, [to_record(e, "x") for e in again]) == 0


def test_the_chain_is_hashed_and_signed_with_the_profile(log, config, crypto_profile):
    from cryptography.hazmat.primitives import hashes

    with log.engine.connect() as conn:
        rows = conn.execute(sa.select(chain.audit_records).order_by(chain.audit_records.c.seq)).mappings().all()
    algorithm = {"intl": hashes.SHA256(), "gm": hashes.SM3()}[crypto_profile.name]
    digest = hashes.Hash(algorithm)
    digest.update((chain.GENESIS + chain.canonical(rows[0])).encode("utf-8"))
    assert rows[0]["hash"] == digest.finalize().hex() and rows[1]["prev_hash"] == rows[0]["hash"]
    cp = sign_head(log, config)
    assert cp["algorithm"] == {"intl": "ed25519", "gm": "sm2-sm3"}[crypto_profile.name]
    public = signed.public_key_text(signed.signing_key(config))
    keys = signed.public_keys(public)
    assert signed.check_signature(cp, keys) and signed.verify_database(log.engine, [cp], keys).ok
    other = profiles.GM if crypto_profile is profiles.INTL else profiles.INTL
    # read under the other profile: record 1 is "altered", and the checkpoint vouches for nothing
    assert chain.verify(log.engine, profile=other)[0].finding.seq == 1
    report = signed.verify_database(log.engine, [cp], keys, profile=other)
    assert not report.ok and any("CRYPTO_PROFILE" in f.detail for f in report.findings)
    # relabelled with the other algorithm, it no longer verifies (the algorithm is signed)
    assert not signed.check_signature(dict(cp, algorithm=other.signature_name), keys)


def test_an_audit_log_of_one_profile_refuses_a_service_of_the_other(log, config, crypto_profile):
    other = profiles.GM if crypto_profile is profiles.INTL else profiles.INTL
    with pytest.raises(profiles.ProfileMismatch, match=f"audit refuses to start: .*CRYPTO_PROFILE={crypto_profile.name}"):
        ServiceDatabase("audit", config["DB_URIS"]["audit"], Base.metadata, MIGRATIONS, other).migrate()


def test_altered_record_is_named(log):
    execute(log, "UPDATE audit_records SET actor_name = '李四' WHERE seq = 7")
    result, _ = chain.verify(log.engine)
    assert (result.finding.kind, result.finding.seq) == ("altered", 7)


def test_dibao_audit_verify_passes_then_names_the_altered_record(log, config, tmp_path):
    from typer.testing import CliRunner

    from cli.root import app
    from tests.integration.test_reliability import write_config
    path = write_config(config, tmp_path / "cli.yml")
    ok = CliRunner().invoke(app, ["--config", path, "audit", "verify"])
    assert ok.exit_code == 0 and "chain verifies" in ok.output and "20 records" in ok.output
    checkpoint = tmp_path / "cp.json"
    none_yet = CliRunner().invoke(app, ["--config", path, "audit", "checkpoint", "--out", str(checkpoint)])
    assert none_yet.exit_code == 2 and "no checkpoint signed yet" in none_yet.output
    sign_head(log, config)
    assert CliRunner().invoke(app, ["--config", path, "audit", "checkpoint", "--out", str(checkpoint)]).exit_code == 0
    assert json.loads(checkpoint.read_text())["seq"] == 20
    execute(log, "UPDATE audit_records SET actor_unit = '420115' WHERE seq = 4")
    bad = CliRunner().invoke(app, ["--config", path, "audit", "verify"])
    assert bad.exit_code == 2 and "record 4 altered" in bad.output
    bad = CliRunner().invoke(app, ["--config", path, "audit", "verify", "--checkpoint", str(checkpoint)])
    assert bad.exit_code == 2 and "record 4 altered" in bad.output


def test_altered_payload_is_named(log):
    execute(log, """UPDATE audit_records SET payload = '{"outcome": "forbidden"}' WHERE seq = 12""")
    result, _ = chain.verify(log.engine)
    assert (result.finding.kind, result.finding.seq) == ("altered", 12)


def test_removed_record_is_named(log):
    execute(log, "DELETE FROM audit_records WHERE seq = 9")
    result, _ = chain.verify(log.engine)
    assert (result.finding.kind, result.finding.seq) == ("removed", 9)


def test_inserted_record_is_named(log):
    # make room after record 5 and slip a forged record in, hash and all
    execute(log, "UPDATE audit_records SET seq = seq + 1000 WHERE seq > 5")
    execute(log, "UPDATE audit_records SET seq = seq - 999 WHERE seq > 1000")
    with log.engine.connect() as conn:
        prev = conn.execute(sa.text("SELECT hash FROM audit_records WHERE seq = 5")).scalar()
    forged = to_record(command(99), "2026-01-01T00:00:00.000000Z")
    row = {**forged, "seq": 6, "prev_hash": prev, "hash": chain.link(prev, forged)}
    with log.engine.begin() as conn:
        conn.execute(chain.audit_records.insert(), [row])
    result, _ = chain.verify(log.engine)
    assert (result.finding.kind, result.finding.seq) == ("inserted", 6)


def sign_head(db, config) -> dict:
    """A checkpoint of the log's head, as the audit service's writer signs it."""
    checkpoints = Checkpointer(signed.signing_key(config), 1, 0, db.outbox)
    with db.engine.begin() as conn:
        return checkpoints.sign(conn)


def test_checkpoint_is_signed_and_catches_a_rewritten_history(log, config):
    cp = sign_head(log, config)
    public = signed.public_key_text(signed.signing_key(config))
    keys = {signed.key_id(public): public}
    assert cp["seq"] == 20 and cp["previous_seq"] == 0 and signed.check_signature(cp, keys)
    assert cp["locator"] == ""                     # this log did not start with an anchor: nothing to locate with
    assert not signed.check_signature(dict(cp, seq=19), keys)          # the signature covers the figures
    with log.engine.begin() as conn:                                   # the log grows: still extends it
        chain.append(conn, [to_record(command(50 + n), "x") for n in range(3)])
    assert signed.verify_database(log.engine, [cp], keys).ok
    # rewrite record 3 and recompute every later hash: verify alone passes, the checkpoint does not
    with log.engine.begin() as conn:
        rows = conn.execute(sa.select(chain.audit_records).order_by(chain.audit_records.c.seq)).mappings().all()
        prev = rows[1]["hash"]
        for row in rows[2:]:
            row = dict(row, actor_name="伪造") if row["seq"] == 3 else dict(row)
            row["prev_hash"], row["hash"] = prev, chain.link(prev, row)
            prev = row["hash"]
            conn.execute(chain.audit_records.update().where(chain.audit_records.c.seq == row["seq"])
                         .values(actor_name=row["actor_name"], prev_hash=row["prev_hash"], hash=row["hash"]))
    assert chain.verify(log.engine)[0].ok
    report = signed.verify_database(log.engine, [cp], keys)
    assert (report.first.kind, report.first.seq) == ("rewritten", 20)
    assert "rewritten between records 1 and 20" in report.first.detail


def test_malformed_and_unknown_version_events_are_parked_with_the_reason_and_ingest_goes_on(
        container_factory, sqlite_config):
    container_factory(AuditService, sqlite_config).start()
    first = publish(sqlite_config, "intake", "command_recorded", {}, command(1)["payload"])
    newer = publish(sqlite_config, "intake", "household_registered", {}, {"whatever": 1}, version=9)
    unknown = publish(sqlite_config, "intake", "household_teleported", {}, {})
    bad_payload = publish(sqlite_config, "intake", "command_recorded", {}, {"service": "intake"})
    from kombu import Connection, Exchange, Producer
    with Connection(sqlite_config["AMQP_URI"]) as conn:        # not even JSON
        Producer(conn.default_channel).publish(b"{not json", exchange=Exchange("review.events", type="topic",
                                               durable=True), routing_key="case_approved", delivery_mode=2,
                                               content_type="application/json", message_id="garbage-1")
    last = publish(sqlite_config, "review", "command_recorded", {}, dict(command(2)["payload"], service="review"))
    wait_for(lambda: count(sqlite_config) >= 2, timeout=20, message="the good events recorded")
    parked = wait_for(lambda: (lambda p: p if len(p) >= 4 else None)(list_parked(sqlite_config["AMQP_URI"])),
                      timeout=20, message="4 parked events")
    assert [r.event_id for r in records(sqlite_config)] == [first["event_id"], last["event_id"]]
    reasons = {p.body.get("event_id", p.message_id) if isinstance(p.body, dict) else p.message_id: p.reason
               for p in parked}
    assert "unknown version 9" in reasons[newer["event_id"]]
    assert "unknown event type intake.household_teleported" in reasons[unknown["event_id"]]
    assert "malformed intake.command_recorded payload" in reasons[bad_payload["event_id"]]
    assert "not JSON" in reasons["garbage-1"]
    assert all(p.queue == "dibao.audit" and p.handler == "audit.ingest" for p in parked)
