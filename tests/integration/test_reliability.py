"""Nothing lost, nothing done twice — proven by taking things away.

- the broker becomes unreachable after a command commits: its events go out
  when it is back;
- the relay process is SIGKILLed mid-stream: after a restart every event
  arrives, and the inbox turns redeliveries into a single effect;
- RabbitMQ itself restarts mid-stream (a node of the test's own): nothing is lost;
- a failing handler is retried with back-off, then parked on the
  dead-letter queue, and an operator's replay processes it once.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import eventlet
import pytest
import sqlalchemy as sa
import yaml
from nameko.events import event_handler

from services.intake import handlers
from services.intake.models import Base
from contracts.rpc.intake import HouseholdSchema
from services.intake.service import MIGRATIONS, IntakeService
from shared.config import REPO_ROOT
from shared.db import ServiceDatabase, configure_cipher
from shared.deadletter import list_parked
from shared.identity import Actor, Role
from shared.reference import ReferenceData
from shared.sample import SampleDistrict
from shared.testing import TcpProxy, rpc_as, wait_for
from tests import probe
from tests.broker_helpers import PrivateBroker, can_run_private_broker
from tests.helpers import COMMUNITY

pytestmark = pytest.mark.integration

OFFICER = Actor("wang.officer", "王专干", COMMUNITY, frozenset({Role.COMMUNITY_OFFICER}))
seen: list = []


class Partner:
    name = "partner"

    @event_handler("intake", "household_registered")
    def on_household(self, event):
        seen.append(event["event_id"])


def commit_households(config: dict, count: int, seed: int = 1) -> list[str]:
    """Commit registrations straight through the unit of work, as the service
    would, without any relay running (the process 'dies' right after)."""
    configure_cipher(config, "intake")
    db = ServiceDatabase("intake", config["DB_URIS"]["intake"], Base.metadata, MIGRATIONS)
    db.migrate()
    ref = ReferenceData.from_config(config)
    sample = SampleDistrict(seed=seed)
    ids = []
    for _ in range(count):
        data = HouseholdSchema().load(sample.household(COMMUNITY))
        with db.unit_of_work(OFFICER.to_dict(), "test") as uow:
            ids.append(handlers.register_household(uow, OFFICER, data, ref).id)
    db.dispose()
    return ids


def outbox_counts(config: dict) -> tuple[int, int]:
    engine = sa.create_engine(config["DB_URIS"]["intake"])
    with engine.connect() as conn:
        total = conn.execute(sa.text("SELECT count(*) FROM outbox")).scalar()
        unsent = conn.execute(sa.text("SELECT count(*) FROM outbox WHERE sent_at IS NULL")).scalar()
    engine.dispose()
    return total, unsent


def test_events_committed_while_broker_is_unreachable_arrive_when_it_returns(container_factory, sqlite_config):
    seen.clear()
    partner = container_factory(Partner, sqlite_config)
    partner.start()                                    # the partner's queue exists
    proxy = TcpProxy()
    intake_config = dict(sqlite_config, AMQP_URI=proxy.uri(sqlite_config["AMQP_URI"]))
    intake = container_factory(IntakeService, intake_config)
    intake.start()
    proxy.cut()                                        # broker gone for intake
    ids = commit_households(sqlite_config, 5)          # commands commit meanwhile
    time.sleep(1.0)
    assert seen == [] and outbox_counts(sqlite_config) == (5, 5)
    proxy.restore()                                    # broker back
    wait_for(lambda: len(seen) >= 5, timeout=30, message="5 events after the broker returns")
    # marked sent once every copy is confirmed (the partner-form copy too), which may be just after delivery
    wait_for(lambda: outbox_counts(sqlite_config) == (5, 0), timeout=10, message="the 5 rows marked sent")
    assert len(set(seen)) == 5
    intake.stop()
    proxy.close()
    assert ids


STARTED: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def no_relay_left_behind():
    yield
    while STARTED:
        proc = STARTED.pop()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def start_relay(config_path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "cli.relay", "intake", "--config", str(config_path)],
                            cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=dict(os.environ, PYTHONWARNINGS="ignore"))
    STARTED.append(proc)
    return proc


def write_config(config: dict, path) -> str:
    plain = {k: dict(v) if isinstance(v, dict) else v for k, v in config.items()}
    path.write_text(yaml.safe_dump(plain, allow_unicode=True))
    return str(path)


def test_relay_killed_mid_stream_loses_nothing_and_consumer_has_one_effect_each(
        container_factory, sqlite_config, tmp_path):
    probe.FAILURES.update(remaining=0, calls=0)
    consumer = container_factory(probe.InboxProbe, sqlite_config)
    consumer.start()
    n = 1500
    ids = commit_households(sqlite_config, n)
    # the relay re-sends what it cannot prove was confirmed: make it send some
    # rows twice by killing it mid-stream, repeatedly
    config = dict(sqlite_config, OUTBOX_BATCH=200)
    path = write_config(config, tmp_path / "relay.yml")
    kills = 0
    for _ in range(3):
        relay = start_relay(path)
        wait_for(lambda: outbox_counts(sqlite_config)[1] < n - 200 * (kills + 1) or relay.poll() is not None,
                 timeout=60, message="relay makes progress")
        relay.send_signal(signal.SIGKILL)
        relay.wait()
        kills += 1
        if outbox_counts(sqlite_config)[1] == 0:
            break
    assert outbox_counts(sqlite_config)[1] > 0, "the relay was killed before it finished"
    relay = start_relay(path)
    try:
        wait_for(lambda: outbox_counts(sqlite_config)[1] == 0, timeout=120, message="outbox drained")
        wait_for(lambda: len(probe.effects(sqlite_config["DB_URIS"]["probe"])) >= n, timeout=120,
                 message=f"{n} effects")
        time.sleep(1.0)  # any straggling redelivery would show up now
    finally:
        relay.send_signal(signal.SIGTERM)
        relay.wait(timeout=10)
    effects = probe.effects(sqlite_config["DB_URIS"]["probe"])
    assert len(effects) == n
    assert sorted(h for _, h in effects) == sorted(ids)


@pytest.fixture
def private_broker():
    """A RabbitMQ node of the test's own (set up before, so torn down after, the test's containers)."""
    if not can_run_private_broker():
        pytest.skip("a RabbitMQ node of the test's own needs root and rabbitmq-server")
    with PrivateBroker() as broker:
        yield broker


def test_broker_restart_mid_stream_loses_nothing(private_broker, container_factory, sqlite_config, tmp_path):
    # the broker process itself restarts (what is on its disk is all it keeps), so on a node of the
    # test's own: restarting the shared broker would break every other test on the machine
    config = dict(sqlite_config, AMQP_URI=private_broker.amqp_uri)
    n = 2000
    ids = commit_households(config, n)                 # (no broker needed: the node boots meanwhile)
    private_broker.ready()
    probe.FAILURES.update(remaining=0, calls=0)
    consumer = container_factory(probe.InboxProbe, config)
    consumer.start()
    relay = start_relay(write_config(dict(config, OUTBOX_BATCH=100), tmp_path / "relay.yml"))
    try:
        wait_for(lambda: outbox_counts(config)[1] < n - 200, timeout=60, message="relay under way")
        private_broker.restart()
        wait_for(lambda: outbox_counts(config)[1] == 0, timeout=120, message="outbox drained")
        wait_for(lambda: len(probe.effects(config["DB_URIS"]["probe"])) >= n, timeout=120,
                 message=f"{n} effects after the restart")
        time.sleep(1.0)
    finally:
        relay.send_signal(signal.SIGTERM)
        relay.wait(timeout=10)
        with eventlet.Timeout(30, False):             # while its broker is there; a consumer whose
            consumer.stop()                            # reconnection failed is killed, not waited for
        consumer.kill()
    effects = probe.effects(config["DB_URIS"]["probe"])
    assert len(effects) == n and sorted(h for _, h in effects) == sorted(ids)


def test_failing_handler_is_retried_then_parked_and_replayed_once(container_factory, sqlite_config):
    consumer = container_factory(probe.InboxProbe, sqlite_config)
    consumer.start()
    intake = container_factory(IntakeService, sqlite_config)
    intake.start()
    uri = sqlite_config["DB_URIS"]["probe"]

    # fails twice, succeeds on the third attempt (INBOX_MAX_ATTEMPTS is 3 in tests)
    probe.FAILURES.update(remaining=2, calls=0)
    [first] = commit_households(sqlite_config, 1, seed=41)
    wait_for(lambda: probe.effects(uri), timeout=20, message="retried event processed")
    assert probe.FAILURES["calls"] == 3 and probe.effects(uri) == [(probe.effects(uri)[0][0], first)]

    # fails every time: parked on the dead-letter queue with the reason
    probe.FAILURES.update(remaining=100, calls=0)
    [second] = commit_households(sqlite_config, 1, seed=42)
    parked = wait_for(lambda: list_parked(sqlite_config["AMQP_URI"]), timeout=20, message="event parked")
    assert probe.FAILURES["calls"] == 3
    assert len(parked) == 1 and "told to fail" in parked[0].reason
    assert parked[0].body["subject"]["household_id"] == second
    assert parked[0].handler == "probe.on_household"
    assert [h for _, h in probe.effects(uri)] == [first]

    # the operator fixes the cause and replays (the system administrator, a recorded command): processed once
    probe.FAILURES.update(remaining=0, calls=0)
    with rpc_as(sqlite_config, Role.SYSTEM_ADMIN, "420115", user="admin") as rpc:
        assert rpc.probe.replay_dead_letters() == {"replayed": 1}
    wait_for(lambda: len(probe.effects(uri)) == 2, timeout=20, message="replayed event processed")
    assert list_parked(sqlite_config["AMQP_URI"]) == []
    # the same event delivered again (a second replay, a broker redelivery) is a no-op (the inbox)
    from shared.testing import publish_event
    publish_event(sqlite_config, parked[0].body)
    [third] = commit_households(sqlite_config, 1, seed=43)     # after the duplicate, on the same queue
    wait_for(lambda: third in [h for _, h in probe.effects(uri)], timeout=20, message="the next event processed")
    wait_for(lambda: probe.FAILURES["calls"] >= 3, timeout=10, message="the duplicate delivered (replay, duplicate, next)")
    assert [h for _, h in probe.effects(uri)].count(second) == 1


def test_malformed_event_is_parked_at_once(container_factory, sqlite_config):
    from shared.testing import publish_event
    consumer = container_factory(probe.InboxProbe, sqlite_config)
    consumer.start()
    probe.FAILURES.update(remaining=0, calls=0)
    # published by intake itself (its broker user, when broker users are on): only the envelope is wrong
    publish_event(sqlite_config, {"source": "intake", "type": "household_registered", "hello": "world"})
    parked = wait_for(lambda: list_parked(sqlite_config["AMQP_URI"]), timeout=20, message="malformed parked")
    assert probe.FAILURES["calls"] == 1                 # not retried
    assert "malformed" in parked[0].reason


def test_audit_queue_holds_events_published_before_the_audit_service_ever_ran(container_factory, sqlite_config):
    from kombu import Connection
    from shared.bus import AUDIT_QUEUE
    intake = container_factory(IntakeService, sqlite_config)
    intake.start()                                     # declares dibao.audit at start-up
    commit_households(sqlite_config, 3, seed=51)

    def queued():
        with Connection(sqlite_config["AMQP_URI"]) as conn:
            return conn.default_channel.queue_declare(AUDIT_QUEUE, passive=True).message_count

    wait_for(lambda: queued() == 3, timeout=20, message="3 events waiting for the audit service")


def test_redelivered_event_has_one_effect(container_factory, sqlite_config):
    probe.FAILURES.update(remaining=0, calls=0)
    consumer = container_factory(probe.InboxProbe, sqlite_config)
    consumer.start()
    intake = container_factory(IntakeService, sqlite_config)
    intake.start()
    [hid] = commit_households(sqlite_config, 1, seed=52)
    uri = sqlite_config["DB_URIS"]["probe"]
    wait_for(lambda: probe.effects(uri), timeout=20, message="first delivery")
    # the relay cannot tell a lost confirm from a lost message: it publishes again
    engine = sa.create_engine(sqlite_config["DB_URIS"]["intake"])
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE outbox SET sent_at = NULL"))
    engine.dispose()
    wait_for(lambda: outbox_counts(sqlite_config)[1] == 0, timeout=20, message="published again")
    wait_for(lambda: probe.FAILURES["calls"] >= 2, timeout=20, message="second delivery handled")
    assert probe.effects(uri) == [(probe.effects(uri)[0][0], hid)]
