"""Appeals (复核, DESIGN §2.8): a household asks for a review of a rejection, a
cancellation or a benefit change within the policy's period; someone who took
no part in that decision decides it, with a reason, within the policy's
deadline (working days); an upheld appeal reopens the application at the
step the policy names, restores the cancelled case or reverts the benefit.

The decision under appeal is found from the application: its rejection, or the
approved proposal that cancelled or changed its case. Who took part in it is
copied from the record when the appeal is filed (``Appeal.participants``) and
every decision is checked against that copy.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import sqlalchemy as sa

from contracts.review import RULE_APPEAL
from services.review import appeal_rules as rules
from services.review.dynamic import case_subject, standard_of
from services.review.handlers import open_step, policy_of, workday_deadline
from services.review.models import (Appeal, Case, CaseProposal, CommunityEvaluation, JointReviewSignature,
                                    ReviewFile, Staff, TownshipReview)
from services.review.rules import add_months_to_month, benefit_gap, month_of
from shared.db import UnitOfWork
from shared.errors import Conflict, ValidationFailed
from shared.events import Event
from shared.identity import Actor, Role, authorize
from shared.jurisdiction import get_within
from shared.policy import load_policy
from shared.policy.base import Policy
from shared.reference import ReferenceData
from shared.staff import holds_role

SOURCE = "review"
#: who files on the household's behalf (the community officer first; the township and district too)
FILERS = (Role.COMMUNITY_OFFICER, Role.TOWNSHIP_OFFICER, Role.DISTRICT_OFFICER)
READERS = (Role.COMMUNITY_OFFICER, Role.TOWNSHIP_OFFICER, Role.DISTRICT_OFFICER, Role.CENTRE_DIRECTOR,
           Role.DEPUTY_DIRECTOR, Role.AUDITOR)
#: the roles any policy may name to decide (each policy's ``appeal_deciders`` narrows them)
DECIDING_ROLES = (Role.DEPUTY_DIRECTOR, Role.CENTRE_DIRECTOR, Role.DISTRICT_OFFICER)


def deciding_unit(community_code: str) -> str:
    """The district decides (区民政局 / 区低保中心)."""
    return community_code[:6]


def subject(appeal: Appeal) -> dict:
    out = {"household_id": appeal.household_id, "application_id": appeal.application_id, "appeal_id": appeal.id}
    if appeal.case_id:
        out["case_id"] = appeal.case_id
    return out


@dataclass
class Decision:
    """The decision under appeal, as the record has it."""

    kind: str
    file: ReviewFile
    decided_on: date
    reason: str | None
    key: str
    case: Case | None = None
    proposal: CaseProposal | None = None
    participants: list = field(default_factory=list)


def _person(part: str, user: str | None = None, name: str | None = None) -> dict:
    return {"part": part, "user": user or None, "name": name or None}


def rejection_participants(uow: UnitOfWork, f: ReviewFile) -> list[dict]:
    """Everyone the record shows taking part in the entry review that ended in the rejection:
    investigators, the evaluation (recorder, participants), the township (recorder, members),
    the joint review's signers, and who rejected."""
    people = [_person("investigation", i.get("user"), i.get("name")) for i in f.investigators]
    for e in uow.session.scalars(sa.select(CommunityEvaluation).where(CommunityEvaluation.application_id == f.application_id)):
        people.append(_person("evaluation", e.recorded_by))
        people += [_person("evaluation", name=p.get("name")) for p in e.participants]
    for t in uow.session.scalars(sa.select(TownshipReview).where(TownshipReview.application_id == f.application_id)):
        people.append(_person("township_review", t.recorded_by))
        people += [_person("township_review", name=m.get("name")) for m in t.members]
    for s in uow.session.scalars(sa.select(JointReviewSignature)
                                 .where(JointReviewSignature.application_id == f.application_id)):
        people.append(_person("joint_review", s.user, s.name))
    if f.rejected_by:
        people.append(_person("rejection", f.rejected_by))
    return people


def proposal_participants(proposal: CaseProposal) -> list[dict]:
    """Who proposed (an officer, an inspector; not a rule) and who approved the change."""
    people = [] if proposal.proposed_by.startswith("rule") else [_person("proposal", proposal.proposed_by)]
    return people + [_person("approval", a.get("user"), a.get("name")) for a in proposal.approvals]


def decision_under_appeal(uow: UnitOfWork, f: ReviewFile, kind: str | None) -> Decision:
    """The application's rejection, else its case's cancellation, else its latest benefit change
    (``kind``, when given, must be that one)."""
    case = uow.session.scalar(sa.select(Case).where(Case.application_id == f.application_id))
    if f.status == "rejected":
        found = "rejection"
    elif case is not None and case.status == "cancelled":
        found = "cancellation"
    elif case is not None:
        found = "benefit_change"
    else:
        raise Conflict("the application has no decision that can be appealed (it is still under review)",
                       {"status": f.status})
    if kind is not None and kind != found:
        raise Conflict(f"the decision on this application that can be appealed is a {found}, not a {kind}",
                       {"kind": found})
    if found == "rejection":
        upheld = uow.session.scalar(sa.select(sa.func.count()).select_from(Appeal).where(
            Appeal.application_id == f.application_id, Appeal.kind == "rejection", Appeal.status == "upheld"))
        return Decision("rejection", f, f.decided_on, f.rejection_reason, f"rejection:{f.application_id}:{upheld}",
                        participants=rejection_participants(uow, f))
    outcome = "cancelled" if found == "cancellation" else "adjusted"
    proposal = uow.session.scalar(sa.select(CaseProposal).where(
        CaseProposal.case_id == case.id, CaseProposal.status == "approved", CaseProposal.outcome == outcome)
        .order_by(CaseProposal.id.desc()).limit(1))
    if proposal is None:
        raise Conflict(f"the case has no {found.replace('_', ' ')} that can be appealed", {"kind": found})
    return Decision(found, f, proposal.decided_on, proposal.reason, f"proposal:{proposal.id}", case, proposal,
                    proposal_participants(proposal))


def file_appeal(uow: UnitOfWork, actor: Actor, data: dict, ref: ReferenceData, today: date,
                via: str = "officer") -> Appeal:
    """复核申请: recorded for the household, within the policy's period of the decision."""
    if via == "online":
        authorize(actor, (Role.SERVICE,))
        f = uow.get(ReviewFile, data["application_id"], "application under review", "application_id",
                    with_for_update=True)
    else:
        f = get_within(uow, actor, FILERS, ReviewFile, data["application_id"], "application under review",
                       "application_id", with_for_update=True)
    grounds = (data.get("grounds") or "").strip()
    if not grounds:
        raise ValidationFailed.field("grounds", "say why the household asks for a review")
    decision = decision_under_appeal(uow, f, data.get("kind"))
    policy = policy_of(f)
    rules.appeal_within_period(policy, decision.decided_on, today, ref.calendar)
    rules.one_appeal_per_decision(uow.session.scalar(sa.select(Appeal.status)
                                                     .where(Appeal.decision_key == decision.key)))
    due, provisional = workday_deadline(ref.calendar, today, policy.appeal_decision_workdays)
    appeal = Appeal(kind=decision.kind, decision_key=decision.key, application_id=f.application_id,
                    case_id=decision.case.id if decision.case else None,
                    proposal_id=decision.proposal.id if decision.proposal else None, household_id=f.household_id,
                    community_code=f.community_code, township_code=f.township_code, policy=policy.name,
                    decided_on_original=decision.decided_on, original_reason=decision.reason, filed_on=today,
                    filed_via=via, filed_by="public" if via == "online" else actor.user, grounds=grounds,
                    due_on=due, due_provisional=provisional, participants=decision.participants, status="open")
    uow.session.add(appeal)
    uow.session.flush()
    appeal.record(Event(SOURCE, "appeal_filed", subject(appeal), {
        **_facts(appeal), "filed_on": today, "filed_via": via, "due_on": due, "grounds": grounds,
        "filed_by": appeal.filed_by, "decision_on": decision.decided_on, "proposal_id": appeal.proposal_id}))
    uow.commit()
    return appeal


def _facts(appeal: Appeal) -> dict:
    return {"appeal_id": appeal.id, "kind": appeal.kind, "community_code": appeal.community_code,
            "township_code": appeal.township_code, "deciding_unit": deciding_unit(appeal.community_code)}


def appeal_for(uow: UnitOfWork, actor: Actor, roles, appeal_id, for_update: bool = False) -> Appeal:
    return get_within(uow, actor, roles, Appeal, str(appeal_id)[:36], "appeal", "appeal_id",
                      with_for_update=for_update)


def decide_appeal(uow: UnitOfWork, actor: Actor, data: dict, ref: ReferenceData, today: date) -> Appeal:
    """复核决定: upheld or dismissed, with the reason, by someone who took no part in the decision."""
    appeal = appeal_for(uow, actor, DECIDING_ROLES, data["appeal_id"], for_update=True)
    policy = load_policy(appeal.policy)
    deciders = tuple(Role(r) for r in policy.appeal_deciders)
    authorize(actor, deciders, appeal.community_code)
    rules.appeal_is_open(appeal.status)
    reason = rules.decision_has_reason(data.get("reason"))
    if data["outcome"] not in rules.OUTCOMES:
        raise ValidationFailed.field("outcome", "upheld or dismissed")
    mine = tuple(r.value for r in deciders if actor.has(r))
    rules.decider_in_staff_registry(
        any(holds_role(uow.session, Staff, actor.user, role, appeal.community_code) for role in mine), mine)
    rules.decided_by_someone_uninvolved(actor.user, actor.name, appeal.participants)
    if actor.user == appeal.filed_by:
        rules.decided_by_someone_uninvolved(actor.user, actor.name, [_person("filing", appeal.filed_by)])
    appeal.status, appeal.decided_on, appeal.decision_reason = data["outcome"], today, reason
    appeal.decided_by, appeal.decided_by_name = actor.user, actor.name
    if appeal.status == "upheld":
        appeal.reopened_at = reopen(uow, appeal, policy, ref, today)
    appeal.record(Event(SOURCE, "appeal_decided", subject(appeal), {
        **_facts(appeal), "outcome": appeal.status, "decided_on": today, "on_time": today <= appeal.due_on,
        "reopened_at": appeal.reopened_at, "reason": reason, "decided_by": actor.user}))
    uow.commit()
    return appeal


# --- an upheld appeal reopens ---------------------------------------------------------

def reopen(uow: UnitOfWork, appeal: Appeal, policy: Policy, ref: ReferenceData, today: date) -> str:
    if appeal.kind == "rejection":
        return reopen_application(uow, appeal, policy, ref, today)
    proposal = uow.session.get(CaseProposal, appeal.proposal_id)
    case = uow.session.get(Case, appeal.case_id, with_for_update=True)
    if appeal.kind == "cancellation":
        return restore_case(appeal, case, today)
    return revert_benefit(uow, appeal, case, proposal, ref, today)


def reopen_application(uow: UnitOfWork, appeal: Appeal, policy: Policy, ref: ReferenceData, today: date) -> str:
    """The rejected application goes back to the step the policy names (or to a new home
    investigation); the old joint-review signatures are void (the appeal keeps who signed)."""
    f = uow.get(ReviewFile, appeal.application_id, "application under review", "application_id",
                with_for_update=True)
    if f.status != "rejected":
        raise Conflict(f"the application is {f.status} now", {"status": f.status})
    uow.session.execute(sa.delete(JointReviewSignature).where(JointReviewSignature.application_id == f.application_id))
    f.decided_on = f.rejection_reason = f.rejected_by = None
    f.process_due_on, f.process_due_provisional = workday_deadline(ref.calendar, today, policy.process_workdays)
    if policy.appeal_reopens_at is None:
        f.status, f.step, f.step_opened_on, f.step_due_on, f.step_due_provisional = (
            "awaiting_reinvestigation", None, None, None, False)
        step = "reinvestigation"
    else:
        open_step(f, policy.step(policy.appeal_reopens_at), ref, today)
        step = policy.appeal_reopens_at
    f.record(Event(SOURCE, "application_reopened", {"household_id": f.household_id,
                                                    "application_id": f.application_id, "appeal_id": appeal.id},
                   {"appeal_id": appeal.id, "community_code": f.community_code, "step": step, "reopened_on": today}))
    return step


def restore_case(appeal: Appeal, case: Case, today: date) -> str:
    """The cancelled case is active again; payments pay it again (case_restored)."""
    if case.status != "cancelled":
        raise Conflict(f"the case is {case.status} now", {"status": case.status})
    stopped = case.end_month or add_months_to_month(month_of(today), 1)
    case.status, case.ended_on, case.end_month, case.gradual_exit_until = "active", None, None, None
    case.record(Event(SOURCE, "case_restored", case_subject(case, appeal_id=appeal.id), {
        "case_id": case.id, "household_id": case.household_id, "community_code": case.community_code,
        "township_code": case.township_code, "area_type": case.area_type, "household_size": case.household_size,
        "effective_month": stopped, "rule": RULE_APPEAL, "appeal_id": appeal.id,
        "cancelled_effective_month": stopped, "restored_on": today}))
    return "restored"


def revert_benefit(uow: UnitOfWork, appeal: Appeal, case: Case, proposal: CaseProposal, ref: ReferenceData,
                   today: date) -> str:
    """The benefit goes back to what it was before the change, from next month (case_adjusted)."""
    if case.status != "active":
        raise Conflict(f"the case is {case.status} now", {"status": case.status})
    later = uow.session.scalar(sa.select(CaseProposal.id).where(
        CaseProposal.case_id == case.id, CaseProposal.id > proposal.id, CaseProposal.status == "approved",
        CaseProposal.outcome.in_(("adjusted", "cancelled"))))
    if later is not None:
        raise Conflict("a later decision changed the benefit again; appeal that one", {"proposal_id": later})
    if proposal.previous_benefit is None or proposal.previous_income is None:
        raise Conflict("the record does not keep the benefit before this change", {"proposal_id": proposal.id})
    old, new = case.monthly_benefit, proposal.previous_benefit
    case.monthly_benefit, case.household_size = new, proposal.previous_size
    case.verified_income = proposal.previous_income
    standard = standard_of(case, ref, today)
    case.standard = standard
    case.record(Event(SOURCE, "case_adjusted", case_subject(case), {
        "case_id": case.id, "household_id": case.household_id, "community_code": case.community_code,
        "township_code": case.township_code, "area_type": case.area_type, "household_size": case.household_size,
        "effective_month": add_months_to_month(month_of(today), 1), "rule": RULE_APPEAL,
        "reason": f"复核：{appeal.decision_reason}", "old_benefit": old, "new_benefit": new,
        "direction": "raised" if new > old else "lowered",
        "benefit_gap": benefit_gap(standard, case.household_size, case.verified_income)}))
    return "reverted"


# --- reads --------------------------------------------------------------------------

def list_appeals(uow: UnitOfWork, actor: Actor, unit_code: str, status: str | None, limit: int) -> list[Appeal]:
    """The appeals within the unit (of one status if given): the earliest due first."""
    authorize(actor, READERS, unit_code)
    stmt = sa.select(Appeal).where(Appeal.community_code.startswith(unit_code, autoescape=True))
    if status:
        stmt = stmt.where(Appeal.status == status)
    return list(uow.session.scalars(stmt.order_by(Appeal.due_on, Appeal.filed_on, Appeal.id).limit(limit)))
