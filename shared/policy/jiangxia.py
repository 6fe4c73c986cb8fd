"""``jiangxia``: the seed's practice — Jiangxia District, Wuhan (2000s).

Home investigation by at least two named investigators who are accountable
for what they record (责任追究制度); no statutory start deadline.
"""
from shared.policy.base import Policy


def JiangxiaPolicy() -> Policy:
    return Policy(
        name="jiangxia",
        title="江夏区实践 (seed practice)",
        min_investigators=2,
        family_signature_required=False,
        investigation_start_workdays=None,
    )
