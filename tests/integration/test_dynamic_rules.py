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
                                   republish, scalar, start, update_incomes, wait_checkins, wait_event,
                                   wait_proposals)
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
    [stamp] = events(config, "checkin_recorded", "intake")
    republish(config, stamp, "intake")                # a redelivered check-in is taken in once

    wait_for(lambda: scalar(config, "SELECT count(*) FROM inbox WHERE consumer = 'review.on_checkin_recorded'") == 1
             and scalar(config, "SELECT count(*) FROM household_checkin") == 1, timeout=10, message="one check-in")
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
    assert cancelled["subject"]["case_id"] == p["case_id"] == case["id"]

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


def labour(config, case, member_id, on: date, attendance: str, activity: str = "社区清扫") -> None:
    with officer(config) as rpc:
        rpc.intake.record_labour({"household_id": case["household_id"], "member_id": member_id,
                                  "labour_date": on.isoformat(), "activity": activity, "attendance": attendance})


@pytest.mark.parametrize("policy", ["jiangxia", "national2021"])
def test_rule_unexcused_labour_absence_proposes_cancellation(container_factory, sqlite_config, tmp_path, policy):
    config, clock = start(container_factory, sqlite_config, policy, tmp_path)
    case = approved_case(config, clock, seed=79)
    clock.set(date(2027, 2, 20))
    labour(config, case, case["member_ids"][0], date(2027, 2, 10), "attended")
    labour(config, case, case["member_ids"][0], date(2027, 2, 17), "unexcused")
    wait_for(lambda: scalar(config, "SELECT count(*) FROM labour_fact") == 2, timeout=20, message="labour at review")
    [absence] = [e for e in events(config, "labour_recorded", "intake") if e["payload"]["attendance"] == "unexcused"]
    republish(config, absence, "intake")              # a redelivered fact changes nothing
    result = month_end(config, date(2027, 2, 28))
    assert sum(month_end(config, date(2027, 2, 28))["proposals"].values()) == 0
    assert scalar(config, "SELECT count(*) FROM labour_fact") == 2
    made = proposals(config, case["id"])
    if policy == "national2021":                      # the 2021 measure has no community-labour rule
        assert made == [] and result["proposals"]["unexcused_labour_absence"] == 0
        return
    [proposal] = made
    assert (proposal["rule"], proposal["action"]) == ("unexcused_labour_absence", "cancel")
    # "may cancel": the township weighs it and may reject, with the reason; nothing is cancelled
    with township(config) as rpc:
        with pytest.raises(ValidationFailed) as err:
            rpc.review.reject_proposal({"proposal_id": proposal["id"]})
        assert "reason" in err.value.fields
        rejected = rpc.review.reject_proposal({"proposal_id": proposal["id"], "reason": "因病请假，补交证明"})
    assert rejected["status"] == "rejected"
    assert events(config, "case_cancelled") == []


@pytest.mark.parametrize("policy", ["national2021", "jiangxia"])
def test_rule_refused_suitable_work_three_times_stops_that_persons_share(container_factory, sqlite_config,
                                                                         tmp_path, policy):
    config, clock = start(container_factory, sqlite_config, policy, tmp_path)
    case = approved_case(config, clock, seed=81)
    clock.set(date(2027, 3, 20))
    worker = case["member_ids"][1]
    for n, day in enumerate((date(2027, 2, 3), date(2027, 2, 17), date(2027, 3, 3))):
        labour(config, case, worker, day, "refused", activity=f"岗位推荐{n + 1}")
    wait_for(lambda: scalar(config, "SELECT count(*) FROM labour_fact") == 3, timeout=20, message="labour at review")
    month_end(config, date(2027, 3, 20))
    month_end(config, date(2027, 3, 31))
    made = [p for p in proposals(config, case["id"]) if p["rule"] != "two_missed_checkins_in_a_row"]
    if policy == "jiangxia":   # (its missed check-ins are another rule's business)
        assert made == []
        return
    [proposal] = made
    assert (proposal["rule"], proposal["action"], proposal["fact"]) == (
        "refused_suitable_work", "stop_share", f"refused:{worker}")
    approve_fully(config, proposal["id"])
    [adjusted] = wait_event(config, "case_adjusted")
    p = adjusted["payload"]
    size = case["household_size"]
    assert p["household_size"] == size - 1 and p["direction"] == "lowered"
    assert Decimal(p["new_benefit"]) == Decimal(STANDARD) * (size - 1) - Decimal("320.50")
    assert Decimal(p["old_benefit"]) == Decimal(case["monthly_benefit"])
    assert p["effective_month"] == "2027-04" and p["rule"] == "refused_suitable_work"


@pytest.mark.parametrize("policy", ["jiangxia", "national2021"])
def test_rule_income_above_standard_cancels_or_exits_gradually(container_factory, sqlite_config, tmp_path, policy):
    config, clock = start(container_factory, sqlite_config, policy, tmp_path)
    case = approved_case(config, clock, seed=79)
    clock.set(date(2027, 3, 15))
    above = STANDARD * case["household_size"] + 300
    update_incomes(config, case, [{"member": 0, "source": "wages", "monthly_amount": f"{above}.00"}])
    [proposal] = wait_proposals(config, case["id"])
    assert (proposal["rule"], proposal["action"]) == ("income_above_standard", "cancel")
    assert proposal["gradual_exit_months"] == (6 if policy == "national2021" else 0)
    approve_fully(config, proposal["id"])
    [cancelled] = wait_event(config, "case_cancelled")
    p = cancelled["payload"]
    if policy == "national2021":   # 渐退: paid six more months after finding work
        assert (p["gradual_exit_until"], p["effective_month"]) == ("2027-09", "2027-10")
    else:
        assert (p["gradual_exit_until"], p["effective_month"]) == (None, "2027-04")
    assert "monthly_amount" not in repr(cancelled) and str(above) not in repr(cancelled)   # no incomes in events


@pytest.mark.parametrize("policy", ["jiangxia", "national2021"])
def test_rule_income_changed_adjusts_benefit_from_next_month(container_factory, config, tmp_path, policy):
    config, clock = start(container_factory, config, policy, tmp_path)
    case = approved_case(config, clock, seed=75)
    clock.set(date(2027, 2, 14))
    update_incomes(config, case, [{"member": 0, "source": "wages", "monthly_amount": "500.00"}])
    [proposal] = wait_proposals(config, case["id"])
    assert (proposal["rule"], proposal["action"]) == ("income_changed", "adjust")
    # the same fact again: a redelivered household_updated and a re-review of the same record
    [updated] = events(config, "household_updated", "intake")
    republish(config, updated, "intake")
    with township(config) as rpc:
        rereview = rpc.review.record_rereview({"case_id": case["id"]})
    assert rereview["proposal"] is None
    assert rereview["case"]["last_rereview_on"] == "2027-02-14"
    assert len(proposals(config, case["id"])) == 1
    approve_fully(config, proposal["id"])
    [adjusted] = wait_event(config, "case_adjusted")
    p = adjusted["payload"]
    new = Decimal(STANDARD) * case["household_size"] - Decimal("500.00")
    assert (Decimal(p["new_benefit"]), p["direction"], p["effective_month"], p["rule"]) == (
        new, "lowered", "2027-03", "income_changed")
    assert Decimal(p["benefit_gap"]) == new
    with township(config) as rpc:
        assert rpc.review.get_case(case["id"])["monthly_benefit"] == f"{new:.2f}"
    assert len(proposals(config, case["id"])) == 1


@pytest.mark.parametrize("policy", ["national2021", "jiangxia"])
def test_rule_member_death_brings_review_within_three_months(container_factory, sqlite_config, tmp_path, policy):
    config, clock = start(container_factory, sqlite_config, policy, tmp_path)
    case = approved_case(config, clock, seed=81)
    before = case["next_rereview_on"]
    clock.set(date(2027, 2, 10))
    with officer(config) as rpc:
        with pytest.raises(ValidationFailed):          # a death in the future is not a fact
            rpc.intake.record_death({"household_id": case["household_id"], "member_id": case["member_ids"][2],
                                     "died_on": "2027-02-11"})
        rpc.intake.record_death({"household_id": case["household_id"], "member_id": case["member_ids"][2],
                                 "died_on": "2027-02-08"})
    # the household is smaller now: the benefit follows (income_changed), under either policy
    made = wait_proposals(config, case["id"], 2 if policy == "national2021" else 1)
    wait_for(lambda: scalar(config, "SELECT count(*) FROM inbox WHERE consumer = 'review.on_member_died'"),
             timeout=20, message="death at review")
    with township(config) as rpc:
        now = rpc.review.get_case(case["id"])
    by_rule = {p["rule"]: p for p in now["proposals"]}
    assert by_rule["income_changed"]["proposed_size"] == case["household_size"] - 1
    if policy == "national2021":
        assert by_rule["member_death_review"]["status"] == "applied"
        assert now["next_rereview_on"] == "2027-05-08" < before
    else:
        assert "member_death_review" not in by_rule and now["next_rereview_on"] == before
