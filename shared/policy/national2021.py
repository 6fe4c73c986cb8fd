"""``national2021``: the 2021 national measure (最低生活保障审核确认办法) and the
2022 notice. Investigators and the family members present both sign; the
home investigation starts within 3 working days of acceptance.
"""
from shared.policy.base import Policy


def National2021Policy() -> Policy:
    return Policy(
        name="national2021",
        title="全国办法 2021 (national measure)",
        min_investigators=2,
        family_signature_required=True,
        investigation_start_workdays=3,
    )
