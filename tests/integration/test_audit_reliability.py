"""Nothing lost, nothing recorded twice: 10,000 events published while
the broker goes away and comes back and the audit service is SIGKILLed
mid-batch → exactly 10,000 records, no duplicate, and the chain verifies.

The outage is a TCP proxy the test cuts (every connection dropped, new ones
refused, as the clients see a broker stop), not a restart of the broker
everyone on the machine shares; that messages in a durable queue outlive
the broker process itself is test_reliability's restart on a node of its own,
and the audit queue is checked durable here."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import eventlet
import pytest
import sqlalchemy as sa
from amqp import Message
from kombu import Connection

from contracts.audit_chain import verify
from shared.bus import AUDIT_QUEUE, declare_producer_topology
from shared.config import REPO_ROOT
from shared.db import make_engine
from shared.testing import TcpProxy, VhostManager, wait_for
from tests.audit_helpers import count
from tests.integration.test_audit_chain import command
from tests.integration.test_reliability import write_config

pytestmark = pytest.mark.integration

N = 10_000


def start_audit(config_path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "nameko", "run", "--config", str(config_path),
                             "services.audit.service"], cwd=REPO_ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=dict(os.environ, PYTHONWARNINGS="ignore"))


def container_log(path) -> dict:
    """``nameko run``'s logging config: nameko's container log (DEBUG: it says when a start is over) into ``path``."""
    return {"version": 1, "disable_existing_loggers": False,
            "handlers": {"file": {"class": "logging.FileHandler", "filename": str(path), "level": "DEBUG"}},
            "loggers": {"nameko.containers": {"level": "DEBUG", "handlers": ["file"], "propagate": False}}}


def last_start_done(path) -> bool:
    """Whether the audit container started last has finished starting, by the log of :func:`container_log`
    ("starting <ServiceContainer [audit] at 0x…>", then "started <…> in 0.5s")."""
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return False
    starts = [line.split(" ", 1)[1] for line in lines if line.startswith("starting <ServiceContainer [audit]")]
    return bool(starts) and any(line.startswith(f"started {starts[-1]} in ") for line in lines)


def publish_all(amqp_uri: str, envelopes: list[dict], chunk: int = 500) -> int:
    """Publish with confirms, a chunk at a time; a chunk the broker did not
    confirm (it went away) is published again — duplicates are the ingest's
    to drop. Returns how many publish attempts failed."""
    import json

    failures, i = 0, 0
    conn = channel = None
    while i < len(envelopes):
        try:
            if channel is None:
                conn = Connection(amqp_uri, connect_timeout=2)
                conn.connect()
                channel = conn.channel()
                declare_producer_topology(channel, "intake")
                channel.confirm_select()
            for env in envelopes[i:i + chunk]:
                channel.basic_publish_confirm(
                    Message(json.dumps(env), content_type="application/json", delivery_mode=2,
                            message_id=env["event_id"]), exchange="intake.events", routing_key=env["type"])
            i += chunk
        except Exception:  # noqa: BLE001 - the broker is restarting: reconnect and resend the chunk
            failures += 1
            channel = None
            try:
                conn.release()
            except Exception:  # noqa: BLE001
                pass
            eventlet.sleep(0.3)
    conn.release()
    return failures


@pytest.fixture
def broker_proxy():
    proxy = TcpProxy()
    yield proxy
    proxy.close()


def test_ten_thousand_events_through_a_broker_outage_and_a_killed_audit_service(sqlite_config, tmp_path,
                                                                               broker_proxy):
    # the audit service and the publisher reach the broker through the proxy;
    # checkpoints off: the record then holds exactly the N events (no anchors, no checkpoint events)
    config = dict(sqlite_config, AMQP_URI=broker_proxy.uri(sqlite_config["AMQP_URI"]), AUDIT_BATCH=500,
                  AUDIT_PREFETCH=1000, AUDIT_BATCH_SECONDS=0.5,
                  AUDIT_CHECKPOINT_EVERY_RECORDS=0, AUDIT_CHECKPOINT_EVERY_SECONDS=0,
                  LOGGING=container_log(tmp_path / "containers.log"))
    path = write_config(config, tmp_path / "audit.yml")
    envelopes = [command(n) for n in range(N)]
    audit = start_audit(path)
    try:
        publisher = eventlet.spawn(publish_all, config["AMQP_URI"], envelopes[:4000])
        wait_for(lambda: count(config) >= 700, timeout=60, message="the audit service recording")
        audit.send_signal(signal.SIGKILL)                  # mid-batch: a prefetched batch is unacked
        audit.wait()
        killed_at = count(config)
        publisher.wait()
        audit = start_audit(path)
        publisher = eventlet.spawn(publish_all, config["AMQP_URI"], envelopes[4000:])
        wait_for(lambda: count(config) > killed_at + 500, timeout=60, message="recording again")
        # the outage comes once the restarted service has finished starting (its start-up declares its
        # topology, and a broker gone then fails the start, loudly, by design)
        wait_for(lambda: last_start_done(tmp_path / "containers.log"), timeout=60,
                 message="the restarted audit service started")
        broker_proxy.cut()                                 # the broker goes away...
        try:
            # ...until a client trying to reconnect has been refused (and half a second at least)
            refused, down_at = broker_proxy.refused, time.monotonic()
            wait_for(lambda: broker_proxy.refused > refused and time.monotonic() - down_at >= 0.5, timeout=30,
                     message="a reconnection refused during the outage")
        finally:
            broker_proxy.restore()                         # ...and comes back
        republished = publisher.wait()
        wait_for(lambda: count(config) >= N, timeout=120, interval=0.5, message=f"{N} records")
        time.sleep(1.5)                                    # a straggling redelivery would show now
    finally:
        audit.send_signal(signal.SIGTERM)
        try:
            audit.wait(timeout=15)
        except subprocess.TimeoutExpired:
            audit.kill()
            audit.wait()
    engine = make_engine(config["DB_URIS"]["audit"])
    with engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT event_id FROM audit_records")).scalars().all()
    assert len(stored) == N and set(stored) == {e["event_id"] for e in envelopes}
    result, _ = verify(engine)
    engine.dispose()
    assert result.ok and result.records == N and result.head_seq == N
    assert 0 < killed_at < N
    # what makes the queued events outlive a broker restart as well (test_reliability restarts one)
    assert VhostManager().queue(sqlite_config["AMQP_URI"], AUDIT_QUEUE)["durable"] is True
    print(f"killed at {killed_at} records; {republished} chunk(s) re-published around the broker outage")
