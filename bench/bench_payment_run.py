"""A monthly payment run over 100,000 active cases, and a standard change
recalculating them, on SQLite and PostgreSQL.

Issue 5 targets: the monthly run ≤ 10 s on each backend and ≤ 3× a bare
``INSERT … SELECT`` of the same rows measured in the same run; a standard
change recalculating 100,000 cases ≤ 10 s.

Set-up (not timed): a fresh, migrated payments database; ``N`` (default
100,000, ``DIBAO_BENCH_PAYMENT_N``) urban cases of the district spread over
its 13 communities, each with its benefit period, benefit basis (gap,
standard, vulnerable members) and an encrypted bank account, written in bulk.

Timed, in this order, per backend:
  baseline  a bare ``INSERT INTO scratch SELECT`` of the same rows and
            columns the run copies (case, household, area, size, amount,
            masked name/account, encrypted account) — no due-month rule, no
            exactly-once check, no hold-backs, no totals;
  run       ``runs.create_run`` for last month (national2021: no check-in
            hold-back) through a unit of work, committed: the lines INSERT …
            SELECT (per-month benefit in force, due months, not yet paid),
            the hold-backs, the carry-forward and the totals;
  run (jiangxia) the same for the current month under jiangxia, where each
            month also needs its check-in (100,000 check-ins loaded first);
  change    ``standards.set_standard`` raising the district's urban standard:
            the adjustments INSERT … SELECT, the ledger UPDATE, the benefit
            periods, and 100,000 ``benefit_changed`` outbox rows built in
            Python chunks, committed.
"""
from __future__ import annotations

import os
import random
import time
import uuid
from datetime import date, datetime, timezone
from decimal import Decimal

import pytest
import sqlalchemy as sa

from bench.support import Stopwatch, record
from contracts import payments as _payments_events  # noqa: F401 - registers the contract
from services.payments import runs, standards
from services.payments.models import Base, BenefitPeriod, CheckIn, LedgerCase, from_fen
from services.payments.service import MIGRATIONS
from shared.sealing import seal_value
from shared.config import load_config
from shared.db import ServiceDatabase, configure_cipher
from shared.secrets import ensure_secrets
from shared.identity import Actor, Role
from shared.masking import mask_bank_account
from shared.policy import load_policy
from tests.payments_helpers import month

pytestmark = pytest.mark.integration

N = int(os.environ.get("DIBAO_BENCH_PAYMENT_N", 100_000))
RUN_TARGET_S = 10.0
RATIO_TARGET = 3.0
CHANGE_TARGET_S = 10.0
DISTRICT = "420115"
COMMUNITIES = [f"420115{t:03d}{c:03d}" for t in range(1, 6) for c in range(1, 4)][:13]
MAKER = Actor("qian.finance", "钱会计", DISTRICT, frozenset({Role.FINANCE_OFFICER}))
DIRECTOR = Actor("zhou.director", "周主任", DISTRICT, frozenset({Role.CENTRE_DIRECTOR}))


def populate(db: ServiceDatabase, n: int) -> None:
    """n active urban cases (started two months ago), written in bulk."""
    rng = random.Random(11)
    ledger_table = LedgerCase.__table__
    start = month(-2)
    now = datetime.now(timezone.utc)
    ledger, periods = [], []
    for i in range(n):
        size = rng.randint(1, 5)
        gap = from_fen(rng.randint(1_000, 300_000))                      # Decimal yuan, odd fen
        account = f"6222{i:012d}"
        case_id = str(uuid.UUID(int=i + 1))
        ledger.append({"case_id": case_id, "household_id": str(uuid.UUID(int=10**9 + i)),
                       "community_code": COMMUNITIES[i % len(COMMUNITIES)],
                       "township_code": COMMUNITIES[i % len(COMMUNITIES)][:9], "area_type": "urban",
                       "household_size": size, "monthly_benefit": gap, "benefit_from_month": start,
                       "standard_amount": Decimal("820.00"), "benefit_gap": gap, "vulnerable_members": rng.randint(0, 1),
                       "start_month": start, "stop_month": None, "status": "active", "hold_reason": None,
                       "payee_name": seal_value(ledger_table.c.payee_name, case_id, "张三丰"),
                       "payee_name_masked": "张*丰",
                       "account_number": seal_value(ledger_table.c.account_number, case_id, account),
                       "account_masked": mask_bank_account(account),
                       "bank_name": None, "approved_on": date.today(), "updated_at": now})
        periods.append({"case_id": case_id, "from_month": start, "amount": gap})
    with db.engine.begin() as conn:
        for chunk in range(0, n, 10_000):
            conn.execute(LedgerCase.__table__.insert(), ledger[chunk:chunk + 10_000])
            conn.execute(BenefitPeriod.__table__.insert(), periods[chunk:chunk + 10_000])
        conn.execute(sa.text("CREATE TABLE scratch_line (run_id VARCHAR(36), case_id VARCHAR(36), "
                             "household_id VARCHAR(36), period VARCHAR(7), community_code VARCHAR(12), "
                             "township_code VARCHAR(9), area_type VARCHAR(5), household_size INTEGER, "
                             "months INTEGER, amount BIGINT, payee_name TEXT, payee_name_masked VARCHAR(40), "
                             "account_number TEXT, account_masked VARCHAR(40), status VARCHAR(8))"))
    if db.engine.dialect.name == "postgresql":
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("VACUUM ANALYZE"))


LINE_COLUMNS = ("run_id, case_id, household_id, period, community_code, township_code, area_type, household_size, "
                "months, amount, payee_name, payee_name_masked, account_number, account_masked, status")


def bare_insert_select(db: ServiceDatabase, into: str) -> float:
    """The same rows and columns a run copies, by a bare INSERT … SELECT: into
    ``payment_line`` itself (same indexes; a throwaway run, removed after,
    untimed), or into ``scratch_line`` (no index at all)."""
    with db.engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO payment_run (id, period, area_type, division_code, status, lines, total, "
                             "held, carried, prepared_by, prepared_on, created_at) VALUES ('baseline', '0000-01', "
                             "'urban', '0', 'prepared', 0, 0, 0, 0, 'bench', :d, :t)"),
                     {"d": date.today(), "t": datetime.now(timezone.utc)})
    with Stopwatch() as sw, db.engine.begin() as conn:
        conn.execute(sa.text(f"INSERT INTO {into} ({LINE_COLUMNS}) SELECT 'baseline', case_id, household_id, "
                             "'0000-01', community_code, township_code, area_type, household_size, 1, "
                             "monthly_benefit, payee_name, payee_name_masked, account_number, account_masked, "
                             "'pending' FROM ledger_case WHERE area_type = 'urban' AND community_code LIKE '420115%'"))
    with db.engine.begin() as conn:
        conn.execute(sa.text(f"DELETE FROM {into} WHERE run_id = 'baseline'"))
        conn.execute(sa.text("DELETE FROM payment_run WHERE id = 'baseline'"))
    return sw.seconds


def timed_run(db: ServiceDatabase, period: str, policy_name: str):
    with Stopwatch() as sw, db.unit_of_work(MAKER.to_dict(), "bench") as uow:
        run = runs.create_run(uow, MAKER, {"period": period, "area_type": "urban", "division_code": DISTRICT,
                                           "as_of": None}, load_policy(policy_name), date.today())
    return sw.seconds, run


@pytest.mark.parametrize("backend_name", ["sqlite", "postgres"])
def test_payment_run_and_standard_change_over_100k_cases(backend_name, tmp_path, request):
    config = load_config(DATA_DIR=str(tmp_path), DATA_KEY="", DATA_KEY_PAYMENTS="")
    ensure_secrets(config, ["DATA_KEY_PAYMENTS"])   # a deployment of its own: no shipped key
    configure_cipher(config, "payments")
    if backend_name == "sqlite":
        uri = f"sqlite:///{tmp_path}/payments.db"
    else:
        uri = request.getfixturevalue("pg_databases").create("payments")
    db = ServiceDatabase("payments", uri, Base.metadata, MIGRATIONS)
    db.migrate()
    t0 = time.perf_counter()
    populate(db, N)
    setup_s = time.perf_counter() - t0

    baseline_s = bare_insert_select(db, "payment_line")
    scratch_s = bare_insert_select(db, "scratch_line")
    run_s, run = timed_run(db, month(-1), "national2021")
    baseline2_s = bare_insert_select(db, "payment_line")         # again after, to cancel drift
    baseline = min(baseline_s, baseline2_s)
    assert run.lines == N and run.held == 0

    with db.engine.begin() as conn:                              # jiangxia: every month needs its check-in
        rows = [{"household_id": str(uuid.UUID(int=10**9 + i)), "month": month(0)} for i in range(N) if i % 50]
        for chunk in range(0, len(rows), 20_000):
            conn.execute(CheckIn.__table__.insert(), rows[chunk:chunk + 20_000])
    jx_s, jx_run = timed_run(db, month(0), "jiangxia")
    assert jx_run.lines == len(rows) and jx_run.held == N - len(rows)

    with Stopwatch() as sw, db.unit_of_work(DIRECTOR.to_dict(), "bench") as uow:
        _standard, change = standards.set_standard(uow, DIRECTOR, {
            "division_code": DISTRICT, "area_type": "urban", "effective_from": date.today().replace(day=1),
            "effective_to": None, "monthly_amount": Decimal("847.37")}, load_policy("national2021"))
    change_s = sw.seconds
    with db.engine.connect() as conn:
        outbox = conn.execute(sa.text("SELECT count(*) FROM outbox WHERE routing_key = 'benefit_changed'")).scalar()
    assert change.cases_raised == N == outbox
    db.dispose()

    ratio = run_s / baseline
    figures = {"backend": backend_name, "cases": N, "setup_s": round(setup_s, 2),
               "bare_insert_select_s": round(baseline, 3), "bare_insert_select_runs_s": [round(baseline_s, 3),
                                                                                       round(baseline2_s, 3)],
               "bare_insert_select_unindexed_table_s": round(scratch_s, 3),
               "monthly_run_s": round(run_s, 3), "run_to_bare_ratio": round(ratio, 2),
               "jiangxia_run_with_checkins_s": round(jx_s, 3), "jiangxia_held_no_checkin": jx_run.held,
               "standard_change_s": round(change_s, 3), "benefit_changed_events": outbox}
    met = run_s <= RUN_TARGET_S and ratio <= RATIO_TARGET and change_s <= CHANGE_TARGET_S
    record(f"payment_run_{backend_name}", figures,
           f"run ≤ {RUN_TARGET_S} s and ≤ {RATIO_TARGET}× bare INSERT…SELECT; standard change ≤ {CHANGE_TARGET_S} s",
           met)
    assert met, figures
