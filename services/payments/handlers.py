"""Payments' handlers: plain functions taking a unit of work.

The ledger follows review's events (case approved / adjusted / cancelled)
and intake's check-ins. Standards change set-based: one INSERT … SELECT
records every case raised or lowered, one UPDATE recalculates them all from
the unclamped gap the ledger keeps (no income is stored here). A payment
run is three INSERT … SELECTs: the lines of every case due, the hold-backs
with their reasons, and the failed lines carried forward.
"""
from __future__ import annotations

import base64
import binascii
import csv
from datetime import date, datetime, timezone
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from services.payments import rules
from services.payments.bank_formats import ExportLine, ReturnFileError, load_format, summary_sheet
from services.payments.events import SOURCE
from services.payments.models import (BenefitAdjustment, BenefitPeriod, CheckIn, HoldBack, LedgerCase, PaymentLine, PaymentRun,
                                      Standard, StandardChange, from_fen)
from shared.db import UnitOfWork
from shared.errors import Conflict, Forbidden, ValidationFailed
from shared.events import Event, load_payload
from shared.identity import Actor, Role, authorize
from shared.masking import mask_bank_account, mask_name
from shared.policy.base import Policy

STANDARD_SETTERS = (Role.CENTRE_DIRECTOR, Role.DEPUTY_DIRECTOR)
RUN_MAKERS = (Role.FINANCE_OFFICER, Role.DISTRICT_OFFICER)
RUN_CHECKERS = (Role.FINANCE_OFFICER, Role.CENTRE_DIRECTOR, Role.DEPUTY_DIRECTOR)
PAYEE_SETTERS = (Role.COMMUNITY_OFFICER, Role.DISTRICT_OFFICER, Role.FINANCE_OFFICER)
READERS = (Role.FINANCE_OFFICER, Role.DISTRICT_OFFICER, Role.CENTRE_DIRECTOR, Role.DEPUTY_DIRECTOR,
           Role.TOWNSHIP_OFFICER, Role.COMMUNITY_OFFICER, Role.AUDITOR)
#: who may prepare a run as of another day than today (a corrected clock, the
#: demo): the system administrator, who runs the services — and prepares no other run
CLOCK_SETTERS = (Role.SYSTEM_ADMIN,)

L = LedgerCase.__table__
P = PaymentLine.__table__
H = HoldBack.__table__
A = BenefitAdjustment.__table__
S = Standard.__table__
C = CheckIn.__table__
B = BenefitPeriod.__table__


def now() -> datetime:
    return datetime.now(timezone.utc)


def raw(column):
    """A Fen column as the integer fen it stores, for SQL arithmetic."""
    return sa.type_coerce(column, sa.BigInteger)


def num(value: int):
    return sa.literal(value, sa.BigInteger)


def yuan(fen: int) -> str:
    """Integer fen → the event's "12.34" (never through a float)."""
    sign = "-" if fen < 0 else ""
    fen = abs(int(fen))
    return f"{sign}{fen // 100}.{fen % 100:02d}"


class CaseNotYetKnown(Exception):
    """An event about a case the ledger has not seen approved yet: retried (then parked)."""


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
        case = uow.get(LedgerCase, data["case_id"], "case in the payments ledger", f"{n}.case_id")
        authorize(actor, PAYEE_SETTERS, case.community_code)
        case.payee_name, case.payee_name_masked = data["payee_name"], mask_name(data["payee_name"])
        case.account_number, case.account_masked = data["account_number"], mask_bank_account(data["account_number"])
        case.bank_name = data["bank_name"]
        case.updated_at = now()
        cases.append(case)
    uow.commit()
    return cases


# --- standards (低保标准) and their changes (提标/降标) ----------------------------

def seed_standards(database, table) -> int:
    """First start: the standards of STANDARDS_FILE (shared/data/standards.csv)
    become payments' own, each ending the day before the next of its area."""
    with database.unit_of_work() as uow:
        if uow.session.scalar(sa.select(sa.func.count()).select_from(S)):
            return 0
        by_area: dict = {}
        for s in table.standards:
            by_area.setdefault((s.division_code, s.area_type), []).append(s)
        for items in by_area.values():
            items.sort(key=lambda s: s.effective_from)
            for s, nxt in zip(items, items[1:] + [None]):
                uow.session.add(Standard(division_code=s.division_code, area_type=s.area_type,
                                         effective_from=s.effective_from, monthly_amount=s.monthly_amount,
                                         effective_to=rules.day_before(nxt.effective_from) if nxt else None,
                                         set_by="seed:standards.csv", set_at=now()))
        try:
            uow.commit()
        except IntegrityError:      # another replica seeded first
            return 0
        return len(table.standards)


def standard_for(uow: UnitOfWork, division_code: str, area_type: str, on: date) -> Standard | None:
    """The standard in force on ``on`` for the most specific division covering ``division_code``."""
    candidates = uow.session.scalars(sa.select(Standard).where(
        Standard.area_type == area_type, Standard.effective_from <= on,
        sa.or_(Standard.effective_to.is_(None), Standard.effective_to >= on),
        sa.literal(division_code).startswith(Standard.division_code)))
    return max(candidates, key=lambda s: len(s.division_code), default=None)


def list_standards(uow: UnitOfWork, actor: Actor, data: dict) -> list[Standard]:
    authorize(actor, READERS + STANDARD_SETTERS)
    stmt = sa.select(Standard).order_by(Standard.division_code, Standard.area_type, Standard.effective_from)
    if data["division_code"]:
        stmt = stmt.where(sa.literal(data["division_code"]).startswith(Standard.division_code)
                          | Standard.division_code.startswith(data["division_code"]))
    if data["area_type"]:
        stmt = stmt.where(Standard.area_type == data["area_type"])
    if data["on"]:
        stmt = stmt.where(Standard.effective_from <= data["on"],
                          sa.or_(Standard.effective_to.is_(None), Standard.effective_to >= data["on"]))
    return list(uow.session.scalars(stmt))


def set_standard(uow: UnitOfWork, actor: Actor, data: dict, policy: Policy) -> tuple[Standard, StandardChange | None]:
    """A new standard; when it is the open-ended one, every case under it is recalculated."""
    authorize(actor, STANDARD_SETTERS, data["division_code"])
    if data["effective_to"] is not None and data["effective_to"] < data["effective_from"]:
        raise ValidationFailed.field("effective_to", "ends before it begins")
    existing = list(uow.session.scalars(sa.select(Standard).where(
        Standard.division_code == data["division_code"], Standard.area_type == data["area_type"])
        .with_for_update()))
    superseded = rules.standard_does_not_overlap(existing, data["effective_from"], data["effective_to"])
    if superseded is not None:
        superseded.effective_to = rules.day_before(data["effective_from"])
    standard = Standard(division_code=data["division_code"], area_type=data["area_type"],
                        effective_from=data["effective_from"], effective_to=data["effective_to"],
                        monthly_amount=data["monthly_amount"], set_by=actor.user, set_at=now())
    uow.session.add(standard)
    try:
        uow.session.flush()
    except IntegrityError:
        uow.rollback()
        raise Conflict("a standard from that date was set meanwhile", {"effective_from": str(data["effective_from"])})
    if data["effective_to"] is not None:     # a past or bounded period: today's benefits are not affected
        uow.commit()
        return standard, None
    old = superseded.monthly_amount if superseded is not None else None
    return standard, recalculate(uow, policy, standard, old, actor)


def recalculate(uow: UnitOfWork, policy: Policy, standard: Standard, old_amount, actor: Actor) -> StandardChange:
    """提标/降标, set-based: new gap = gap + (new standard − the case's standard) × size,
    then the policy's rule (clamp, bands, 分类施保 extras, minimum) as SQL."""
    change = StandardChange(standard_id=standard.id, division_code=standard.division_code,
                            area_type=standard.area_type, effective_from=standard.effective_from,
                            old_amount=old_amount, new_amount=standard.monthly_amount, changed_by=actor.user,
                            changed_at=now())
    uow.session.add(change)
    uow.session.flush()
    month = rules.month_of(standard.effective_from)
    new_fen = rules.fen(standard.monthly_amount)
    more_specific = sa.select(S.c.id).where(
        S.c.area_type == standard.area_type, sa.func.length(S.c.division_code) > len(standard.division_code),
        L.c.community_code.startswith(S.c.division_code), S.c.effective_to.is_(None)).exists()
    in_scope = sa.and_(L.c.area_type == standard.area_type,
                       L.c.community_code.startswith(standard.division_code, autoescape=True),
                       sa.or_(L.c.stop_month.is_(None), L.c.stop_month > month), ~more_specific)
    has_basis = sa.and_(L.c.benefit_gap.isnot(None), L.c.standard_amount.isnot(None))
    size = L.c.household_size
    new_gap = raw(L.c.benefit_gap) + (num(new_fen) - raw(L.c.standard_amount)) * size
    computed = rules.benefit_sql(policy, new_gap, size, L.c.vulnerable_members)
    current = raw(L.c.monthly_benefit)
    changed = computed != current
    # a case whose latest benefit starts later than the change (approved for next month) changes from then
    effective = sa.case((L.c.benefit_from_month > month, L.c.benefit_from_month), else_=month)

    # never a guessed amount: no basis → held back with the reason, listed
    reason = f"standard {standard.division_code} {standard.area_type} {change.new_amount} from {standard.effective_from}"
    uow.session.execute(A.insert().from_select(
        ["change_id", "case_id", "old_benefit", "new_benefit", "direction", "effective_month", "reason"],
        sa.select(sa.literal(change.id), L.c.case_id, current, sa.null(), sa.literal("held"), sa.literal(month),
                  sa.literal(("no benefit basis (gap) to recalculate from: " + reason)[:200]))
        .where(in_scope, ~has_basis)))
    held = uow.session.execute(L.update().where(in_scope, ~has_basis).values(
        hold_reason="benefit_basis_missing", updated_at=now(),     # held from the earliest change it missed
        hold_from_month=sa.case((L.c.hold_from_month < month, L.c.hold_from_month), else_=month))).rowcount
    uow.session.execute(A.insert().from_select(
        ["change_id", "case_id", "old_benefit", "new_benefit", "direction", "effective_month", "reason"],
        sa.select(sa.literal(change.id), L.c.case_id, current, computed,
                  sa.case((computed > current, "raised"), else_="lowered"), effective, sa.literal(reason[:200]))
        .where(in_scope, has_basis, changed)))
    in_basis = uow.session.execute(L.update().where(in_scope, has_basis).values({
        L.c.benefit_from_month: sa.case((changed, effective), else_=L.c.benefit_from_month),
        L.c.monthly_benefit: computed,
        L.c.benefit_gap: new_gap,
        L.c.standard_amount: num(new_fen),
        L.c.updated_at: now(),
    })).rowcount
    # each changed case's benefit from the effective month on (replacing one set for that month before)
    replaced = sa.select(A.c.id).where(A.c.change_id == change.id, A.c.direction.in_(("raised", "lowered")),
                                       A.c.case_id == B.c.case_id, A.c.effective_month == B.c.from_month).exists()
    uow.session.execute(B.delete().where(replaced))
    uow.session.execute(B.insert().from_select(["case_id", "from_month", "amount"], sa.select(
        A.c.case_id, A.c.effective_month, A.c.new_benefit).where(A.c.change_id == change.id,
                                                                  A.c.direction.in_(("raised", "lowered")))))
    counts = dict(uow.session.execute(sa.select(A.c.direction, sa.func.count()).where(A.c.change_id == change.id)
                                      .group_by(A.c.direction)).all())
    change.cases_raised, change.cases_lowered = counts.get("raised", 0), counts.get("lowered", 0)
    change.cases_held = held
    change.cases_unchanged = in_basis - change.cases_raised - change.cases_lowered
    change.record(Event(SOURCE, "standard_changed", {"change_id": change.id}, {
        "change_id": change.id, "division_code": change.division_code, "area_type": change.area_type,
        "effective_from": change.effective_from, "old_amount": old_amount, "new_amount": change.new_amount,
        "cases_raised": change.cases_raised, "cases_lowered": change.cases_lowered, "cases_held": held}))
    uow.emit_many(SOURCE, "benefit_changed", _benefit_changes(uow, change.id))
    uow.commit()
    return change


def _benefit_changes(uow: UnitOfWork, change_id: str):
    rows = uow.session.execute(
        sa.select(A.c.case_id, L.c.household_id, L.c.community_code, L.c.township_code, L.c.area_type,
                  L.c.household_size, raw(A.c.old_benefit), raw(A.c.new_benefit), A.c.direction, A.c.effective_month)
        .join(L, L.c.case_id == A.c.case_id)
        .where(A.c.change_id == change_id, A.c.direction.in_(("raised", "lowered"))))
    for case_id, household_id, community, township, area, size, old, new, direction, month in rows:
        yield ({"household_id": household_id, "case_id": case_id, "change_id": change_id},
               {"case_id": case_id, "household_id": household_id, "community_code": community,
                "township_code": township, "area_type": area, "household_size": size, "old_benefit": yuan(old),
                "new_benefit": yuan(new), "direction": direction, "effective_month": month, "change_id": change_id})


# --- payment runs ----------------------------------------------------------------

def load_run(uow: UnitOfWork, run_id, for_update: bool = False) -> PaymentRun:
    return uow.get(PaymentRun, run_id, "payment run", "run_id", with_for_update=for_update)


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
    run = load_run(uow, run_id, for_update=True)
    authorize(actor, RUN_CHECKERS, run.division_code)
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
    run = load_run(uow, run_id, for_update=True)
    authorize(actor, RUN_MAKERS + RUN_CHECKERS, run.division_code)
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


def import_return(uow: UnitOfWork, actor: Actor, data: dict) -> dict:
    """对账: the bank's return file marks lines paid or failed; failed lines
    carry into the area's next run. Unknown lines, wrong amounts or wrong
    totals: a typed error, nothing written."""
    fmt = load_format(data["format"])
    try:
        content = base64.b64decode(data["content"], validate=True)
    except (binascii.Error, ValueError):
        raise ValidationFailed.field("content", "not base64") from None
    try:
        returned = fmt.parse_return(content)
    except (ReturnFileError, csv.Error) as exc:
        raise ValidationFailed.field("content", f"not a {fmt.name} return file: {exc}") from None
    run = load_run(uow, data["run_id"], for_update=True)
    authorize(actor, RUN_MAKERS + RUN_CHECKERS, run.division_code)
    rules.run_is(run.status, ("exported", "approved"), "reconcile")
    stated = sum((ln.amount for ln in returned.lines), Decimal("0.00"))
    if returned.count != len(returned.lines):
        raise ValidationFailed.field("total", f"the file says {returned.count} lines but has {len(returned.lines)}")
    if returned.total != stated:
        raise ValidationFailed.field("total", f"the file's total {returned.total} is not the sum of its lines {stated}")
    ids = [ln.line_id for ln in returned.lines]
    if len(set(ids)) != len(ids):
        raise ValidationFailed.field("lines", "a line appears twice in the return file")
    ours = {row.id: row for row in uow.session.execute(
        sa.select(P.c.id, P.c.status, raw(P.c.amount).label("fen")).where(P.c.run_id == run.id))}
    unknown = [i for i in ids if i not in ours]
    if unknown:
        raise ValidationFailed.field("lines", f"{len(unknown)} line(s) not in run {run.id}: {unknown[:10]}")
    wrong = [ln.line_id for ln in returned.lines if rules.fen(ln.amount) != ours[ln.line_id].fen]
    if wrong:
        raise ValidationFailed.field("lines", f"{len(wrong)} line(s) with another amount than the run's: {wrong[:10]}")
    settled = [i for i in ids if ours[i].status != "pending"]
    if settled:
        raise Conflict(f"{len(settled)} line(s) were already reconciled: {settled[:10]}", {"lines": settled[:10]})
    paid = [{"i": ln.line_id, "d": ln.paid_on or date.today()} for ln in returned.lines if ln.paid]
    failed = [{"i": ln.line_id, "r": (ln.reason or "failed (no reason given)")[:500]}
              for ln in returned.lines if not ln.paid]
    if paid:
        uow.session.execute(P.update().where(P.c.id == sa.bindparam("i")).values(
            status="paid", paid_on=sa.bindparam("d")), paid)
    if failed:
        uow.session.execute(P.update().where(P.c.id == sa.bindparam("i")).values(
            status="failed", failure_reason=sa.bindparam("r")), failed)
    settled_ids = {ln.line_id for ln in returned.lines}
    uow.emit_many(SOURCE, "payment_disbursed", _line_events(uow, run, [x["i"] for x in paid], "paid"))
    uow.emit_many(SOURCE, "payment_failed", _line_events(uow, run, [x["i"] for x in failed], "failed"))
    pending = sum(1 for i, row in ours.items() if row.status == "pending" and i not in settled_ids)
    if pending == 0:
        run.status, run.reconciled_at = "reconciled", now()
    uow.commit()
    return {"run_id": run.id, "paid": len(paid), "failed": len(failed), "pending": pending, "status": run.status,
            "paid_total": str(sum((ln.amount for ln in returned.lines if ln.paid), Decimal("0.00")))}


def _line_events(uow: UnitOfWork, run: PaymentRun, ids: list[int], outcome: str):
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        rows = uow.session.execute(sa.select(
            P.c.id, P.c.case_id, P.c.household_id, P.c.community_code, P.c.township_code, P.c.area_type,
            P.c.household_size, P.c.period, raw(P.c.amount), P.c.paid_on, P.c.failure_reason)
            .where(P.c.id.in_(chunk)))
        for (line_id, case_id, household_id, community, township, area, size, period, fen, paid_on,
             reason) in rows:
            payload = {"run_id": run.id, "line_id": str(line_id), "case_id": case_id, "household_id": household_id,
                       "community_code": community, "township_code": township, "area_type": area,
                       "household_size": size, "period": period, "amount": yuan(fen),
                       "paid_on": paid_on.isoformat() if paid_on else None}
            if outcome == "failed":
                payload.update(reason=reason or "", carried_forward=True)
            yield {"household_id": household_id, "case_id": case_id, "run_id": run.id}, payload


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
    run = load_run(uow, run_id)
    authorize(actor, READERS, run.division_code)
    lines = list(uow.session.scalars(sa.select(PaymentLine).where(PaymentLine.run_id == run.id)
                                     .order_by(PaymentLine.id).limit(limit)))
    held = list(uow.session.scalars(sa.select(HoldBack).where(HoldBack.run_id == run.id)
                                    .order_by(HoldBack.community_code, HoldBack.case_id)))
    by_status = dict(uow.session.execute(sa.select(P.c.status, sa.func.count()).where(P.c.run_id == run.id)
                                         .group_by(P.c.status)).all())
    return run, lines, held, by_status


def ledger_case(uow: UnitOfWork, actor: Actor, case_id) -> LedgerCase:
    case = uow.get(LedgerCase, case_id, "case", "case_id")
    authorize(actor, READERS, case.community_code)
    return case


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
    rows = uow.session.execute(sa.select(C.c.month, sa.func.count()).where(C.c.month.in_(months))
                               .group_by(C.c.month)).all()
    return {m: dict(rows).get(m, 0) for m in months}
