"""Dynamic management (动态管理, the exit 出口): facts from intake, proposals
and their approval, re-reviews, categories, re-inspection campaigns.

A rule proposes (a ``CaseProposal``: case, rule, fact, reason, action); the
people the policy names approve it in order, each a distinct person, within
their jurisdiction; only then is the case adjusted (``review.case_adjusted``)
or cancelled (``review.case_cancelled``), and notify tells the household.
Nothing is cancelled silently, and no fact is proposed twice.
"""
from __future__ import annotations

import uuid
from operator import attrgetter
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import object_session

from services.review import rules
from services.review.handlers import standard_for
from services.review.models import (Campaign, CampaignInspection, Case, CaseProposal, HouseholdCheckIn,
                                    LabourFact, Staff)
from shared.db import UnitOfWork
from shared.errors import Conflict, NotFound, ValidationFailed
from shared.events import Event, load_payload
from shared.identity import Actor, Role, authorize
from shared.jurisdiction import get_within, within
from shared.policy import load_policy
from shared.policy.base import Policy
from shared.reference import ReferenceData
from shared.staff import holds_role

SOURCE = "review"
CASE_READERS = (Role.COMMUNITY_OFFICER, Role.TOWNSHIP_OFFICER, Role.DISTRICT_OFFICER, Role.CENTRE_DIRECTOR,
                Role.DEPUTY_DIRECTOR, Role.AUDITOR, Role.TOWNSHIP_COMMITTEE, Role.COMMUNITY_PANEL)
CASE_MANAGERS = (Role.TOWNSHIP_OFFICER, Role.DISTRICT_OFFICER, Role.CENTRE_DIRECTOR)
MONTH_END_RUNNERS = (Role.DISTRICT_OFFICER, Role.CENTRE_DIRECTOR)
CAMPAIGN_ORGANISERS = (Role.TOWNSHIP_OFFICER, Role.DISTRICT_OFFICER, Role.CENTRE_DIRECTOR)
INSPECTORS = (Role.COMMUNITY_OFFICER, Role.TOWNSHIP_OFFICER, Role.DISTRICT_OFFICER, Role.CENTRE_DIRECTOR)


def case_subject(case: Case, **more) -> dict:
    """household, application and case: audit traces a cancellation back to the entry review by these."""
    return {"household_id": case.household_id, "application_id": case.application_id, "case_id": case.id, **more}


def load_case(uow: UnitOfWork, case_id, for_update: bool = False) -> Case:
    return uow.get(Case, case_id, "case", "case_id", with_for_update=for_update)


def case_for(uow: UnitOfWork, actor: Actor, roles, case_id, for_update: bool = False) -> Case:
    """The case, for an actor of ``roles`` whose jurisdiction covers it; to
    anyone else it does not exist (shared/jurisdiction.py)."""
    return get_within(uow, actor, roles, Case, case_id, "case", "case_id", with_for_update=for_update)


def active_case_of(uow: UnitOfWork, household_id: str) -> Case | None:
    return uow.session.scalar(sa.select(Case).where(Case.household_id == household_id, Case.status == "active"))


def standard_of(case: Case, ref: ReferenceData, today: date) -> Decimal:
    """The standard in force for the case today (as payments last set it), else the one it was fixed with."""
    standard = standard_for(object_session(case), ref, case.community_code, case.area_type, today)
    return standard.monthly_amount if standard is not None else case.standard


# --- facts from intake ------------------------------------------------------------

@dataclass(frozen=True)
class HouseholdFacts:
    """What intake says of a household now: living members, their income, whether someone works."""

    version: int
    size: int
    income: Decimal
    works: bool

    @classmethod
    def from_household(cls, household: dict) -> "HouseholdFacts":
        living = {m["id"] for m in household["members"] if not m.get("deceased_on")}
        incomes = [i for i in household.get("incomes", []) if i.get("member_id") in living | {None}]
        income = sum((Decimal(str(i["monthly_amount"])) for i in incomes), Decimal("0.00"))
        works = any(i["source"] in rules.WORK_INCOME_SOURCES and Decimal(str(i["monthly_amount"])) > 0
                    for i in incomes)
        return cls(household.get("version", 0), len(living), income, works)


def checkin_recorded(uow: UnitOfWork, event: dict) -> None:
    household_id, month = event["subject"]["household_id"], event["payload"]["month"]
    if not uow.session.scalar(sa.select(HouseholdCheckIn.id).where(HouseholdCheckIn.household_id == household_id,
                                                                   HouseholdCheckIn.month == month)):
        uow.session.add(HouseholdCheckIn(household_id=household_id, month=month))


def labour_recorded(uow: UnitOfWork, event: dict) -> None:
    p, s = event["payload"], event["subject"]
    labour_date = date.fromisoformat(p["labour_date"])
    exists = uow.session.scalar(sa.select(LabourFact.id).where(
        LabourFact.member_id == s["member_id"], LabourFact.labour_date == labour_date,
        LabourFact.activity == p["activity"]))
    if not exists:
        uow.session.add(LabourFact(household_id=s["household_id"], member_id=s["member_id"],
                                   labour_date=labour_date, activity=p["activity"], attendance=p["attendance"]))


def propose(uow: UnitOfWork, case: Case, rule: str, fact: str, reason: str, action: str, today: date,
            proposed_by: str, **details) -> CaseProposal | None:
    """A proposal, unless this rule already proposed over this fact (then None)."""
    exists = uow.session.scalar(sa.select(CaseProposal.id).where(
        CaseProposal.case_id == case.id, CaseProposal.rule == rule, CaseProposal.fact == fact))
    if exists:
        return None
    proposal = CaseProposal(case_id=case.id, rule=rule, fact=fact, reason=reason, action=action,
                            proposed_on=today, proposed_by=proposed_by, approvals=[], status="pending", **details)
    uow.session.add(proposal)
    uow.session.flush()
    return proposal


def household_facts(uow: UnitOfWork, case: Case, facts: HouseholdFacts, ref: ReferenceData, today: date,
                    proposed_by: str = "rule") -> CaseProposal | None:
    """收入变化 / 复核: the household's income and size as intake has them now.
    The fact is the household record's version: each version is judged once."""
    policy = load_policy(case.policy)
    found = rules.income_rule(policy, standard_of(case, ref, today), facts.size, facts.income,
                              case.monthly_benefit, facts.works, case.vulnerable_members)
    if found is None:
        return None
    rule, action, gradual = found
    if rule == rules.RULE_INCOME_ABOVE:
        reason = "家庭人均收入达到或超过当地低保标准" + (f"（已就业，渐退{gradual}个月）" if gradual else "")
    else:
        reason = "家庭收入或人口变化，调整保障金"
    return propose(uow, case, rule, f"household:v{facts.version}", reason, action, today,
                   f"{proposed_by}:{rule}" if proposed_by == "rule" else proposed_by,
                   proposed_income=facts.income, proposed_size=facts.size, gradual_exit_months=gradual)


def member_died(uow: UnitOfWork, event: dict, ref: ReferenceData, today: date) -> None:
    """National: a member's death brings the re-review within three months (applied at once: a date, not a decision)."""
    case = active_case_of(uow, event["subject"]["household_id"])
    if case is None:
        return
    died_on = date.fromisoformat(event["payload"]["died_on"])
    due = rules.death_review_due(died_on, case.next_rereview_on, load_policy(case.policy))
    if due is None:
        return
    proposal = propose(uow, case, rules.RULE_DEATH_REVIEW, f"member:{event['subject']['member_id']}",
                       f"家庭成员于{died_on.isoformat()}死亡，复核提前至{due.isoformat()}", "rereview", today,
                       f"rule:{rules.RULE_DEATH_REVIEW}")
    if proposal is not None:
        proposal.status, proposal.decided_on = "applied", today
        case.next_rereview_on = due


def verification_change(uow: UnitOfWork, event: dict, ref: ReferenceData, today: date) -> CaseProposal | None:
    """verification.change_reported (低收入人口动态监测): a bureau's change, or a monitoring discrepancy,
    becomes a proposal on the active case — once per change (the proposal's fact)."""
    p = load_payload(event)
    case = active_case_of(uow, event["subject"]["household_id"])
    if case is None or case.id != event["subject"]["case_id"]:
        return None
    kind = {"vehicle": "车辆", "real_estate": "房产", "deposit": "存款", "business": "工商登记"}.get(p["kind"], p["kind"])
    details, action = {}, "rereview"
    if p["monthly_income"] is not None:
        action = "adjust"
        details = {"proposed_income": case.verified_income + p["monthly_income"], "proposed_size": case.household_size}
        reason = f"核对：{p['bureau']}报告新增收入（{p['kind']}）每月{p['monthly_income']}元，自{p['as_of']}"
    else:
        reason = f"核对：{p['bureau']}报告{kind}变化（{p['rule']}），自{p['as_of']}，复核家庭经济状况"
    return propose(uow, case, rules.RULE_VERIFICATION_CHANGE, f"verification:{p['change_id']}"[:160], reason,
                   action, today, f"rule:{rules.RULE_VERIFICATION_CHANGE}", **details)


# --- proposals and their approval ----------------------------------------------------

def load_proposal(uow: UnitOfWork, proposal_id, for_update: bool = False) -> CaseProposal:
    try:
        ident = int(proposal_id)
    except (TypeError, ValueError):
        raise ValidationFailed.field("proposal_id", "not a proposal id") from None
    proposal = uow.session.get(CaseProposal, ident, with_for_update=for_update)
    if proposal is None:
        raise NotFound.of("proposal", proposal_id, "proposal_id")
    return proposal


def proposal_for(uow: UnitOfWork, actor: Actor, proposal_id, for_update: bool = False) -> tuple[CaseProposal, Case]:
    """The proposal and its case, if the actor's jurisdiction covers the case;
    else the answer for a proposal that does not exist (ids are sequential:
    an outsider must not learn which exist elsewhere)."""
    proposal = load_proposal(uow, proposal_id, for_update)
    case = load_case(uow, proposal.case_id, for_update)
    within(actor, case.community_code, NotFound.of("proposal", proposal_id, "proposal_id"))
    return proposal, case


def propose_manually(uow: UnitOfWork, actor: Actor, data: dict, ref: ReferenceData, today: date) -> CaseProposal:
    """An officer proposes (rule ``manual``): the same approval follows."""
    case = case_for(uow, actor, CASE_MANAGERS, data["case_id"], for_update=True)
    if case.status != "active":
        raise Conflict(f"the case is {case.status}", {"status": case.status})
    reason = rules.has_reason(data["reason"])
    details = {}
    if data["action"] == "adjust":
        if data["verified_income"] is None:
            raise ValidationFailed.field("verified_income", "an adjustment states the verified income")
        details = {"proposed_income": data["verified_income"],
                   "proposed_size": data["household_size"] or case.household_size}
    elif data["action"] == "cancel":
        details = {"gradual_exit_months": data["gradual_exit_months"] or 0}
        if details["gradual_exit_months"] > load_policy(case.policy).gradual_exit_months:
            raise ValidationFailed.field("gradual_exit_months", "longer than the policy allows")
    proposal = propose(uow, case, rules.RULE_MANUAL, f"manual:{uuid.uuid4()}", reason, data["action"], today,
                       actor.user, **details)
    uow.commit()
    return proposal


def approve_proposal(uow: UnitOfWork, actor: Actor, data: dict, ref: ReferenceData, today: date) -> CaseProposal:
    """One approval, by the role the policy names next; the last one applies it."""
    proposal, case = proposal_for(uow, actor, data["proposal_id"], for_update=True)
    policy = load_policy(case.policy)
    if proposal.status != "pending":
        raise Conflict(f"the proposal is {proposal.status}", {"status": proposal.status})
    role = rules.next_approval(policy, proposal.approvals)
    authorize(actor, (Role(role),), case.community_code)
    rules.approver_is_registered(role, holds_role(uow.session, Staff, actor.user, role, case.community_code))
    rules.approver_is_a_new_person(actor.user, proposal.proposed_by, proposal.approvals)
    proposal.approvals = list(proposal.approvals) + [
        {"role": role, "user": actor.user, "name": actor.name, "on": today.isoformat(), "remarks": data["remarks"]}]
    if rules.next_approval(policy, proposal.approvals) is None:
        if case.status != "active":
            raise Conflict(f"the case is already {case.status}", {"status": case.status})
        apply(uow, proposal, case, policy, ref, today)
    uow.commit()
    return proposal


def reject_proposal(uow: UnitOfWork, actor: Actor, data: dict, ref: ReferenceData, today: date) -> CaseProposal:
    proposal, case = proposal_for(uow, actor, data["proposal_id"], for_update=True)
    policy = load_policy(case.policy)
    if proposal.status != "pending":
        raise Conflict(f"the proposal is {proposal.status}", {"status": proposal.status})
    authorize(actor, tuple(Role(r) for r in policy.proposal_approvals), case.community_code)
    role = next(r for r in policy.proposal_approvals if actor.has(r))
    proposal.status, proposal.decided_on = "rejected", today
    proposal.decision_reason = rules.has_reason(data["reason"])
    proposal.approvals = list(proposal.approvals) + [
        {"role": role, "user": actor.user, "name": actor.name, "on": today.isoformat(),
         "remarks": proposal.decision_reason, "rejected": True}]
    uow.commit()
    return proposal


def apply(uow: UnitOfWork, proposal: CaseProposal, case: Case, policy: Policy, ref: ReferenceData,
          today: date) -> None:
    """The approved proposal takes effect from the next month, and is told (events)."""
    proposal.status, proposal.decided_on = "approved", today
    proposal.previous_benefit, proposal.previous_size = case.monthly_benefit, case.household_size
    proposal.previous_income = case.verified_income
    standard = standard_of(case, ref, today)
    if proposal.action == "cancel":
        return cancel(case, proposal, today)
    income = proposal.proposed_income if proposal.proposed_income is not None else case.verified_income
    size = proposal.proposed_size if proposal.proposed_size is not None else case.household_size
    if proposal.action == "stop_share":
        size = case.household_size - 1
    if size <= 0 or rules.benefit_gap(standard, size, income) <= 0:
        return cancel(case, proposal, today)
    new = policy.benefit(standard, size, income, case.vulnerable_members)
    old = case.monthly_benefit
    case.verified_income, case.household_size, case.standard = income, size, standard
    if new == old:
        proposal.decision_reason, proposal.outcome = "保障金不变", "unchanged"
        return
    case.monthly_benefit, proposal.outcome = new, "adjusted"
    case.record(Event(SOURCE, "case_adjusted", case_subject(case), {
        **_case_facts(case, proposal, today), "old_benefit": old, "new_benefit": new,
        "direction": "raised" if new > old else "lowered", "benefit_gap": rules.benefit_gap(standard, size, income)}))


def cancel(case: Case, proposal: CaseProposal, today: date) -> None:
    effective, until = rules.cancellation_months(today, proposal.gradual_exit_months or 0)
    case.status, case.ended_on, case.end_month, case.gradual_exit_until = "cancelled", today, effective, until
    proposal.outcome = "cancelled"
    # the other proposals still pending for this case have nothing left to act on
    object_session(case).execute(
        sa.update(CaseProposal)
        .where(CaseProposal.case_id == case.id, CaseProposal.status == "pending", CaseProposal.id != proposal.id)
        .values(status="withdrawn", decided_on=today, version=CaseProposal.version + 1,
                decision_reason=f"the case was cancelled (proposal {proposal.id})")
        .execution_options(synchronize_session="fetch"))
    case.record(Event(SOURCE, "case_cancelled", case_subject(case), {
        **_case_facts(case, proposal, today, effective), "wrongly_included": proposal.wrongly_included,
        "gradual_exit_until": until}))


def _case_facts(case: Case, proposal: CaseProposal, today: date, effective: str | None = None) -> dict:
    return {"case_id": case.id, "household_id": case.household_id,
            "community_code": case.community_code, "township_code": case.township_code,
            "area_type": case.area_type, "household_size": case.household_size,
            "effective_month": effective or rules.add_months_to_month(rules.month_of(today), 1),
            "reason": proposal.reason, "rule": proposal.rule}


def list_proposals(uow: UnitOfWork, actor: Actor, unit_code: str, status: str | None) -> list[tuple]:
    authorize(actor, CASE_READERS, unit_code)
    stmt = (sa.select(CaseProposal, Case).join(Case, Case.id == CaseProposal.case_id)
            .where(Case.community_code.startswith(unit_code, autoescape=True))
            .order_by(CaseProposal.id))
    if status:
        stmt = stmt.where(CaseProposal.status == status)
    return [tuple(row) for row in uow.session.execute(stmt)]


# --- categories and re-reviews ---------------------------------------------------------

def change_category(uow: UnitOfWork, actor: Actor, data: dict, ref: ReferenceData, today: date) -> Case:
    """分类管理: a new category (and so re-review cadence), with the reason."""
    case = case_for(uow, actor, CASE_MANAGERS, data["case_id"], for_update=True)
    reason = rules.has_reason(data["reason"])
    policy = load_policy(case.policy)
    rules.category_is_known(data["category"], policy)
    if case.status != "active":
        raise Conflict(f"the case is {case.status}", {"status": case.status})
    if data["category"] == case.category:
        raise Conflict(f"the case is already {case.category}", {"category": case.category})
    old = case.category
    case.category = data["category"]
    case.next_rereview_on = rules.add_months(case.last_rereview_on or case.approved_on,
                                             policy.months_until_rereview(case.category))
    case.record(Event(SOURCE, "category_changed", case_subject(case), {
        "community_code": case.community_code, "old_category": old, "new_category": case.category,
        "next_rereview_on": case.next_rereview_on, "reason": reason}))
    uow.commit()
    return case


def record_rereview(uow: UnitOfWork, actor: Actor, data: dict, facts: HouseholdFacts, ref: ReferenceData,
                    today: date) -> tuple[Case, CaseProposal | None]:
    """复核: judged on the household's facts as intake has them; the next date per category."""
    case = case_for(uow, actor, INSPECTORS, data["case_id"], for_update=True)
    if case.status != "active":
        raise Conflict(f"the case is {case.status}", {"status": case.status})
    reviewed_on = data["reviewed_on"] or today
    if reviewed_on > today:
        raise ValidationFailed.field("reviewed_on", "in the future")
    proposal = household_facts(uow, case, facts, ref, today)
    case.last_rereview_on = reviewed_on
    case.next_rereview_on = rules.add_months(reviewed_on, load_policy(case.policy).months_until_rereview(case.category))
    uow.commit()
    return case, proposal


def overdue_rereviews(uow: UnitOfWork, actor: Actor, unit_code: str, as_of: date) -> list[Case]:
    """Active cases whose re-review date has passed, per township and community."""
    authorize(actor, CASE_READERS, unit_code)
    return list(uow.session.scalars(
        sa.select(Case).where(Case.status == "active", Case.next_rereview_on < as_of,
                              Case.community_code.startswith(unit_code, autoescape=True))
        .order_by(Case.township_code, Case.community_code, Case.next_rereview_on)))


# --- re-inspection campaigns (入户清查) --------------------------------------------------

def create_campaign(uow: UnitOfWork, actor: Actor, data: dict, ref: ReferenceData, today: date) -> Campaign:
    """Every active case of the unit, round-robin over the teams, set-based."""
    unit = ref.division(data["unit_code"], "unit_code")
    authorize(actor, CAMPAIGN_ORGANISERS, unit.code)
    if data["ends_on"] < data["starts_on"]:
        raise ValidationFailed.field("ends_on", "before starts_on")
    teams = [t.strip() for t in data["teams"]]
    if len(set(teams)) != len(teams) or not all(teams):
        raise ValidationFailed.field("teams", "each team once, by name")
    campaign = Campaign(unit_code=unit.code, name=data["name"] or f"入户清查 {unit.code}", starts_on=data["starts_on"],
                        ends_on=data["ends_on"], teams=teams, created_by=actor.user, created_on=today)
    uow.session.add(campaign)
    uow.session.flush()
    slot = ((sa.func.row_number().over(order_by=(Case.community_code, Case.id)) - 1) % len(teams)).label("slot")
    cases = (sa.select(Case.id, Case.household_id, Case.community_code, Case.township_code, slot)
             .where(Case.status == "active", Case.community_code.startswith(unit.code, autoescape=True))
             .subquery())
    team = sa.case(*[(cases.c.slot == n, sa.literal(name)) for n, name in enumerate(teams)])
    table = CampaignInspection.__table__
    inserted = uow.session.execute(table.insert().from_select(
        ["campaign_id", "case_id", "household_id", "community_code", "township_code", "team"],
        sa.select(sa.literal(campaign.id), cases.c.id, cases.c.household_id, cases.c.community_code,
                  cases.c.township_code, team))).rowcount
    campaign.record(Event(SOURCE, "campaign_created", {"campaign_id": campaign.id}, {
        "campaign_id": campaign.id, "unit_code": unit.code, "starts_on": campaign.starts_on,
        "ends_on": campaign.ends_on, "cases": inserted}))
    uow.commit()
    return campaign


def record_inspection(uow: UnitOfWork, actor: Actor, data: dict, ref: ReferenceData,
                      today: date) -> tuple[CampaignInspection, CaseProposal | None]:
    authorize(actor, INSPECTORS)
    campaign = uow.get(Campaign, data["campaign_id"], "campaign", "campaign_id")
    within(actor, campaign.unit_code, NotFound.of("campaign", data["campaign_id"], "campaign_id"), overlap=True)
    inspection = uow.session.scalar(sa.select(CampaignInspection).where(
        CampaignInspection.campaign_id == campaign.id, CampaignInspection.case_id == data["case_id"])
        .with_for_update())
    if inspection is None or not actor.covers(inspection.community_code):   # elsewhere: as if not in it
        raise ValidationFailed.field("case_id", "this case is not in the campaign")
    if inspection.result is not None:
        raise Conflict(f"the result for this case is already recorded ({inspection.result})",
                       {"result": inspection.result})
    case = load_case(uow, inspection.case_id, for_update=True)
    result = data["result"]
    proposal = None
    if result != "kept":
        proposal = _inspection_proposal(uow, actor, campaign, case, data, ref, today)
    inspection.result, inspection.remarks, inspection.inspected_on = result, data["remarks"], today
    inspection.recorded_by, inspection.proposal_id = actor.user, proposal.id if proposal else None
    campaign.record(Event(SOURCE, "inspection_recorded", {
        "campaign_id": campaign.id, "household_id": case.household_id, "case_id": case.id}, {
        "campaign_id": campaign.id, "case_id": case.id, "household_id": case.household_id,
        "community_code": case.community_code, "township_code": case.township_code, "result": result,
        "team": inspection.team}))
    uow.commit()
    return inspection, proposal


def _inspection_proposal(uow, actor, campaign, case, data, ref, today) -> CaseProposal:
    result, fact = data["result"], f"campaign:{campaign.id}"
    if case.status != "active":
        raise Conflict(f"the case is {case.status}", {"status": case.status})
    if result in ("raised", "lowered"):
        size = data["household_size"] or case.household_size
        policy = load_policy(case.policy)
        new = None if data["verified_income"] is None else policy.benefit(
            standard_of(case, ref, today), size, data["verified_income"], case.vulnerable_members)
        direction = None if new is None or new == case.monthly_benefit else (
            "raised" if new > case.monthly_benefit else "lowered")
        rules.campaign_result_needs(result, data["verified_income"], direction)
        reason = data["remarks"] or f"入户清查：保障金{'提高' if result == 'raised' else '降低'}"
        return propose(uow, case, rules.RULE_CAMPAIGN, fact, reason, "adjust", today, actor.user, proposed_income=data["verified_income"], proposed_size=size)
    wrongly = result == "wrongly_included"
    reason = data["remarks"] or ("入户清查：不符合条件而被纳入（错保）" if wrongly else "入户清查：不再符合保障条件")
    return propose(uow, case, rules.RULE_CAMPAIGN, fact, reason, "cancel", today, actor.user,
                   wrongly_included=wrongly)


def campaign_progress(uow: UnitOfWork, actor: Actor, campaign_id) -> dict:
    """Per township and community: cases, inspected, and each result."""
    campaign = get_within(uow, actor, CASE_READERS, Campaign, campaign_id, "campaign", "campaign_id",
                          division=attrgetter("unit_code"))
    rows = uow.session.execute(
        sa.select(CampaignInspection.township_code, CampaignInspection.community_code, CampaignInspection.result,
                  sa.func.count())
        .where(CampaignInspection.campaign_id == campaign.id)
        .group_by(CampaignInspection.township_code, CampaignInspection.community_code,
                  CampaignInspection.result)).all()
    units: dict[tuple, dict] = {}
    for township, community, result, count in rows:
        unit = units.setdefault((township, community), {
            "township_code": township, "community_code": community, "cases": 0, "inspected": 0,
            **{r: 0 for r in rules.CAMPAIGN_RESULTS}})
        unit["cases"] += count
        if result is not None:
            unit["inspected"] += count
            unit[result] += count
    by_unit = [units[k] for k in sorted(units)]
    return {"campaign_id": campaign.id, "unit_code": campaign.unit_code, "name": campaign.name,
            "starts_on": campaign.starts_on.isoformat(), "ends_on": campaign.ends_on.isoformat(),
            "teams": campaign.teams, "cases": sum(u["cases"] for u in by_unit),
            "inspected": sum(u["inspected"] for u in by_unit), "units": by_unit}


def list_campaigns(uow: UnitOfWork, actor: Actor, unit_code: str | None) -> list[Campaign]:
    """The campaigns organised for the unit, for a unit above it or within it (latest first)."""
    unit = unit_code or actor.unit
    authorize(actor, CASE_READERS, unit)
    overlaps = sa.or_(Campaign.unit_code.startswith(unit, autoescape=True),
                      sa.literal(unit).startswith(Campaign.unit_code))
    return list(uow.session.scalars(sa.select(Campaign).where(overlaps)
                                    .order_by(Campaign.starts_on.desc(), Campaign.id)))


def campaign_inspections(uow: UnitOfWork, actor: Actor, data: dict) -> list[CampaignInspection]:
    """A campaign's cases within the actor's jurisdiction (and ``community_code``), each with its result."""
    campaign = uow.get(Campaign, data["campaign_id"], "campaign", "campaign_id")
    authorize(actor, CASE_READERS)
    within(actor, campaign.unit_code, NotFound.of("campaign", data["campaign_id"], "campaign_id"), overlap=True)
    scope = data["community_code"] or actor.unit
    if not actor.covers(scope):
        authorize(actor, CASE_READERS, scope)
    return list(uow.session.scalars(
        sa.select(CampaignInspection)
        .where(CampaignInspection.campaign_id == campaign.id,
               CampaignInspection.community_code.startswith(scope, autoescape=True))
        .order_by(CampaignInspection.community_code, CampaignInspection.result.is_not(None), CampaignInspection.id)
        .limit(data["limit"])))


def approval_order(case: Case, proposal: CaseProposal) -> tuple[list[str], str | None]:
    """The roles the case's policy names to approve, in order, and the one a pending proposal waits for."""
    policy = load_policy(case.policy)
    waiting = rules.next_approval(policy, proposal.approvals) if proposal.status == "pending" else None
    return list(policy.proposal_approvals), waiting
