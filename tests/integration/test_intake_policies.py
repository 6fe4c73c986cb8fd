"""Intake under each policy plugin (DESIGN §2.6), over real RabbitMQ."""
from __future__ import annotations

from datetime import date, timedelta

import pytest

from services.intake.service import IntakeService
from shared.errors import ValidationFailed
from shared.workdays import WorkdayCalendar
from tests.helpers import household, investigation, officer, register_staff

pytestmark = pytest.mark.integration


def start(container_factory, config, policy):
    config = dict(config, POLICY=policy)
    container_factory(IntakeService, config).start()
    register_staff(config)
    return config


def apply(config, seed, accepted_on):
    with officer(config) as rpc:
        created = rpc.intake.register_household(household(seed=seed))
        app = rpc.intake.submit_application({"household_id": created["household_id"],
                                             "accepted_on": accepted_on.isoformat()})
    return created, app


def test_national2021_family_members_present_sign_the_investigation(container_factory, sqlite_config):
    config = start(container_factory, sqlite_config, "national2021")
    created, app = apply(config, 21, date.today() - timedelta(days=1))
    with officer(config) as rpc:
        with pytest.raises(ValidationFailed) as err:
            rpc.intake.record_investigation(investigation(app["id"], created["member_ids"], family_signatures=[]))
        assert "family_signatures" in err.value.fields
        done = rpc.intake.record_investigation(investigation(app["id"], created["member_ids"]))
    assert done["family_signatures"][0]["member_id"] == created["member_ids"][0]


def test_national2021_investigation_starts_within_3_working_days(container_factory, sqlite_config):
    config = start(container_factory, sqlite_config, "national2021")
    accepted = date.today() - timedelta(days=30)
    created, app = apply(config, 22, accepted)
    deadline = WorkdayCalendar.load(None).add_workdays(accepted, 3)
    assert app["investigation_deadline"] == deadline.isoformat()
    with officer(config) as rpc:
        late = rpc.intake.record_investigation(investigation(app["id"], created["member_ids"]))
    assert late["started_late"] is True


def test_jiangxia_needs_two_named_investigators_but_no_family_signature(container_factory, sqlite_config):
    config = start(container_factory, sqlite_config, "jiangxia")
    created, app = apply(config, 23, date.today() - timedelta(days=30))
    assert app["investigation_deadline"] is None
    with officer(config) as rpc:
        done = rpc.intake.record_investigation(investigation(app["id"], created["member_ids"], family_signatures=[]))
    assert done["started_late"] is False and len(done["investigators"]) == 2
