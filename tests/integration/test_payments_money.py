"""Money in payments: 1,000 cases with odd amounts and an odd standard sum
exactly, computed independently with Decimal; no float is stored, computed
or sent (amounts are integer fen in the database, 2-place strings in events)."""
from __future__ import annotations

import json
import random
import re
from decimal import Decimal

import pytest

from services.payments.service import PaymentsService
from shared.policy import load_policy
from shared.testing import wait_for
from tests.payments_helpers import (DISTRICT, bank_lines, case_approved, checker, export, maker, month, publish,
                                    query)

pytestmark = pytest.mark.integration

POLICY = load_policy("national2021")
N = 1000
AMOUNT = re.compile(r"^-?\d+\.\d{2}$")


def odd_cases(rng: random.Random):
    for n in range(N):
        size = rng.randint(1, 6)
        gap = Decimal(rng.randint(-30_000, 350_000)) / 100            # fen-exact, often odd
        vulnerable = rng.randint(0, min(size, 2))
        yield f"m{n:04d}", size, gap.quantize(Decimal("0.01")), vulnerable


def test_a_thousand_odd_cases_sum_exactly_without_float(container_factory, config):
    config = dict(config, POLICY="national2021")
    container_factory(PaymentsService, config).start()
    cases = list(odd_cases(random.Random(5)))
    old = {cid: POLICY.benefit_from_gap(gap, size, vul) for cid, size, gap, vul in cases}
    for cid, size, gap, vul in cases:
        publish(config, case_approved(cid, month(-1), str(old[cid]), size=size, gap=str(gap), standard="820.00",
                                      vulnerable=vul))
    wait_for(lambda: query(config, "SELECT count(*) FROM ledger_case")[0][0] == N, timeout=120, message="ledger")
    with maker(config) as rpc:
        assert rpc.payments.set_payees([{"case_id": cid, "payee_name": "赵六", "account_number": f"6222{n:012d}"}
                                        for n, (cid, *_rest) in enumerate(cases)]) == {"cases": N}
    with checker(config) as rpc:
        change = rpc.payments.set_standard({"division_code": DISTRICT, "area_type": "urban",
                                            "effective_from": f"{month(0)}-01", "monthly_amount": "847.37"})["change"]
    delta = Decimal("847.37") - Decimal("820.00")
    new = {cid: POLICY.benefit_from_gap(gap + delta * size, size, vul) for cid, size, gap, vul in cases}
    assert all(isinstance(v, Decimal) and v.as_tuple().exponent == -2 for v in [*old.values(), *new.values()])
    assert change["cases_raised"] == sum(1 for c in new if new[c] > old[c])
    assert change["cases_lowered"] == sum(1 for c in new if new[c] < old[c]) == 0

    with maker(config) as rpc:
        last = rpc.payments.create_run({"period": month(-1), "area_type": "urban", "division_code": DISTRICT})
        this = rpc.payments.create_run({"period": month(0), "area_type": "urban", "division_code": DISTRICT})
    expected_last = sum((v for v in old.values() if v > 0), Decimal("0.00"))
    expected_this = sum((v for v in new.values() if v > 0), Decimal("0.00"))
    assert Decimal(last["total"]) == expected_last and last["lines"] == sum(1 for v in old.values() if v > 0)
    assert Decimal(this["total"]) == expected_this and this["lines"] == sum(1 for v in new.values() if v > 0)
    assert last["held"] == sum(1 for v in old.values() if v <= 0)        # zero benefit: listed, not dropped

    with checker(config) as rpc:
        rpc.payments.approve_run(this["id"])
    content, out = export(config, this["id"], "csv")
    lines = bank_lines(content)
    assert all(AMOUNT.match(ln["amount"]) for ln in lines)
    assert {ln["case_id"]: Decimal(ln["amount"]) for ln in lines} == {c: v for c, v in new.items() if v > 0}
    assert Decimal(out["total"]) == expected_this
    fixed, _ = export(config, this["id"], "fixed")
    trailer = fixed.rstrip(b"\r\n").split(b"\r\n")[-1]
    assert int(trailer[9:24]) == int(expected_this * 100)             # integer fen in the fixed-width file

    # storage: integer fen, never a binary float (SQLite NUMERIC would be REAL)
    if config["DB_URIS"]["payments"].startswith("sqlite"):
        kinds = {r[0] for r in query(config, "SELECT DISTINCT typeof(amount) FROM payment_line "
                                             "UNION SELECT DISTINCT typeof(monthly_benefit) FROM ledger_case "
                                             "UNION SELECT DISTINCT typeof(amount) FROM benefit_period")}
        assert kinds == {"integer"}
    else:
        kinds = {r[0] for r in query(config, "SELECT DISTINCT data_type FROM information_schema.columns WHERE "
                                             "column_name IN ('amount', 'monthly_benefit', 'benefit_gap', 'total')")}
        assert kinds == {"bigint"}
    # events: every amount a 2-place string
    for (body,) in query(config, "SELECT body FROM outbox WHERE routing_key = 'benefit_changed'"):
        payload = json.loads(body)["payload"]
        assert AMOUNT.match(payload["old_benefit"]) and AMOUNT.match(payload["new_benefit"])
        assert Decimal(payload["new_benefit"]) == new[payload["case_id"]]
