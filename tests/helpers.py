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


def register_staff(config):
    with rpc_as(config, Role.ADMIN, DISTRICT, user="admin") as rpc:
        for person in INVESTIGATORS:
            rpc.intake.register_staff(person)


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
