"""The console's pages with 100,000 cases loaded, and the public board under
50 concurrent readers (issue 14, "Performance").

**Pages** (target: p95 of the worklist page and of the household page ≤ 3 ×
the p95 of a bare nameko ``@http`` echo in the same run). Set-up, not
timed: fresh, migrated intake and review databases (SQLite, the harness's)
loaded set-based with Core INSERTs through the services' own models and
sealing (``shared.sealing.seal_value``: the columns' own encryption and
blind index) — 100,000 households (1–3 members each) with an investigated
application each in intake, and in review 100,000 approved files with
their 100,000 active cases, over the district's 13 communities; then, in
every community, 25 open files at the community evaluation and 5 awaiting
their home investigation (the worklist's two RPCs: review's worklist and
intake's submitted applications). Then identity, intake, review and the
gateway run (and the echo service on its own port); a community officer
logs in (password + TOTP) and registers 20 households through the real
RPC (members, incomes, assets): the household pages read. Timed over
HTTP with the session cookie, as a browser: ``GET /`` (待办: the 30 open
files of the community) and ``GET /households/<id>`` (the file: the read
recorded as ``file_viewed``, a write), interleaved with ``GET /echo`` (and, for reference, ``GET /rpc-echo``: an
@http endpoint that calls a bare @rpc echo once over the broker — the
floor of any page that asks a service) in rounds whose order rotates, one
client, keep-alive, no proxy look-up.

**Board** (reported, no target): the gateway and notify with 80 notices
posted on one community's board (Core INSERTs into notify's table); 50
concurrent readers in a separate process (``bench/readers.py``: threads,
urllib) on ``GET /board/<community>`` for 20 s, after the same for the bare
echo: p50 / p95 / p99, requests per second, statuses.

Run: ``flock /work/wt/bench.lock .venv/bin/python -m pytest bench/bench_console_pages.py -q -s
-o 'python_files=bench_*.py'``. ``DIBAO_BENCH_PAGES_N`` changes the 100,000
(e.g. 10000 for a quick look); ``DIBAO_BENCH_PROFILE=1`` runs the timed part
under pyinstrument (if installed; one tree per greenlet), ``=cprofile``
under cProfile (self times across the whole process), and prints where the
time goes; the figures are then not comparable.
"""
from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
import uuid
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa
from nameko.rpc import RpcProxy, rpc
from nameko.web.handlers import http

from bench.support import Stopwatch, percentile, record, summary_ms
from services.intake import handlers as intake_handlers
from services.intake.models import Application, Base as IntakeBase, Household, Member
from services.intake.service import MIGRATIONS as INTAKE_MIGRATIONS
from services.notify.models import Base as NotifyBase, Notice
from services.notify.service import MIGRATIONS as NOTIFY_MIGRATIONS, NotifyService
from services.review.models import Base as ReviewBase, Case, ReviewFile
from services.review.service import MIGRATIONS as REVIEW_MIGRATIONS
from shared.db import ServiceDatabase, configure_cipher
from shared.divisions import DivisionRegistry
from shared.masking import mask_resident_id
from shared.sealing import seal_value
from tests.browser_helpers import free_port, start_console
from tests.helpers import COMMUNITY, DISTRICT, household
from tests.identity_helpers import add_person, bootstrap_admin, rpc_with, with_secrets

pytestmark = pytest.mark.integration

N = int(os.environ.get("DIBAO_BENCH_PAGES_N", "100000"))
OPEN_IN_REVIEW, OPEN_AWAITING = 25, 5        # per community
HOUSEHOLD_PAGES = 20
ROUNDS, PER_ROUND = 20, 20                   # per target: 400 requests each
TARGET_RATIO = 3.0
BOARD_NOTICES = 80
READERS, READ_SECONDS = 50, 20.0
CHUNK = 20_000
POLICY = "national2021"


class BenchRpcEcho:
    name = "bench_rpc_echo"

    @rpc
    def echo(self, x):
        return x


class BenchHttpEcho:
    """The baseline: a bare nameko @http endpoint, on its own port — and, for
    reference, the floor of any page that asks a service: @http calling one
    bare @rpc echo over the broker."""

    name = "bench_http_echo"
    echo_service = RpcProxy("bench_rpc_echo")

    @http("GET", "/echo")
    def echo(self, request):
        return 200, "ok"

    @http("GET", "/rpc-echo")
    def rpc_echo(self, request):
        return 200, self.echo_service.echo("ok")


def communities():
    return [c for c in DivisionRegistry.load().communities() if c.code.startswith(DISTRICT)]


def migrated(name: str, config: dict, metadata, migrations) -> ServiceDatabase:
    db = ServiceDatabase(name, config["DB_URIS"][name], metadata, migrations)
    db.migrate()
    return db


def insert(db: ServiceDatabase, table, rows: list[dict]) -> None:
    for start in range(0, len(rows), CHUNK):
        with db.engine.begin() as conn:
            conn.execute(table.insert(), rows[start:start + CHUNK])


def resident_id(n: int, position: int) -> str:
    """A distinct 18-character number per member (its check digit is not checked by a Core INSERT)."""
    return f"4201151960{n:07d}{position}"


def load_intake(config: dict, units) -> dict[str, list[str]]:
    """100,000 households, their members and an investigated application each;
    plus each community's applications awaiting investigation. Answers the
    application ids awaiting investigation, by community."""
    configure_cipher(config, "intake")
    db = migrated("intake", config, IntakeBase.metadata, INTAKE_MIGRATIONS)
    now = datetime.now(timezone.utc)
    households, members, applications, awaiting = [], [], [], {}
    for n in range(N + len(units) * OPEN_AWAITING):
        unit = units[n % len(units)]
        hid = f"{n:08d}-0000-4000-8000-000000000000"
        households.append({"id": hid, "head_name": f"户主{n}", "address": f"{unit.name}{n}号", "phone": None,
                           "community_code": unit.code, "township_code": unit.code[:9], "district_code": DISTRICT,
                           "area_type": unit.area_type or "urban", "registered_at": now, "registered_by": "bench",
                           "updated_at": now, "version": 1})
        for position in range(1 + n % 3):
            mid = str(uuid.uuid4())
            rid = resident_id(n, position)
            members.append({"id": mid, "household_id": hid, "position": position, "name": f"成员{n}-{position}",
                            "resident_id": seal_value(Member.__table__.c.resident_id, mid, rid),
                            "resident_id_index": intake_handlers.resident_index(rid),
                            "relation": "self" if position == 0 else "child", "birth_date": date(1960, 1, 1),
                            "sex": "M", "labour_capacity": "none", "disability": "none", "illness": "none",
                            "employment": "unemployed", "deceased_on": None})
        aid = f"{n:08d}-0000-4000-8000-00000000a000"
        status = "investigated" if n < N else "submitted"
        if n >= N:
            awaiting.setdefault(unit.code, []).append(aid)
        applications.append({"id": aid, "household_id": hid, "community_code": unit.code,
                             "accepted_on": date(2026, 1, 5), "accepted_by": "bench", "reason": "", "status": status,
                             "investigation_deadline": date.today() + timedelta(days=3),
                             "investigation_deadline_provisional": False, "policy": POLICY,
                             "submitted_at": now - timedelta(seconds=N - n)})
    insert(db, Household.__table__, households)
    insert(db, Member.__table__, members)
    insert(db, Application.__table__, applications)
    with db.engine.begin() as conn:
        conn.execute(sa.text("ANALYZE"))
    db.dispose()
    return awaiting


def load_review(config: dict, units, awaiting: dict[str, list[str]]) -> None:
    """100,000 approved files with their active cases; each community's open files."""
    configure_cipher(config, "review")
    db = migrated("review", config, ReviewBase.metadata, REVIEW_MIGRATIONS)
    files, cases = [], []
    today = date.today()
    for n in range(N):
        unit = units[n % len(units)]
        aid, hid = f"{n:08d}-0000-4000-8000-00000000a000", f"{n:08d}-0000-4000-8000-000000000000"
        files.append(file_row(aid, hid, unit, status="approved", step=None, accepted_on=date(2026, 1, 5),
                              decided_on=date(2026, 2, 10)))
        cid = f"{n:08d}-0000-4000-8000-00000000c000"
        cases.append({"id": cid, "application_id": aid, "household_id": hid, "community_code": unit.code,
                      "township_code": unit.code[:9], "area_type": unit.area_type or "urban",
                      "household_size": 1 + n % 3, "standard": Decimal("820.00"),
                      "verified_income": seal_value(Case.__table__.c.verified_income, cid, Decimal("0.00")),
                      "monthly_benefit": Decimal("820.00") * (1 + n % 3), "category": "stable",
                      "start_month": "2026-03", "next_rereview_on": today + timedelta(days=30 + n % 300),
                      "status": "active", "approved_on": date(2026, 2, 10), "policy": POLICY})
    for u, unit in enumerate(units):
        for k in range(OPEN_IN_REVIEW):
            files.append(file_row(str(uuid.uuid4()), str(uuid.uuid4()), unit, status="in_review",
                                  step="community_evaluation", accepted_on=today - timedelta(days=k % 20 + 1),
                                  step_due_on=today + timedelta(days=k % 15 - 3)))
        for aid in awaiting.get(unit.code, []):
            files.append(file_row(aid, aid.replace("a000", "0000"), unit, status="awaiting_investigation",
                                  step=None, accepted_on=today - timedelta(days=2)))
    insert(db, ReviewFile.__table__, files)
    insert(db, Case.__table__, cases)
    with db.engine.begin() as conn:
        conn.execute(sa.text("ANALYZE"))
    db.dispose()


def file_row(aid, hid, unit, *, status, step, accepted_on, decided_on=None, step_due_on=None) -> dict:
    return {"application_id": aid, "household_id": hid, "community_code": unit.code,
            "township_code": unit.code[:9], "area_type": unit.area_type or "urban", "policy": POLICY,
            "accepted_on": accepted_on, "household_size": 2, "status": status, "step": step,
            "step_opened_on": accepted_on if step else None, "step_due_on": step_due_on,
            "process_due_on": accepted_on + timedelta(days=60) if status != "approved" else None,
            "step_due_provisional": False, "process_due_provisional": False,
            "investigators": [{"user": "bench", "name": "调查员"}], "investigation_id": None, "objections": 0,
            "notice_id": None, "decided_on": decided_on, "rejection_reason": None, "flags": [], "version": 1}


def timed_get(session: requests.Session, url: str, expect: str) -> float:
    began = time.perf_counter()
    answer = session.get(url, timeout=60)
    took = time.perf_counter() - began
    assert answer.status_code == 200 and expect in answer.text, (url, answer.status_code, answer.text[:300])
    return took


class _CProfile:
    """cProfile over the whole process (client, gateway and services are greenlets of it):
    self time (tottime) is what to read — cumulative times break at greenlet switches."""

    def __init__(self):
        import cProfile

        self.profile = cProfile.Profile()

    def start(self):
        self.profile.enable()

    def stop(self):
        self.profile.disable()

    def output_text(self, **kwargs):
        import io
        import pstats

        out = io.StringIO()
        stats = pstats.Stats(self.profile, stream=out)
        stats.sort_stats("tottime").print_stats(45)
        stats.sort_stats("cumulative").print_stats("services|shared", 45)
        return out.getvalue()


def profiler():
    """``DIBAO_BENCH_PROFILE=1``: pyinstrument (per greenlet), ``=cprofile``: cProfile's self times."""
    kind = os.environ.get("DIBAO_BENCH_PROFILE")
    if not kind:
        return None
    if kind == "cprofile":
        return _CProfile()
    try:
        from pyinstrument import Profiler
    except ImportError:
        return None
    return Profiler(async_mode="disabled")


def test_worklist_and_household_pages_with_100000_cases(container_factory, sqlite_config):
    config = with_secrets(dict(sqlite_config, POLICY=POLICY))
    units = communities()
    with Stopwatch() as setup:
        awaiting = load_intake(config, units)
        load_review(config, units, awaiting)
    config, base = start_console(container_factory, config)
    echo_port = free_port()
    container_factory(BenchHttpEcho, dict(config, WEB_SERVER_ADDRESS=f"127.0.0.1:{echo_port}")).start()
    container_factory(BenchRpcEcho, config).start()
    admin = bootstrap_admin(config)
    officer = add_person(config, admin, "bench.officer", ["community_officer"], unit=COMMUNITY, name="王专干")
    with rpc_with(config, officer.token) as rpc:
        pages = [rpc.intake.register_household(household(seed=9000 + i))["household_id"]
                 for i in range(HOUSEHOLD_PAGES)]

    targets = {"echo": (f"http://127.0.0.1:{echo_port}/echo", "ok"),
               "rpc_echo": (f"http://127.0.0.1:{echo_port}/rpc-echo", "ok"),
               "worklist": (base + "/", "待办"),
               "household": (None, "户档")}
    sessions = {name: requests.Session() for name in targets}
    for session in sessions.values():
        session.trust_env = False          # no proxy look-up in the environment on every request (the client's cost)
    sessions["worklist"].cookies.set("dibao_session", officer.token)
    sessions["household"].cookies.set("dibao_session", officer.token)
    rng = random.Random(14)

    def url_of(name):
        return f"{base}/households/{rng.choice(pages)}" if name == "household" else targets[name][0]

    worklist = sessions["worklist"].get(base + "/", timeout=60).text
    open_rows = worklist.count('href="/applications/')
    for name in targets:                                   # warm up
        for _ in range(20):
            timed_get(sessions[name], url_of(name), targets[name][1])

    times = {name: [] for name in targets}
    order = list(targets)
    prof = profiler()
    if prof:
        prof.start()
    with Stopwatch() as timed:
        for r in range(ROUNDS):
            for name in order[r % len(order):] + order[:r % len(order)]:
                for _ in range(PER_ROUND):
                    times[name].append(timed_get(sessions[name], url_of(name), targets[name][1]))
    if prof:
        prof.stop()
        print(prof.output_text(unicode=True, color=False, show_all=False))

    echo_p95 = percentile(times["echo"], 95)
    figures = {"cases": N, "households": N + HOUSEHOLD_PAGES + len(units) * OPEN_AWAITING, "db": "sqlite",
               "setup_s": round(setup.seconds, 1), "timed_s": round(timed.seconds, 1),
               "worklist_links": open_rows, "profiled": bool(prof),
               **{f"{name}_ms": summary_ms(values) for name, values in times.items()},
               "worklist_p95_vs_echo_p95": round(percentile(times["worklist"], 95) / echo_p95, 2),
               "household_p95_vs_echo_p95": round(percentile(times["household"], 95) / echo_p95, 2),
               "worklist_median_vs_echo_median": round(summary_ms(times["worklist"])["median_ms"]
                                                       / summary_ms(times["echo"])["median_ms"], 2),
               "household_median_vs_echo_median": round(summary_ms(times["household"])["median_ms"]
                                                        / summary_ms(times["echo"])["median_ms"], 2),
               "rpc_echo_p95_vs_echo_p95": round(percentile(times["rpc_echo"], 95) / echo_p95, 2),
               "worklist_p95_vs_rpc_echo_p95": round(percentile(times["worklist"], 95)
                                                     / percentile(times["rpc_echo"], 95), 2),
               "household_p95_vs_rpc_echo_p95": round(percentile(times["household"], 95)
                                                      / percentile(times["rpc_echo"], 95), 2)}
    met = figures["worklist_p95_vs_echo_p95"] <= TARGET_RATIO and figures["household_p95_vs_echo_p95"] <= TARGET_RATIO
    record("console_pages", figures, f"worklist and household pages p95 <= {TARGET_RATIO} x a bare nameko @http echo "
                                     f"p95, {N:,} cases", met)
    assert open_rows >= OPEN_IN_REVIEW, "the worklist does not show the community's open files"
    assert met, figures


# --- the public board under 50 concurrent readers --------------------------------------------------


def load_board(config: dict, unit_code: str) -> None:
    db = migrated("notify", config, NotifyBase.metadata, NOTIFY_MIGRATIONS)
    now, today = datetime.now(timezone.utc), date.today()
    rows = [{"id": str(uuid.uuid4()), "request_event_id": str(uuid.uuid4()), "household_id": str(uuid.uuid4()),
             "application_id": str(uuid.uuid4()), "case_id": None, "stage": "community_notice",
             "unit_code": unit_code, "community_code": unit_code, "head_name": f"张{'三四五六七八九'[n % 7]}{n}",
             "masked_resident_id": mask_resident_id(resident_id(n, 0)), "household_size": 1 + n % 4,
             "monthly_benefit": None, "blocking": True, "posted_on": today, "closes_on": today + timedelta(days=7),
             "status": "posted", "closed_on": None, "posted_at": now} for n in range(BOARD_NOTICES)]
    insert(db, Notice.__table__, rows)
    db.dispose()


def readers(url: str, concurrency: int, seconds: float) -> dict:
    out = subprocess.run([sys.executable, "-m", "bench.readers", url, str(concurrency), str(seconds)],
                         cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True,
                         timeout=seconds + 120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_public_board_under_50_concurrent_readers(container_factory, sqlite_config):
    config = with_secrets(dict(sqlite_config, POLICY="jiangxia"))
    load_board(config, COMMUNITY)
    config, base = start_console(container_factory, config, extra=(NotifyService,))
    echo_port = free_port()
    container_factory(BenchHttpEcho, dict(config, WEB_SERVER_ADDRESS=f"127.0.0.1:{echo_port}")).start()
    board = requests.get(f"{base}/board/{COMMUNITY}", timeout=60)
    assert board.status_code == 200 and board.text.count('class="notice"') == BOARD_NOTICES, board.status_code

    echo = readers(f"http://127.0.0.1:{echo_port}/echo", READERS, READ_SECONDS)
    one = readers(f"{base}/board/{COMMUNITY}", 1, 10.0)
    loaded = readers(f"{base}/board/{COMMUNITY}", READERS, READ_SECONDS)
    figures = {"notices_on_the_board": BOARD_NOTICES, "readers": READERS, "db": "sqlite",
               "page_bytes": len(board.content), "echo_50": echo, "board_1": one, "board_50": loaded}
    ok = loaded["errors"] == 0 and set(loaded["statuses"]) == {"200"}
    record("public_board", figures, f"reported: the board of {BOARD_NOTICES} notices under {READERS} concurrent "
                                    "readers (no errors)", ok)
    assert ok, figures
