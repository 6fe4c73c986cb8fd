"""A standard set in payments (提标) is the one review fixes benefits with:
an active case shows the recalculated benefit, and a household approved
after the change gets the new standard — with the policy's 分类施保 extra
and minimum applied the same way payments computes them."""
from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from services.payments.service import PaymentsService
from shared.policy import load_policy
from shared.testing import rpc_as, wait_for
from shared.identity import Role
from tests.dynamic_helpers import approved_case, start
from tests.helpers import DISTRICT

pytestmark = pytest.mark.integration


def case_of(config, case_id):
    with rpc_as(config, Role.DISTRICT_OFFICER, DISTRICT, user="qian.district") as rpc:
        return rpc.review.get_case(case_id)


@pytest.mark.parametrize("policy", ["jiangxia", "national2021"])
def test_a_standard_raised_in_payments_is_the_standard_review_uses(container_factory, sqlite_config, tmp_path,
                                                                   policy):
    config, clock = start(container_factory, sqlite_config, policy, tmp_path)
    container_factory(PaymentsService, config).start()
    rules = load_policy(policy)
    income = Decimal("320.50")        # what the home investigation verified (tests.helpers.investigation)
    first = approved_case(config, clock, seed=11)
    size = first["household_size"]
    assert Decimal(first["monthly_benefit"]) == rules.benefit(Decimal("820.00"), size, income,
                                                              first["vulnerable_members"])
    wait_for(lambda: _ledger_has(config, first["id"]), timeout=20, message="the case in payments' ledger")

    raised_from = date(clock.today().year, clock.today().month, 1)
    with rpc_as(config, Role.CENTRE_DIRECTOR, DISTRICT, user="zhou.director") as rpc:
        rpc.payments.set_standard({"division_code": DISTRICT, "area_type": "urban",
                                   "effective_from": raised_from.isoformat(), "monthly_amount": "900.00"})

    def benefit_followed():
        now = case_of(config, first["id"])
        return now if Decimal(now["monthly_benefit"]) > Decimal(first["monthly_benefit"]) else None
    after = wait_for(benefit_followed, timeout=20, message="review's case shows the raised benefit")
    assert Decimal(after["monthly_benefit"]) == Decimal(first["monthly_benefit"]) + Decimal("80.00") * size

    second = approved_case(config, clock, seed=12)
    vulnerable = second["vulnerable_members"]
    assert Decimal(second["standard"]) == Decimal("900.00")
    assert Decimal(second["monthly_benefit"]) == rules.benefit(Decimal("900.00"), second["household_size"], income,
                                                               vulnerable)


def _ledger_has(config, case_id):
    with rpc_as(config, Role.CENTRE_DIRECTOR, DISTRICT, user="zhou.director") as rpc:
        try:
            return rpc.payments.get_case(case_id)
        except Exception:  # noqa: BLE001 - not there yet
            return None
