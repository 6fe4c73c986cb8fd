"""review.worklist (待办) and review.files over real RabbitMQ: what waits for a
person is what waits at their level within their unit, late files first —
and nobody reads another unit's list."""
from __future__ import annotations

from datetime import date, timedelta

import pytest

from services.intake.service import IntakeService
from services.review.service import ReviewService
from shared.errors import Forbidden
from shared.identity import Role
from shared.errors import NotFound
from shared.testing import rpc_as, wait_for
from tests.helpers import OTHER_COMMUNITY, household, investigation, officer, register_staff
from tests.review_helpers import community, evaluation, review_state, township

pytestmark = pytest.mark.integration


def accepted(config, seed, unit=None, user="wang.officer"):
    data = household(seed=seed, **({"community": unit} if unit else {}))
    with (officer(config, unit=unit, user=user) if unit else officer(config)) as rpc:
        created = rpc.intake.register_household(data)
        app = rpc.intake.submit_application({"household_id": created["household_id"],
                                             "accepted_on": (date.today() - timedelta(days=1)).isoformat()})
    return app["id"], created["member_ids"]


def test_the_worklist_is_what_waits_at_the_callers_level_in_their_unit(container_factory, sqlite_config):
    config = dict(sqlite_config, POLICY="national2021")     # the national measure sets the statutory clock
    container_factory(IntakeService, config).start()
    container_factory(ReviewService, config).start()
    register_staff(config)
    waiting, members = accepted(config, seed=61)
    evaluating, members_2 = accepted(config, seed=62)
    with officer(config) as rpc:
        rpc.intake.record_investigation(investigation(evaluating, members_2))
    elsewhere, _ = accepted(config, seed=63, unit=OTHER_COMMUNITY, user="qian.other")
    review_state(config, waiting, status="awaiting_investigation")
    with rpc_as(config, Role.DISTRICT_OFFICER, "420115", user="zhao.district") as rpc:   # not the township's
        wait_for(lambda: _exists(rpc, elsewhere), timeout=20, message="the other community's file")
    review_state(config, evaluating, step="community_evaluation")

    with community(config) as rpc:
        mine = rpc.review.worklist()
        assert {i["application_id"] for i in mine} == {waiting, evaluating}        # not the other community's
        assert {i["level"] for i in mine} == {"community"}
        assert not any(i["overdue"] for i in mine)
        with pytest.raises(Forbidden):
            rpc.review.worklist(unit_code=OTHER_COMMUNITY)
        with pytest.raises(Forbidden):
            rpc.review.files(unit_code=OTHER_COMMUNITY)
        assert {f["application_id"] for f in rpc.review.files()} == {waiting, evaluating}
        assert [f["application_id"] for f in rpc.review.files(status="in_review")] == [evaluating]

    with township(config) as rpc:              # nothing is at the township's level yet
        assert rpc.review.worklist() == []
    with rpc_as(config, Role.AUDITOR, "420115", user="audit.li") as rpc:   # reads every level
        assert {i["application_id"] for i in rpc.review.worklist()} == {waiting, evaluating, elsewhere}

    with community(config) as rpc:
        rpc.review.record_evaluation(evaluation(evaluating))
    review_state(config, evaluating, step="township_opinion")
    with community(config) as rpc:             # passed on: no longer the community's to act on
        assert [i["application_id"] for i in rpc.review.worklist()] == [waiting]
    with township(config) as rpc:
        [item] = rpc.review.worklist()
        assert item["application_id"] == evaluating and item["level"] == "township"
        assert item["process_due_on"] and item["overdue"] is False
        late = rpc.review.worklist(as_of=(date.today() + timedelta(days=400)).isoformat())
    assert [(i["application_id"], i["overdue"]) for i in late] == [(evaluating, True)]   # past the 30 working days


def _exists(rpc, application_id) -> bool:
    try:
        return bool(rpc.review.get_application(application_id))
    except NotFound:
        return False
