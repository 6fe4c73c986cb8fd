"""Review's handlers: the entry review as a state machine whose steps and
order come from the policy plugin (no ``if policy == ...``).

An application enters when intake accepts it, opens its first step when the
home investigation is recorded, and moves step by step — evaluation, notice,
township review, notice, joint review — each recorded with who, when, what
and why. An objection sends it back to a home investigation. Approval
creates a case.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import sqlalchemy as sa

from services.review import rules
from services.review.models import (Case, CommunityEvaluation, GuaranteeStandard, JointReviewSignature, ReviewFile,
                                    Staff, TownshipReview, VerificationState)
from shared.db import UnitOfWork
from shared.errors import Conflict, ValidationFailed
from shared.events import Event, load_payload
from shared.identity import STAFF_ROLES, Actor, Role, authorize
from shared.jurisdiction import code_within, get_within
from shared.money import round_fen
from shared.policy import load_policy
from shared.policy.base import Policy, ReviewStep
from shared.reference import ReferenceData
from shared.staff import apply_identity_event, holds_role
from shared.standards import Standard
from shared.workdays import WorkdayCalendar

SOURCE = "review"
LEVEL_ROLES = {
    "community": (Role.COMMUNITY_OFFICER, Role.COMMUNITY_PANEL),
    "township": (Role.TOWNSHIP_OFFICER, Role.TOWNSHIP_COMMITTEE),
    "district": (Role.DISTRICT_OFFICER, Role.CENTRE_DIRECTOR, Role.DEPUTY_DIRECTOR),
}
READERS = tuple({r for roles in LEVEL_ROLES.values() for r in roles}) + (Role.AUDITOR,)
#: who signs the joint review, in which seat (the investigator: any case-working staff)
JOINT_REVIEW_SEATS = {"deputy_director": Role.DEPUTY_DIRECTOR, "centre_director": Role.CENTRE_DIRECTOR}


def now() -> datetime:
    return datetime.now(timezone.utc)


def subject(f: ReviewFile, **more) -> dict:
    return {"household_id": f.household_id, "application_id": f.application_id, **more}


def unit_of(f: ReviewFile, level: str) -> str:
    return {"community": f.community_code, "township": f.township_code, "district": f.community_code[:6]}[level]


def policy_of(f: ReviewFile) -> Policy:
    """An application finishes under the policy it was accepted under."""
    return load_policy(f.policy)


def load_file(uow: UnitOfWork, application_id, for_update: bool = False) -> ReviewFile:
    return uow.get(ReviewFile, application_id, "application under review", "application_id",
                   with_for_update=for_update)


def file_for(uow: UnitOfWork, actor: Actor, roles, application_id, for_update: bool = False) -> ReviewFile:
    """The file, for an actor of ``roles`` whose jurisdiction covers its
    community; to anyone else it does not exist (shared/jurisdiction.py)."""
    return get_within(uow, actor, roles, ReviewFile, application_id, "application under review", "application_id",
                      with_for_update=for_update)


def public_status(uow: UnitOfWork, actor: Actor, application_id: str) -> ReviewFile:
    """The review file behind the public status page: the gateway's own
    identity asks, after intake has matched the applicant's ID (the answer
    is dumped as PublicStatusOut: the step and its dates, nothing else)."""
    authorize(actor, (Role.SERVICE,))
    return uow.get(ReviewFile, application_id, "application under review", "application_id")


def workday_deadline(calendar: WorkdayCalendar, start: date, workdays: int | None) -> tuple[date | None, bool]:
    """(the deadline ``workdays`` working days after ``start``, whether its count
    crossed a provisional day); (None, False) when the policy sets none."""
    if not workdays:
        return None, False
    counted = calendar.count(start, workdays)
    return counted.day, counted.provisional


# --- moving through the steps -------------------------------------------------

def open_step(f: ReviewFile, step: ReviewStep | None, ref: ReferenceData, today: date) -> None:
    if step is None:  # pragma: no cover - a policy always ends with the joint review
        raise Conflict("the policy has no further step")
    f.status, f.step, f.step_opened_on = "in_review", step.name, today
    f.step_due_on, f.step_due_provisional = workday_deadline(ref.calendar, today, step.deadline_workdays)
    f.notice_id = None
    unit = unit_of(f, step.level)
    f.record(Event(SOURCE, "review_step_opened", subject(f), {
        "step": step.name, "kind": step.kind, "level": step.level, "unit_code": unit,
        "opened_on": today, "due_on": f.step_due_on}))
    if step.kind == "notice":
        f.record(Event(SOURCE, "notice_requested", subject(f), {
            "stage": step.name, "unit_code": unit, "days": step.notice_days, "household_size": f.household_size,
            "monthly_benefit": None, "blocking": True}))


def advance(f: ReviewFile, ref: ReferenceData, today: date) -> None:
    open_step(f, policy_of(f).step_after(f.step), ref, today)


def reject(f: ReviewFile, step: str, reason: str, today: date, by: str) -> None:
    f.status, f.decided_on, f.rejection_reason, f.rejected_by = "rejected", today, reason, by
    f.record(Event(SOURCE, "application_rejected", subject(f), {
        "community_code": f.community_code, "step": step, "reason": reason, "rejected_on": today}))


# --- facts from intake and notify (events) --------------------------------------

def application_submitted(uow: UnitOfWork, event: dict, ref: ReferenceData) -> None:
    p = event["payload"]
    application_id = event["subject"]["application_id"]
    if uow.session.get(ReviewFile, application_id):
        return
    policy = load_policy(p["policy"])
    accepted = date.fromisoformat(p["accepted_on"])
    due, provisional = workday_deadline(ref.calendar, accepted, policy.process_workdays)
    uow.session.add(ReviewFile(
        application_id=application_id, household_id=event["subject"]["household_id"],
        community_code=p["community_code"], township_code=p["township_code"], area_type=p["area_type"],
        policy=policy.name, accepted_on=accepted, household_size=p["member_count"],
        status="awaiting_investigation", process_due_on=due, process_due_provisional=provisional,
        investigators=[], flags=[]))


def investigation_recorded(uow: UnitOfWork, event: dict, ref: ReferenceData, today: date) -> None:
    """The home investigation opens the review (again, after an objection)."""
    f = load_file(uow, event["subject"]["application_id"], for_update=True)
    f.investigators = [{"user": i["user"], "name": i["name"]} for i in event["payload"]["investigators"]]
    f.investigation_id = event["subject"].get("investigation_id")
    f.household_size = event["payload"]["member_count"]
    if f.status in ("awaiting_investigation", "awaiting_reinvestigation"):
        open_step(f, policy_of(f).step_after(None), ref, today)


def notice_closed(uow: UnitOfWork, event: dict, ref: ReferenceData, today: date) -> None:
    """A blocking notice ended: without objections the review goes on."""
    f = load_file(uow, event["subject"]["application_id"], for_update=True)
    if f.status != "in_review" or f.step != event["payload"]["stage"] or event["payload"]["objections"]:
        return  # an objection already sent it back; a stale or result notice changes nothing
    advance(f, ref, today)


def notice_posted(uow: UnitOfWork, event: dict, ref: ReferenceData) -> None:
    """Remember which notice stands for the open step (objections are about it)."""
    f = load_file(uow, event["subject"]["application_id"], for_update=True)
    if f.status == "in_review" and f.step == event["payload"]["stage"]:
        f.notice_id = event["subject"]["notice_id"]


def objection_filed(uow: UnitOfWork, event: dict, ref: ReferenceData) -> None:
    """任何异议: back to a home investigation, then a new evaluation.

    Only an objection to the notice of the open step does that; one filed
    late against an earlier notice is counted and changes nothing else."""
    f = load_file(uow, event["subject"]["application_id"], for_update=True)
    f.objections += 1
    policy = policy_of(f)
    if policy.process_workdays_with_objection:
        f.process_due_on, f.process_due_provisional = workday_deadline(ref.calendar, f.accepted_on,
                                                                        policy.process_workdays_with_objection)
    current_notice = f.step == event["payload"]["stage"] and f.notice_id in (None, event["subject"].get("notice_id"))
    if f.status != "in_review" or not current_notice:
        return
    interrupted = f.step
    f.status, f.step, f.step_opened_on, f.step_due_on = "awaiting_reinvestigation", None, None, None
    f.step_due_provisional = False
    f.record(Event(SOURCE, "reinvestigation_required", subject(f), {
        "community_code": f.community_code, "step": interrupted,
        "objection_id": event["subject"].get("objection_id", "")}))


# --- operators' steps ------------------------------------------------------------

def record_evaluation(uow: UnitOfWork, actor: Actor, data: dict, ref: ReferenceData, today: date) -> ReviewFile:
    f = file_for(uow, actor, LEVEL_ROLES["community"], data["application_id"], for_update=True)
    step = rules.step_is_current(f.status, f.step, "evaluation", policy_of(f))
    participants = data["participants"]
    rules.participants_all_signed(participants)
    rules.representatives_share_suffices(participants, policy_of(f))
    rules.votes_match_decision(data["votes_for"], data["votes_against"], data["abstentions"],
                               len(participants), data["passed"])
    if data["meeting_date"] > today:
        raise ValidationFailed.field("meeting_date", "in the future")
    related = [p["name"] for p in participants if p.get("related_to_applicant")]
    if related:  # Art. 11: relatives of staff or evaluators are flagged; the district visits
        f.flags = list(f.flags) + [{"flag": "related_evaluator", "names": related, "on": today.isoformat()}]
    uow.session.add(CommunityEvaluation(
        application_id=f.application_id, meeting_date=data["meeting_date"], participants=participants,
        votes_for=data["votes_for"], votes_against=data["votes_against"], abstentions=data["abstentions"],
        passed=data["passed"], remarks=data["remarks"], recorded_by=actor.user, recorded_at=now()))
    f.record(Event(SOURCE, "community_evaluated", subject(f), {
        "community_code": f.community_code, "meeting_date": data["meeting_date"], "passed": data["passed"],
        "participants": len(participants), "votes_for": data["votes_for"],
        "votes_against": data["votes_against"], "abstentions": data["abstentions"], "skipped": False,
        "signed_by": [{"name": p["name"], "role": p.get("role")} for p in participants]}))
    if data["passed"]:
        advance(f, ref, today)
    else:
        reject(f, step.name, data["remarks"] or "民主评议未通过", today, actor.user)
    uow.commit()
    return f


def skip_evaluation(uow: UnitOfWork, actor: Actor, data: dict, ref: ReferenceData, today: date) -> ReviewFile:
    f = file_for(uow, actor, LEVEL_ROLES["community"] + LEVEL_ROLES["township"], data["application_id"],
                 for_update=True)
    step = rules.step_is_current(f.status, f.step, "evaluation", policy_of(f))
    rules.evaluation_may_be_skipped(step, f.objections)
    uow.session.add(CommunityEvaluation(application_id=f.application_id, participants=[], passed=True,
                                        skipped=True, remarks=data["reason"], recorded_by=actor.user,
                                        recorded_at=now()))
    f.record(Event(SOURCE, "community_evaluated", subject(f), {
        "community_code": f.community_code, "meeting_date": today, "passed": True, "participants": 0,
        "votes_for": 0, "votes_against": 0, "abstentions": 0, "skipped": True}))
    advance(f, ref, today)
    uow.commit()
    return f


def record_township_review(uow: UnitOfWork, actor: Actor, data: dict, ref: ReferenceData,
                           today: date) -> ReviewFile:
    f = file_for(uow, actor, LEVEL_ROLES["township"], data["application_id"], for_update=True)
    authorize(actor, LEVEL_ROLES["township"], f.township_code)
    policy = policy_of(f)
    # the township acts by committee (jiangxia) or by an initial opinion (national2021)
    kind = "initial_opinion" if f.step and policy.step(f.step).kind == "initial_opinion" else "committee"
    step = rules.step_is_current(f.status, f.step, kind, policy)
    if data["passed"]:   # a refusal needs no bureau's answer
        rules.verification_answers_are_in(policy, f.step, uow.session.get(VerificationState, f.application_id))
    members = data["members"]
    if kind == "initial_opinion" and not members:  # the officer's own signed opinion
        members = [{"name": actor.name, "department": "civil_affairs",
                    "opinion": "agree" if data["passed"] else "disagree", "signed": True}]
    rules.participants_all_signed(members, "members")
    unanimous = rules.committee_passes_only_unanimously(members, data["passed"], policy)
    if data["meeting_date"] > today:
        raise ValidationFailed.field("meeting_date", "in the future")
    uow.session.add(TownshipReview(application_id=f.application_id, kind=step.kind,
                                   meeting_date=data["meeting_date"], members=members, passed=data["passed"],
                                   remarks=data["remarks"], recorded_by=actor.user, recorded_at=now()))
    f.record(Event(SOURCE, "township_reviewed", subject(f), {
        "township_code": f.township_code, "kind": step.kind, "passed": data["passed"],
        "members": len(members), "unanimous": unanimous,
        "signed_by": [{"name": m["name"], "department": m.get("department"), "opinion": m.get("opinion")}
                      for m in members]}))
    if data["passed"]:
        advance(f, ref, today)
    else:
        reject(f, step.name, data["remarks"] or "乡镇街审核未通过", today, actor.user)
    uow.commit()
    return f


@dataclass(frozen=True)
class HouseholdFacts:
    """What the deciding signature needs from intake: the verified income and the members."""

    verified_income: Decimal
    members: list


def missing_roles(uow: UnitOfWork, f: ReviewFile) -> set[str]:
    signed = set(uow.session.scalars(sa.select(JointReviewSignature.role)
                                     .where(JointReviewSignature.application_id == f.application_id)))
    return set(policy_of(f).joint_review_roles) - signed


def signer_is_registered(uow: UnitOfWork, actor: Actor, seat: str, division_code: str) -> bool:
    """The staff registry (identity's, projected) shows the actor, now, in the
    seat's role — for the investigator seat, in any case-working role — in a
    unit covering the application."""
    if actor.is_service:
        return False
    roles = [JOINT_REVIEW_SEATS[seat].value] if seat in JOINT_REVIEW_SEATS else [r.value for r in STAFF_ROLES]
    return any(holds_role(uow.session, Staff, actor.user, role, division_code) for role in roles)


def identity_event(uow: UnitOfWork, env: dict) -> None:
    """identity's accounts and roles: the staff registry (shared/staff.py)."""
    apply_identity_event(uow, env, Staff)


def sign_joint_review(uow: UnitOfWork, actor: Actor, data: dict, ref: ReferenceData, today: date,
                      facts: HouseholdFacts | None, bureaus_asked: bool = False) -> tuple[ReviewFile, Case | None]:
    """会审: three people, three roles; the third signature decides. ``bureaus_asked``: the
    deployment asks partner bureaus (核对), so a policy may make approval wait for the report."""
    f = file_for(uow, actor, (), data["application_id"], for_update=True)
    policy = policy_of(f)
    rules.step_is_current(f.status, f.step, "joint_review", policy)
    verification = uow.session.get(VerificationState, f.application_id)
    rules.verification_answers_are_in(policy, f.step, verification)
    rules.verification_report_is_complete(policy, verification, today, bureaus_asked)
    rules.no_open_verification_discrepancy(verification)
    role = rules.joint_review_role_of(actor, f.investigators, data["role"],
                                      signer_is_registered(uow, actor, data["role"], f.community_code))
    signatures = list(uow.session.scalars(
        sa.select(JointReviewSignature).where(JointReviewSignature.application_id == f.application_id)))
    rules.nobody_fills_two_roles(signatures, actor.user, role)
    rules.override_has_reason(data["benefit_override"], data["override_reason"])
    rules.signatures_are_for_the_same_amount(signatures, data["benefit_override"], data["override_reason"])
    signature = JointReviewSignature(application_id=f.application_id, role=role, user=actor.user, name=actor.name,
                                     signed_at=now(), benefit_override=data["benefit_override"],
                                     override_reason=data["override_reason"])
    uow.session.add(signature)
    signatures.append(signature)
    case = None
    if {s.role for s in signatures} >= set(policy.joint_review_roles):
        if facts is None:  # another signature landed since this one was read: ask again
            raise Conflict("the joint review changed meanwhile; sign again", {"application_id": f.application_id})
        case = approve(uow, f, signatures, ref, today, facts.verified_income, facts.members)
    uow.commit()
    return f, case


def joint_review_sheet(uow: UnitOfWork, actor: Actor, application_id: str, ref: ReferenceData, today: date,
                       facts: HouseholdFacts | None, bureaus_asked: bool = False) -> dict:
    """会审单: the seats in the policy's order, who has signed each (and any
    override with its reason), and the benefit the signatures would fix with
    its calculation — standard × size − verified income, the formula, 分类施保
    extras, the minimum (``facts``: intake's, None once decided); and the 核对
    report as review knows it, with whether it keeps the signatures waiting."""
    f = file_for(uow, actor, READERS, application_id)
    policy = policy_of(f)
    signed = {s.role: s for s in uow.session.scalars(
        sa.select(JointReviewSignature).where(JointReviewSignature.application_id == f.application_id))}
    seats = [{"role": role, "signed": role in signed,
              **({"user": signed[role].user, "name": signed[role].name, "signed_at": signed[role].signed_at,
                  "benefit_override": signed[role].benefit_override,
                  "override_reason": signed[role].override_reason} if role in signed else {})}
             for role in policy.joint_review_roles]
    sheet = {"application_id": f.application_id, "status": f.status, "step": f.step, "seats": seats,
             "investigators": list(f.investigators), "calculation": None,
             "verification": verification_on_sheet(policy, uow.session.get(VerificationState, f.application_id),
                                                   today, bureaus_asked)}
    if facts is not None:
        standard = standard_for(uow.session, ref, f.community_code, f.area_type, today)
        if standard is not None:
            sheet["calculation"] = benefit_calculation(policy, standard.monthly_amount, f.household_size,
                                                       facts.verified_income,
                                                       sum(1 for m in facts.members if policy.vulnerable(m, today)))
    return sheet


def verification_on_sheet(policy: Policy, state: VerificationState | None, today: date, bureaus_asked: bool) -> dict:
    """The 核对 part of the sheet: the report's state and the rule that holds the signatures, if one does."""
    blocked_by = None
    for rule in (lambda: rules.verification_report_is_complete(policy, state, today, bureaus_asked),
                 lambda: rules.no_open_verification_discrepancy(state)):
        try:
            rule()
        except Conflict as exc:
            blocked_by = exc.details["rule"]
            break
    return {"report_required": policy.verification_report_before_approval and bureaus_asked,
            "has_report": state is not None, "complete": bool(state and state.complete),
            "bureaus_missing": list(state.bureaus_missing) if state else [],
            "answers_due_by": state.answers_due_by if state else None,
            "open_discrepancies": state.open_discrepancies if state else 0, "blocked_by": blocked_by}


def benefit_calculation(policy: Policy, standard: Decimal, household_size: int, income: Decimal,
                        vulnerable: int) -> dict:
    """The benefit and how it comes about (the same :meth:`Policy.benefit` approval uses)."""
    gap = standard * household_size - income
    benefit = policy.benefit(standard, household_size, income, vulnerable)
    extras = (policy.vulnerable_member_extra * vulnerable).quantize(Decimal("0.01")) if gap > 0 else Decimal("0.00")
    without_extras = policy.benefit_from_gap(gap, household_size, 0) if gap > 0 else Decimal("0.00")
    return {"standard": standard, "household_size": household_size, "verified_income": income,
            "gap": gap.quantize(Decimal("0.01")), "formula": policy.benefit_formula,
            "vulnerable_members": vulnerable, "extra_per_vulnerable_member": policy.vulnerable_member_extra,
            "extras": extras, "before_extras": without_extras, "minimum_benefit": policy.minimum_benefit,
            "benefit": benefit}


def standard_for(session, ref: ReferenceData, division_code: str, area_type: str, on: date) -> Standard | None:
    """低保标准 in force: the configured table overlaid by what payments set (standard_changed)."""
    local = [Standard(s.division_code, s.area_type, s.effective_from, s.monthly_amount)
             for s in session.scalars(sa.select(GuaranteeStandard).where(GuaranteeStandard.area_type == area_type))]
    table = ref.standards.overlaid(local) if local else ref.standards
    return table.standard_for(division_code, area_type, on)


def standard_changed(uow: UnitOfWork, env: dict, ref: ReferenceData) -> None:
    """payments.standard_changed: later approvals and adjustments use the new standard."""
    p = load_payload(env)
    row = uow.session.get(GuaranteeStandard, (p["division_code"], p["area_type"], p["effective_from"]))
    if row is None:
        uow.session.add(GuaranteeStandard(division_code=p["division_code"], area_type=p["area_type"],
                                          effective_from=p["effective_from"], monthly_amount=p["new_amount"]))
    else:
        row.monthly_amount = p["new_amount"]


def benefit_changed(uow: UnitOfWork, env: dict, ref: ReferenceData) -> None:
    """payments.benefit_changed: the case shows the benefit payments recalculated (提标/降标)."""
    p = load_payload(env)
    case = uow.session.get(Case, p["case_id"])
    if case is not None and case.status == "active":
        case.monthly_benefit = p["new_benefit"]


def approve(uow: UnitOfWork, f: ReviewFile, signatures: list, ref: ReferenceData, today: date,
            verified_income: Decimal, members: list[dict]) -> Case:
    policy = policy_of(f)
    standard = standard_for(uow.session, ref, f.community_code, f.area_type, today)
    if standard is None:
        raise Conflict(f"no guarantee standard for {f.community_code} ({f.area_type}) on {today}",
                       {"community_code": f.community_code})
    vulnerable = sum(1 for m in members if policy.vulnerable(m, today))
    computed = policy.benefit(standard.monthly_amount, f.household_size, verified_income, vulnerable)
    override = next((s for s in signatures if s.benefit_override is not None), None)
    benefit = round_fen(override.benefit_override) if override else computed
    category = policy.categorize(members, today)
    first_of_next = (today.replace(day=1) + timedelta(days=32)).replace(day=1)
    next_rereview = rules.add_months(today, policy.months_until_rereview(category))
    case = Case(application_id=f.application_id, household_id=f.household_id, community_code=f.community_code,
                township_code=f.township_code, area_type=f.area_type, household_size=f.household_size,
                standard=standard.monthly_amount, verified_income=verified_income, monthly_benefit=benefit,
                benefit_override_reason=override.override_reason if override else None, category=category,
                start_month=first_of_next.strftime("%Y-%m"), next_rereview_on=next_rereview, approved_on=today,
                policy=policy.name, vulnerable_members=vulnerable)
    uow.session.add(case)
    uow.session.flush()
    f.status, f.decided_on, f.step_due_on, f.step_due_provisional = "approved", today, None, False
    case.record(Event(SOURCE, "case_approved", subject(f, case_id=case.id), {
        "community_code": f.community_code, "township_code": f.township_code, "area_type": f.area_type,
        "household_size": f.household_size, "monthly_benefit": benefit, "category": category,
        "start_month": case.start_month, "next_rereview_on": next_rereview, "approved_on": today,
        "policy": policy.name, "standard_amount": standard.monthly_amount,
        "benefit_gap": standard.monthly_amount * f.household_size - verified_income,
        "vulnerable_members": vulnerable,
        "benefit_overridden": override is not None}))
    case.record(Event(SOURCE, "notice_requested", subject(f, case_id=case.id), {
        "stage": "result", "unit_code": f.community_code, "days": policy.result_notice_days,
        "household_size": f.household_size, "monthly_benefit": benefit, "blocking": False}))
    return case


def reject_application(uow: UnitOfWork, actor: Actor, data: dict, ref: ReferenceData, today: date) -> ReviewFile:
    f = file_for(uow, actor, READERS, data["application_id"], for_update=True)
    if f.status not in ("in_review", "awaiting_investigation", "awaiting_reinvestigation"):
        raise Conflict(f"the application is already {f.status}", {"status": f.status})
    level = policy_of(f).step(f.step).level if f.step else "community"
    authorize(actor, LEVEL_ROLES[level], unit_of(f, level))
    reject(f, f.step or f.status, data["reason"], today, actor.user)
    uow.commit()
    return f


def overdue(uow: UnitOfWork, actor: Actor, unit_code: str, as_of: date) -> list[ReviewFile]:
    """The statutory clock: open applications past a step's or the whole process's deadline."""
    authorize(actor, READERS, unit_code)
    open_ = ReviewFile.status.in_(("in_review", "awaiting_investigation", "awaiting_reinvestigation"))
    late = sa.or_(ReviewFile.step_due_on < as_of, ReviewFile.process_due_on < as_of)
    stmt = (sa.select(ReviewFile).where(open_, late, ReviewFile.community_code.startswith(unit_code, autoescape=True))
            .order_by(ReviewFile.township_code, ReviewFile.community_code, ReviewFile.accepted_on))
    return list(uow.session.scalars(stmt))


def verification_report_updated(uow: UnitOfWork, event: dict) -> None:
    """verification.report_updated: the latest state of an application's verification (newest revision wins)."""
    application_id = event["subject"].get("application_id")
    if not application_id:
        return
    p = event["payload"]
    state = uow.session.get(VerificationState, application_id)
    if state is not None and state.round_id == event["subject"]["round_id"] and state.revision >= p["revision"]:
        return   # an older revision arriving late
    if state is None:
        state = VerificationState(application_id=application_id)
        uow.session.add(state)
    state.round_id, state.revision, state.complete = event["subject"]["round_id"], p["revision"], p["complete"]
    state.bureaus_missing, state.answers_missing = list(p["bureaus_missing"]), p["answers_missing"]
    due = p.get("answers_due_by")
    state.answers_due_by = date.fromisoformat(due) if isinstance(due, str) else due
    state.open_discrepancies, state.discrepancy_rules = p["open_discrepancies"], list(p["discrepancy_rules"])


#: the statuses of a file still in the review
OPEN_STATUSES = ("in_review", "awaiting_investigation", "awaiting_reinvestigation")


def acting_level(f: ReviewFile) -> str:
    """The level that acts next on an open file: its open step's, or the
    community's while a (re-)investigation is awaited."""
    if f.status == "in_review" and f.step:
        return policy_of(f).step(f.step).level
    return "community"


def levels_of(actor: Actor) -> set[str]:
    """The levels the actor works at (LEVEL_ROLES); an auditor reads every level."""
    if actor.has(Role.AUDITOR):
        return set(LEVEL_ROLES)
    return {level for level, roles in LEVEL_ROLES.items() if actor.roles & frozenset(roles)}


def files_within(uow: UnitOfWork, actor: Actor, unit_code: str, status: str | None, limit: int) -> list[ReviewFile]:
    """The review files within ``unit_code`` (of one status, if given), the latest accepted first."""
    authorize(actor, READERS, unit_code)
    stmt = sa.select(ReviewFile).where(ReviewFile.community_code.startswith(unit_code, autoescape=True))
    if status:
        stmt = stmt.where(ReviewFile.status == status)
    stmt = stmt.order_by(ReviewFile.accepted_on.desc(), ReviewFile.application_id).limit(limit)
    return list(uow.session.scalars(stmt))


@dataclass(frozen=True)
class WorkItem:
    """An open file on someone's worklist (待办): the file, who acts, whether it is late."""

    file: ReviewFile
    level: str
    overdue: bool


def worklist(uow: UnitOfWork, actor: Actor, unit_code: str, as_of: date, limit: int) -> list[WorkItem]:
    """待办: the open files within ``unit_code`` whose next act is at a level
    the actor works at, the earliest deadline first (a file without one last)."""
    authorize(actor, READERS, unit_code)
    levels = levels_of(actor)
    stmt = (sa.select(ReviewFile)
            .where(ReviewFile.status.in_(OPEN_STATUSES), code_within(ReviewFile.community_code, unit_code))
            .order_by(ReviewFile.accepted_on, ReviewFile.application_id))
    items = []
    for f in uow.session.scalars(stmt):
        level = acting_level(f)
        if level in levels:
            late = rules.overdue(f.step_due_on, f.process_due_on, as_of)
            items.append(WorkItem(f, level, late))
    far = date.max
    items.sort(key=lambda i: (not i.overdue, min(i.file.step_due_on or far, i.file.process_due_on or far),
                              i.file.accepted_on))
    return items[:limit]
