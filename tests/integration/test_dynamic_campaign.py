"""Re-inspection campaigns (入户清查), re-review reminders, categories and the
overdue list, end to end over real RabbitMQ with intake, review and notify."""
from __future__ import annotations

from datetime import date

import pytest

from shared.errors import Conflict, Forbidden, ValidationFailed
from shared.identity import Role
from shared.testing import person_token, rpc_as, wait_for, write_session
from tests.dynamic_helpers import (approve_fully, approved_case, district_officer, events, proposals, scalar, start,
                                   wait_event)
from tests.helpers import COMMUNITY, DISTRICT, OTHER_COMMUNITY, TOWNSHIP
from tests.review_helpers import community, township

pytestmark = pytest.mark.integration


def test_campaign_assigns_every_active_case_records_results_and_cancels_the_wrongly_included(
        container_factory, config, tmp_path):
    config, clock = start(container_factory, config, "jiangxia", tmp_path, notify=True)
    cases = [approved_case(config, clock, seed=s) for s in (75, 79, 80)]
    clock.set(date(2027, 3, 1))
    with rpc_as(config, Role.TOWNSHIP_OFFICER, "420115002", user="other.township") as rpc:
        with pytest.raises(Forbidden):                 # another township's officer: not their cases
            rpc.review.create_campaign({"unit_code": TOWNSHIP, "starts_on": "2027-03-01",
                                        "ends_on": "2027-03-31", "teams": ["一组"]})
    with district_officer(config) as rpc:
        with pytest.raises(ValidationFailed) as err:
            rpc.review.create_campaign({"unit_code": TOWNSHIP, "starts_on": "2027-03-31",
                                        "ends_on": "2027-03-01", "teams": ["一组"]})
        assert "ends_on" in err.value.fields
        campaign = rpc.review.create_campaign({"unit_code": TOWNSHIP, "name": "2027年春季入户清查",
                                               "starts_on": "2027-03-01", "ends_on": "2027-03-31",
                                               "teams": ["第一清查组", "第二清查组"]})
        progress = rpc.review.campaign_progress(campaign["id"])
    assert progress["cases"] == 3 and progress["inspected"] == 0
    assert scalar(config, "SELECT count(*) FROM campaign") == 1      # the refused ones wrote nothing
    [created] = wait_event(config, "campaign_created")
    assert created["payload"]["cases"] == 3 and created["payload"]["unit_code"] == TOWNSHIP
    assert scalar(config, "SELECT count(DISTINCT team) FROM campaign_inspection") == 2   # round-robin

    kept, lowered, wrong = cases
    with community(config) as rpc:
        with pytest.raises(ValidationFailed) as err:   # not a case of this campaign
            rpc.review.record_inspection({"campaign_id": campaign["id"], "case_id": "no-such-case",
                                          "result": "kept"})
        assert "case_id" in err.value.fields
        with pytest.raises(ValidationFailed) as err:   # a lowered finding states the verified income
            rpc.review.record_inspection({"campaign_id": campaign["id"], "case_id": lowered["id"],
                                          "result": "lowered"})
        assert "verified_income" in err.value.fields
        rpc.review.record_inspection({"campaign_id": campaign["id"], "case_id": kept["id"], "result": "kept"})
        with pytest.raises(Conflict):                  # one result per case
            rpc.review.record_inspection({"campaign_id": campaign["id"], "case_id": kept["id"], "result": "kept"})
        low = rpc.review.record_inspection({"campaign_id": campaign["id"], "case_id": lowered["id"],
                                            "result": "lowered", "verified_income": "600.00",
                                            "remarks": "子女务工收入增加"})
        bad = rpc.review.record_inspection({"campaign_id": campaign["id"], "case_id": wrong["id"],
                                            "result": "wrongly_included", "remarks": "家庭有商铺出租收入，不符合条件"})
    assert low["proposal"]["action"] == "adjust" and bad["proposal"]["wrongly_included"] is True
    assert scalar(config, "SELECT count(*) FROM case_proposal") == 2     # nothing from the refused results
    assert scalar(config, "SELECT count(*) FROM campaign_inspection WHERE result IS NOT NULL") == 3
    assert len(events(config, "inspection_recorded")) == 3
    with district_officer(config) as rpc:
        progress = rpc.review.campaign_progress(campaign["id"])
    [unit] = progress["units"]
    assert (unit["community_code"], unit["cases"], unit["inspected"], unit["kept"], unit["lowered"],
            unit["wrongly_included"]) == (COMMUNITY, 3, 3, 1, 1, 1)

    # the same approval path as any proposal; then the household is told
    approve_fully(config, low["proposal"]["id"])
    approve_fully(config, bad["proposal"]["id"])
    [adjusted] = wait_event(config, "case_adjusted")
    [cancelled] = wait_event(config, "case_cancelled")
    assert adjusted["payload"]["rule"] == "campaign_inspection" and adjusted["payload"]["direction"] == "lowered"
    assert cancelled["payload"]["wrongly_included"] is True
    assert cancelled["subject"] == {"household_id": wrong["household_id"], "case_id": wrong["id"],
                                    "application_id": wrong["application_id"]}   # audit: who let them in
    wait_for(lambda: scalar(config, "SELECT count(*) FROM message WHERE kind IN ('case_adjusted', 'case_cancelled')",
                            "notify") == 2, timeout=30, message="households told")


def test_review_due_reminds_the_community_officer_once_and_overdue_lists_per_unit(
        container_factory, sqlite_config, tmp_path):
    config, clock = start(container_factory, sqlite_config, "jiangxia", tmp_path, notify=True)
    case = approved_case(config, clock, seed=72)          # able to work: unstable, quarterly under jiangxia
    assert (case["category"], case["next_rereview_on"]) == ("unstable", "2027-04-11")
    with township(config) as rpc:
        with pytest.raises(ValidationFailed) as err:      # a category change needs its reason
            rpc.review.change_category({"case_id": case["id"], "category": "stable"})
        assert "reason" in err.value.fields
        with pytest.raises(ValidationFailed) as err:
            rpc.review.change_category({"case_id": case["id"], "category": "able_to_work", "reason": "x"})
        assert "category" in err.value.fields
    assert events(config, "category_changed") == []

    with district_officer(config) as rpc:
        assert rpc.review.run_month_end("2027-02-28")["review_due"] == 0    # more than 30 days ahead
        assert rpc.review.run_month_end("2027-03-31")["review_due"] == 1
        assert rpc.review.run_month_end("2027-03-31")["review_due"] == 0    # once per case and due date
    [due] = wait_event(config, "review_due")
    assert due["payload"]["due_on"] == "2027-04-11" and due["payload"]["community_code"] == COMMUNITY

    def reminded():
        with community(config) as rpc:
            return rpc.notify.list_reminders(COMMUNITY)
    [reminder] = wait_for(reminded, timeout=20, message="reminder")
    assert reminder["case_id"] == case["id"] and "复核" in reminder["text"]

    clock.set(date(2027, 4, 20))
    with district_officer(config) as rpc:
        [late] = rpc.review.overdue_rereviews(DISTRICT)
        assert late["id"] == case["id"] and late["township_code"] == TOWNSHIP
        assert rpc.review.overdue_rereviews(OTHER_COMMUNITY) == []
    with township(config) as rpc:
        changed = rpc.review.change_category({"case_id": case["id"], "category": "stable",
                                              "reason": "户主患病，已丧失劳动能力"})
    assert changed["category"] == "stable" and changed["next_rereview_on"] == "2027-07-11"
    [event] = wait_event(config, "category_changed")
    assert event["payload"]["reason"] == "户主患病，已丧失劳动能力"
    with district_officer(config) as rpc:
        assert rpc.review.overdue_rereviews(DISTRICT) == []
        assert rpc.review.run_month_end("2027-06-30")["review_due"] == 1    # the new date gets its own reminder


def test_the_same_person_cannot_approve_twice_and_a_proposal_needs_the_policys_roles(
        container_factory, sqlite_config, tmp_path):
    config, clock = start(container_factory, sqlite_config, "national2021", tmp_path)
    case = approved_case(config, clock, seed=79)
    with township(config) as rpc:
        proposal = rpc.review.propose({"case_id": case["id"], "action": "cancel", "reason": "户籍迁出本区"})
        with pytest.raises(ValidationFailed) as err:     # an adjustment states the verified income
            rpc.review.propose({"case_id": case["id"], "action": "adjust", "reason": "收入增加"})
        assert "verified_income" in err.value.fields
        rpc.review.propose({"case_id": case["id"], "action": "adjust", "reason": "收入增加",
                            "verified_income": "700.00"})
        with pytest.raises(Conflict):                    # the proposer does not approve their own proposal
            rpc.review.approve_proposal({"proposal_id": proposal["id"]})
    with rpc_as(config, Role.TOWNSHIP_OFFICER, TOWNSHIP, user="zhou.township") as rpc:
        rpc.review.approve_proposal({"proposal_id": proposal["id"]})
    with rpc_as(config, Role.CENTRE_DIRECTOR, DISTRICT, user="zhou.director") as rpc:
        with pytest.raises(Forbidden):                   # national: the county's officer confirms
            rpc.review.approve_proposal({"proposal_id": proposal["id"]})
    with district_officer(config) as rpc:
        done = rpc.review.approve_proposal({"proposal_id": proposal["id"]})
    assert done["status"] == "approved"
    [cancelled] = wait_event(config, "case_cancelled")
    assert cancelled["payload"]["rule"] == "manual" and cancelled["payload"]["reason"] == "户籍迁出本区"
    # the adjustment still pending has nothing left to act on
    assert [p["status"] for p in proposals(config, case["id"])] == ["approved", "withdrawn"]
    assert events(config, "case_adjusted") == []


def test_cli_month_end_proposals_approval_and_campaign(container_factory, sqlite_config, tmp_path):
    import json as _json

    import yaml
    from typer.testing import CliRunner

    from cli.root import app

    config, clock = start(container_factory, sqlite_config, "jiangxia", tmp_path)
    case = approved_case(config, clock, seed=79)
    config_file = tmp_path / "dibao.yml"
    config_file.write_text(yaml.safe_dump(_json.loads(_json.dumps(config)), allow_unicode=True), encoding="utf-8")

    def dibao(*args, as_=(Role.DISTRICT_OFFICER, DISTRICT, "zhao.district")):
        """As the logged-in person (the session file `dibao login` stores; the harness plays identity)."""
        role, unit, user = as_
        session = write_session(tmp_path / f"session-{user}.json", person_token(user, user, unit, [role]))
        result = CliRunner().invoke(app, ["--config", str(config_file), *args], env={"DIBAO_SESSION_FILE": session})
        assert result.exit_code == 0, result.output
        return result.output

    clock.set(date(2027, 4, 2))
    out = dibao("review", "month-end", "--as-of", "2027-03-31")
    assert "month end of 2027-03" in out and "two_missed_checkins_in_a_row" in out
    out = dibao("review", "proposals", DISTRICT)
    assert case["id"] in out and "连续两月未续保登记" in out and "pending" in out
    [proposal] = proposals(config, case["id"])
    out = dibao("review", "approve", str(proposal["id"]), as_=(Role.TOWNSHIP_OFFICER, TOWNSHIP, "li.township"))
    assert "pending" in out and "township_officer" in out
    out = dibao("review", "approve", str(proposal["id"]), as_=(Role.CENTRE_DIRECTOR, DISTRICT, "zhou.director"))
    assert "approved" in out
    wait_event(config, "case_cancelled")
    out = dibao("review", "rereviews", DISTRICT, "--as-of", "2028-01-01")
    assert "no case" in out                                  # cancelled: no longer due
    out = dibao("review", "campaign-create", TOWNSHIP, "--from", "2027-04-01", "--to", "2027-04-30",
                "--team", "一组", "--name", "春季清查")
    assert "0 cases" in out


def test_the_month_end_timer_acts_when_the_clock_moves_on(container_factory, sqlite_config, tmp_path):
    """No operator: review's own timer runs the month end from stored facts
    when the (file) clock reaches the next month, once."""
    config, clock = start(container_factory, sqlite_config, "jiangxia", tmp_path, month_end_seconds=0.3)
    case = approved_case(config, clock, seed=72)
    clock.set(date(2027, 4, 1))              # February and March passed without a check-in; re-review due 04-11
    wait_event(config, "review_due")
    [proposal] = wait_for(lambda: proposals(config, case["id"]), timeout=20, message="the timer's proposal")
    assert (proposal["rule"], proposal["fact"]) == ("two_missed_checkins_in_a_row", "checkins:2027-02..2027-03")
    import eventlet
    eventlet.sleep(1.5)                      # several more runs: still one of each
    assert len(proposals(config, case["id"])) == 1 and len(events(config, "review_due")) == 1
