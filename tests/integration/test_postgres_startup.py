"""``dibao up`` on PostgreSQL, the way district IT runs it (issue 16).

The real command in a subprocess, configured only by the environment
variables the README names, on fresh PostgreSQL databases and a fresh vhost:

- one process running every service comes up on empty databases (its five
  containers migrate concurrently), serves commands end to end, stops on
  Ctrl-C, and comes up again on the now-migrated databases;
- two processes racing their first migration on the same empty databases
  both come up, and each schema is migrated once;
- in one process, five green threads migrating at once do not trip over
  Alembic's process-global context.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import eventlet
import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory
from typer.testing import CliRunner

from cli import app
from shared.config import REPO_ROOT, SERVICES
from shared.db import normalize_url
from shared.migrations import advisory_lock_key, alembic_config
from shared import testing
from shared.testing import wait_for
from tests.helpers import household, investigation, officer, register_staff, yesterday
from tests.review_helpers import review_state

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DIBAO = Path(sys.executable).with_name("dibao")   # the console script `make venv` installs
START_SECONDS = 120     # two cores shared by many: imports and five migrations can be slow
cli = CliRunner()


def migrations_of(service: str) -> Path:
    return REPO_ROOT / "services" / service / "migrations"


def scripts(service: str) -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config(migrations_of(service), service))


def head(service: str) -> str:
    return scripts(service).get_current_head()


class Deployment:
    """What district IT sets up: five PostgreSQL databases, a vhost, a data
    directory, and the ``DIBAO_*`` variables pointing at them."""

    def __init__(self, db_uris: dict, amqp_uri: str, data_dir: Path):
        self.db_uris = db_uris
        self.variables = {"DIBAO_AMQP_URI": amqp_uri, "DIBAO_DATA_DIR": str(data_dir),
                          "DIBAO_OUTBOX_POLL_SECONDS": "0.2", "DIBAO_LOG_LEVEL": "INFO"}
        self.variables.update({f"DIBAO_{svc.upper()}_DB_URI": uri for svc, uri in db_uris.items()})
        # not this test's concern: the services' broker users (test_bus_boundary); and the identity
        # it runs signs with the harness's key, so the tokens the test's people carry verify there
        self.variables.update({"DIBAO_BROKER_SERVICE_USERS": "false",
                               "DIBAO_IDENTITY_SIGNING_KEY": testing.TEST_IDENTITY_SEED})
        self.config = testing.test_config(amqp_uri, db_uris, data_dir)
        self.env = {k: v for k, v in os.environ.items() if k != "DIBAO_CONFIG"}   # the repository's config.yml
        self.env.update(self.variables, PYTHONWARNINGS="ignore")

    def dibao(self, *args: str):
        """A ``dibao`` command in this process, with the deployment's variables."""
        return cli.invoke(app, list(args), env=self.variables)

    def up(self, log: Path) -> "Up":
        """``dibao up``, its gateway on a free port of its own (``web_port``)."""
        from tests.browser_helpers import free_port

        port = free_port()
        up = Up(dict(self.env, DIBAO_WEB_PORT=str(port)), log)
        up.web_port = port
        return up

    def alembic_versions(self, service: str) -> list[str]:
        engine = sa.create_engine(normalize_url(self.db_uris[service]), poolclass=sa.pool.NullPool)
        try:
            with engine.connect() as conn:
                return list(conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars())
        finally:
            engine.dispose()

    def assert_migrated_once(self) -> None:
        for service in SERVICES:
            assert self.alembic_versions(service) == [head(service)], service


class Up:
    """A running ``dibao up``; its output goes to ``log``."""

    def __init__(self, env: dict, log: Path):
        if not DIBAO.exists():
            pytest.fail(f"no dibao console script at {DIBAO} (make venv)")
        self.log = log
        with open(log, "wb") as out, warnings.catch_warnings():
            # Ctrl-C must reach it even when the test runner ignores SIGINT (a background
            # job); the fork this needs is followed by exec at once, which eventlet's
            # warning about fork does not know
            warnings.filterwarnings("ignore", message="Using fork", category=DeprecationWarning)
            self.process = subprocess.Popen([str(DIBAO), "up"], cwd=REPO_ROOT, env=env, stdout=out,
                                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def errors(self) -> list[str]:
        """Tracebacks and ERROR lines, less the one about a missing CJK font
        (a Debian package `make sysdeps` installs; not this test's concern)."""
        return [line for line in self.output().splitlines()
                if ("Traceback" in line or " ERROR " in line or "CRITICAL" in line or "Error:" in line)
                and "NOTICE_FONT" not in line]

    def wait_running(self, timeout: float = START_SECONDS) -> None:
        deadline = time.monotonic() + timeout
        while "running " not in self.output():
            assert self.process.poll() is None, f"dibao up exited {self.process.returncode}:\n{self.output()}"
            assert time.monotonic() < deadline, f"dibao up not running after {timeout} s:\n{self.output()}"
            eventlet.sleep(0.2)

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 60) -> int:
        self.process.send_signal(signum)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            pytest.fail(f"dibao up did not stop within {timeout} s of signal {signum}:\n{self.output()}")

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def deployment(pg_databases, vhosts, tmp_path):
    from shared.testing import amqp_uri_for

    return Deployment({svc: pg_databases.reserve(svc) for svc in SERVICES}, amqp_uri_for(vhosts()),
                      tmp_path / "data")


@pytest.fixture
def processes():
    started: list[Up] = []
    yield started
    for up in started:
        up.kill()


def every_service_answers(deployment: Deployment) -> dict[str, str]:
    """``dibao health <service>`` for each service, once each answers."""
    answers = {}
    for service in SERVICES:
        def healthy():
            result = deployment.dibao("health", service, "--timeout", "3")
            return result.output if result.exit_code == 0 else None

        answers[service] = wait_for(healthy, timeout=30, interval=0.2, message=f"{service} answers ping")
        assert f"{service}: ok" in answers[service]
    return answers


def test_dibao_up_on_fresh_postgresql_serves_stops_and_starts_again(deployment, processes, tmp_path):
    created = deployment.dibao("db", "create")
    assert created.exit_code == 0, created.output
    assert created.output.count("created") == len(SERVICES)
    again = deployment.dibao("db", "create")
    assert again.exit_code == 0 and again.output.count(" exists") == len(SERVICES), again.output

    first = deployment.up(tmp_path / "up-1.log")
    processes.append(first)
    first.wait_running()
    every_service_answers(deployment)
    deployment.assert_migrated_once()
    console = gateway_answers(deployment, first)
    assert "<form" in console and "csrf_token" in console      # the console's login page

    config = deployment.config
    register_staff(config)
    data = household(seed=16)
    with officer(config) as rpc:
        registered = rpc.intake.register_household(data)
        application = rpc.intake.submit_application(
            {"household_id": registered["household_id"], "accepted_on": yesterday(), "reason": "因病致贫"})
        rpc.intake.record_investigation(investigation(application["id"], registered["member_ids"]))
    # intake's outbox → review and audit, over the broker, all on PostgreSQL
    assert review_state(config, application["id"], timeout=30)["application_id"] == application["id"]
    wait_for(lambda: _recorded(deployment) >= 3, timeout=30, message="audit records intake's events")

    assert first.stop(signal.SIGINT) == 0, first.output()       # Ctrl-C, as after `make run`
    assert "stopped." in first.output() and first.errors() == [], first.output()

    second = deployment.up(tmp_path / "up-2.log")
    processes.append(second)
    second.wait_running()
    every_service_answers(deployment)
    assert "Running upgrade" not in second.output()             # migrated already: nothing to do
    with officer(config) as rpc:
        kept = rpc.intake.get_household(registered["household_id"])
    assert kept["members"][0]["resident_id"] == data["members"][0]["resident_id"]
    assert second.stop(signal.SIGTERM) == 0, second.output()
    assert "stopped." in second.output() and second.errors() == [], second.output()
    deployment.assert_migrated_once()


def gateway_answers(deployment: Deployment, up: "Up") -> str:
    """The gateway ``dibao up`` runs: /healthz answers (and ``dibao health gateway``
    says so), and the console's login page."""
    import requests

    base = f"http://127.0.0.1:{up.web_port}"

    def healthy():
        try:
            return requests.get(base + "/healthz", timeout=3).json()
        except (requests.RequestException, ValueError):
            return None

    assert wait_for(healthy, timeout=30, interval=0.2, message="the gateway answers")["status"] == "ok"
    assert f"127.0.0.1:{up.web_port}" in up.output()        # it says where to point a browser
    health = cli.invoke(app, ["health", "gateway"], env=dict(deployment.variables, DIBAO_WEB_PORT=str(up.web_port)))
    assert health.exit_code == 0 and "gateway: ok" in health.output, health.output
    return requests.get(base + "/login", timeout=10).text


def _recorded(deployment: Deployment) -> int:
    result = deployment.dibao("health", "audit", "--timeout", "3")
    assert result.exit_code == 0, result.output
    import re

    return int(re.search(r"recorded (\d+)", result.output).group(1))   # `audit: ok (recorded N, checkpoints …)`


def test_two_processes_racing_their_first_migration_both_come_up_migrated_once(
        deployment, processes, pg_databases, tmp_path):
    for service, uri in deployment.db_uris.items():
        assert deployment.dibao("db", "create", service).exit_code == 0
    # Hold every database's migration lock until both processes wait for one:
    # then they race through the migrations from the same moment.
    holders = {svc: sa.create_engine(normalize_url(uri), poolclass=sa.pool.NullPool, isolation_level="AUTOCOMMIT").connect()
               for svc, uri in deployment.db_uris.items()}
    try:
        for service, conn in holders.items():
            conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": advisory_lock_key(service)})
        replicas = [deployment.up(tmp_path / f"replica-{n}.log") for n in (1, 2)]
        processes.extend(replicas)

        def both_waiting():
            for replica in replicas:
                assert replica.process.poll() is None, replica.output()
            return _waiting_for_migration_locks(pg_databases, deployment) == 2

        wait_for(both_waiting, timeout=START_SECONDS, interval=0.2, message="both processes wait to migrate")
    finally:
        for conn in holders.values():
            conn.close()   # releases the locks
    for replica in replicas:
        replica.wait_running()
    every_service_answers(deployment)
    deployment.assert_migrated_once()
    upgrades = sum(r.output().count("Running upgrade") for r in replicas)
    assert upgrades == sum(len(list(scripts(s).walk_revisions())) for s in SERVICES)   # each revision applied by one of them
    for replica in replicas:
        assert replica.stop(signal.SIGTERM) == 0, replica.output()
        assert replica.errors() == [], replica.output()


def _waiting_for_migration_locks(pg_databases, deployment: Deployment) -> int:
    names = [sa.make_url(uri).database for uri in deployment.db_uris.values()]
    with pg_databases.engine.connect() as conn:
        return conn.execute(sa.text(
            "SELECT count(DISTINCT l.pid) FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
            "WHERE l.locktype = 'advisory' AND NOT l.granted AND d.datname = ANY(:names)"),
            {"names": names}).scalar()


def test_five_green_threads_migrating_at_once_each_reach_head(pg_databases):
    """What ``dibao up`` does at start-up, without the subprocess: the five
    services' migrations in concurrent green threads of one process."""
    import importlib

    from shared.db import ServiceDatabase

    uris = {svc: pg_databases.create(svc) for svc in SERVICES}
    databases = [ServiceDatabase(svc, uri, importlib.import_module(f"services.{svc}.models").Base.metadata,
                                 migrations_of(svc)) for svc, uri in uris.items()]
    try:
        threads = [eventlet.spawn(db.migrate) for db in databases]
        for thread in threads:
            thread.wait()
        for db in databases:
            with db.engine.connect() as conn:
                assert list(conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars()) == \
                    [head(db.service)]
    finally:
        for db in databases:
            db.dispose()
