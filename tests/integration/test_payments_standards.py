"""Standards (低保标准) owned by payments: effective dates without overlaps,
and a change (提标/降标) recalculating every affected case set-based."""
from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from services.payments.service import PaymentsService
from shared.errors import Forbidden, ValidationFailed
from shared.policy import load_policy
from tests.payments_helpers import (COMMUNITY, DISTRICT, VILLAGE, approve_cases, case_approved, checker, ledger_case,
                                    maker, month, outbox_types, query)

pytestmark = pytest.mark.integration

NATIONAL = load_policy("national2021")
OTHER_TOWNSHIP_COMMUNITY = "420115003001"


def first_of(m: str) -> str:
    return f"{m}-01"


def test_standard_change_recalculates_every_affected_case(container_factory, config):
    config = dict(config, POLICY="national2021")
    container_factory(PaymentsService, config).start()
    approve_cases(config, [
        case_approved("a", month(-2), "500.00", size=2, gap="500.00"),               # raised by 2 × 50
        case_approved("b", month(-2), "0.00", size=3, gap="-100.00"),                # ineligible → eligible
        case_approved("c", month(-2), "80.00", size=1, gap="30.00", vulnerable=1),   # extra for 1 vulnerable member
        case_approved("d", month(-2), "200.00", basis=False),                        # no basis: held, not guessed
        case_approved("e", month(-2), "200.00", area_type="rural", community=VILLAGE, standard="620.00"),
        case_approved("f", month(-2), "300.00", community=OTHER_TOWNSHIP_COMMUNITY),
    ])
    with checker(config) as rpc:
        seeded = rpc.payments.list_standards({"division_code": DISTRICT})
        assert {(s["area_type"], s["monthly_amount"], s["effective_to"]) for s in seeded} == {
            ("urban", "820.00", None), ("rural", "620.00", None)}
        # a township with its own standard: its cases follow that one, not the district's
        own = rpc.payments.set_standard({"division_code": "420115003", "area_type": "urban",
                                         "effective_from": first_of(month(-1)), "monthly_amount": "900.00"})
        assert (own["change"]["cases_raised"], own["change"]["old_amount"]) == (1, None)
        standards_before = query(config, "SELECT count(*) FROM standard")[0][0]
        for bad, field in (({"monthly_amount": "0"}, "monthly_amount"), ({"monthly_amount": "-5.00"}, "monthly_amount"),
                           ({"effective_from": "2024-01-01"}, "effective_from"),
                           ({"effective_from": "2024-03-01", "effective_to": "2024-04-30"}, "effective_from"),
                           ({"effective_from": "2025-03-01", "effective_to": "2025-02-01"}, "effective_to")):
            with pytest.raises(ValidationFailed) as err:
                rpc.payments.set_standard({"division_code": DISTRICT, "area_type": "urban",
                                           "effective_from": first_of(month(0)), "monthly_amount": "870.00", **bad})
            assert field in err.value.fields, (bad, err.value.fields)
        assert query(config, "SELECT count(*) FROM standard")[0][0] == standards_before     # nothing written
        raised = rpc.payments.set_standard({"division_code": DISTRICT, "area_type": "urban",
                                            "effective_from": first_of(month(0)), "monthly_amount": "870.00"})
    with maker(config) as rpc:
        with pytest.raises(Forbidden):                                   # finance does not set standards
            rpc.payments.set_standard({"division_code": DISTRICT, "area_type": "urban",
                                       "effective_from": first_of(month(1)), "monthly_amount": "880.00"})
    change = raised["change"]
    assert (change["old_amount"], change["new_amount"]) == ("820.00", "870.00")
    assert (change["cases_raised"], change["cases_lowered"], change["cases_held"]) == (3, 0, 1)
    expect = {"a": NATIONAL.benefit_from_gap(Decimal("600.00"), 2, 0),
              "b": NATIONAL.benefit_from_gap(Decimal("50.00"), 3, 0),
              "c": NATIONAL.benefit_from_gap(Decimal("80.00"), 1, 1)}
    assert expect == {"a": Decimal("600.00"), "b": Decimal("50.00"), "c": Decimal("130.00")}
    for case_id, amount in expect.items():
        case = ledger_case(config, case_id)
        assert (Decimal(case["monthly_benefit"]), case["benefit_from_month"], case["standard_amount"]) == (
            amount, month(0), "870.00")
    held = ledger_case(config, "d")
    assert (held["hold_reason"], held["hold_from_month"]) == ("benefit_basis_missing", month(0))
    assert ledger_case(config, "e")["monthly_benefit"] == "200.00"     # rural: another standard
    assert ledger_case(config, "f")["standard_amount"] == "900.00"     # its township's own standard
    kinds = outbox_types(config)
    assert kinds.count("standard_changed") == 2 and kinds.count("benefit_changed") == 4

    with checker(config) as rpc:                                         # 降标: lowered again
        lowered = rpc.payments.set_standard({"division_code": DISTRICT, "area_type": "urban",
                                             "effective_from": first_of(month(1)), "monthly_amount": "850.00"})
        history = rpc.payments.list_standards({"division_code": DISTRICT, "area_type": "urban"})
        in_force = rpc.payments.standard_for(COMMUNITY, "urban", date.today().isoformat())
    assert (lowered["change"]["cases_lowered"], lowered["change"]["cases_raised"]) == (3, 0)
    assert [(s["effective_from"], s["effective_to"], s["monthly_amount"]) for s in history
            if s["division_code"] == DISTRICT][-2:] == [
        (first_of(month(0)), _day_before(month(1)), "870.00"),
        (first_of(month(1)), None, "850.00")]
    assert in_force["monthly_amount"] == "870.00"

    with maker(config) as rpc:                                           # runs: old amount before, new after
        before = rpc.payments.get_run(rpc.payments.create_run(
            {"period": month(-1), "area_type": "urban", "division_code": DISTRICT})["id"])
        now_ = rpc.payments.get_run(rpc.payments.create_run(
            {"period": month(0), "area_type": "urban", "division_code": DISTRICT})["id"])
    # f: its township's 900.00 from last month raised its gap by (900 − 820) × 2; d is held only from
    # the change's month: last month it is paid what was in force then
    assert {ln["case_id"]: ln["amount"] for ln in before["lines_shown"]} == {"a": "500.00", "c": "80.00", "f": "460.00",
                                                                             "d": "200.00"}
    assert {h["case_id"]: h["reason"] for h in before["held_back"]} == {"b": "zero_benefit"}
    assert {ln["case_id"]: ln["amount"] for ln in now_["lines_shown"]} == {"a": "600.00", "b": "50.00", "c": "130.00",
                                                                           "f": "460.00"}
    assert [(h["case_id"], h["reason"]) for h in now_["held_back"]] == [("d", "benefit_basis_missing")]


def _day_before(m: str) -> str:
    return (date.fromisoformat(first_of(m)) - timedelta(days=1)).isoformat()
