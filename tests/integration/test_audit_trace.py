"""Responsibility tracing over the real services: every step of a
household's entry with names and roles, refused commands recorded, who let a
wrongly included case in, and who may ask."""
from __future__ import annotations

import pytest

from contracts.audit_chain import verify
from services.audit.service import AuditService
from services.intake.service import IntakeService
from services.review.service import ReviewService
from shared.db import make_engine
from shared.errors import Forbidden, ValidationFailed
from shared.identity import Role
from shared.testing import wait_for
from tests.audit_helpers import approved_case, auditor, publish, recorded, records
from tests.helpers import COMMUNITY, OTHER_COMMUNITY, household, officer, register_staff

pytestmark = pytest.mark.integration


@pytest.fixture
def services(container_factory, config):
    for cls in (AuditService, IntakeService, ReviewService):
        container_factory(cls, config).start()
    register_staff(config)
    return config


def test_trace_shows_every_step_of_the_entry_with_names_and_roles(services):
    config = services
    entry = approved_case(config, seed=41)
    case_id = entry["case"]["id"]
    recorded(config, f"case_id = '{case_id}' AND type = 'case_approved'")
    with auditor(config) as rpc:
        lines = rpc.audit.trace({"household_id": entry["household_id"]})
    steps = [(line["what"], line["name"], line["role"]) for line in lines]
    for step in [("intake.register_household", "wang.officer", "community_officer"),
                 ("intake.application_submitted", "wang.officer", "community_officer"),
                 ("intake.investigation_recorded", "wang.officer", "community_officer"),
                 ("review.community_evaluated", "王专干", "community_officer"),
                 ("review.township_reviewed", "李办事员", "township_officer"),
                 ("review.sign_joint_review", "孙局长", "deputy_director"),
                 ("review.sign_joint_review", "周主任", "centre_director"),
                 ("review.case_approved", "王专干", "community_officer")]:
        assert step in steps, step
    assert [line["seq"] for line in lines] == sorted(line["seq"] for line in lines)
    assert all(line["when"] for line in lines)
    with auditor(config) as rpc:
        # review read the file for its decision: intake's own relay carries that record
        readers = wait_for(lambda: rpc.audit.file_readers(entry["household_id"]) or None, timeout=30,
                           message="the file's readers recorded")
        township_work = rpc.audit.trace({"operator": "li.township", "from": "2020-01-01", "to": "2099-12-31"})
        community_work = rpc.audit.trace({"unit_code": COMMUNITY})
    assert readers and {r["what"] for r in readers} == {"intake.file_viewed"}
    assert {line["user"] for line in township_work} == {"li.township"}
    assert "review.township_reviewed" in {line["what"] for line in township_work}
    assert {line["unit"] for line in community_work} == {COMMUNITY}
    assert "intake.investigation_recorded" in {line["what"] for line in community_work}
    verification, _ = verify(make_engine(config["DB_URIS"]["audit"]))
    assert verification.ok and verification.records >= len(lines)


def test_refused_commands_are_recorded_with_outcome_and_field_names(services):
    config = services
    bad = household(seed=42)
    bad["members"][0]["name"] = ""
    with officer(config) as rpc:
        with pytest.raises(ValidationFailed):
            rpc.intake.register_household(bad)
    with officer(config, unit=OTHER_COMMUNITY, user="qian.other") as rpc:
        with pytest.raises(Forbidden):
            rpc.intake.register_household(household(seed=43, community=COMMUNITY))
    def both_refusals():   # the fixture's staff registrations are intake commands too: wait for these two
        rows = records(config, "type = 'command_recorded' AND source = 'intake'")
        found = {r.actor_user: r.payload for r in rows if r.payload["method"] == "register_household"}
        return (rows, found) if {"wang.officer", "qian.other"} <= found.keys() else None
    rows, by_user = wait_for(both_refusals, timeout=30, message="both refused registrations recorded")
    assert by_user["wang.officer"]["outcome"] == "validation_failed"
    assert "members.0.name" in by_user["wang.officer"]["error_fields"]
    assert by_user["qian.other"]["outcome"] == "forbidden"
    text = repr([tuple(r) for r in rows])
    for member in bad["members"]:
        assert member["resident_id"] not in text      # no ID number in the record


def test_who_let_them_in_names_the_entry_people_of_a_wrongly_included_case(services):
    config = services
    entry = approved_case(config, seed=44)
    case = entry["case"]
    publish(config, "review", "case_cancelled", {"household_id": entry["household_id"], "case_id": case["id"]},
            {"case_id": case["id"], "household_id": entry["household_id"], "community_code": COMMUNITY,
             "township_code": COMMUNITY[:9], "area_type": "urban", "household_size": entry["size"],
             "effective_month": "2026-12", "reason": "清查发现不符合条件", "rule": "inspection",
             "wrongly_included": True, "gradual_exit_until": None},
            actor={"user": "he.auditor", "name": "何审计", "role": "auditor", "unit": "420115"})
    recorded(config, f"case_id = '{case['id']}' AND type = 'case_cancelled'")
    with auditor(config) as rpc:
        answer = rpc.audit.who_let_them_in(case["id"])
    assert answer["wrongly_included"] is True
    people = {(p["part"], p["name"]) for p in answer["people"]}
    assert ("investigator", "王专干") in people and ("investigator", "李办事员") in people
    assert ("evaluator", "张代表") in people and ("committee member", "刘科长") in people
    assert ("joint review signer", "孙局长") in people and ("joint review signer", "周主任") in people
    assert any(part.startswith("approver") for part, _ in people)


def test_only_auditors_and_directors_query_within_their_unit_and_each_query_is_recorded(services):
    config = services
    entry = approved_case(config, seed=45)
    recorded(config, f"household_id = '{entry['household_id']}' AND type = 'case_approved'")
    with officer(config) as rpc:                           # a community officer may not
        with pytest.raises(Forbidden):
            rpc.audit.trace({"household_id": entry["household_id"]})
    with auditor(config, unit="420115002") as rpc:         # another township's auditor may not
        with pytest.raises(Forbidden):
            rpc.audit.trace({"household_id": entry["household_id"]})
    with auditor(config, role=Role.PARTNER_BUREAU, user="cz.finance", name="财政局") as rpc:
        with pytest.raises(Forbidden):
            rpc.audit.trace({"household_id": entry["household_id"]})
        figures = rpc.audit.statistics("2026-11-30")            # figures only, no names
        assert "王专干" not in repr(figures)
    with auditor(config, role=Role.CENTRE_DIRECTOR, user="zhou.director", name="周主任") as rpc:
        assert rpc.audit.trace({"household_id": entry["household_id"]})
    # the three refusals and the director's query, in whatever order ingest writes them
    def refusals():
        rows = records(config, "source = 'audit' AND type = 'command_recorded'")
        users = {r.actor_user for r in rows if r.payload["outcome"] == "forbidden"}
        return users if users >= {"wang.officer", "he.auditor", "cz.finance"} else None

    assert wait_for(refusals, timeout=30, message="the three refusals recorded") == {
        "wang.officer", "he.auditor", "cz.finance"}
    asked = recorded(config, "source = 'audit' AND type = 'query_recorded' AND actor_user = 'zhou.director'")
    assert any(r.household_id == entry["household_id"] for r in asked)
