"""Payment runs: prepared, approved (maker ≠ checker), exported as a bank file.

A payment run is three INSERT … SELECTs: the lines of every case due, the
hold-backs with their reasons, and the failed lines carried forward.
"""
from __future__ import annotations

import base64
from datetime import date
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from contracts.payments import SOURCE
from services.payments import rules
from services.payments.handlers import CLOCK_SETTERS, READERS, RUN_CHECKERS, RUN_MAKERS, B, C, H, L, P, now, num, raw
from services.payments.models import HoldBack, PaymentLine, PaymentRun, from_fen
from shared.bank_formats import ExportLine, load_format, summary_sheet
from shared.db import UnitOfWork
from shared.errors import Forbidden
from shared.events import Event
from shared.identity import Actor, authorize
from shared.jurisdiction import get_within
from shared.policy.base import Policy


# --- payment runs ----------------------------------------------------------------

def load_run(uow: UnitOfWork, run_id, for_update: bool = False) -> PaymentRun:
    return uow.get(PaymentRun, run_id, "payment run", "run_id", with_for_update=for_update)


def run_for(uow: UnitOfWork, actor: Actor, roles, run_id, for_update: bool = False) -> PaymentRun:
    """The run, for an actor of ``roles`` whose jurisdiction covers its
    division; to anyone else it does not exist (shared/jurisdiction.py)."""
    return get_within(uow, actor, roles, PaymentRun, run_id, "payment run", "run_id",
                      division=lambda run: run.division_code, with_for_update=for_update)


def _find_run(uow: UnitOfWork, period: str, area_type: str, division_code: str) -> PaymentRun | None:
    return uow.session.scalar(sa.select(PaymentRun).where(
        PaymentRun.period == period, PaymentRun.area_type == area_type, PaymentRun.division_code == division_code))


def create_run(uow: UnitOfWork, actor: Actor, data: dict, policy: Policy, today: date) -> PaymentRun:
    """Prepare the run for a period and an area; the same request again (or
    from another replica at the same moment) gives the same run."""
    if data["as_of"] is not None:
        authorize(actor, RUN_MAKERS + CLOCK_SETTERS, data["division_code"])
        if not any(actor.has(r) for r in CLOCK_SETTERS):
            raise Forbidden("only the system administrator may prepare a run as of another day",
                            {"as_of": str(data["as_of"])})
        today = data["as_of"]
    else:
        authorize(actor, RUN_MAKERS, data["division_code"])
    months = rules.period_matches_cadence(data["period"], data["area_type"], policy)
    rules.period_not_in_future(months, today)
    key = (data["period"], data["area_type"], data["division_code"])
    existing = _find_run(uow, *key)
    if existing is not None:
        rules.period_is_open(existing.status, existing.period)
        return prepare_again(uow, actor, existing, months, policy, today)
    run = PaymentRun(period=data["period"], area_type=data["area_type"], division_code=data["division_code"],
                     status="prepared", prepared_by=actor.user, prepared_on=today, created_at=now(),
                     total=Decimal("0.00"))
    uow.session.add(run)
    try:
        uow.session.flush()
    except IntegrityError:           # another replica created it at the same moment: that one stands
        uow.rollback()
        existing = _find_run(uow, *key)
        rules.period_is_open(existing.status, existing.period)
        return existing
    fill_run(uow, run, months, policy)
    uow.commit()
    return run


def prepare_again(uow: UnitOfWork, actor: Actor, run: PaymentRun, months: list[str], policy: Policy,
                  today: date) -> PaymentRun:
    """A run not yet approved is prepared afresh from the ledger as it is now
    (a case approved late, a corrected account); approval freezes it."""
    run = load_run(uow, run.id, for_update=True)
    rules.period_is_open(run.status, run.period)
    uow.session.execute(H.delete().where(H.c.run_id == run.id))
    uow.session.execute(P.delete().where(P.c.run_id == run.id))
    run.prepared_by, run.prepared_on = actor.user, today
    fill_run(uow, run, months, policy)
    uow.commit()
    return run


def fill_run(uow: UnitOfWork, run: PaymentRun, months: list[str], policy: Policy) -> None:
    """Three INSERT … SELECTs: payable lines, hold-backs with reasons, carried lines."""
    due = {m: rules.month_due(m, L.c.start_month, L.c.stop_month) for m in months}
    benefit = {m: sa.case((L.c.benefit_from_month <= m, raw(L.c.monthly_benefit)), else_=sa.select(raw(B.c.amount))
                          .where(B.c.case_id == L.c.case_id, B.c.from_month <= m)
                          .order_by(B.c.from_month.desc()).limit(1).scalar_subquery()) for m in months}
    amount = sum((sa.case((due[m], benefit[m]), else_=num(0)) for m in months), num(0))
    months_due = sum((sa.case((due[m], 1), else_=0) for m in months), sa.literal(0))
    in_area = sa.and_(L.c.area_type == run.area_type, L.c.community_code.startswith(run.division_code, autoescape=True))
    any_due = sa.or_(*due.values())
    not_yet_paid = ~sa.select(P.c.id).where(P.c.case_id == L.c.case_id, P.c.period == run.period,
                                            P.c.status != "failed").exists()
    if policy.checkin_required_for_payment:
        checked_in = sa.and_(*[sa.or_(~due[m], sa.select(C.c.month).where(
            C.c.household_id == L.c.household_id, C.c.month == m).exists()) for m in months])
    else:
        checked_in = sa.true()
    has_account = L.c.account_number.isnot(None)
    # a hold applies from its month on: earlier periods pay what was in force then
    no_hold = sa.or_(L.c.hold_reason.is_(None), L.c.hold_from_month > months[-1])
    payable = sa.and_(no_hold, has_account, checked_in, amount > 0)
    columns = ["run_id", "case_id", "household_id", "period", "community_code", "township_code", "area_type",
               "household_size", "months", "amount", "payee_name", "payee_name_masked", "account_number",
               "account_masked", "status"]
    uow.session.execute(P.insert().from_select(columns, sa.select(
        sa.literal(run.id), L.c.case_id, L.c.household_id, sa.literal(run.period), L.c.community_code,
        L.c.township_code, L.c.area_type, L.c.household_size, months_due, amount, L.c.payee_name,
        L.c.payee_name_masked, L.c.account_number, L.c.account_masked, sa.literal("pending"))
        .where(in_area, any_due, not_yet_paid, payable)))
    reason = sa.case((~no_hold, L.c.hold_reason), (~has_account, "no_payee_account"),
                     (~checked_in, "no_checkin"), (amount <= 0, "zero_benefit"), else_="not_payable")
    # every case due and still unpaid after the lines above is held back, with its reason
    uow.session.execute(H.insert().from_select(
        ["run_id", "case_id", "household_id", "community_code", "reason"],
        sa.select(sa.literal(run.id), L.c.case_id, L.c.household_id, L.c.community_code, reason)
        .where(in_area, any_due, ~payable, not_yet_paid)))
    carry_forward(uow, run)
    lines, total = uow.session.execute(
        sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(raw(P.c.amount)), 0)).where(P.c.run_id == run.id)).one()
    run.lines, run.total = lines, from_fen(total)
    run.held = uow.session.scalar(sa.select(sa.func.count()).select_from(H).where(H.c.run_id == run.id))
    run.carried = uow.session.scalar(sa.select(sa.func.count()).select_from(P).where(
        P.c.run_id == run.id, P.c.carried_from.isnot(None)))


def carry_forward(uow: UnitOfWork, run: PaymentRun) -> None:
    """Failed lines of earlier runs of this area become lines of this run (for
    their own period, their own amount), paid to the case's current account."""
    F = P.alias("failed")
    G = P.alias("later")
    columns = ["run_id", "case_id", "household_id", "period", "community_code", "township_code", "area_type",
               "household_size", "months", "amount", "payee_name", "payee_name_masked", "account_number",
               "account_masked", "status", "carried_from"]
    uow.session.execute(P.insert().from_select(columns, sa.select(
        sa.literal(run.id), F.c.case_id, F.c.household_id, F.c.period, F.c.community_code, F.c.township_code,
        F.c.area_type, F.c.household_size, F.c.months, F.c.amount,
        sa.func.coalesce(L.c.payee_name, F.c.payee_name), sa.func.coalesce(L.c.payee_name_masked, F.c.payee_name_masked),
        sa.func.coalesce(L.c.account_number, F.c.account_number), sa.func.coalesce(L.c.account_masked, F.c.account_masked),
        sa.literal("pending"), F.c.id)
        .select_from(F.outerjoin(L, L.c.case_id == F.c.case_id))
        .where(F.c.status == "failed", F.c.area_type == run.area_type,
               F.c.community_code.startswith(run.division_code, autoescape=True), F.c.run_id != run.id,
               ~sa.select(G.c.id).where(G.c.carried_from == F.c.id).exists(),
               ~sa.select(G.c.id).where(G.c.case_id == F.c.case_id, G.c.period == F.c.period,
                                        G.c.status != "failed").exists())))


def approve_run(uow: UnitOfWork, actor: Actor, run_id) -> PaymentRun:
    """The checker approves (never the maker); the run is frozen from now on."""
    run = run_for(uow, actor, RUN_CHECKERS, run_id, for_update=True)
    rules.run_is(run.status, ("prepared",), "approve")
    rules.maker_is_not_checker(run.prepared_by, actor.user)
    run.status, run.approved_by, run.approved_at = "approved", actor.user, now()
    run.record(Event(SOURCE, "payment_run_approved", {"run_id": run.id}, {
        "run_id": run.id, "period": run.period, "area_type": run.area_type, "division_code": run.division_code,
        "lines": run.lines, "total": run.total, "prepared_by": run.prepared_by, "approved_by": actor.user}))
    uow.commit()
    return run


def export_run(uow: UnitOfWork, actor: Actor, run_id, format_name: str) -> dict:
    """The bank file through a format plugin, and the summary sheet (大写 total)."""
    fmt = load_format(format_name)
    run = run_for(uow, actor, RUN_MAKERS + RUN_CHECKERS, run_id, for_update=True)
    rules.run_is(run.status, ("approved", "exported", "reconciled"), "export")
    lines = uow.session.execute(sa.select(PaymentLine).where(PaymentLine.run_id == run.id)
                                .order_by(PaymentLine.id)).scalars()
    export_lines = [ExportLine(ln.id, ln.case_id, ln.payee_name or "", ln.account_number or "", ln.amount, ln.period,
                               ln.community_code) for ln in lines]
    run_dict = {"id": run.id, "period": run.period, "area_type": run.area_type, "division_code": run.division_code,
                "prepared_by": run.prepared_by, "approved_by": run.approved_by}
    content = fmt.export(run_dict, export_lines)
    total = sum((ln.amount for ln in export_lines), Decimal("0.00"))
    if run.status == "approved":
        run.status = "exported"
    run.exported_format = fmt.name
    uow.commit()
    return {"run_id": run.id, "format": fmt.name, "filename": f"dibao-{run.period}-{run.area_type}-"
            f"{run.division_code}-{run.id[:8]}.{fmt.extension}", "encoding": fmt.encoding,
            "content": base64.b64encode(content).decode("ascii"), "lines": len(export_lines), "total": str(total),
            "summary": summary_sheet(run_dict, fmt, len(export_lines), total, now())}


# --- reads -------------------------------------------------------------------------

def list_runs(uow: UnitOfWork, actor: Actor, data: dict) -> list[PaymentRun]:
    unit = data["division_code"] or actor.unit
    authorize(actor, READERS, unit)
    stmt = sa.select(PaymentRun).where(PaymentRun.division_code.startswith(unit, autoescape=True)) \
        .order_by(PaymentRun.period, PaymentRun.area_type, PaymentRun.division_code)
    if data["period"]:
        stmt = stmt.where(PaymentRun.period == data["period"])
    return list(uow.session.scalars(stmt))


def run_detail(uow: UnitOfWork, actor: Actor, run_id, limit: int = 200) -> tuple[PaymentRun, list, list, dict]:
    run = run_for(uow, actor, READERS, run_id)
    lines = list(uow.session.scalars(sa.select(PaymentLine).where(PaymentLine.run_id == run.id)
                                     .order_by(PaymentLine.id).limit(limit)))
    held = list(uow.session.scalars(sa.select(HoldBack).where(HoldBack.run_id == run.id)
                                    .order_by(HoldBack.community_code, HoldBack.case_id)))
    by_status = dict(uow.session.execute(sa.select(P.c.status, sa.func.count()).where(P.c.run_id == run.id)
                                         .group_by(P.c.status)).all())
    return run, lines, held, by_status
