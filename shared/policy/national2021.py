"""``national2021``: the 2021 national measure (最低生活保障审核确认办法) and the
2022 notice. Investigators and the family members present both sign; the
home investigation starts within 3 working days of acceptance. Entry review:
community evaluation (may be skipped when nobody objects) → township initial
opinion → one 7-day notice → the county confirms within 10 working days;
the whole process within 30 working days (45 with objections).
"""
from decimal import Decimal

from shared.policy.base import Policy, ReviewStep


def National2021Policy() -> Policy:
    return Policy(
        name="national2021",
        title="全国办法 2021 (national measure)",
        min_investigators=2,
        family_signature_required=True,
        investigation_start_workdays=3,
        review_steps=(
            ReviewStep("community_evaluation", "evaluation", "community", skippable_without_objection=True),
            ReviewStep("township_opinion", "initial_opinion", "township"),
            ReviewStep("township_notice", "notice", "township", notice_days=7),
            ReviewStep("joint_review", "joint_review", "district", deadline_workdays=10),
        ),
        evaluation_min_representative_share=Decimal(2) / Decimal(3),
        committee_unanimous=False,
        process_workdays=30,
        process_workdays_with_objection=45,
        # 2021: yearly for stable households, half-yearly for those able to work
        rereview_months=(("stable", 12), ("able_to_work", 6)),
        category_map=(("long_term", "stable"), ("stable", "stable"), ("unstable", "able_to_work")),
        # --- dynamic management (动态管理) ---
        rereview_lead_days=30,
        checkin_missed_in_a_row=None,          # no monthly stamp in the 2021 measure
        checkin_missed_per_year=None,
        labour_unexcused_absences_to_cancel=None,
        work_refusals_to_stop_share=3,         # 无正当理由三次拒绝适当工作: stop that person's share
        gradual_exit_months=6,                 # 渐退期 up to 6 months after finding work
        death_review_months=3,                 # review within 3 months after a member's death
        proposal_approvals=("township_officer", "district_officer"),  # township proposes, county confirms
        # --- payments (issue 5): monthly for everyone, from the month after
        # approval; per-capita gap with 分类施保 extras for vulnerable members
        # and a minimum payment (illustrative figures); no check-in hold-back
        rural_payout_months=1,
        benefit_formula="gap",
        vulnerable_member_extra=Decimal("50.00"),
        minimum_benefit=Decimal("30.00"),
        checkin_required_for_payment=False,
        # --- end payments
        # --- verification (核对, Art. 13–15): asked on acceptance, answered before the township's
        # initial opinion, which waits for every bureau; illustrative thresholds
        verification_starts_on="application_submitted",
        verification_answers_before_step="township_opinion",
        verification_proceeds_without_answers=False,
        verification_report_before_approval=True,     # Art. 13: 核对 is part of every application
        verification_consent_months=12,
        verification_monitoring_months=6,
        verification_vehicle_value=Decimal("50000.00"),
        verification_homes_allowed=1,
        verification_deposit_months=Decimal("24"),
        verification_income_tolerance=Decimal("50.00"),
        # --- appeals (复核): within 10 working days of the decision; the county decides within
        # 10 working days; an upheld rejection reopens at the township's initial opinion
        # (illustrative figures: the measure leaves them to the province)
        appeal_period=10,
        appeal_period_in_workdays=True,
        appeal_decision_workdays=10,
        appeal_deciders=("deputy_director", "centre_director", "district_officer"),
        appeal_reopens_at="township_opinion",
    )
