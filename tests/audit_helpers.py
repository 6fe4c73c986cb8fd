"""Driving the audit in tests: a case taken through the real entry review,
contract events published as their producers would, the audit record read back."""
from __future__ import annotations

import uuid
from datetime import date, datetime, timezone

import sqlalchemy as sa

from contracts.audit_chain import ANCHOR_TYPE
from services.audit.models import audit_records
from shared.db import make_engine
from shared.identity import Role
from shared.testing import publish_event, rpc_as, wait_for
from tests.helpers import DISTRICT, household, investigation, officer
from tests.review_helpers import (close_notice, committee, community, deputy, director, evaluation, review_state,
                                  township)


def auditor(config, unit=DISTRICT, role=Role.AUDITOR, user="he.auditor", name="何审计"):
    return rpc_as(config, role, unit, user=user, name=name)


def approved_case(config, seed: int) -> dict:
    """A household taken through the jiangxia entry review to approval."""
    data = household(seed=seed)
    data["incomes"] = []
    with officer(config) as rpc:
        created = rpc.intake.register_household(data)
        app = rpc.intake.submit_application({"household_id": created["household_id"],
                                             "accepted_on": date.today().isoformat()})
        rpc.intake.record_investigation(investigation(app["id"], created["member_ids"]))
    app_id = app["id"]
    review_state(config, app_id, step="community_evaluation")
    with community(config) as rpc:
        rpc.review.record_evaluation(evaluation(app_id))
    close_notice(config, review_state(config, app_id, step="community_notice"))
    review_state(config, app_id, step="township_review")
    with township(config) as rpc:
        f = rpc.review.record_township_review(committee(app_id))
    close_notice(config, f)
    review_state(config, app_id, step="joint_review")
    with deputy(config) as rpc:
        rpc.review.sign_joint_review({"application_id": app_id, "role": "deputy_director"})
    with director(config) as rpc:
        rpc.review.sign_joint_review({"application_id": app_id, "role": "centre_director"})
    with community(config) as rpc:
        done = rpc.review.sign_joint_review({"application_id": app_id, "role": "investigator"})
    return {"household_id": created["household_id"], "application_id": app_id, "case": done["case"],
            "size": len(data["members"])}


def publish(config, source: str, kind: str, subject: dict, payload: dict, version: int = 1,
            actor: dict | None = None, event_id: str | None = None) -> dict:
    """An envelope of ``source.kind`` on its exchange, as its producer's relay would send it."""
    import uuid

    env = {"event_id": event_id or str(uuid.uuid4()), "type": kind, "source": source, "version": version,
           "occurred_at": datetime.now(timezone.utc).isoformat(), "actor": actor, "subject": subject,
           "correlation_id": "test", "payload": payload}
    return publish_event(config, env)


#: the records of events (not the chain's own anchors, contracts.audit_chain.anchor_record)
EVENTS = audit_records.c.type != ANCHOR_TYPE


def records(config, where: str = "1=1") -> list:
    """The recorded events (anchors left out) matching ``where``, in order."""
    engine = make_engine(config["DB_URIS"]["audit"])
    try:
        with engine.connect() as conn:
            return conn.execute(sa.select(audit_records).where(EVENTS, sa.text(where))
                                .order_by(audit_records.c.seq)).all()
    finally:
        engine.dispose()


def count(config) -> int:
    """How many events are recorded (anchors left out)."""
    engine = make_engine(config["DB_URIS"]["audit"])
    try:
        with engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(audit_records).where(EVENTS)).scalar()
    except sa.exc.OperationalError:
        return 0
    finally:
        engine.dispose()


def recorded(config, where: str, n: int = 1, timeout: float = 30) -> list:
    return wait_for(lambda: (lambda rows: rows if len(rows) >= n else None)(records(config, where)),
                    timeout=timeout, message=f"{n} audit record(s) where {where}")


# --- checkpoints, roles and attacks on the record --------------------------------------------

def public_keys(config) -> dict:
    """``{key id: key}`` of the test deployment's checkpoint key (what `dibao audit public-key` prints)."""
    from contracts import audit_checkpoints as signed

    public = signed.public_key_text(signed.signing_key(config))
    return {signed.key_id(public): public}


class PartnerTap:
    """What a partner bureau is sent of the audit's events: a queue bound to
    ``audit.partner-events`` (what the shovels carry to partners' vhosts)."""

    def __init__(self, config, routing_key: str = "checkpoint_signed"):
        from kombu import Connection, Queue

        from shared.bus import partner_exchange

        self.conn = Connection(config["AMQP_URI"])
        self.channel = self.conn.channel()
        self.queue = Queue(f"test-partner-tap-{uuid.uuid4().hex[:8]}", exchange=partner_exchange("audit"),
                           routing_key=routing_key, durable=False, auto_delete=False, exclusive=True)
        self.queue(self.channel).declare()
        self.events: list[dict] = []

    def drain(self) -> list[dict]:
        import json

        while True:
            msg = self.channel.basic_get(self.queue.name, no_ack=True)
            if msg is None:
                return self.events
            self.events.append(json.loads(msg.body))

    def wait(self, n: int = 1, timeout: float = 30) -> list[dict]:
        return wait_for(lambda: (lambda e: e if len(e) >= n else None)(self.drain()), timeout=timeout,
                        interval=0.1, message=f"{n} checkpoint event(s) sent to partners")

    def close(self) -> None:
        self.conn.release()


def command_event(n: int, source: str = "intake") -> dict:
    """A ``<source>.command_recorded`` envelope, as its relay sends it."""
    import uuid as _uuid

    return {"event_id": str(_uuid.uuid4()), "type": "command_recorded", "source": source, "version": 1,
            "occurred_at": datetime.now(timezone.utc).isoformat(),
            "actor": {"user": f"user{n % 7}", "name": "王专干", "role": "community_officer", "unit": "420115001001"},
            "subject": {"household_id": str(_uuid.uuid4())}, "correlation_id": f"c{n}",
            "payload": {"service": source, "method": "register_household", "outcome": "ok", "error_fields": [],
                        "subject_ids": {}, "call_id": f"call-{n}"}}


def rehash_from(uri: str, k: int, **changes) -> None:
    """As a superuser with the database: change record ``k`` and recompute
    every later hash, so the chain alone verifies again."""
    from contracts import audit_chain as chain

    engine = make_engine(uri)
    try:
        with engine.begin() as conn:
            rows = conn.execute(sa.select(chain.audit_records).where(chain.audit_records.c.seq >= k)
                                .order_by(chain.audit_records.c.seq)).mappings().all()
            prev = rows[0]["prev_hash"]
            for row in rows:
                row = dict(row, **changes) if row["seq"] == k else dict(row)
                row["prev_hash"], row["hash"] = prev, chain.link(prev, row)
                prev = row["hash"]
                conn.execute(chain.audit_records.update().where(chain.audit_records.c.seq == row["seq"])
                             .values({**{c: row[c] for c in changes}, "prev_hash": row["prev_hash"],
                                      "hash": row["hash"]}))
    finally:
        engine.dispose()


def execute_sql(uri: str, sql: str, **params):
    """Run ``sql`` with ``uri``'s role, in a transaction of its own: its rows, or how many it changed."""
    engine = make_engine(uri)
    try:
        with engine.begin() as conn:
            result = conn.execute(sa.text(sql), params)
            return result.all() if result.returns_rows else result.rowcount
    finally:
        engine.dispose()


def scalar_sql(uri: str, sql: str, **params):
    return execute_sql(uri, sql, **params)[0][0]


def writer_roles(pg, config: dict, tmp_path):
    """A generator for a fixture: the audit database on PostgreSQL set up by
    ``dibao db roles`` — an owner that migrates and a writer that may only
    append — with the test's config on the writer (DB_URIS.audit) and the
    owner (DB_MIGRATE_URIS.audit); yields (config, superuser URI of that
    database). The database and both roles are dropped afterwards."""
    from typer.testing import CliRunner

    from cli.root import app
    from tests.integration.test_reliability import write_config

    tag = uuid.uuid4().hex[:8]
    database = sa.make_url(pg.reserve("audit")).database
    base = sa.make_url(pg.admin_uri)
    owner = base.set(username=f"dibao_t_owner_{tag}", password=f"owner-{tag}-pw", database=database)
    writer = base.set(username=f"dibao_t_writer_{tag}", password=f"writer-{tag}-pw", database=database)
    config = dict(config, DB_URIS=dict(config["DB_URIS"], audit=writer.render_as_string(hide_password=False)),
                  DB_MIGRATE_URIS={"audit": owner.render_as_string(hide_password=False)})
    path = write_config(config, tmp_path / f"roles-{tag}.yml")
    try:
        made = CliRunner().invoke(app, ["--config", path, "db", "roles", "--admin", pg.admin_uri],
                                  env={"COLUMNS": "200"})
        assert made.exit_code == 0, made.output
        yield config, base.set(database=database).render_as_string(hide_password=False), made.output
    finally:
        with pg.engine.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
            for role in (writer.username, owner.username):
                conn.execute(sa.text(f'DROP ROLE IF EXISTS "{role}"'))


def write_chain(config, batches: int = 4, size: int = 7, every: int = 10):
    """A chain written as the audit writer writes it (anchors, checkpoints, the
    events in the outbox), without a broker: ``batches`` batches of ``size``
    events, a checkpoint every ``every`` records — by default at records 15
    and 30. Returns (the database, the checkpoint events as published, the writer's checkpointer)."""
    import json

    from contracts import audit_chain as chain
    from contracts import audit_checkpoints as signed
    from services.audit.checkpoints import Checkpointer
    from services.audit.ingest import to_record, utc_text
    from services.audit.models import Base
    from services.audit.service import MIGRATIONS
    from shared.db import ServiceDatabase

    db = ServiceDatabase("audit", config["DB_URIS"]["audit"], Base.metadata, MIGRATIONS)
    db.migrate()
    checkpoints = Checkpointer(signed.signing_key(config), every, 0, db.outbox)
    for batch in range(batches):
        now = utc_text(datetime.now(timezone.utc))
        with db.engine.begin() as conn:
            checkpoints.prepare(conn, adding=True)
            checkpoints.appended(chain.append_rows(conn, [to_record(command_event(size * batch + n), now)
                                                          for n in range(size)]))
            checkpoints.sign(conn)
    with db.engine.connect() as conn:
        kept = [json.loads(body) for body in conn.execute(sa.text("SELECT body FROM outbox ORDER BY id")).scalars()]
    return db, kept, checkpoints
