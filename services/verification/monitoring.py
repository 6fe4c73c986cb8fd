"""Dynamic monitoring (低收入人口动态监测) and the worklist's counts.

The active cases come from review's events (approved; cancelled; restored on appeal, 复核);
each is re-verified every
``policy.verification_monitoring_months``: :func:`due_cases` picks the cases
due (one query), the service fetches their households from intake in
batches (one RPC per batch) and :func:`start_rounds` sends one round per
household in one transaction per batch.
"""
from __future__ import annotations

from datetime import date

import sqlalchemy as sa

from services.verification import rules
from services.verification.models import BureauAnswer, BureauMessage, BureauRequest, MonitoredCase, VerificationRound
from services.verification import requests as sending
from shared.db import UnitOfWork
from shared.errors import Conflict
from shared.identity import Actor, Role, authorize
from shared.policy import load_policy
from shared.reference import ReferenceData

READERS = (Role.COMMUNITY_OFFICER, Role.TOWNSHIP_OFFICER, Role.DISTRICT_OFFICER, Role.CENTRE_DIRECTOR,
           Role.DEPUTY_DIRECTOR, Role.AUDITOR)
RUNNERS = (Role.DISTRICT_OFFICER, Role.CENTRE_DIRECTOR)


def case_approved(uow: UnitOfWork, event: dict) -> None:
    s, p = event["subject"], event["payload"]
    policy = load_policy(p["policy"])
    approved = date.fromisoformat(p["approved_on"])
    case = uow.session.get(MonitoredCase, s["case_id"])
    if case is None:
        uow.session.add(MonitoredCase(case_id=s["case_id"], household_id=s["household_id"],
                                      community_code=p["community_code"], policy=policy.name, status="active",
                                      next_verification_on=rules.add_months(
                                          approved, policy.verification_monitoring_months)))


def case_cancelled(uow: UnitOfWork, event: dict) -> None:
    case = uow.session.get(MonitoredCase, event["subject"]["case_id"])
    if case is not None:
        case.status = "cancelled"


def case_restored(uow: UnitOfWork, event: dict, policy_name: str) -> None:
    """review.case_restored (an upheld appeal): the case is monitored again, due when its cadence
    says, or at once if that passed while it was cancelled (the authorization's validity is
    checked when its round starts, as for every case). A case never seen here (verification
    came later) is taken in under the deployment's policy, due from the restoration."""
    s, p = event["subject"], event["payload"]
    restored_on = date.fromisoformat(p["restored_on"])
    case = uow.session.get(MonitoredCase, s["case_id"])
    if case is None:
        uow.session.add(MonitoredCase(case_id=s["case_id"], household_id=s["household_id"],
                                      community_code=p["community_code"], policy=policy_name, status="active",
                                      next_verification_on=restored_on))
    else:
        case.status = "active"
        case.next_verification_on = rules.monitoring_resumes_on(case.next_verification_on, restored_on)


def due_cases(uow: UnitOfWork, as_of: date, unit: str | None, limit: int) -> list[MonitoredCase]:
    stmt = (sa.select(MonitoredCase).where(MonitoredCase.status == "active",
                                           MonitoredCase.next_verification_on <= as_of)
            .order_by(MonitoredCase.next_verification_on, MonitoredCase.case_id).limit(limit))
    if unit:
        stmt = stmt.where(MonitoredCase.community_code.startswith(unit, autoescape=True))
    return list(uow.session.scalars(stmt))


def start_rounds(uow: UnitOfWork, cases: list[MonitoredCase], households: dict[str, dict], ref: ReferenceData,
                 bureaus: tuple[str, ...], answer_workdays: int, as_of: date, today: date) -> dict:
    """One monitoring round per due case whose household's authorization is valid, then the
    cases' next dates moved on in one UPDATE per cadence; returns the counts."""
    started, no_consent, planned = [], [], []
    answer_by = ref.calendar.count(today, answer_workdays)
    for case in cases:
        household = households.get(case.household_id)
        if household is None:
            no_consent.append(case.case_id)
            continue
        try:
            planned.append(sending.plan_round("service:verification", household, "monitoring",
                                              load_policy(case.policy), answer_by, bureaus, today,
                                              case_id=case.case_id))
            started.append(case)
        except Conflict:
            no_consent.append(case.case_id)
    sending.start_rounds(uow, planned)
    by_months: dict[int, list[str]] = {}
    for case in started:
        by_months.setdefault(load_policy(case.policy).verification_monitoring_months, []).append(case.case_id)
    for months, ids in by_months.items():
        uow.session.execute(sa.update(MonitoredCase).where(MonitoredCase.case_id.in_(ids))
                            .values(next_verification_on=rules.add_months(as_of, months))
                            .execution_options(synchronize_session=False))
    uow.commit()
    return {"rounds": len(started), "requests": len(started) * len(bureaus), "without_consent": len(no_consent),
            "skipped": no_consent}


# --- the worklist ------------------------------------------------------------------------

def overdue(uow: UnitOfWork, actor: Actor, unit_code: str, as_of: date) -> list[dict]:
    """Requests past their answer deadline, within the unit (oldest first)."""
    authorize(actor, READERS, unit_code)
    rows = uow.session.execute(
        sa.select(BureauRequest, VerificationRound.household_id)
        .join(VerificationRound, VerificationRound.id == BureauRequest.round_id)
        .where(BureauRequest.status == "open", BureauRequest.answer_by < as_of,
               BureauRequest.community_code.startswith(unit_code, autoescape=True))
        .order_by(BureauRequest.answer_by, BureauRequest.bureau))
    return [{"request_id": r.id, "round_id": r.round_id, "household_id": household_id,
             "community_code": r.community_code, "bureau": r.bureau, "sent_on": r.sent_on, "answer_by": r.answer_by,
             "reminders": r.reminders, "members_missing": r.members - r.members_answered}
            for r, household_id in rows]


def stats(uow: UnitOfWork, actor: Actor, unit_code: str, as_of: date) -> list[dict]:
    """Per bureau: requests sent, answered (closed), open, overdue, member answers, refused messages."""
    authorize(actor, READERS, unit_code)
    r = BureauRequest
    within_unit = r.community_code.startswith(unit_code, autoescape=True)
    rows = uow.session.execute(
        sa.select(r.bureau, sa.func.count(), sa.func.sum(sa.case((r.status == "closed", 1), else_=0)),
                  sa.func.sum(sa.case((r.status == "open", 1), else_=0)),
                  sa.func.sum(sa.case((sa.and_(r.status == "open", r.answer_by < as_of), 1), else_=0)),
                  sa.func.sum(r.reminders))
        .where(within_unit).group_by(r.bureau).order_by(r.bureau)).all()
    answers = dict(uow.session.execute(
        sa.select(BureauAnswer.bureau, sa.func.count()).join(r, r.id == BureauAnswer.request_id)
        .where(within_unit).group_by(BureauAnswer.bureau)).all())
    refused = dict(uow.session.execute(
        sa.select(BureauMessage.bureau, sa.func.count()).where(BureauMessage.accepted.is_(False))
        .group_by(BureauMessage.bureau)).all())
    return [{"bureau": bureau, "requests": total, "answered": int(closed or 0), "open": int(open_ or 0),
             "overdue": int(late or 0), "reminders": int(reminders or 0), "answers": answers.get(bureau, 0),
             "refused": refused.get(bureau, 0)}
            for bureau, total, closed, open_, late, reminders in rows]
