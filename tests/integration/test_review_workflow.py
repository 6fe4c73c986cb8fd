"""The three-level entry review over real RabbitMQ, under each policy.

notify's side (notices closing, objections) is published by hand here, as
notify would publish it; tests/integration/test_entry_end_to_end.py runs the
real notify service.
"""
from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from services.intake.service import IntakeService
from services.review.service import ReviewService
from shared.db import make_engine
from shared.errors import Conflict, Forbidden, NotFound, ValidationFailed
from shared.testing import wait_for
from tests.helpers import household, investigation, officer, register_staff
from tests.review_helpers import (close_notice, committee, community, deputy, director, evaluation, object_to,
                                  review_state, township)

pytestmark = pytest.mark.integration


def start(container_factory, config, policy):
    config = dict(config, POLICY=policy)
    container_factory(IntakeService, config).start()
    container_factory(ReviewService, config).start()
    register_staff(config)
    return config


def investigated(config, seed, accepted_days_ago=1):
    data = household(seed=seed)
    data["incomes"] = []
    with officer(config) as rpc:
        created = rpc.intake.register_household(data)
        app = rpc.intake.submit_application({"household_id": created["household_id"],
                                             "accepted_on": (date.today() - timedelta(days=accepted_days_ago)).isoformat()})
        rpc.intake.record_investigation(investigation(app["id"], created["member_ids"]))
    return app["id"], len(data["members"])


def evaluated(config, seed):
    """An application that passed its community evaluation: its notice is up."""
    app_id, _ = investigated(config, seed=seed)
    review_state(config, app_id, step="community_evaluation")
    with community(config) as rpc:
        rpc.review.record_evaluation(evaluation(app_id))
    return app_id, review_state(config, app_id, step="community_notice")


def review_events(config) -> list[str]:
    engine = make_engine(config["DB_URIS"]["review"])
    with engine.connect() as conn:
        kinds = [r[0] for r in conn.execute(sa.text("SELECT routing_key FROM outbox WHERE routing_key != 'command_recorded' ORDER BY id"))]
    engine.dispose()
    return kinds


def test_jiangxia_full_path_to_approval(container_factory, config):
    config = start(container_factory, config, "jiangxia")
    app_id, size = investigated(config, seed=31)
    f = review_state(config, app_id, step="community_evaluation")

    with township(config) as rpc:          # out of order: the committee before the evaluation
        with pytest.raises(Conflict):
            rpc.review.record_township_review(committee(app_id))
    with community(config) as rpc:
        f = rpc.review.record_evaluation(evaluation(app_id))
    assert f["step"] == "community_notice"
    f = review_state(config, app_id, step="community_notice")
    close_notice(config, f)
    f = review_state(config, app_id, step="township_review")

    with township(config) as rpc:
        split = committee(app_id, members=[dict(m) for m in committee(app_id)["members"]])
        split["members"][1]["opinion"] = "disagree"
        with pytest.raises(ValidationFailed) as err:   # non-unanimous recorded as passed
            rpc.review.record_township_review(split)
        assert "passed" in err.value.fields
        f = rpc.review.record_township_review(committee(app_id))
    assert f["step"] == "township_notice"
    close_notice(config, f)
    review_state(config, app_id, step="joint_review")

    with deputy(config) as rpc:
        rpc.review.sign_joint_review({"application_id": app_id, "role": "deputy_director"})
        with pytest.raises(Conflict):                  # one person, two roles
            rpc.review.sign_joint_review({"application_id": app_id, "role": "deputy_director"})
    with director(config) as rpc:
        with pytest.raises(ValidationFailed) as err:
            rpc.review.sign_joint_review({"application_id": app_id, "role": "centre_director",
                                          "benefit_override": "999.00"})
        assert "override_reason" in err.value.fields
        with pytest.raises(Forbidden):                 # the director did not investigate
            rpc.review.sign_joint_review({"application_id": app_id, "role": "investigator"})
        rpc.review.sign_joint_review({"application_id": app_id, "role": "centre_director"})
    with community(config) as rpc:                     # wang.officer did the home investigation
        done = rpc.review.sign_joint_review({"application_id": app_id, "role": "investigator"})
    case = done["case"]
    assert done["status"] == "approved" and case is not None
    # benefit = standard × size − verified income (820.00 urban sample standard, 320.50 verified)
    assert Decimal(case["monthly_benefit"]) == max(Decimal("820.00") * size - Decimal("320.50"), Decimal("0.00"))
    first_of_next = (date.today().replace(day=1) + timedelta(days=32)).replace(day=1)
    assert case["start_month"] == first_of_next.strftime("%Y-%m")
    assert review_events(config) == [
        "review_step_opened", "community_evaluated", "review_step_opened", "notice_requested",
        "review_step_opened", "township_reviewed", "review_step_opened", "notice_requested",
        "review_step_opened", "case_approved", "notice_requested"]


def test_objection_forces_reinvestigation_and_reevaluation(container_factory, sqlite_config):
    config = start(container_factory, sqlite_config, "jiangxia")
    app_id, f = evaluated(config, 32)
    object_to(config, f)
    review_state(config, app_id, status="awaiting_reinvestigation")
    close_notice(config, f, objections=1)              # the notice ends: nothing moves
    with community(config) as rpc:
        with pytest.raises(Conflict):
            rpc.review.record_evaluation(evaluation(app_id))
        household_id = f["household_id"]
        members = rpc.intake.get_household(household_id)["members"]
        rpc.intake.record_investigation(investigation(app_id, [m["id"] for m in members],
                                                      findings="异议核查：收入属实"))
    f = review_state(config, app_id, step="community_evaluation")
    assert f["objections"] == 1
    assert "reinvestigation_required" in review_events(config)


def test_rejection_at_evaluation_tells_why(container_factory, sqlite_config):
    config = start(container_factory, sqlite_config, "jiangxia")
    app_id, _ = investigated(config, seed=33)
    review_state(config, app_id, step="community_evaluation")
    with community(config) as rpc:
        with pytest.raises(ValidationFailed) as err:   # a missing signature
            unsigned = [dict(p) for p in evaluation(app_id)["participants"]]
            unsigned[2]["signed"] = False
            rpc.review.record_evaluation(evaluation(app_id, participants=unsigned))
        assert "participants.2.signed" in err.value.fields
        f = rpc.review.record_evaluation(evaluation(app_id, passed=False))
    assert f["status"] == "rejected" and f["rejection_reason"] == "家庭收入超标"
    with township(config) as rpc:                      # reviewing a rejected application
        with pytest.raises(Conflict):
            rpc.review.record_township_review(committee(app_id))
    assert review_events(config)[-1] == "application_rejected"


def test_national2021_skips_evaluation_then_township_opinion_one_notice_county_confirms(
        container_factory, sqlite_config):
    config = start(container_factory, sqlite_config, "national2021")
    app_id, _ = investigated(config, seed=34)
    review_state(config, app_id, step="community_evaluation")
    with community(config) as rpc:
        too_few_reps = [{"name": "甲", "role": "representative", "signed": True},
                        {"name": "乙", "role": "officer", "signed": True},
                        {"name": "丙", "role": "officer", "signed": True}]
        with pytest.raises(ValidationFailed) as err:   # 2012 rule: representatives ≥ 2/3
            rpc.review.record_evaluation(evaluation(app_id, participants=too_few_reps))
        assert "participants" in err.value.fields
        f = rpc.review.skip_evaluation({"application_id": app_id, "reason": "无异议，按意见第24条不再评议"})
    assert f["step"] == "township_opinion"
    with township(config) as rpc:
        f = rpc.review.record_township_review({"application_id": app_id, "meeting_date": date.today().isoformat(),
                                               "passed": True, "remarks": "初审同意"})
    assert f["step"] == "township_notice"
    close_notice(config, f)
    f = review_state(config, app_id, step="joint_review")
    assert f["step_due_on"] is not None              # the county confirms within 10 working days
    assert f["process_due_on"] is not None           # the whole process within 30 working days


def test_jiangxia_does_not_allow_skipping_the_evaluation(container_factory, sqlite_config):
    config = start(container_factory, sqlite_config, "jiangxia")
    app_id, _ = investigated(config, seed=35)
    review_state(config, app_id, step="community_evaluation")
    with community(config) as rpc:
        with pytest.raises(Conflict):
            rpc.review.skip_evaluation({"application_id": app_id, "reason": "想跳过"})


def test_jurisdiction_each_level_acts_on_its_own_units(container_factory, sqlite_config):
    from shared.identity import Role
    from shared.testing import rpc_as
    config = start(container_factory, sqlite_config, "jiangxia")
    app_id, _ = investigated(config, seed=36)
    review_state(config, app_id, step="community_evaluation")
    with rpc_as(config, Role.COMMUNITY_OFFICER, "420115002001", user="qian.other") as rpc:
        with pytest.raises(NotFound):            # outside their jurisdiction: as if it did not exist
            rpc.review.record_evaluation(evaluation(app_id))
    with rpc_as(config, Role.TOWNSHIP_OFFICER, "420115002", user="other.township") as rpc:
        with pytest.raises(NotFound):
            rpc.review.get_application(app_id)


def test_duplicate_deliveries_advance_the_workflow_once(container_factory, sqlite_config):
    config = start(container_factory, sqlite_config, "jiangxia")
    app_id, f = evaluated(config, 37)
    closed = close_notice(config, f)
    review_state(config, app_id, step="township_review")
    # the very same notice_closed delivered again (same event id): no second step
    from shared.testing import publish_event
    publish_event(config, closed, routing_key="notice_closed")
    import eventlet
    eventlet.sleep(1.0)
    f = review_state(config, app_id, step="township_review")
    assert review_events(config).count("review_step_opened") == 3


def test_concurrent_joint_review_signatures_make_one_decision(container_factory, config):
    import eventlet
    config = start(container_factory, config, "jiangxia")
    app_id, notice = evaluated(config, 38)
    close_notice(config, notice)
    review_state(config, app_id, step="township_review")
    with township(config) as rpc:
        rpc.review.record_township_review(committee(app_id))
    close_notice(config, review_state(config, app_id, step="township_notice"))
    review_state(config, app_id, step="joint_review")
    with deputy(config) as rpc:
        rpc.review.sign_joint_review({"application_id": app_id, "role": "deputy_director"})
    with director(config) as rpc:
        rpc.review.sign_joint_review({"application_id": app_id, "role": "centre_director"})

    def last_signature(_):
        with community(config) as rpc:
            try:
                return rpc.review.sign_joint_review({"application_id": app_id, "role": "investigator"})
            except Conflict as exc:
                return exc

    results = list(eventlet.GreenPool(4).imap(last_signature, range(4)))
    decided = [r for r in results if isinstance(r, dict) and r.get("case")]
    assert len(decided) == 1 and all(isinstance(r, Conflict) for r in results if r not in decided)
    assert review_events(config).count("case_approved") == 1


def test_late_objection_to_an_earlier_notice_is_counted_but_sends_nothing_back(container_factory, sqlite_config):
    config = start(container_factory, sqlite_config, "jiangxia")
    app_id, first = evaluated(config, 39)
    close_notice(config, first)
    review_state(config, app_id, step="township_review")
    object_to(config, first)                           # against the community notice, now closed
    f = review_state(config, app_id, step="township_review")
    wait_for(lambda: review_state(config, app_id, step="township_review")["objections"] == 1, timeout=10,
             message="objection counted")
    assert f["status"] == "in_review"
    assert "reinvestigation_required" not in review_events(config)
