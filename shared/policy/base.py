"""What a policy decides. Each attribute is one row of DESIGN §2.6."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from shared.workdays import Counted, WorkdayCalendar


@dataclass(frozen=True)
class ReviewStep:
    """One step of the entry review (进口) as a policy orders it.

    kind: ``evaluation`` (社区民主评议), ``notice`` (张榜公示), ``committee``
    (乡镇街低保评审委员会), ``initial_opinion`` (乡镇街初审意见), ``joint_review``
    (区低保中心会审), ``result_notice`` (张榜公布).
    level: the administrative level that acts (community, township, district).
    """

    name: str
    kind: str
    level: str
    #: working days the step may take from when it opens (None: no clock)
    deadline_workdays: int | None = None
    #: a notice's posting period in calendar days
    notice_days: int | None = None
    #: the step may be skipped when nobody objected (national 意见 item 24)
    skippable_without_objection: bool = False


@dataclass(frozen=True)
class Policy:
    name: str
    title: str
    #: 入户调查: at least this many distinct investigators, named.
    min_investigators: int = 2
    #: National rule: the family members present sign the investigation record too.
    family_signature_required: bool = False
    #: National rule: the home investigation starts within this many working
    #: days of accepting the application (None: no statutory clock).
    investigation_start_workdays: int | None = None

    # --- the entry review (进口) -------------------------------------------
    #: the steps after the home investigation, in order
    review_steps: tuple[ReviewStep, ...] = ()
    #: democratic evaluation: share of residents' representatives among the
    #: participants, at least (national 2012 rule: 2/3); None: no such rule
    evaluation_min_representative_share: Decimal | None = None
    #: township review committee passes only with every member agreeing
    committee_unanimous: bool = True
    #: the whole process, acceptance to decision, in working days (None: no clock)
    process_workdays: int | None = None
    process_workdays_with_objection: int | None = None
    #: the joint review's three distinct roles (会审: 分管局长, 低保中心主任, 调查专干)
    joint_review_roles: tuple[str, ...] = ("deputy_director", "centre_director", "investigator")

    #: months between re-reviews, by case category (dynamic management, 动态管理)
    rereview_months: tuple[tuple[str, int], ...] = (("long_term", 12), ("stable", 6), ("unstable", 3))
    #: days the approved result stays posted (张榜公布)
    result_notice_days: int = 7

    def categorize(self, members: list[dict], on: date) -> str:
        """A case's category from its members (ages, disability, labour capacity).

        long_term: nobody can work (elderly, severely disabled, no labour
        capacity); unstable: someone of working age is fully able to work;
        stable: the rest. A policy with fewer categories maps them."""
        def age(m):
            born = date.fromisoformat(m["birth_date"]) if isinstance(m["birth_date"], str) else m["birth_date"]
            return on.year - born.year - ((on.month, on.day) < (born.month, born.day))

        able = [m for m in members if 16 <= age(m) < 60 and m["labour_capacity"] == "full"]
        if able:
            return self.category_names.get("unstable", "unstable")
        if all(age(m) >= 60 or m["disability"] in ("grade1", "grade2") or m["labour_capacity"] == "none"
               for m in members):
            return self.category_names.get("long_term", "long_term")
        return self.category_names.get("stable", "stable")

    @property
    def category_names(self) -> dict[str, str]:
        return dict(self.category_map)

    #: how the three built-in categories are named under this policy
    category_map: tuple[tuple[str, str], ...] = ()

    def months_until_rereview(self, category: str) -> int:
        return dict(self.rereview_months)[category]

    # --- dynamic management (动态管理, the exit 出口): DESIGN §2.4, §2.6 -------
    # (re-review cadence per category: ``rereview_months`` and ``category_map`` above)

    #: days ahead of a case's re-review date that the community officer is reminded (review_due)
    rereview_lead_days: int = 30
    #: 续保登记: missing this many monthly check-ins in a row proposes cancellation (None: no rule)
    checkin_missed_in_a_row: int | None = 2
    #: ... or this many in one calendar year (None: no rule)
    checkin_missed_per_year: int | None = 3
    #: 公益劳动: this many unexcused absences (per member) propose cancellation ("may cancel"; None: no rule)
    labour_unexcused_absences_to_cancel: int | None = 1
    #: refusing suitable work this many times stops that person's share (None: no rule)
    work_refusals_to_stop_share: int | None = None
    #: income found above the standard: paid this many more months when the
    #: household found work (渐退期; 0: cancelled from the next month)
    gradual_exit_months: int = 0
    #: a member's death brings the re-review forward to within this many months (None: no rule)
    death_review_months: int | None = None
    #: who approves a proposal to adjust or cancel a case, in order, each a distinct person
    #: (the rule or the township proposes; these roles decide)
    proposal_approvals: tuple[str, ...] = ("township_officer", "centre_director")

    @property
    def categories(self) -> tuple[str, ...]:
        """The case categories this policy knows (its re-review cadences)."""
        return tuple(name for name, _ in self.rereview_months)


    # --- verification with partner bureaus (家庭经济状况核对): DESIGN §2.7, docs/verification.md ---
    #: which fact sends the requests: "application_submitted" (申请受理) or "investigation_recorded"
    verification_starts_on: str = "application_submitted"
    #: the review step that may not be recorded while a bureau's answer is missing (None: none waits)
    verification_answers_before_step: str | None = "joint_review"
    #: ... unless the review may go on with answers missing (the report then says which are)
    verification_proceeds_without_answers: bool = False
    #: the joint review approves only on a complete 核对 report: every bureau answered — or, where
    #: the review may go on with answers missing, the missing bureaus' deadlines have passed
    verification_report_before_approval: bool = False
    #: months a household's signed authorization (授权书) lets Dibao ask and bureaus report changes
    verification_consent_months: int = 12
    #: dynamic monitoring (低收入人口动态监测): active cases are re-verified every this many months
    verification_monitoring_months: int = 6
    #: discrepancy rules' thresholds: an undeclared vehicle worth more than this (yuan) ...
    verification_vehicle_value: Decimal = Decimal("50000.00")
    #: ... more properties than this (the family home) ...
    verification_homes_allowed: int = 1
    #: ... deposits above this many months of the standard per household member ...
    verification_deposit_months: Decimal = Decimal("24")
    #: ... income found above the declared income by more than this (yuan a month)
    verification_income_tolerance: Decimal = Decimal("0.00")

    # --- appeals (复核): DESIGN §2.8, docs/appeals.md ---------------------------------
    #: a household may ask for a review of a rejection, cancellation or benefit change within
    #: this many days of the decision ...
    appeal_period: int = 15
    #: ... counted in working days (True) or calendar days (False)
    appeal_period_in_workdays: bool = False
    #: the appeal is decided within this many working days of filing
    appeal_decision_workdays: int = 15
    #: who decides an appeal (someone who took no part in the decision under appeal), at the district
    appeal_deciders: tuple[str, ...] = ("deputy_director", "centre_director")
    #: an upheld appeal of a rejection reopens the application at this review step; None: back to a
    #: home investigation (重新入户调查), after which the review starts again at its first step
    appeal_reopens_at: str | None = None

    def step(self, name: str) -> ReviewStep:
        for step in self.review_steps:
            if step.name == name:
                return step
        raise KeyError(name)

    def step_after(self, name: str | None) -> ReviewStep | None:
        """The step that follows ``name`` (None: the first step)."""
        names = [s.name for s in self.review_steps]
        index = 0 if name is None else names.index(name) + 1
        return self.review_steps[index] if index < len(self.review_steps) else None

    def benefit(self, standard: Decimal, household_size: int, monthly_income: Decimal,
                vulnerable_members: int = 0) -> Decimal:
        """补差: from the gap standard × household size − household income
        (:meth:`benefit_from_gap`: the formula, 分类施保 extras, the minimum)."""
        return self.benefit_from_gap(standard * household_size - monthly_income, household_size,
                                     vulnerable_members).quantize(Decimal("0.01"))

    # --- payments (支付): cadence, benefit formula, hold-backs — issue 5 ------------
    #: months one rural payment covers: 1 = monthly, 3 = quarterly (季发放); urban is always monthly
    rural_payout_months: int = 1
    #: 补差 formula: "gap" (standard × size − income, never below zero) or
    #: "banded" (分档: the per-capita gap falls in a band paying a fixed amount per person)
    benefit_formula: str = "gap"
    #: for "banded": ((per-capita gap up to, yuan per person), ...) ascending; a
    #: per-capita gap above the last bound is paid in full (the gap itself)
    benefit_bands: tuple[tuple[Decimal, Decimal], ...] = ()
    #: 分类施保: extra yuan per month for each vulnerable member of an eligible household
    vulnerable_member_extra: Decimal = Decimal("0.00")
    #: an eligible household's benefit is never below this (None: no minimum)
    minimum_benefit: Decimal | None = None
    #: a month's payment waits for that month's renewal check-in (续保登记)
    checkin_required_for_payment: bool = False
    #: a member counts as vulnerable (elderly, severely disabled, seriously ill) for 分类施保
    vulnerable_min_age: int = 60

    def payout_months(self, area_type: str) -> int:
        """How many months one payment period covers for this area type."""
        return self.rural_payout_months if area_type == "rural" else 1

    def benefit_from_gap(self, gap: Decimal, household_size: int, vulnerable_members: int = 0) -> Decimal:
        """The monthly benefit from the unclamped gap (standard × size − income):
        the formula, then 分类施保 extras, then the minimum. Zero when the gap is
        not positive. services/payments/rules.py builds the same rule as SQL."""
        zero = Decimal("0.00")
        if gap <= 0:
            return zero
        base = gap
        if self.benefit_formula == "banded":
            for bound, per_person in self.benefit_bands:
                if gap <= bound * household_size:
                    base = per_person * household_size
                    break
        amount = base + self.vulnerable_member_extra * vulnerable_members
        if self.minimum_benefit is not None and amount < self.minimum_benefit:
            amount = self.minimum_benefit
        return amount.quantize(Decimal("0.01"))

    def vulnerable(self, member: dict, on: date) -> bool:
        """分类施保: elderly, severely disabled (grade 1–2) or without labour capacity through illness."""
        born = date.fromisoformat(member["birth_date"]) if isinstance(member["birth_date"], str) \
            else member["birth_date"]
        age = on.year - born.year - ((on.month, on.day) < (born.month, born.day))
        return (age >= self.vulnerable_min_age or member.get("disability") in ("grade1", "grade2")
                or member.get("illness") == "serious")
    # --- end payments -------------------------------------------------------------

    def investigation_deadline(self, accepted_on: date, calendar: WorkdayCalendar) -> date | None:
        """Last day the home investigation may start (working-day calendar)."""
        if self.investigation_start_workdays is None:
            return None
        return calendar.add_workdays(accepted_on, self.investigation_start_workdays)

    def investigation_start_deadline(self, accepted_on: date, calendar: WorkdayCalendar) -> Counted | None:
        """:meth:`investigation_deadline` with whether its count crossed a provisional day."""
        if self.investigation_start_workdays is None:
            return None
        return calendar.count(accepted_on, self.investigation_start_workdays)
