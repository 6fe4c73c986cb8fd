"""Batch re-verification (低收入人口动态监测, issue 15): N active cases across 7 bureaus.

Target (issue): a batch re-verification of 100,000 active cases across 7
bureaus — 700,000 requests — runs at >= 2,000 requests/s end to end on
SQLite and on PostgreSQL: every request sent, answered by the bureau's
reference responder, and the round's report updated. Reported also as a
ratio to the relay's raw publish rate (kombu, no confirms: the ceiling of
the bus on this machine) measured in the same run.

``BENCH_VERIFICATION_CASES`` sets N (default 2,000 = 14,000 requests per
backend; the issue's full size is 100,000); ``BENCH_VERIFICATION_BACKENDS``
(default ``sqlite,postgres``) the databases.

What runs, over the real RabbitMQ with broker users (each service and each
bureau as its own user, as in tests/integration/test_verification.py):
  - the verification service (``VerificationService``) on its database;
  - the 7 reference responders (``cli.responder.responder``, what
    ``dibao partner serve`` runs), each a separate nameko container on its
    partner URI (``rabbit_admin.add_partner(..., verification=True)``),
    answering "no record" from an empty CSV;
  - a stand-in for intake's one RPC the batch calls,
    ``intake.verification_subjects`` (households of 3 members with a valid
    authorization, generated in memory): the figure is verification's, the
    bus's and the responders', not intake's reading of its database.
The N active cases (``monitored_case``, due today) are loaded with one
multi-row INSERT per 5,000 rows before the clock starts. The clock runs
from ``verification.run_monitoring`` until every request is closed, every
round's report complete and the outbox empty (its last ``report_updated``
published).
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from kombu import Connection

from bench.bench_outbox_relay import Broker, make_messages, run_raw
from bench.support import Stopwatch, record
from cli.responder import responder
from shared import rabbit_admin
from shared.broker import service_config
from shared.db import make_engine
from shared.identity import Identity, Role
from shared.rpc import rpc
from shared.testing import remove_broker_users, rpc_as, with_broker_users
from shared.testing import test_config as deployment_config

pytestmark = pytest.mark.integration

N = int(os.environ.get("BENCH_VERIFICATION_CASES", "2000"))
FULL_SIZE = 100_000                      # the issue's: 700,000 requests
BACKENDS = [b.strip() for b in os.environ.get("BENCH_VERIFICATION_BACKENDS", "sqlite,postgres").split(",") if b]
BUREAUS = ("public_security", "natural_resources", "human_resources", "tax", "market_regulation", "housing_fund",
           "bank")
TARGET = 2_000                           # requests/s, end to end
COMMUNITY = "420115001001"
DISTRICT = "420115"
MEMBERS = 3


def subject(household_id: str) -> dict:
    """A household as intake's verification_subjects gives it (3 adults, all signed)."""
    members = [{"member_id": f"{household_id[:30]}-m{i}", "name": f"成员{i}",
                "resident_id": f"420115198{i}0101{int(household_id[-4:], 16) % 1000:03d}{i}",
                "birth_date": f"198{i}-01-01", "deceased_on": None} for i in range(MEMBERS)]
    return {"household_id": household_id, "community_code": COMMUNITY, "township_code": COMMUNITY[:9],
            "area_type": "urban", "members": members,
            "incomes": [{"member_id": members[0]["member_id"], "source": "wages", "monthly_amount": "300.00"}],
            "assets": [], "authorization": {"document_id": str(uuid.uuid5(uuid.NAMESPACE_URL, household_id)),
                                            "signed_on": date.today().isoformat(),
                                            "signed_by": [m["member_id"] for m in members]}}


class IntakeStandIn:
    """intake's verification_subjects, from memory (see the module's docstring)."""

    name = "intake"
    caller = Identity()

    @rpc
    def verification_subjects(self, household_ids):
        return [subject(h) for h in household_ids]


def load_cases(uri: str, n: int) -> None:
    """N active cases due today: one multi-row INSERT per 5,000."""
    engine = make_engine(uri)
    due = date.today() - timedelta(days=1)
    rows = [{"case_id": str(uuid.uuid4()), "household_id": str(uuid.uuid4()), "community_code": COMMUNITY,
             "policy": "national2021", "status": "active", "next_verification_on": due} for _ in range(n)]
    table = sa.table("monitored_case", *(sa.column(c) for c in rows[0]))
    try:
        with engine.begin() as conn:
            for i in range(0, n, 5000):
                conn.execute(table.insert(), rows[i:i + 5000])
    finally:
        engine.dispose()


#: the responders: ``process`` (default: `dibao partner serve`, one process each) or ``container``
#: (cli.responder's class in this process, as the tests run it)
RESPONDERS = os.environ.get("BENCH_VERIFICATION_RESPONDERS", "process")
DIBAO = Path(sys.executable).parent / "dibao"
PROFILE = os.environ.get("BENCH_VERIFICATION_PROFILE")   # a folder: pyinstrument's text per backend


def _profiler():
    """pyinstrument over the timed part (every container runs in this process), when asked; and
    cProfile over each batch of bureau messages taken (``answers.take_batch``: no green switch inside)."""
    if not PROFILE:
        return None
    import cProfile
    import functools

    from services.verification import answers

    if not hasattr(answers.take_batch, "profile"):
        original, profile = answers.take_batch, cProfile.Profile()

        @functools.wraps(original)
        def take(*args, **kwargs):
            profile.enable()
            try:
                return original(*args, **kwargs)
            finally:
                profile.disable()
        take.profile = profile
        answers.take_batch = take
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.001, async_mode="disabled")
    profiler.start()
    return profiler


class Timed:
    """Seconds spent inside a function of ours, and calls (every container runs in this process;
    neither function yields to another green thread inside, but the relay waits for confirms)."""

    def __init__(self, owner, name: str):
        import functools

        self.owner, self.name, self.original = owner, name, getattr(owner, name)
        self.seconds, self.calls = 0.0, 0

        @functools.wraps(self.original)
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return self.original(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - start
                self.calls += 1
        setattr(owner, name, timed)

    def undo(self) -> dict:
        setattr(self.owner, self.name, self.original)
        return {"seconds": round(self.seconds, 2), "calls": self.calls}


def wait_consuming(partner_uri: str, timeout: float = 60) -> None:
    """Until the responder consumes its bureau's request queue."""
    deadline = time.monotonic() + timeout
    with Connection(partner_uri) as conn:
        channel = conn.channel()
        while channel.queue_declare("verification.requests", passive=True).consumer_count < 1:
            if time.monotonic() > deadline:
                raise AssertionError(f"no responder on {partner_uri.rsplit('/', 1)[-1]}")
            time.sleep(0.2)


def progress(uri: str) -> dict:
    engine = make_engine(uri)
    try:
        with engine.connect() as conn:
            one = lambda sql: conn.execute(sa.text(sql)).scalar()  # noqa: E731
            return {"requests": one("SELECT count(*) FROM bureau_request"),
                    "open": one("SELECT count(*) FROM bureau_request WHERE status = 'open'"),
                    "rounds_open": one("SELECT count(*) FROM verification_round WHERE status <> 'complete'"),
                    "outbox": one("SELECT count(*) FROM outbox WHERE sent_at IS NULL")}
    finally:
        engine.dispose()


def run_backend(backend: str, amqp_uri: str, db_uri: str, tmp_path: Path, container_factory) -> dict:
    config = with_broker_users(deployment_config(amqp_uri, {"verification": db_uri, "intake": "sqlite://"},
                                           tmp_path / f"data-{backend}", VERIFICATION_BUREAUS=",".join(BUREAUS),
                                           VERIFICATION_BATCH=500, RPC_TIMEOUT=3600, POLICY="national2021"))
    processes: list[subprocess.Popen] = []
    try:
        from services.verification.service import VerificationService

        container_factory(VerificationService, service_config(config, "verification")).start()
        container_factory(IntakeStandIn, service_config(config, "intake")).start()
        empty = tmp_path / "empty.csv"
        empty.write_text("resident_id,kind,description,amount,as_of\n", encoding="utf-8")
        for bureau in BUREAUS:
            uri = rabbit_admin.add_partner(config, bureau, {}, (), verification=True)
            if RESPONDERS == "process":      # what a bureau runs: `dibao partner serve`, a process of its own
                processes.append(subprocess.Popen(
                    [str(DIBAO), "partner", "serve", "--bureau", bureau, "--data", str(empty), "--uri", uri],
                    env=dict(os.environ, DIBAO_LOG_LEVEL="WARNING"), stdout=subprocess.DEVNULL))
                wait_consuming(uri)
            else:
                container_factory(responder(bureau, empty, uri), {"AMQP_URI": uri, "serializer": "json"}).start()
        with Stopwatch() as loading:
            load_cases(db_uri, N)
        expected = N * len(BUREAUS)
        profiler = _profiler()
        from services.verification import answers
        from shared.outbox import OutboxRelay

        timers = {"answers_take_batch": Timed(answers, "take_batch"), "outbox_relay_once": Timed(OutboxRelay,
                                                                                               "relay_once")}
        with Stopwatch() as total:
            with rpc_as(config, Role.DISTRICT_OFFICER, DISTRICT, user="zhao.district", name="赵专干",
                        timeout=3600) as proxy:
                with Stopwatch() as sending:
                    done = proxy.verification.run_monitoring({})
            assert done["requests"] == expected, done
            while True:
                state = progress(db_uri)
                if state["open"] == 0 and state["rounds_open"] == 0 and state["outbox"] == 0:
                    break
                time.sleep(0.25)
        if profiler is not None:
            profiler.stop()
            out = Path(PROFILE) / f"verification-{backend}.txt"
            out.write_text(profiler.output_text(unicode=True, show_all=False), encoding="utf-8")
            import io
            import pstats

            from services.verification import answers

            text = io.StringIO()
            pstats.Stats(answers.take_batch.profile, stream=text).sort_stats("cumulative").print_stats(45)
            (Path(PROFILE) / f"take-{backend}.txt").write_text(text.getvalue(), encoding="utf-8")
            print(f"profile: {out}")
        inside = {name: t.undo() for name, t in timers.items()}
        assert state["requests"] == expected
        return {"inside": inside, "cases": N, "requests": expected, "load_cases_s": round(loading.seconds, 2),
                "run_monitoring_s": round(sending.seconds, 2), "end_to_end_s": round(total.seconds, 2),
                "requests_per_s": round(expected / total.seconds)}
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)
        try:
            remove_broker_users(config)
        except Exception as exc:  # noqa: BLE001 - the management API's flakes must not lose the figures
            print(f"cleaning up the broker users failed: {exc}")


def test_batch_reverification_throughput(amqp_uri, pg_databases, tmp_path, container_factory):
    runs = {}
    raw = []
    broker = Broker(amqp_uri)
    try:
        messages = make_messages(20_000)
        raw.append(run_raw(amqp_uri, messages, broker))
        for backend in BACKENDS:
            uri = f"sqlite:///{tmp_path}/verification-{backend}.db" if backend == "sqlite" \
                else pg_databases.create("verification")
            runs[backend] = run_backend(backend, amqp_uri, uri, tmp_path, container_factory)
            raw.append(run_raw(amqp_uri, messages, broker))
        broker.purge()
    finally:
        broker.close()
    raw_rate = sum(r["events"] for r in raw) / sum(r["seconds"] for r in raw)
    figures = {"cases": N, "full_size_cases": FULL_SIZE, "bureaus": len(BUREAUS),
               "raw_kombu_no_confirm_msgs_per_s": round(raw_rate),
               **{f"{b}_requests_per_s": r["requests_per_s"] for b, r in runs.items()},
               **{f"ratio_{b}_vs_raw": round(r["requests_per_s"] / raw_rate, 3) for b, r in runs.items()},
               "runs": runs, "raw": raw}
    met = all(r["requests_per_s"] >= TARGET for r in runs.values())
    record("verification", figures, f"batch re-verification >= {TARGET} requests/s end to end, each backend", met)
    assert met, {b: r["requests_per_s"] for b, r in runs.items()}
