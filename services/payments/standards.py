"""Guarantee standards (低保标准) and their changes (提标/降标).

Standards change set-based: one INSERT … SELECT records every case raised
or lowered, one UPDATE recalculates them all from the unclamped gap the
ledger keeps (no income is stored here).
"""
from __future__ import annotations

from datetime import date

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from contracts.payments import SOURCE
from services.payments import rules
from services.payments.handlers import READERS, STANDARD_SETTERS, A, B, L, S, now, num, raw, yuan
from services.payments.models import Standard, StandardChange
from shared.db import UnitOfWork
from shared.errors import Conflict, ValidationFailed
from shared.events import Event
from shared.identity import Actor, authorize
from shared.policy.base import Policy


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
