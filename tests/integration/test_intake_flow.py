"""Intake end to end over real RabbitMQ, on SQLite and on PostgreSQL."""
from __future__ import annotations

import eventlet
import pytest
import sqlalchemy as sa
from nameko.events import event_handler

from services.intake.service import IntakeService
from shared.db import make_engine
from shared.errors import Conflict, Forbidden, NotFound, ValidationFailed
from shared.identity import Role
from shared.testing import rpc_as, wait_for
from tests.helpers import (COMMUNITY, OTHER_COMMUNITY, household, investigation, officer, register_staff,
                           yesterday)

pytestmark = pytest.mark.integration

received: list = []


class PartnerBureau:
    """A partner's plain nameko service: no Dibao library involved."""

    name = "partner_bureau"

    @event_handler("intake", "household_registered")
    def on_household(self, event):
        received.append(event)

    @event_handler("intake", "application_submitted")
    def on_application(self, event):
        received.append(event)

    @event_handler("intake", "investigation_recorded")
    def on_investigation(self, event):
        received.append(event)


@pytest.fixture
def intake(container_factory, config):
    received.clear()
    container = container_factory(IntakeService, config)
    container.start()
    partner = container_factory(PartnerBureau, config)
    partner.start()
    register_staff(config)
    return container


def test_register_apply_investigate_and_partner_receives_plain_json(intake, config):
    data = household(seed=7)
    with officer(config) as rpc:
        created = rpc.intake.register_household(data)
        hid = created["household_id"]
        app = rpc.intake.submit_application({"household_id": hid, "accepted_on": yesterday(), "reason": "因病致贫"})
        inv = rpc.intake.record_investigation(investigation(app["id"], created["member_ids"]))
        assert inv["verified_monthly_income"] == "320.50"
        assert [i["user"] for i in inv["investigators"]] == ["wang.officer", "li.township"]
        file = rpc.intake.get_household(hid)
    assert file["members"][0]["resident_id"] == data["members"][0]["resident_id"]
    assert file["community_code"] == COMMUNITY and file["township_code"] == "420115001"

    wait_for(lambda: len(received) >= 3, message="partner receives three intake events")
    by_type = {e["type"]: e for e in received}
    assert set(by_type) == {"household_registered", "application_submitted", "investigation_recorded"}
    submitted = by_type["application_submitted"]
    assert submitted["subject"] == {"household_id": hid, "application_id": app["id"]}
    assert submitted["payload"]["accepted_on"] == yesterday()          # a plain ISO string
    assert submitted["actor"]["user"] == "wang.officer"
    text = repr(received)
    for member in data["members"]:
        assert member["resident_id"] not in text                      # no ID numbers in events
    assert "320.50" not in text and "__type__" not in text             # no incomes, no kombu wrappers


def test_id_numbers_and_incomes_are_encrypted_at_rest(intake, config):
    data = household(seed=8)
    data["incomes"] = [{"member": 0, "source": "wages", "monthly_amount": "777.77"}]
    with officer(config) as rpc:
        rpc.intake.register_household(data)
    engine = make_engine(config["DB_URIS"]["intake"])
    with engine.connect() as conn:
        dump = " ".join(str(row) for table in ("member", "income", "household")
                        for row in conn.execute(sa.text(f"SELECT * FROM {table}")))
    engine.dispose()
    assert data["members"][0]["resident_id"] not in dump
    assert "777.77" not in dump


def test_lookup_by_resident_id_is_audited_as_file_viewed(intake, config):
    data = household(seed=9)
    with officer(config) as rpc:
        hid = rpc.intake.register_household(data)["household_id"]
        found = rpc.intake.find_household({"resident_id": data["members"][0]["resident_id"]})
    assert found["id"] == hid
    engine = make_engine(config["DB_URIS"]["intake"])
    with engine.connect() as conn:
        kinds = [r[0] for r in conn.execute(sa.text("SELECT routing_key FROM outbox WHERE routing_key != 'command_recorded' ORDER BY id"))]
    engine.dispose()
    assert kinds == ["household_registered", "file_viewed"]


def test_typed_errors_name_the_field_and_change_nothing(intake, config):
    with officer(config) as rpc:
        bad = household(seed=10)
        bad["members"][0]["resident_id"] = bad["members"][0]["resident_id"][:-1] + (
            "0" if bad["members"][0]["resident_id"][-1] != "0" else "1")
        with pytest.raises(ValidationFailed) as err:
            rpc.intake.register_household(bad)
        assert "members.0.resident_id" in err.value.fields

        neg = household(seed=11)
        neg["incomes"] = [{"member": 0, "source": "wages", "monthly_amount": "-5.00"}]
        with pytest.raises(ValidationFailed) as err:
            rpc.intake.register_household(neg)
        assert "incomes.0.monthly_amount" in err.value.fields

        unknown = household(seed=12, community="420115009009")
        with pytest.raises(ValidationFailed) as err:
            rpc.intake.register_household(unknown)
        assert "community_code" in err.value.fields

        with pytest.raises(NotFound):
            rpc.intake.submit_application({"household_id": "nope", "accepted_on": yesterday()})

        created = rpc.intake.register_household(household(seed=13))
        app = rpc.intake.submit_application({"household_id": created["household_id"], "accepted_on": yesterday()})
        with pytest.raises(Conflict):
            rpc.intake.submit_application({"household_id": created["household_id"], "accepted_on": yesterday()})
        one = investigation(app["id"], created["member_ids"],
                            investigators=[{"user": "wang.officer", "signed": True}])
        with pytest.raises(ValidationFailed) as err:
            rpc.intake.record_investigation(one)
        assert "investigators" in err.value.fields
        twice = investigation(app["id"], created["member_ids"],
                              investigators=[{"user": "wang.officer", "signed": True}] * 2)
        with pytest.raises(ValidationFailed) as err:
            rpc.intake.record_investigation(twice)
        assert "twice" in err.value.message
        outsider = investigation(app["id"], created["member_ids"],
                                 investigators=[{"user": "wang.officer", "signed": True},
                                                {"user": "qian.other", "signed": True}])
        with pytest.raises(ValidationFailed) as err:
            rpc.intake.record_investigation(outsider)
        assert "investigators.1.user" in err.value.fields

    with officer(config, unit=OTHER_COMMUNITY, user="qian.other") as rpc:
        with pytest.raises(NotFound):            # another community's household does not exist for them
            rpc.intake.get_household(created["household_id"])

    engine = make_engine(config["DB_URIS"]["intake"])
    with engine.connect() as conn:
        households = conn.execute(sa.text("SELECT count(*) FROM household")).scalar()
        investigations = conn.execute(sa.text("SELECT count(*) FROM home_investigation")).scalar()
        events = [r[0] for r in conn.execute(sa.text("SELECT routing_key FROM outbox WHERE routing_key != 'command_recorded' ORDER BY id"))]
    engine.dispose()
    assert households == 1 and investigations == 0
    assert events == ["household_registered", "application_submitted"]


def test_missing_token_is_forbidden(intake, config):
    from nameko.standalone.rpc import ClusterRpcProxy
    with ClusterRpcProxy(config, timeout=10) as rpc:
        with pytest.raises(Forbidden):
            rpc.intake.register_household(household(seed=14))


def test_household_file_reports_missing_documents_until_complete(intake, config):
    with officer(config) as rpc:
        created = rpc.intake.register_household(household(seed=15))
        hid = created["household_id"]
        app = rpc.intake.submit_application({"household_id": hid, "accepted_on": yesterday()})
        report = rpc.intake.file_report(hid)
        assert report["complete"] is False
        assert report["missing"] == ["household_register", "id_copies", "application_form", "income_proof"]
        for kind in ("household_register", "id_copies", "application_form", "income_proof"):
            rpc.intake.register_document({"household_id": hid, "kind": kind, "title": kind,
                                          "document_date": yesterday(), "reference": app["id"]})
        assert rpc.intake.file_report(hid)["complete"] is True
        rpc.intake.record_investigation(investigation(app["id"], created["member_ids"]))
        report = rpc.intake.file_report(hid)
        assert report["missing"] == ["investigation_record"] and report["stages"][-1] == "investigated"


def test_monthly_checkin_and_labour_are_recorded_once(intake, config):
    from datetime import date
    this_month = date.today().strftime("%Y-%m")
    with officer(config) as rpc:
        created = rpc.intake.register_household(household(seed=16))
        hid = created["household_id"]
        rpc.intake.record_checkin({"household_id": hid, "month": this_month, "checked_in_on": date.today().isoformat()})
        with pytest.raises(Conflict):
            rpc.intake.record_checkin({"household_id": hid, "month": this_month,
                                       "checked_in_on": date.today().isoformat()})
        future = f"{date.today().year + 1}-01"
        with pytest.raises(ValidationFailed) as err:
            rpc.intake.record_checkin({"household_id": hid, "month": future, "checked_in_on": date.today().isoformat()})
        assert "month" in err.value.fields
        labour = {"household_id": hid, "member_id": created["member_ids"][0], "labour_date": yesterday(),
                  "activity": "社区清扫", "attendance": "unexcused"}
        assert rpc.intake.record_labour(labour)["member_id"] == created["member_ids"][0]
        with pytest.raises(Conflict):
            rpc.intake.record_labour(labour)
        with pytest.raises(ValidationFailed) as err:
            rpc.intake.record_labour(dict(labour, member_id="someone-else"))
        assert "member_id" in err.value.fields
