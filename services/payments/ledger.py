"""Payments' ledger: the cases it pays, from review's events and intake's check-ins; payees.

Every approved case of review, with its benefit (adjusted, cancelled as
review says) and its payee account (masked when read).
"""
from __future__ import annotations

import sqlalchemy as sa

from services.payments import rules
from services.payments.handlers import PAYEE_SETTERS, READERS, C, CaseNotYetKnown, now
from services.payments.models import BenefitAdjustment, BenefitPeriod, CheckIn, LedgerCase, PaymentLine, PaymentRun
from shared.db import UnitOfWork
from shared.events import load_payload
from shared.identity import Actor, authorize
from shared.jurisdiction import get_within
from shared.masking import mask_bank_account, mask_name


# --- the ledger: facts from review and intake -----------------------------------

def case_approved(uow: UnitOfWork, env: dict) -> None:
    p = load_payload(env)
    case_id = env["subject"]["case_id"]
    if uow.session.get(LedgerCase, case_id) is not None:   # the same approval under another event id
        return
    uow.session.add(LedgerCase(
        case_id=case_id, household_id=env["subject"]["household_id"], community_code=p["community_code"],
        township_code=p["township_code"], area_type=p["area_type"], household_size=p["household_size"],
        monthly_benefit=p["monthly_benefit"], benefit_from_month=p["start_month"],
        standard_amount=p.get("standard_amount"), benefit_gap=p.get("benefit_gap"),
        vulnerable_members=p.get("vulnerable_members") or 0, start_month=p["start_month"], stop_month=None,
        status="active", approved_on=p["approved_on"], updated_at=now()))
    uow.session.add(BenefitPeriod(case_id=case_id, from_month=p["start_month"], amount=p["monthly_benefit"]))


def _ledger_case(uow: UnitOfWork, case_id: str) -> LedgerCase:
    case = uow.session.get(LedgerCase, case_id)
    if case is None:
        raise CaseNotYetKnown(f"case {case_id} is not in the payments ledger yet")
    return case


def case_adjusted(uow: UnitOfWork, env: dict) -> None:
    """review.case_adjusted: the benefit changes from ``effective_month``."""
    p = load_payload(env)
    case = _ledger_case(uow, p["case_id"])
    old = case.monthly_benefit
    if p["effective_month"] >= case.benefit_from_month:     # the ledger shows the latest benefit period
        case.monthly_benefit, case.benefit_from_month = p["new_benefit"], p["effective_month"]
    period = uow.session.get(BenefitPeriod, (case.case_id, p["effective_month"]))
    if period is None:
        uow.session.add(BenefitPeriod(case_id=case.case_id, from_month=p["effective_month"], amount=p["new_benefit"]))
    else:
        period.amount = p["new_benefit"]
    case.household_size = p["household_size"]
    case.benefit_gap = p["benefit_gap"]          # None: the basis is unknown until review sends one
    if case.hold_reason == "benefit_basis_missing" and p["benefit_gap"] is not None:
        case.hold_reason = case.hold_from_month = None
    case.updated_at = now()
    uow.session.add(BenefitAdjustment(
        change_id=None, case_id=case.case_id, old_benefit=old, new_benefit=p["new_benefit"],
        direction="raised" if p["new_benefit"] > old else "lowered", effective_month=p["effective_month"],
        reason=f"review {p['rule']}: {p['reason']}"[:200]))


def case_cancelled(uow: UnitOfWork, env: dict) -> None:
    """review.case_cancelled: paid through the gradual exit, if any, then stops."""
    p = load_payload(env)
    case = _ledger_case(uow, p["case_id"])
    case.status = "cancelled"
    case.stop_month = rules.next_month(p["gradual_exit_until"]) if p["gradual_exit_until"] else p["effective_month"]
    case.updated_at = now()


def case_restored(uow: UnitOfWork, env: dict) -> None:
    """review.case_restored (an upheld appeal): the case is paid again, from the months its
    cancellation had stopped on; nothing stops it until review says so."""
    p = load_payload(env)
    case = _ledger_case(uow, p["case_id"])
    case.status, case.stop_month = "active", None
    case.updated_at = now()


def checkin_recorded(uow: UnitOfWork, env: dict) -> None:
    p = load_payload(env)
    household_id = env["subject"]["household_id"]
    if uow.session.get(CheckIn, (household_id, p["month"])) is None:
        uow.session.add(CheckIn(household_id=household_id, month=p["month"]))


def set_payees(uow: UnitOfWork, actor: Actor, items: list[dict]) -> list[LedgerCase]:
    """Where each case is paid (one, or a list from the bank's account
    register, all or nothing). The account number and the name are encrypted
    at rest; runs snapshot them; lists show them masked."""
    cases = []
    for n, data in enumerate(items):
        case = get_within(uow, actor, PAYEE_SETTERS, LedgerCase, data["case_id"], "case in the payments ledger",
                          f"{n}.case_id")
        case.payee_name, case.payee_name_masked = data["payee_name"], mask_name(data["payee_name"])
        case.account_number, case.account_masked = data["account_number"], mask_bank_account(data["account_number"])
        case.bank_name = data["bank_name"]
        case.updated_at = now()
        cases.append(case)
    uow.commit()
    return cases


# --- reads -------------------------------------------------------------------------

def ledger_case(uow: UnitOfWork, actor: Actor, case_id) -> LedgerCase:
    return get_within(uow, actor, READERS, LedgerCase, case_id, "case", "case_id")


def case_statement(uow: UnitOfWork, actor: Actor, case_id) -> dict:
    """The case by month: the benefit in force from each month on, and each run's line for it."""
    case = ledger_case(uow, actor, case_id)
    periods = list(uow.session.scalars(sa.select(BenefitPeriod).where(BenefitPeriod.case_id == case.case_id)
                                       .order_by(BenefitPeriod.from_month)))
    lines = []
    for line, run_status in uow.session.execute(
            sa.select(PaymentLine, PaymentRun.status).join(PaymentRun, PaymentRun.id == PaymentLine.run_id)
            .where(PaymentLine.case_id == case.case_id).order_by(PaymentLine.period.desc(), PaymentLine.id)):
        line.run_status = run_status
        lines.append(line)
    return {"case": case, "periods": periods, "lines": lines}


def list_cases(uow: UnitOfWork, actor: Actor, data: dict) -> list[LedgerCase]:
    unit = data["division_code"] or actor.unit
    authorize(actor, READERS, unit)
    stmt = sa.select(LedgerCase).where(LedgerCase.community_code.startswith(unit, autoescape=True)) \
        .order_by(LedgerCase.community_code, LedgerCase.case_id).limit(data["limit"])
    if data["area_type"]:
        stmt = stmt.where(LedgerCase.area_type == data["area_type"])
    return list(uow.session.scalars(stmt))


def checkins_by_month(uow: UnitOfWork, actor: Actor, months: list[str]) -> dict:
    """How many households' check-ins (续保登记) payments has seen for each month."""
    authorize(actor, READERS)
    counts = dict(uow.session.execute(sa.select(C.c.month, sa.func.count()).where(C.c.month.in_(months))
                                      .group_by(C.c.month)).all())
    return {m: counts.get(m, 0) for m in months}
