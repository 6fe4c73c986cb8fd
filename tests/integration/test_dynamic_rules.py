"""The dynamic-management rules (动态管理) over real RabbitMQ, per policy: each
rule acts on recorded facts, proposes, and only the approval the policy
requires adjusts or cancels; a fact is never proposed twice."""
from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from shared.errors import Conflict, ValidationFailed
from shared.testing import wait_for
from tests.dynamic_helpers import (STANDARD, approve_fully, approved_case, checkin, events, month_end, proposals,
                                   scalar, start, wait_checkins, wait_event)
from tests.helpers import officer
from tests.review_helpers import township

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("policy", ["jiangxia", "national2021"])
def test_rule_two_missed_checkins_in_a_row_proposes_cancellation(container_factory, config, tmp_path, policy):
    config, clock = start(container_factory, config, policy, tmp_path)
    case = approved_case(config, clock, seed=71)
    assert case["start_month"] == "2027-02"
    clock.set(date(2027, 4, 2))
    checkin(config, case["household_id"], "2027-02", date(2027, 2, 5))   # March and April missed
    wait_checkins(config, 1)

    first = month_end(config, date(2027, 3, 31))      # only March missed so far: nothing
    assert first["month"] == "2027-03" and sum(first["proposals"].values()) == 0
    clock.set(date(2027, 5, 3))
    second = month_end(config, date(2027, 4, 30))
    again = month_end(config, date(2027, 4, 30))      # a second run proposes nothing twice
    assert sum(again["proposals"].values()) == 0
    made = proposals(config, case["id"])
    if policy == "national2021":                      # no monthly stamp in the 2021 measure
        assert made == [] and sum(second["proposals"].values()) == 0
        return
    assert second["proposals"]["two_missed_checkins_in_a_row"] == 1
    [proposal] = made
    assert (proposal["rule"], proposal["action"], proposal["status"]) == (
        "two_missed_checkins_in_a_row", "cancel", "pending")
    assert proposal["fact"] == "checkins:2027-03..2027-04"
    assert events(config, "case_cancelled") == []      # nothing is cancelled silently

    done = approve_fully(config, proposal["id"])
    assert done["status"] == "approved" and [a["role"] for a in done["approvals"]] == [
        "township_officer", "centre_director"]
    [cancelled] = wait_event(config, "case_cancelled")
    p = cancelled["payload"]
    assert (p["rule"], p["effective_month"], p["wrongly_included"], p["gradual_exit_until"]) == (
        "two_missed_checkins_in_a_row", "2027-06", False, None)
    assert cancelled["subject"]["case_id"] == case["id"]

    # intake learns the case is cancelled: a check-in for a month no longer paid is refused, nothing written
    def refused():
        try:
            checkin(config, case["household_id"], "2027-06", date(2027, 6, 1))
        except Conflict:
            return True
        return False
    clock.set(date(2027, 6, 1))
    assert wait_for(refused, timeout=20, message="check-in refused")
    assert scalar(config, "SELECT count(*) FROM checkin", "intake") == 1


def test_rule_three_missed_checkins_in_a_year_proposes_cancellation(container_factory, sqlite_config, tmp_path):
    config, clock = start(container_factory, sqlite_config, "jiangxia", tmp_path)
    case = approved_case(config, clock, seed=72)
    clock.set(date(2027, 8, 1))
    for month in ("2027-03", "2027-05", "2027-07"):   # February, April and June missed: never two in a row
        checkin(config, case["household_id"], month, date(int(month[:4]), int(month[5:]), 3))
    wait_checkins(config, 3)
    assert sum(month_end(config, date(2027, 5, 31))["proposals"].values()) == 0   # two missed by May
    result = month_end(config, date(2027, 7, 31))
    assert result["proposals"] == {"two_missed_checkins_in_a_row": 0, "three_missed_checkins_in_a_year": 1,
                                   "unexcused_labour_absence": 0, "refused_suitable_work": 0}
    assert sum(month_end(config, date(2027, 7, 31))["proposals"].values()) == 0
    [proposal] = proposals(config, case["id"])
    assert (proposal["rule"], proposal["fact"]) == ("three_missed_checkins_in_a_year", "checkins:2027")


def test_checkin_for_a_future_month_is_refused(container_factory, sqlite_config, tmp_path):
    config, clock = start(container_factory, sqlite_config, "jiangxia", tmp_path)
    case = approved_case(config, clock, seed=73)
    with pytest.raises(ValidationFailed) as err:
        checkin(config, case["household_id"], "2027-02", START_PLUS)
    assert "month" in err.value.fields
    assert scalar(config, "SELECT count(*) FROM checkin", "intake") == 0


START_PLUS = date(2027, 1, 11)
