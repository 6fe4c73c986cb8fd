"""The verification report (核对报告): declared beside found, and the discrepancies.

``refresh`` runs the named rules of :mod:`services.verification.rules` over
everything the bureaus found for a round, adds each new discrepancy (one per
rule and subject, ever — a resolved one stays resolved), and tells the
others (``report_updated``; ``report_filed`` once every bureau answered, which
intake files in the household file; for a case, ``change_reported`` for
each new discrepancy, which review makes a proposal).
"""
from __future__ import annotations

import json
from datetime import date, datetime, timezone
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm.attributes import set_committed_value

from contracts.verification_bureau import BUREAU_TITLES, INCOME_KINDS
from services.verification import rules
from services.verification.models import (BureauAnswer, BureauRequest, Discrepancy, RequestMember,
                                          VerificationRound)
from services.verification.requests import round_subject
from shared.db import UnitOfWork
from shared.errors import Conflict, NotFound
from shared.events import Event
from shared.identity import Actor, Role, authorize
from shared.jurisdiction import within
from shared.policy import load_policy
from shared.reference import ReferenceData

SOURCE = "verification"
OFFICERS = (Role.COMMUNITY_OFFICER, Role.TOWNSHIP_OFFICER, Role.DISTRICT_OFFICER, Role.CENTRE_DIRECTOR)
READERS = OFFICERS + (Role.DEPUTY_DIRECTOR, Role.AUDITOR, Role.TOWNSHIP_COMMITTEE, Role.COMMUNITY_PANEL)


def now() -> datetime:
    return datetime.now(timezone.utc)


def found_of(answers) -> list[rules.Found]:
    out = []
    for a in answers:
        for f in json.loads(a.findings):
            out.append(rules.Found(a.bureau, a.member_ref, f["kind"], f["description"],
                                   None if f["amount"] is None else Decimal(f["amount"]),
                                   date.fromisoformat(f["as_of"])))
    return out


def refresh(uow: UnitOfWork, round_: VerificationRound, ref: ReferenceData, today: date,
            report_changes: bool = True) -> list[Discrepancy]:
    """Re-run the rules over the round's findings; returns the discrepancies new this time.
    ``report_changes``: for a case, each new discrepancy becomes a ``change_reported`` — not when
    a bureau's own change report brought it, which is one change, reported once (:func:`pushed_change`)."""
    return refresh_many(uow, [round_], ref, today, report_changes)


def _by_round(rows) -> dict[str, list]:
    out: dict[str, list] = {}
    for row in rows:
        out.setdefault(row.round_id, []).append(row)
    return out


def refresh_many(uow: UnitOfWork, rounds: list[VerificationRound], ref: ReferenceData, today: date,
                 report_changes: bool = True) -> list[Discrepancy]:
    """:func:`refresh` for many rounds at once (a batch of answers): their findings, discrepancies
    and requests read in one query each, the new discrepancies written in one flush."""
    if not rounds:
        return []
    session = uow.session
    ids = sorted(r.id for r in rounds)
    answers = _by_round(session.scalars(sa.select(BureauAnswer).where(BureauAnswer.round_id.in_(ids),
                                                                      BureauAnswer.outcome == "found")))
    known = _by_round(session.scalars(sa.select(Discrepancy).where(Discrepancy.round_id.in_(ids))
                                      .order_by(Discrepancy.id)))
    requests = _by_round(session.scalars(sa.select(BureauRequest).where(BureauRequest.round_id.in_(ids))))
    new_of: dict[str, list[Discrepancy]] = {}
    for round_ in rounds:
        policy = load_policy(round_.policy)
        standard = ref.standards.standard_for(round_.community_code, round_.area_type, today)
        flags = rules.discrepancies(found_of(answers.get(round_.id, [])), json.loads(round_.declared),
                                    standard.monthly_amount if standard else None, round_.household_size, policy)
        seen = {(d.rule, d.subject) for d in known.get(round_.id, [])}
        new = new_of.setdefault(round_.id, [])
        for flag in flags:
            if (flag.rule, flag.subject) in seen:
                continue
            d = Discrepancy(round_id=round_.id, rule=flag.rule, subject=flag.subject, bureau=flag.bureau,
                            member_ref=flag.member_ref, description=flag.description, declared=flag.declared,
                            found=flag.found, threshold=flag.threshold, status="open", found_on=today)
            session.add(d)
            new.append(d)
    if any(new_of.values()):
        session.flush()
    filed, by_status = [], {"complete": [], "open": []}
    for round_ in rounds:
        new = new_of[round_.id]
        discrepancies = known.get(round_.id, []) + new
        open_ = [r for r in requests.get(round_.id, []) if r.status == "open"]
        complete = not open_
        # written below for all the rounds at once (a row each would be a round trip each on PostgreSQL)
        set_committed_value(round_, "revision", round_.revision + 1)
        set_committed_value(round_, "status", "complete" if complete else "open")
        by_status[round_.status].append(round_.id)
        round_.record(Event(SOURCE, "report_updated", round_subject(round_), {
            "community_code": round_.community_code, "purpose": round_.purpose, "revision": round_.revision,
            "complete": complete, "bureaus_missing": sorted(r.bureau for r in open_),
            "answers_missing": sum(r.members - r.members_answered for r in open_),
            "answers_due_by": max((r.answer_by for r in open_), default=None),
            "open_discrepancies": sum(1 for d in discrepancies if d.status == "open"),
            "discrepancy_rules": sorted({d.rule for d in discrepancies if d.status == "open"})}))
        if complete and round_.filed_on is None:
            set_committed_value(round_, "filed_on", today)
            filed.append(round_.id)
            round_.record(Event(SOURCE, "report_filed", round_subject(round_), {
                "community_code": round_.community_code, "title": f"家庭经济状况核对报告（{today.isoformat()}）",
                "filed_on": today, "discrepancies": len(discrepancies)}))
        if round_.case_id and report_changes:
            for d in new:
                _change_for_case(uow, round_, f"discrepancy:{d.id}", d.bureau, d.rule,
                                 _kind_of(d.rule), d.found if d.rule == "income_above_declared" else None, today)
    _write_rounds(session, ids, by_status, filed, today)
    return [d for new in new_of.values() for d in new]


def _write_rounds(session, ids: list[str], by_status: dict, filed: list[str], today: date) -> None:
    """The rounds' new revision, status and filing day: one UPDATE each, set-based."""
    table = VerificationRound.__table__
    for i in range(0, len(ids), 500):
        session.execute(table.update().where(table.c.id.in_(ids[i:i + 500]))
                        .values(revision=table.c.revision + 1))
    for status, chosen in by_status.items():
        for i in range(0, len(chosen), 500):
            session.execute(table.update().where(table.c.id.in_(chosen[i:i + 500])).values(status=status))
    for i in range(0, len(filed), 500):
        session.execute(table.update().where(table.c.id.in_(filed[i:i + 500])).values(filed_on=today))


def _kind_of(rule: str) -> str:
    return {"undeclared_vehicle": "vehicle", "property_beyond_family_home": "real_estate",
            "deposits_above_standard": "deposit", "income_above_declared": "income"}[rule]


def _change_for_case(uow, round_, change_id, bureau, rule, kind, monthly_income, as_of) -> None:
    round_.record(Event(SOURCE, "change_reported", {"household_id": round_.household_id, "case_id": round_.case_id,
                                                    "round_id": round_.id}, {
        "community_code": round_.community_code, "change_id": change_id, "bureau": bureau, "rule": rule,
        "kind": kind, "monthly_income": monthly_income, "as_of": as_of}))


def pushed_change(uow: UnitOfWork, round_: VerificationRound, bureau: str, message: dict, today: date) -> None:
    """A change a bureau reported on its own, for the case the household has now (one proposal per message)."""
    from services.verification.models import MonitoredCase

    case_id = round_.case_id
    if case_id is None:
        case = uow.session.scalar(sa.select(MonitoredCase).where(MonitoredCase.household_id == round_.household_id,
                                                                 MonitoredCase.status == "active"))
        case_id = case.case_id if case else None
    if case_id is None:
        return     # still an application: the report shows it
    income = sum((f["amount"] for f in message["findings"] if f["kind"] in INCOME_KINDS and f["amount"] is not None),
                 Decimal("0.00"))
    first = message["findings"][0]
    round_.record(Event(SOURCE, "change_reported", {"household_id": round_.household_id, "case_id": case_id,
                                                    "round_id": round_.id}, {
        "community_code": round_.community_code, "change_id": f"pushed:{bureau}:{message['message_id']}",
        "bureau": bureau,
        "rule": "pushed", "kind": first["kind"], "monthly_income": income if income else None,
        "as_of": first["as_of"]}))


# --- reading and resolving -------------------------------------------------------------

def round_for(uow: UnitOfWork, actor: Actor, roles, household_id: str | None, round_id: str | None
              ) -> VerificationRound:
    authorize(actor, roles)
    if round_id:
        round_ = uow.session.get(VerificationRound, round_id)
    else:
        round_ = uow.session.scalar(sa.select(VerificationRound).where(VerificationRound.household_id == household_id)
                                    .order_by(VerificationRound.requested_at.desc()).limit(1))
    missing = NotFound.of("verification round", round_id or household_id, "round_id" if round_id else "household_id")
    if round_ is None:
        raise missing
    within(actor, round_.community_code, missing)
    return round_


def report_of(uow: UnitOfWork, round_: VerificationRound, today: date) -> dict:
    session = uow.session
    names = {}
    requests = list(session.scalars(sa.select(BureauRequest).where(BureauRequest.round_id == round_.id)
                                    .order_by(BureauRequest.bureau)))
    for r in requests:
        for m in session.scalars(sa.select(RequestMember).where(RequestMember.request_id == r.id)):
            names[m.member_ref] = m.name
    findings = []
    for a in session.scalars(sa.select(BureauAnswer).where(BureauAnswer.round_id == round_.id)
                             .order_by(BureauAnswer.id)):
        base = {"bureau": a.bureau, "member_ref": a.member_ref, "member_name": names.get(a.member_ref, ""),
                "outcome": a.outcome, "reason": a.reason, "pushed": a.pushed}
        items = json.loads(a.findings)
        if not items:
            findings.append(dict(base, kind=None, description=None, amount=None, as_of=None))
        for f in items:
            findings.append(dict(base, kind=f["kind"], description=f["description"],
                                 amount=None if f["amount"] is None else Decimal(f["amount"]),
                                 as_of=date.fromisoformat(f["as_of"])))
    return {
        "round_id": round_.id, "household_id": round_.household_id, "application_id": round_.application_id,
        "case_id": round_.case_id, "purpose": round_.purpose, "community_code": round_.community_code,
        "requested_by": round_.requested_by, "requested_at": round_.requested_at,
        "complete": round_.status == "complete", "filed": round_.filed_on is not None,
        "declared": json.loads(round_.declared),
        "bureaus": [{"bureau": r.bureau, "request_id": r.id, "status": r.status, "answer_by": r.answer_by,
                     "overdue": rules.is_overdue(r.status, r.answer_by, today), "reminders": r.reminders,
                     "members_answered": r.members_answered, "members": r.members} for r in requests],
        "findings": findings,
        "discrepancies": list(session.scalars(sa.select(Discrepancy).where(Discrepancy.round_id == round_.id)
                                              .order_by(Discrepancy.id))),
        "titles": BUREAU_TITLES,
    }


def resolve(uow: UnitOfWork, actor: Actor, data: dict, ref: ReferenceData, today: date) -> Discrepancy:
    """An officer records how a discrepancy was resolved, with the reason (the approval waits for it)."""
    d = uow.session.get(Discrepancy, data["discrepancy_id"], with_for_update=True)
    missing = NotFound.of("discrepancy", data["discrepancy_id"], "discrepancy_id")
    if d is None:
        raise missing
    round_ = uow.session.get(VerificationRound, d.round_id, with_for_update=True)
    authorize(actor, OFFICERS)
    within(actor, round_.community_code, missing)
    if d.status != "open":
        raise Conflict(f"the discrepancy is already resolved ({d.resolution})", {"status": d.status})
    d.status, d.resolution, d.resolution_reason = "resolved", data["resolution"], data["reason"].strip()
    d.resolved_by, d.resolved_at = actor.user, now()
    round_.record(Event(SOURCE, "discrepancy_resolved", round_subject(round_), {
        "community_code": round_.community_code, "discrepancy_id": d.id, "rule": d.rule,
        "resolution": d.resolution}))
    uow.session.flush()
    refresh(uow, round_, ref, today)
    uow.commit()
    return d
