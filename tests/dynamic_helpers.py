"""Driving dynamic management in tests: a clock the test moves, cases taken
through the whole entry review of their policy, proposals approved by the
people the policy names, and review's events read from its outbox."""
from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import sqlalchemy as sa

from services.intake.service import IntakeService
from services.notify.service import NotifyService
from services.review.service import ReviewService
from shared.clock import FileClock
from shared.db import make_engine
from shared.identity import Role
from shared.policy import load_policy
from shared.testing import rpc_as, wait_for
from tests.helpers import DISTRICT, household, investigation, officer, register_staff
from tests.review_helpers import (close_notice, committee, community, deputy, director, evaluation, review_state,
                                  township)

#: the first day of the simulated time (a Monday); approved cases are paid from the next month
START = date(2027, 1, 11)
STANDARD = 820  # the urban sample standard (shared/data/standards.csv) for COMMUNITY


def start(container_factory, config, policy: str, tmp_path: Path, notify: bool = False, today: date = START,
          month_end_seconds: float = 3600):
    """intake and review (and notify) under ``policy`` on a clock the test moves."""
    clock = FileClock(tmp_path / "clock")
    clock.set(today)
    config = dict(config, POLICY=policy, CLOCK=f"file:{clock.path}", MONTH_END_CHECK_SECONDS=month_end_seconds)
    services = (IntakeService, ReviewService) + ((NotifyService,) if notify else ())
    for service in services:
        container_factory(service, config).start()
    register_staff(config)
    return config, clock


def through_the_review(config, today: date, seed: int, incomes=None, until: str | None = None):
    """A household registered, its application accepted yesterday and investigated today, then
    taken through the policy's steps — up to the first step of kind ``until`` (opened, not taken),
    else all of them. (household data, intake's answer to the registration, application id)"""
    data = household(seed=seed)
    data["incomes"] = incomes or []
    with officer(config) as rpc:
        created = rpc.intake.register_household(data)
        app = rpc.intake.submit_application({"household_id": created["household_id"],
                                             "accepted_on": (today - timedelta(days=1)).isoformat()})
        rpc.intake.record_investigation(investigation(app["id"], created["member_ids"], on=today))
    for step in load_policy(config["POLICY"]).review_steps:
        f = review_state(config, app["id"], step=step.name)
        if step.kind == until:
            break
        take_step(config, f, step.kind, today)
    return data, created, app["id"]


def approved_case(config, clock: FileClock, seed: int, incomes=None) -> dict:
    """A household taken through every step of the policy to an approved case."""
    data, created, app_id = through_the_review(config, clock.today(), seed, incomes)
    final = review_state(config, app_id, status="approved")
    case = final["case"]
    case.update(household=data, member_ids=created["member_ids"], household_id=created["household_id"])
    return case


def take_step(config, f: dict, kind: str, today: date) -> None:
    app_id = f["application_id"]
    if kind == "evaluation":
        with community(config) as rpc:
            rpc.review.record_evaluation(evaluation(app_id, meeting_date=today.isoformat()))
    elif kind == "notice":
        close_notice(config, f)
    elif kind in ("committee", "initial_opinion"):
        with township(config) as rpc:
            rpc.review.record_township_review(dict(committee(app_id), meeting_date=today.isoformat()))
    elif kind == "joint_review":
        with deputy(config) as rpc:
            rpc.review.sign_joint_review({"application_id": app_id, "role": "deputy_director"})
        with director(config) as rpc:
            rpc.review.sign_joint_review({"application_id": app_id, "role": "centre_director"})
        with community(config) as rpc:
            rpc.review.sign_joint_review({"application_id": app_id, "role": "investigator"})


def district_officer(config):
    return rpc_as(config, Role.DISTRICT_OFFICER, DISTRICT, user="zhao.district", name="赵专干")


def approvers(config) -> list:
    """The people who approve a proposal under the policy, in order."""
    people = {"township_officer": township, "centre_director": director, "district_officer": district_officer}
    return [people[role] for role in load_policy(config["POLICY"]).proposal_approvals]


def approve_fully(config, proposal_id: int) -> dict:
    result = None
    for person in approvers(config):
        with person(config) as rpc:
            result = rpc.review.approve_proposal({"proposal_id": proposal_id, "remarks": "同意"})
    return result


def month_end(config, as_of: date) -> dict:
    with district_officer(config) as rpc:
        return rpc.review.run_month_end(as_of.isoformat())


def proposals(config, case_id: str) -> list[dict]:
    with township(config) as rpc:
        return rpc.review.get_case(case_id)["proposals"]


def checkin(config, household_id: str, month: str, on: date) -> None:
    with officer(config) as rpc:
        rpc.intake.record_checkin({"household_id": household_id, "month": month, "checked_in_on": on.isoformat()})


def wait_checkins(config, count: int) -> None:
    """Until review has taken in ``count`` check-ins from intake's events."""
    def seen():
        return scalar(config, "SELECT count(*) FROM household_checkin") >= count
    wait_for(seen, timeout=20, message=f"{count} check-ins at review")


def scalar(config, sql: str, service: str = "review"):
    engine = make_engine(config["DB_URIS"][service])
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(sql)).scalar()
    finally:
        engine.dispose()


def events(config, kind: str, service: str = "review") -> list[dict]:
    """The envelopes of ``kind`` that ``service`` committed (its outbox)."""
    engine = make_engine(config["DB_URIS"][service])
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT body FROM outbox WHERE routing_key = :k ORDER BY id"), {"k": kind})
            return [json.loads(r[0]) for r in rows]
    finally:
        engine.dispose()


def wait_event(config, kind: str, count: int = 1, service: str = "review") -> list[dict]:
    return wait_for(lambda: (lambda found: found if len(found) >= count else None)(events(config, kind, service)),
                    timeout=20, message=f"{count} {kind}")



def republish(config, envelope: dict, source: str) -> None:
    """Deliver an event again, as the broker would after a lost ack."""
    from shared.testing import publish_event

    publish_event(config, dict(envelope, source=source), routing_key=envelope["type"].split(".")[-1])


def update_incomes(config, case: dict, incomes: list[dict]) -> dict:
    data = dict(case["household"], incomes=incomes)
    with officer(config) as rpc:
        return rpc.intake.update_household(case["household_id"], data)


def wait_proposals(config, case_id: str, count: int = 1) -> list[dict]:
    return wait_for(lambda: (lambda found: found if len(found) >= count else None)(proposals(config, case_id)),
                    timeout=20, message=f"{count} proposal(s)")
