"""Builders for test data shared by the service tests."""
from __future__ import annotations

from datetime import date, timedelta

from shared.identity import Role
from shared.sample import SampleDistrict
from shared.testing import rpc_as

DISTRICT = "420115"
TOWNSHIP = "420115001"
COMMUNITY = "420115001001"
OTHER_COMMUNITY = "420115002001"

INVESTIGATORS = [
    {"user": "wang.officer", "name": "王专干", "role": "community_officer", "unit": COMMUNITY},
    {"user": "li.township", "name": "李办事员", "role": "township_officer", "unit": TOWNSHIP},
    {"user": "zhao.district", "name": "赵专干", "role": "district_officer", "unit": DISTRICT},
    {"user": "qian.other", "name": "钱专干", "role": "community_officer", "unit": OTHER_COMMUNITY},
]


def officer(config, unit=COMMUNITY, role=Role.COMMUNITY_OFFICER, user="wang.officer"):
    return rpc_as(config, role, unit, user=user)


#: the district's signers and deciders, registered with the investigators
DECIDERS = [
    {"user": "sun.deputy", "name": "孙局长", "role": "deputy_director", "unit": DISTRICT},
    {"user": "zhou.director", "name": "周主任", "role": "centre_director", "unit": DISTRICT},
    {"user": "zhou.township", "name": "周办事员", "role": "township_officer", "unit": TOWNSHIP},
]
STAFF = INVESTIGATORS + DECIDERS


def register_staff(config, people=None, services=("intake", "review")):
    """identity's ``account_created`` for each person (the harness plays
    identity), then wait until the running services' staff registries show
    them (a service that does not run is skipped)."""
    from nameko.exceptions import UnknownService

    from shared.testing import publish_identity_event, wait_for

    people = STAFF if people is None else people
    for person in people:
        publish_identity_event(config, "account_created", {"user": person["user"], "name": person["name"],
                                                           "unit": person["unit"], "roles": [person["role"]]})
    wanted = {(p["user"], p["role"]) for p in people}
    with rpc_as(config, Role.DISTRICT_OFFICER, DISTRICT, user="zhao.district", name="赵专干") as rpc:
        for service in services:
            def registered():
                try:
                    return wanted <= {(s["user"], s["role"]) for s in getattr(rpc, service).list_staff(DISTRICT)}
                except UnknownService:
                    return True
            wait_for(registered, timeout=20, message=f"{service}'s staff registry")


def household(seed: int = 1, community: str = COMMUNITY) -> dict:
    return SampleDistrict(seed=seed).household(community)


def investigation(application_id: str, member_ids: list[str], on: date | None = None, **overrides) -> dict:
    data = {
        "application_id": application_id,
        "investigated_on": (on or date.today()).isoformat(),
        "investigators": [{"user": "wang.officer", "signed": True}, {"user": "li.township", "signed": True}],
        "family_signatures": [{"member_id": member_ids[0]}],
        "verified_incomes": [{"member_id": member_ids[0], "source": "wages", "monthly_amount": "320.50"}],
        "verified_assets": [{"kind": "savings", "description": "存款", "value": "1200.00"}],
        "findings": "家中无贵重物品，住房简陋",
    }
    data.update(overrides)
    return data


def yesterday() -> str:
    return (date.today() - timedelta(days=1)).isoformat()
