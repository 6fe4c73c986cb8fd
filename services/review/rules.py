"""The review's rules: pure functions named after the rule they enforce."""
from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from contracts.review import (RULE_CAMPAIGN, RULE_DEATH_REVIEW, RULE_INCOME_ABOVE,  # noqa: F401 - the rule names
                              RULE_INCOME_CHANGED, RULE_MANUAL, RULE_REFUSED_WORK, RULE_THREE_IN_A_YEAR,
                              RULE_TWO_IN_A_ROW, RULE_UNEXCUSED_LABOUR, RULE_VERIFICATION_CHANGE)
from shared.errors import Conflict, Forbidden, ValidationFailed
# the one month arithmetic (shared.months), under the names these rules use
from shared.months import add_months as add_months_to_month, month_of, months_later as add_months  # noqa: F401
from shared.policy.base import Policy, ReviewStep


def step_is_current(status: str, step: str | None, expected_kind: str, policy: Policy) -> ReviewStep:
    """Steps go in the policy's order: an out-of-order step is a conflict."""
    if status != "in_review" or step is None:
        raise Conflict(f"the application is {status}; no review step is open", {"status": status})
    current = policy.step(step)
    if current.kind != expected_kind:
        raise Conflict(f"the open step is {current.name}, not a {expected_kind}",
                       {"step": current.name, "expected": expected_kind})
    return current


def overdue(step_due_on: date | None, process_due_on: date | None, as_of: date) -> bool:
    """Late (超期): past the open step's deadline or the whole process's, on ``as_of``."""
    return any(due is not None and due < as_of for due in (step_due_on, process_due_on))


def participants_all_signed(participants: list[dict], field: str = "participants") -> None:
    """参加评议人员必须签名: everyone who took part signs."""
    if not participants:
        raise ValidationFailed.field(field, "nobody is recorded as taking part")
    for n, person in enumerate(participants):
        if not person["signed"]:
            raise ValidationFailed.field(f"{field}.{n}.signed", "every participant signs the record")


def representatives_share_suffices(participants: list[dict], policy: Policy) -> None:
    """2012 rule (national): residents' representatives ≥ 2/3 of the attendees."""
    share = policy.evaluation_min_representative_share
    if share is None:
        return
    reps = sum(1 for p in participants if p["role"] == "representative")
    if Decimal(reps) < share * len(participants):
        raise ValidationFailed.field(
            "participants", f"residents' representatives must be at least {share:.0%} of the participants")


def votes_match_decision(votes_for: int, votes_against: int, abstentions: int, participants: int,
                         passed: bool) -> None:
    """The initial decision follows the vote: passing needs a majority of those present."""
    if votes_for + votes_against + abstentions > participants:
        raise ValidationFailed.field("votes_for", "more votes than participants")
    majority = votes_for * 2 > participants
    if passed and not majority:
        raise ValidationFailed.field("passed", "a household without a majority of votes cannot pass")
    if not passed and majority:
        raise ValidationFailed.field("passed", "a majority voted for; record the evaluation as passed")


def committee_passes_only_unanimously(members: list[dict], passed: bool, policy: Policy) -> bool:
    """评审委员会: passes only with every member's agreement (取得一致意见后)."""
    agree = all(m["opinion"] == "agree" for m in members)
    if passed and policy.committee_unanimous and not agree:
        raise ValidationFailed.field("passed", "the committee was not unanimous; it cannot be recorded as passed")
    return agree


def evaluation_may_be_skipped(step: ReviewStep, objections: int) -> None:
    if not step.skippable_without_objection:
        raise Conflict(f"the policy does not allow skipping {step.name}", {"step": step.name})
    if objections:
        raise Conflict("an objection was raised: the evaluation must be held", {"objections": objections})


def joint_review_role_of(actor, investigators: list[dict], role: str, registered: bool) -> str:
    """会审: the deputy director, the centre director and an officer who did the
    home investigation — each signs as themself, in their own role, which the
    staff registry says they hold, at signing time, in a unit covering the
    application (``registered``). A service never signs."""
    if actor.is_service:
        raise Forbidden("a service does not sign the joint review", {"reason": "service_not_allowed"})
    if role == "investigator":
        if actor.user not in {i["user"] for i in investigators}:
            raise Forbidden("only an officer who did the home investigation signs as the investigator",
                            {"role": role})
    elif not actor.has(role):
        raise Forbidden(f"you do not hold the role {role}", {"role": role})
    if not registered:
        raise Forbidden(f"the staff registry does not show you as {role} for this application's unit",
                        {"role": role, "reason": "not_in_registry"})
    return role


def signatures_are_for_the_same_amount(signatures: list, benefit_override, override_reason) -> None:
    """The three sign one decision: the benefit and any override with its
    reason. A signature for something else is a Conflict naming the difference."""
    mine = {"benefit_override": None if benefit_override is None else f"{Decimal(benefit_override):.2f}",
            "override_reason": (override_reason or "").strip() or None}
    for sig in signatures:
        theirs = {"benefit_override": None if sig.benefit_override is None else f"{Decimal(sig.benefit_override):.2f}",
                  "override_reason": (sig.override_reason or "").strip() or None}
        differs = sorted(k for k in mine if mine[k] != theirs[k])
        if differs:
            raise Conflict(f"the {sig.role} signed a different decision ({', '.join(differs)})",
                           {"differs": differs, "signed": theirs, "yours": mine, "role": sig.role})


def nobody_fills_two_roles(signatures: list, actor_user: str, role: str) -> None:
    """No single person decides: three distinct people in three roles."""
    for sig in signatures:
        if sig.role == role:
            raise Conflict(f"the {role} has already signed", {"rule": "seat_taken", "role": role, "user": sig.user})
        if sig.user == actor_user:
            raise Conflict(f"{actor_user} already signed as {sig.role}; nobody fills two roles",
                           {"rule": "nobody_fills_two_roles", "user": actor_user, "role": sig.role})


def override_has_reason(amount, reason: str | None) -> None:
    if amount is not None and not (reason and reason.strip()):
        raise ValidationFailed.field("override_reason", "a benefit override needs a written reason")


# --- dynamic management (动态管理, the exit 出口) ---------------------------------------
# Each rule below is pure and named after the rule of DESIGN §2.4; the month-end
# job (services/review/month_end.py) evaluates the check-in and labour rules
# set-based in SQL with the same parameters, and tests compare the two.

# The rule names (RULE_*, a proposal's ``rule``) are review's contract: contracts.review.
CAMPAIGN_RESULTS = ("kept", "raised", "lowered", "cancelled", "wrongly_included")
WORK_INCOME_SOURCES = ("wages", "business")


def month_number(month: str) -> int:
    """'2026-03' → 2026 × 12 + 3 (the same arithmetic the SQL does)."""
    return int(month[:4]) * 12 + int(month[5:7])


def month_end_not_after_today(as_of: date, today: date, clock_moves_at_will: bool) -> date:
    """A month end is judged on days that have come: ``as_of`` after today
    only on a test or demo clock (shared/clock.py), never on the real date."""
    if as_of > today and not clock_moves_at_will:
        raise ValidationFailed.field("as_of", f"after today ({today.isoformat()}): the month has not ended yet")
    return as_of


def month_evaluated(as_of: date) -> str:
    """The month a month-end run on ``as_of`` judges: the last month that has
    ended by then (as_of's own month on its last day, else the one before)."""
    if (as_of + timedelta(days=1)).month != as_of.month:
        return month_of(as_of)
    return add_months_to_month(month_of(as_of), -1)


def missed_checkin_months(start_month: str, through: str, checked: set[str], since: str | None = None) -> list[str]:
    """The months from the case's first paid month (or ``since``) through ``through`` without a stamp."""
    first = max(start_month, since) if since else start_month
    months, m = [], first
    while m <= through:
        if m not in checked:
            months.append(m)
        m = add_months_to_month(m, 1)
    return months


def two_missed_checkins_in_a_row(start_month: str, month: str, checked: set[str], policy: Policy) -> str | None:
    """续保登记: the month just ended and the one before both missed → propose
    cancellation. Returns the fact (the months) or None."""
    n = policy.checkin_missed_in_a_row
    if not n:
        return None
    first = add_months_to_month(month, -(n - 1))
    if first < start_month:
        return None
    window = [add_months_to_month(first, i) for i in range(n)]
    return f"checkins:{window[0]}..{window[-1]}" if not set(window) & checked else None


def three_missed_checkins_in_a_year(start_month: str, month: str, checked: set[str], policy: Policy) -> str | None:
    """续保登记: three months missed in one calendar year (through ``month``) →
    propose cancellation, once a year. Returns the fact or None."""
    n = policy.checkin_missed_per_year
    if not n or start_month > month:
        return None
    missed = missed_checkin_months(start_month, month, checked, since=f"{month[:4]}-01")
    return f"checkins:{month[:4]}" if len(missed) >= n else None


def unexcused_labour_absence(unexcused: int, policy: Policy) -> bool:
    """公益劳动: unexcused absence (by one member) may cancel the case → propose."""
    n = policy.labour_unexcused_absences_to_cancel
    return bool(n) and unexcused >= n


def refused_suitable_work(refusals: int, policy: Policy) -> bool:
    """National: refusing suitable work N times stops that person's share → propose."""
    n = policy.work_refusals_to_stop_share
    return bool(n) and refusals >= n


def benefit_gap(standard: Decimal, size: int, income: Decimal) -> Decimal:
    """standard × size − income, unclamped (negative when income is above the standard)."""
    return (standard * size - income).quantize(Decimal("0.01"))


def income_rule(policy: Policy, standard: Decimal, size: int, income: Decimal, current_benefit: Decimal,
                works: bool, vulnerable_members: int = 0) -> tuple[str, str, int] | None:
    """What a changed income (or a re-review) calls for: (rule, action, gradual exit months) or None.

    - income at or above the standard (the household's gap is gone):
      ``income_above_standard`` → cancel; with work found, the policy's
      gradual exit (national: up to 6 months; seed: none);
    - else a benefit different from the one paid: ``income_changed`` →
      raise or lower from the next month."""
    if size <= 0 or benefit_gap(standard, size, income) <= 0:
        return RULE_INCOME_ABOVE, "cancel", policy.gradual_exit_months if works else 0
    if policy.benefit(standard, size, income, vulnerable_members) != current_benefit:
        return RULE_INCOME_CHANGED, "adjust", 0
    return None


def cancellation_months(decided_on: date, gradual_exit_months: int) -> tuple[str, str | None]:
    """(first month NOT paid, paid-through month of a gradual exit or None).

    Decided in month M: paid through M, stops from M+1; a gradual exit of k
    months pays through M+k and stops from M+k+1."""
    decided = month_of(decided_on)
    if gradual_exit_months > 0:
        until = add_months_to_month(decided, gradual_exit_months)
        return add_months_to_month(until, 1), until
    return add_months_to_month(decided, 1), None


def death_review_due(died_on: date, current_due: date, policy: Policy) -> date | None:
    """National: a member's death brings the re-review within N months (None: no change)."""
    if not policy.death_review_months:
        return None
    due = add_months(died_on, policy.death_review_months)
    return due if due < current_due else None


def next_approval(policy: Policy, approvals: list[dict]) -> str | None:
    """The role whose approval a proposal needs next (None: fully approved)."""
    given = len(approvals)
    return policy.proposal_approvals[given] if given < len(policy.proposal_approvals) else None


def approver_is_registered(role: str, registered: bool) -> None:
    """An approver holds, in the staff registry, the role the policy names next."""
    if not registered:
        raise Forbidden(f"the staff registry does not show you as {role} for this case's unit",
                        {"role": role, "reason": "not_in_registry"})


def approver_is_a_new_person(user: str, proposed_by: str, approvals: list[dict]) -> None:
    """No single person decides: whoever proposed or already approved does not approve again."""
    if user == proposed_by:
        raise Conflict(f"{user} made this proposal and cannot approve it", {"rule": "proposer_does_not_approve", "user": user})
    if user in {a["user"] for a in approvals}:
        raise Conflict(f"{user} already approved this proposal; another person decides",
                       {"rule": "approver_is_a_new_person", "user": user})


def has_reason(reason: str | None, field: str = "reason") -> str:
    if not (reason and reason.strip()):
        raise ValidationFailed.field(field, "a reason is required")
    return reason.strip()


def category_is_known(category: str, policy: Policy) -> None:
    if category not in policy.categories:
        raise ValidationFailed.field("category", f"not a category of {policy.name}: "
                                                 f"{', '.join(policy.categories)}")


def campaign_result_needs(result: str, verified_income, direction: str | None) -> None:
    """A raised or lowered finding states the verified income, and the income must say so."""
    if result in ("raised", "lowered"):
        if verified_income is None:
            raise ValidationFailed.field("verified_income", f"a {result} finding states the verified income")
        if direction is not None and direction != result:
            raise ValidationFailed.field("result", f"the verified income means the benefit is {direction}, "
                                                   f"not {result}")


# --- verification with partner bureaus (核对): review learns it from verification's events ------

def verification_answers_are_in(policy: Policy, step: str | None, state) -> None:
    """The policy's step (and every later one) waits for every bureau's answer —
    unless the policy lets the review go on with answers missing."""
    waits_at = policy.verification_answers_before_step
    if state is None or not state.answers_missing or waits_at is None or policy.verification_proceeds_without_answers:
        return
    names = [s.name for s in policy.review_steps]
    if step in names and waits_at in names and names.index(step) >= names.index(waits_at):
        raise Conflict(f"the verification answers are not all in; {waits_at} waits for them ({policy.name})",
                       {"rule": "verification_answers_missing", "bureaus": list(state.bureaus_missing)})


def no_open_verification_discrepancy(state) -> None:
    """A discrepancy of the verification report blocks approval until an officer records its resolution."""
    if state is not None and state.open_discrepancies:
        raise Conflict("a verification discrepancy blocks approval until an officer records its resolution "
                       "(dibao verify resolve)", {"rule": "verification_discrepancy_open",
                                                  "discrepancies": list(state.discrepancy_rules)})


def verification_report_is_complete(policy: Policy, state, today: date, bureaus_asked: bool) -> None:
    """核对 before approval (the policy's ``verification_report_before_approval``): the joint review
    signs only on a complete report — every bureau answered, or, where the policy lets the review go
    on with answers missing, the missing bureaus' deadlines have passed. ``bureaus_asked``: the
    deployment asks partner bureaus at all (config VERIFICATION_BUREAUS); one that asks none has no
    report to wait for."""
    if not policy.verification_report_before_approval or not bureaus_asked:
        return
    if state is not None and (state.complete or (
            policy.verification_proceeds_without_answers and state.answers_due_by is not None
            and state.answers_due_by < today)):
        return
    details = {"rule": "verification_report_required"}
    if state is None:
        raise Conflict(f"the joint review approves only on a complete verification report (核对报告), and this "
                       f"application has none yet ({policy.name})", details)
    raise Conflict(f"the joint review approves only on a complete verification report (核对报告); bureaus still "
                   f"to answer: {', '.join(state.bureaus_missing)} ({policy.name})",
                   dict(details, bureaus=list(state.bureaus_missing),
                        answers_due_by=state.answers_due_by.isoformat() if state.answers_due_by else None))
