"""Driving the review in tests: the people of each level, and notify's
events published by hand where a test runs without the notify service."""
from __future__ import annotations

from datetime import date


from shared.events import Event, envelope
from shared.identity import Role
from shared.testing import publish_event, rpc_as, wait_for
from tests.helpers import COMMUNITY, DISTRICT, TOWNSHIP

import contracts.notify  # noqa: F401 - registers notify's contract
import contracts.review  # noqa: F401

#: the evaluation panel and the township committee: named as the record names them, by name
#: only — none of them shares a name with a person of the staff registry (tests/helpers.py
#: STAFF), or that person would count as having taken part in every test's entry review
#: (the appeal's "took no part" check goes by name too)
PANEL = [{"name": n, "role": r, "signed": True} for n, r in
         [("张代表", "representative"), ("李代表", "representative"), ("王代表", "representative"),
          ("冯干事", "officer")]]
COMMITTEE = [{"name": n, "department": d, "opinion": "agree", "signed": True} for n, d in
             [("陈主任", "civil_affairs"), ("刘科长", "finance"), ("周所长", "police"), ("吴司法", "justice")]]


def community(config):
    return rpc_as(config, Role.COMMUNITY_OFFICER, COMMUNITY, user="wang.officer", name="王专干")


def township(config):
    return rpc_as(config, Role.TOWNSHIP_OFFICER, TOWNSHIP, user="li.township", name="李办事员")


def deputy(config):
    return rpc_as(config, Role.DEPUTY_DIRECTOR, DISTRICT, user="sun.deputy", name="孙局长")


def director(config):
    return rpc_as(config, Role.CENTRE_DIRECTOR, DISTRICT, user="zhou.director", name="周主任")


def evaluation(application_id, passed=True, participants=None, **more):
    participants = participants or PANEL
    votes_for = len(participants) if passed else 0
    return {"application_id": application_id, "meeting_date": date.today().isoformat(),
            "participants": participants, "votes_for": votes_for,
            "votes_against": 0 if passed else len(participants), "abstentions": 0, "passed": passed,
            "remarks": "经评议符合条件" if passed else "家庭收入超标", **more}


def committee(application_id, passed=True, members=None):
    return {"application_id": application_id, "meeting_date": date.today().isoformat(),
            "members": COMMITTEE if members is None else members, "passed": passed, "remarks": ""}


def review_state(config, application_id, step=None, status=None, timeout=20):
    """Wait until review shows the application at ``step`` (and/or ``status``)."""
    from shared.errors import NotFound

    def current():
        with township(config) as rpc:
            try:
                f = rpc.review.get_application(application_id)
            except NotFound:
                return None
        if (step is None or f["step"] == step) and (status is None or f["status"] == status):
            return f
        return None

    return wait_for(current, timeout=timeout, message=f"application at {step or status}")


def publish_as_notify(config, event_type: str, subject: dict, payload: dict) -> dict:
    env = envelope(Event("notify", event_type, subject, payload), None, "test")
    return publish_event(config, env)


def close_notice(config, f: dict, objections: int = 0) -> dict:
    return publish_as_notify(config, "notice_closed",
                             {"notice_id": f"notice-{f['application_id'][:8]}-{f['step']}",
                              "household_id": f["household_id"], "application_id": f["application_id"]},
                             {"stage": f["step"], "unit_code": COMMUNITY, "closed_on": date.today(),
                              "objections": objections})


def object_to(config, f: dict) -> dict:
    return publish_as_notify(config, "objection_filed",
                             {"notice_id": f"notice-{f['application_id'][:8]}-{f['step']}",
                              "objection_id": "obj-1", "household_id": f["household_id"],
                              "application_id": f["application_id"]},
                             {"stage": f["step"], "unit_code": COMMUNITY, "filed_on": date.today(),
                              "anonymous": True})
