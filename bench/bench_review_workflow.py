"""1,000 applications pushed through the whole entry review over the bus.

Issue 3: "1,000 applications pushed through the whole workflow over the bus
(every step an RPC): applications per minute, and the per-step RPC cost as
a ratio to a bare nameko RPC in the same run." The issue sets no figure to
reach: the figures are recorded, and the benchmark fails only when an
application does not reach its decision.

intake, review and notify run in containers on SQLite in one vhost, with
their outbox relays, inboxes, notify's board rendering (HTML and PDF) and
its file channel, as in production; beside them a bare nameko ``echo``
service. Client and containers share one process, as in the other
benchmarks and the tests.

Set-up, not timed: ``DIBAO_BENCH_REVIEW_N`` households (default 1,000) from
``SampleDistrict``, round robin over the 13 communities of the division
list, imported; an application and a home investigation each (two district
officers); review has opened each at its first step. Plus
``DIBAO_BENCH_REVIEW_QUIET_N`` (default 30) more for the quiet pass.

**Throughput pass** (timed): the ``jiangxia`` workflow — the longest of the
shipped policies — by one sequential client, every step an RPC by the
person whose step it is: ``record_evaluation`` (community officer) for
every application; notify posts the community notices;
``close_due_notices(as_of=today + 7)`` (as the system administrator: only
the timer and the system administrator may look ahead) closes them and review opens the township
review; ``record_township_review`` (township officer; the committee
unanimous); notify posts the township notices, closed the same way;
``sign_joint_review`` × 3 (deputy director, centre director, the district
officer who investigated), the third deciding. Wall time = first step RPC
to the last decision → applications per minute. After every step RPC the
same proxy calls ``echo`` once, so each phase has an echo median measured
under the same background load (relays, events consumed, boards rendered).

**Quiet pass** (the per-step cost): the same steps for the quiet
applications, but before each step RPC the client pauses
(``PAUSE_SECONDS``) so that the background work set off by the previous
step has finished, then calls ``echo`` and the step, each timed: the ratio
of the medians is the step's cost against a bare nameko RPC.

Diagnostics: notify's board files and its file channel are timed from
this process (the containers run here) by wrapping ``rendering.Board``'s
``notice_sheet`` (a notice's own PDF, once when it goes up), ``index`` (the
board's index page, on every change) and ``render`` (the whole board, on
demand only), and ``channels.FileChannel.send``. Boards are rendered per
notice plus an index (services/notify/rendering.py): the rate no longer
falls with the number of notices on a board.
"""
from __future__ import annotations

import os
import sqlite3
import time
from contextlib import ExitStack
from datetime import date, timedelta

import eventlet
import pytest

from bench.bench_bulk_import import BenchEcho, sample_households
from bench.support import record, summary_ms
from services.intake.service import IntakeService
from services.notify import channels, rendering
from services.notify.service import NotifyService
from services.review.service import ReviewService
from shared.divisions import DivisionRegistry
from shared.identity import Role
from shared.testing import rpc_as
from tests.helpers import register_staff

pytestmark = pytest.mark.integration

N = int(os.environ.get("DIBAO_BENCH_REVIEW_N", "1000"))
QUIET_N = int(os.environ.get("DIBAO_BENCH_REVIEW_QUIET_N", "30"))
PAUSE_SECONDS = 0.3
POLICY = "jiangxia"
DISTRICT = "420115"
SEED = 3033
CHUNK = 200
WAIT_SECONDS = 1800.0
ROLES = ("deputy_director", "centre_director", "investigator")
STEPS = ("record_evaluation", "record_township_review", "sign_joint_review")

INVESTIGATORS = [("zhao.district", "赵专干"), ("qian.district", "钱专干")]
PANEL = [{"name": n, "role": r, "signed": True} for n, r in
         [("张代表", "representative"), ("李代表", "representative"), ("王代表", "representative"),
          ("刘代表", "representative"), ("陈代表", "representative"), ("赵专干", "officer"), ("周组员", "panel")]]
COMMITTEE = [{"name": n, "department": d, "opinion": "agree", "signed": True} for n, d in
             [("陈主任", "civil_affairs"), ("刘科长", "finance"), ("周所长", "police"), ("吴司法", "justice"),
              ("郑主任", "affairs_office")]]


# --- waiting on the services' own databases (green sleeps: the containers run here) ------

def db_path(config: dict, service: str) -> str:
    return config["DB_URIS"][service][len("sqlite:///"):]


def count(path: str, sql: str, *args) -> int:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        return conn.execute(sql, args).fetchone()[0]
    finally:
        conn.close()


def wait_count(path: str, sql: str, args: tuple, want: int, what: str) -> float:
    """Seconds until ``sql`` counts at least ``want``."""
    start = time.perf_counter()
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        got = count(path, sql, *args)
        if got >= want:
            return time.perf_counter() - start
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {WAIT_SECONDS:.0f} s waiting for {what}: {got} of {want}")
        eventlet.sleep(0.05)


def at_step(config: dict, step: str, apps: list[str]) -> float:
    """Seconds until review shows every one of ``apps`` at ``step``."""
    marks = ",".join("?" * len(apps))
    return wait_count(db_path(config, "review"),
                      f"SELECT count(*) FROM review_file WHERE status = 'in_review' AND step = ? "
                      f"AND application_id IN ({marks})", (step, *apps), len(apps), f"review to open {step}")


def notices_posted(config: dict, stage: str, apps: list[str]) -> float:
    marks = ",".join("?" * len(apps))
    return wait_count(db_path(config, "notify"),
                      f"SELECT count(*) FROM notice WHERE status = 'posted' AND stage = ? "
                      f"AND application_id IN ({marks})", (stage, *apps), len(apps),
                      f"notify to post the {stage} notices")


# --- timing ----------------------------------------------------------------------------

class Timed:
    """Wraps a method of a class to add up its calls' durations (diagnostics)."""

    def __init__(self, monkeypatch, cls, name: str):
        original = getattr(cls, name)
        self.seconds, self.calls = 0.0, 0

        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - start
                self.calls += 1

        monkeypatch.setattr(cls, name, wrapper)

    def take(self) -> dict:
        out = {"calls": self.calls, "seconds": round(self.seconds, 2),
               "ms_per_call": round(self.seconds / self.calls * 1000, 1) if self.calls else None}
        self.seconds, self.calls = 0.0, 0
        return out


def timed(fn, *args) -> tuple[object, float]:
    start = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - start


def step_calls(app_id: str, community: str, township: str, today: date) -> dict[str, list[tuple[str, str, dict]]]:
    """Per step: (proxy key, label, argument) of each RPC."""
    return {
        "record_evaluation": [(community, "record_evaluation", {
            "application_id": app_id, "meeting_date": today.isoformat(), "participants": PANEL,
            "votes_for": len(PANEL), "votes_against": 0, "abstentions": 0, "passed": True})],
        "record_township_review": [(township, "record_township_review", {
            "application_id": app_id, "meeting_date": today.isoformat(), "members": COMMITTEE, "passed": True})],
        "sign_joint_review": [(role, f"sign_joint_review ({role})", {"application_id": app_id, "role": role})
                              for role in ROLES],
    }


def test_review_workflow_over_the_bus(container_factory, sqlite_config, monkeypatch):
    config = dict(sqlite_config, POLICY=POLICY)
    boards = {kind: Timed(monkeypatch, rendering.Board, name) for kind, name in
              (("notice_sheets", "notice_sheet"), ("index_pages", "index"), ("whole_boards", "render"))}

    class renders:   # noqa: N801 - the three board timers, taken together
        @staticmethod
        def take():
            return {kind: timer.take() for kind, timer in boards.items()}
    sends = Timed(monkeypatch, channels.FileChannel, "send")
    for cls in (IntakeService, ReviewService, NotifyService, BenchEcho):
        container_factory(cls, config).start()
    communities = {c.code: c for c in DivisionRegistry.load().communities(within=DISTRICT)}
    today = date.today()
    close_as_of = (today + timedelta(days=7)).isoformat()

    # --- set-up (not timed) ---------------------------------------------------------------
    t0 = time.perf_counter()
    register_staff(config, [{"user": user, "name": name, "role": "district_officer", "unit": DISTRICT}
                            for user, name in INVESTIGATORS]
                   + [{"user": "sun.deputy", "name": "孙局长", "role": "deputy_director", "unit": DISTRICT},
                      {"user": "zhou.director", "name": "周主任", "role": "centre_director", "unit": DISTRICT}])
    households = sample_households(N + QUIET_N, seed=SEED)
    apps: list[tuple[str, str]] = []     # (application id, community code)
    with rpc_as(config, Role.DISTRICT_OFFICER, DISTRICT, user=INVESTIGATORS[0][0], timeout=120) as district:
        created = []
        for i in range(0, len(households), CHUNK):
            batch = households[i:i + CHUNK]
            results = district.intake.import_households(batch)
            assert all("household_id" in r for r in results), [r for r in results if "error" in r][:3]
            created += [(r["household_id"], batch[r["row"]]["community_code"]) for r in results]
        accepted = (today - timedelta(days=1)).isoformat()
        for household_id, code in created:
            app = district.intake.submit_application({"household_id": household_id, "accepted_on": accepted,
                                                      "reason": "因病致贫"})
            members = district.intake.get_household(household_id)["members"]
            district.intake.record_investigation({
                "application_id": app["id"], "investigated_on": today.isoformat(),
                "investigators": [{"user": u, "signed": True} for u, _ in INVESTIGATORS],
                "family_signatures": [{"member_id": members[0]["id"]}],
                "verified_incomes": [{"member_id": members[0]["id"], "source": "wages", "monthly_amount": "120.00"}],
                "verified_assets": [], "findings": "家中无贵重物品"})
            apps.append((app["id"], code))
    at_step(config, "community_evaluation", [a for a, _ in apps])
    setup_s = time.perf_counter() - t0
    renders.take(), sends.take()
    bulk, quiet = apps[:N], apps[N:]

    with ExitStack() as stack:
        def proxy(role: Role, unit: str, user: str):
            return stack.enter_context(rpc_as(config, role, unit, user=user, timeout=300))

        proxies = {code: proxy(Role.COMMUNITY_OFFICER, code, f"officer-{code}") for code in communities}
        proxies.update({t: proxy(Role.TOWNSHIP_OFFICER, t, f"township-{t}")
                        for t in {c.parent for c in communities.values()}})
        proxies["deputy_director"] = proxy(Role.DEPUTY_DIRECTOR, DISTRICT, "sun.deputy")
        proxies["centre_director"] = proxy(Role.CENTRE_DIRECTOR, DISTRICT, "zhou.director")
        proxies["investigator"] = proxy(Role.DISTRICT_OFFICER, DISTRICT, INVESTIGATORS[0][0])
        admin = proxy(Role.SYSTEM_ADMIN, DISTRICT, "sys.admin")
        for p in proxies.values():     # connections and reply queues up before any clock starts
            p.bench_echo.echo("warm")

        def calls(step: str, batch):
            for app_id, code in batch:
                for key, label, arg in step_calls(app_id, code, communities[code].parent, today)[step]:
                    yield app_id, proxies[key], label, arg

        # --- throughput pass ----------------------------------------------------------------
        load_steps: dict[str, list[float]] = {}
        load_echo: dict[str, list[float]] = {}
        phases, closes, diag = {}, [], {}
        ids = [a for a, _ in bulk]
        wall = time.perf_counter()
        decided = 0
        for step, notice_stage, next_step in (("record_evaluation", "community_notice", "township_review"),
                                              ("record_township_review", "township_notice", "joint_review"),
                                              ("sign_joint_review", None, None)):
            start = time.perf_counter()
            for app_id, p, label, arg in calls(step, bulk):
                out, seconds = timed(getattr(p.review, step), arg)
                load_steps.setdefault(label, []).append(seconds)
                load_echo.setdefault(step, []).append(timed(p.bench_echo.echo, app_id)[1])
                if label == "sign_joint_review (investigator)":
                    decided += bool(out["case"])
            phases[f"{step}_rpcs"] = time.perf_counter() - start
            if notice_stage:
                phases[f"wait_{notice_stage}s_posted"] = notices_posted(config, notice_stage, ids)
                closed, seconds = timed(admin.notify.close_due_notices, close_as_of)
                closes.append(seconds)
                assert len(closed) >= N
                phases[f"close_due_notices ({notice_stage})"] = seconds
                phases[f"wait_{next_step}_open"] = at_step(config, next_step, ids)
            diag[step] = {"board_renders": renders.take(), "file_channel_sends": sends.take()}
        wall = time.perf_counter() - wall
        results_s = wait_count(db_path(config, "notify"),
                               "SELECT count(*) FROM notice WHERE stage = 'result'", (), N, "the results posted")
        diag["results"] = {"board_renders": renders.take(), "file_channel_sends": sends.take()}

        # --- quiet pass: the per-step cost against echo --------------------------------------
        quiet_steps: dict[str, list[float]] = {}
        quiet_echo: dict[str, list[float]] = {}
        qids = [a for a, _ in quiet]
        for step, notice_stage, next_step in (("record_evaluation", "community_notice", "township_review"),
                                              ("record_township_review", "township_notice", "joint_review"),
                                              ("sign_joint_review", None, None)):
            for app_id, p, label, arg in calls(step, quiet):
                eventlet.sleep(PAUSE_SECONDS)     # the previous step's events, notices, boards: done
                quiet_echo.setdefault(step, []).append(timed(p.bench_echo.echo, app_id)[1])
                quiet_steps.setdefault(label, []).append(timed(getattr(p.review, step), arg)[1])
            if notice_stage:
                notices_posted(config, notice_stage, qids)
                admin.notify.close_due_notices(close_as_of)
                at_step(config, next_step, qids)
                eventlet.sleep(2 * PAUSE_SECONDS)

    approved = count(db_path(config, "review"), 'SELECT count(*) FROM "case"')

    def by_step(samples: dict[str, list[float]]) -> dict[str, list[float]]:
        out = {step: [t for label, ts in samples.items() if label.startswith(step) for t in ts] for step in STEPS}
        out.update({label: ts for label, ts in samples.items() if label.startswith("sign_joint_review (")})
        return out

    def ratios(steps: dict[str, list[float]], echo: dict[str, list[float]]) -> dict[str, float]:
        med = {step: summary_ms(ts)["median_ms"] for step, ts in echo.items()}
        return {label: round(summary_ms(ts)["median_ms"] / med[label.split(" ")[0]], 2)
                for label, ts in steps.items()}

    load, calm = by_step(load_steps), by_step(quiet_steps)
    quiet_all_echo = [t for ts in quiet_echo.values() for t in ts]
    figures = {
        "n": N, "quiet_n": QUIET_N, "policy": POLICY, "db": "sqlite", "client": "one, sequential",
        "setup_s": round(setup_s, 1),
        "wall_s": round(wall, 2),
        "applications_per_minute": round(N / wall * 60, 1),
        "step_rpcs_share_of_wall": round(sum(sum(ts) for ts in load_steps.values()) / wall, 3),
        "phases_s": {k: round(v, 2) for k, v in phases.items()},
        "results_posted_after_last_decision_s": round(results_s, 2),
        "quiet": {
            "echo": summary_ms(quiet_all_echo),
            "steps": {label: summary_ms(ts) for label, ts in calm.items()},
            "ratio_median_step_vs_echo": ratios(calm, quiet_echo),
        },
        "under_load": {
            "echo_by_phase": {step: summary_ms(ts) for step, ts in load_echo.items()},
            "steps": {label: summary_ms(ts) for label, ts in load.items()},
            "ratio_median_step_vs_echo_same_phase": ratios(load, load_echo),
        },
        "board_files_share_of_wall": round(sum(t["seconds"] for phase in diag.values()
                                               for t in phase["board_renders"].values()) / wall, 3),
        "notify_work_by_phase": diag,
    }
    met = approved == N + QUIET_N and decided == N
    record("review_workflow", figures,
           "every application approved over the bus (the issue sets no figure: applications/minute and the "
           "per-step RPC cost / echo are reported)", met)
    assert met, f"{approved} of {N + QUIET_N} applications approved ({decided} of {N} decided by the third signature)"
