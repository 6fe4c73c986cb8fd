"""Month end of dynamic management over 100,000 active cases.

Target (issue #6): the month-end rule evaluation — the check-in rules (two
missed in a row, three in a calendar year), the labour rules and the due
re-reviews (one ``review.review_due`` event per case falling due, written
to the outbox) — over 100,000 active cases takes ≤ 10 s, set-based.

Setup (not timed): a fresh, migrated review database; 100,000 active cases
and their check-ins for January–November 2027 inserted directly (bulk
INSERTs, about 1.05 million rows): 3 % of the households missed October
and November (→ two in a row), another 3 % missed February, May and August
(→ three in the year), the rest stamped every month; re-review dates spread
evenly over the following twelve months (→ about 1 in 12 due within the
30-day lead time of 2027-11-30).

Timed: ``services.review.month_end.run`` for as_of 2027-11-30 under the
``jiangxia`` policy (the one with every check-in and labour rule), in one
transaction, as the RPC ``review.run_month_end`` and the daily timer run it;
then the same run again (which must add nothing). Baseline in the same run:
a bare ``SELECT count(*)`` over the same cases × check-ins join, the
least a month end has to read. SQLite and PostgreSQL.
"""
from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from bench.support import Stopwatch, record
from services.review import month_end, rules
from services.review.models import Base, Case, HouseholdCheckIn
from services.review.service import MIGRATIONS
from shared.crypto import FieldCipher, configure
from shared.sealing import seal_value
from shared.db import ServiceDatabase
from shared.policy import load_policy

pytestmark = pytest.mark.integration

N = 100_000
TARGET_SECONDS = 10.0
AS_OF = date(2027, 11, 30)
MONTHS = [f"2027-{m:02d}" for m in range(1, 12)]
IN_A_ROW, IN_A_YEAR = ("2027-10", "2027-11"), ("2027-02", "2027-05", "2027-08")


def missed(n: int) -> tuple[str, ...]:
    if n % 100 < 3:
        return IN_A_ROW
    if n % 100 < 6:
        return IN_A_YEAR
    return ()


def populate(db: ServiceDatabase) -> None:
    cases, checkins = [], []
    first_due = date(2027, 12, 1)
    encrypted_zero = Decimal("0.00")
    for n in range(N):
        cases.append({
            "id": f"case-{n:06d}", "application_id": f"app-{n:06d}", "household_id": f"hh-{n:06d}",
            "community_code": f"420115{1 + n % 12:03d}{1 + n % 9:03d}", "township_code": f"420115{1 + n % 12:03d}",
            "area_type": "urban", "household_size": 1 + n % 4, "standard": Decimal("820.00"),
            "verified_income": seal_value(Case.__table__.c.verified_income, f"case-{n:06d}", encrypted_zero),
            "monthly_benefit": Decimal("820.00") * (1 + n % 4),
            "category": ("long_term", "stable", "unstable")[n % 3], "start_month": "2027-01",
            "next_rereview_on": first_due + timedelta(days=n % 365), "status": "active",
            "approved_on": date(2026, 12, 15), "policy": "jiangxia"})
        skip = missed(n)
        checkins.extend({"household_id": f"hh-{n:06d}", "month": m} for m in MONTHS if m not in skip)
    with db.engine.begin() as conn:
        conn.execute(Case.__table__.insert(), cases)
    for start in range(0, len(checkins), 100_000):
        with db.engine.begin() as conn:
            conn.execute(HouseholdCheckIn.__table__.insert(), checkins[start:start + 100_000])
    with db.engine.begin() as conn:
        if db.engine.dialect.name == "postgresql":
            conn.execute(sa.text("ANALYZE"))
        else:
            conn.execute(sa.text("ANALYZE"))


def baseline_scan(db: ServiceDatabase) -> float:
    stmt = (sa.select(sa.func.count()).select_from(Case)
            .join(HouseholdCheckIn, HouseholdCheckIn.household_id == Case.household_id)
            .where(Case.status == "active"))
    with db.engine.connect() as conn, Stopwatch() as sw:
        conn.execute(stmt).scalar()
    return sw.seconds


def run_month_end(db: ServiceDatabase) -> tuple[float, dict]:
    policy = load_policy("jiangxia")
    with db.unit_of_work() as uow, Stopwatch() as sw:
        result = month_end.run(uow, policy, AS_OF, AS_OF)
    return sw.seconds, result


def measure(uri: str) -> dict:
    db = ServiceDatabase("review", uri, Base.metadata, MIGRATIONS)
    db.migrate()
    with Stopwatch() as setup:
        populate(db)
    base = baseline_scan(db)
    first_s, first = run_month_end(db)
    second_s, second = run_month_end(db)
    with db.engine.connect() as conn:
        outbox = conn.execute(sa.text("SELECT count(*) FROM outbox WHERE routing_key = 'review_due'")).scalar()
    db.dispose()
    expected_row, expected_year = N * 3 // 100, N * 3 // 100
    assert first["proposals"][rules.RULE_TWO_IN_A_ROW] == expected_row, first
    assert first["proposals"][rules.RULE_THREE_IN_A_YEAR] == expected_year, first
    assert sum(second["proposals"].values()) == 0 and second["review_due"] == 0, second
    assert outbox == first["review_due"]
    return {"setup_s": round(setup.seconds, 1), "baseline_scan_s": round(base, 3),
            "month_end_s": round(first_s, 3), "second_run_s": round(second_s, 3),
            "ratio_month_end_vs_scan": round(first_s / base, 1) if base else None,
            "proposals": first["proposals"], "review_due_events": first["review_due"]}


def test_month_end_over_100k_active_cases(tmp_path, pg_databases):
    configure(FieldCipher(b"b" * 32))
    sqlite = measure(f"sqlite:///{tmp_path}/review.db")
    postgres = measure(pg_databases.create("review"))
    figures = {"cases": N, "checkins": sum(len(MONTHS) - len(missed(n)) for n in range(N)),
               "sqlite": sqlite, "postgres": postgres}
    met = sqlite["month_end_s"] <= TARGET_SECONDS and postgres["month_end_s"] <= TARGET_SECONDS
    record("month_end", figures, f"month-end rules + due re-reviews over {N:,} active cases <= {TARGET_SECONDS} s "
                                 f"(SQLite and PostgreSQL)", met)
    assert met, figures
