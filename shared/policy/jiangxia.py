"""``jiangxia``: the seed's practice — Jiangxia District, Wuhan (2000s).

Home investigation by at least two named investigators who are accountable
for what they record (责任追究制度); no statutory start deadline. Entry review:
community democratic evaluation → 7-day community notice → township review
committee (unanimous) → 7-day township notice → district joint review by
three people in three roles.
"""
from decimal import Decimal

from shared.policy.base import Policy, ReviewStep


def JiangxiaPolicy() -> Policy:
    return Policy(
        name="jiangxia",
        title="江夏区实践 (seed practice)",
        min_investigators=2,
        family_signature_required=False,
        investigation_start_workdays=None,
        review_steps=(
            ReviewStep("community_evaluation", "evaluation", "community"),
            ReviewStep("community_notice", "notice", "community", notice_days=7),
            ReviewStep("township_review", "committee", "township"),
            ReviewStep("township_notice", "notice", "township", notice_days=7),
            ReviewStep("joint_review", "joint_review", "district"),
        ),
        evaluation_min_representative_share=None,
        committee_unanimous=True,
        # --- dynamic management (动态管理): the seed's cadence, stamp and labour rules ---
        rereview_lead_days=30,
        checkin_missed_in_a_row=2,             # 连续两次未续保登记 → cancel
        checkin_missed_per_year=3,             # 一年内累计三次 → cancel
        labour_unexcused_absences_to_cancel=1,  # 无故不参加公益劳动 → may cancel
        work_refusals_to_stop_share=None,
        gradual_exit_months=0,                 # income above the standard: cancelled
        death_review_months=None,
        proposal_approvals=("township_officer", "centre_director"),  # 乡镇街审核, 区低保中心审批
        # --- payments (issue 5): rural benefits paid quarterly (季发放); the
        # monthly check-in (续保登记) comes before each month's benefit
        rural_payout_months=3,
        benefit_formula="gap",
        checkin_required_for_payment=True,
        # --- end payments
        # --- verification (核对): asked once the home visit is recorded; the review may go on
        # with answers missing (the joint review sees which); a car above 30,000 yuan, a second
        # property, deposits above 12 months of the standard per person, any income above declared
        verification_starts_on="investigation_recorded",
        verification_answers_before_step="joint_review",
        verification_proceeds_without_answers=True,
        verification_report_before_approval=False,    # the seed's practice knew no 核对: not a condition
        verification_consent_months=12,
        verification_monitoring_months=3,
        verification_vehicle_value=Decimal("30000.00"),
        verification_homes_allowed=1,
        verification_deposit_months=Decimal("12"),
        verification_income_tolerance=Decimal("0.00"),
        # --- appeals (复核): within 15 days of the decision; decided within 15 working days by
        # the district's leaders; an upheld rejection goes back to a home investigation
        appeal_period=15,
        appeal_period_in_workdays=False,
        appeal_decision_workdays=15,
        appeal_deciders=("deputy_director", "centre_director"),
        appeal_reopens_at=None,
    )
