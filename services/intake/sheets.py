"""The community's month sheets (月度签到 / 公益劳动): the households with a
case paid in a month, whether each checked in (续保登记) and its members'
public-welfare labour that month — what the community officer works from
when the book is stamped and the labour attendance taken.

A read of a unit (a division-code prefix) for the people who record them
and those above them; each row names the household's head and its living
members (no ID numbers, no incomes). Check-ins and labour are then recorded
one by one (``record_checkin``, ``record_labour``), each a command.
"""
from __future__ import annotations

from datetime import date

import sqlalchemy as sa

from services.intake.models import CaseStatus, CheckIn, Household, LabourAttendance, Member
from shared.db import UnitOfWork
from shared.identity import Actor, Role
from shared.identity import authorize as require

SHEET_READERS = (Role.COMMUNITY_OFFICER, Role.TOWNSHIP_OFFICER, Role.DISTRICT_OFFICER, Role.CENTRE_DIRECTOR,
                 Role.AUDITOR)


def month_bounds(month: str) -> tuple[date, date]:
    """The first day of ``month`` (YYYY-MM) and the first day of the next."""
    year, number = int(month[:4]), int(month[5:7])
    first = date(year, number, 1)
    return first, date(year + number // 12, number % 12 + 1, 1)


def paid_in(month: str):
    """SQL: the case pays ``month`` (started by then, not ended before it)."""
    return sa.and_(CaseStatus.start_month <= month,
                   sa.or_(CaseStatus.status == "active",
                          sa.and_(CaseStatus.end_month.is_not(None), CaseStatus.end_month > month)))


def community_sheet(uow: UnitOfWork, actor: Actor, data: dict) -> dict:
    """Per household with a case paid in the month, within the unit: its
    check-in for the month and each living member's labour that month."""
    unit, month = data["unit_code"], data["month"]
    require(actor, SHEET_READERS, unit)
    first, after = month_bounds(month)
    rows = uow.session.execute(
        sa.select(Household.id, Household.head_name, Household.community_code, CaseStatus.case_id,
                  CaseStatus.status)
        .join(CaseStatus, CaseStatus.household_id == Household.id)
        .where(Household.community_code.startswith(unit, autoescape=True), paid_in(month))
        .order_by(Household.community_code, Household.head_name, Household.id).limit(data["limit"])).all()
    ids = [r.id for r in rows]
    checked = dict(uow.session.execute(
        sa.select(CheckIn.household_id, CheckIn.checked_in_on)
        .where(CheckIn.household_id.in_(ids), CheckIn.month == month)).all()) if ids else {}
    members: dict[str, list[dict]] = {i: [] for i in ids}
    by_member: dict[str, dict] = {}
    if ids:
        for m in uow.session.execute(
                sa.select(Member.id, Member.household_id, Member.name, Member.labour_capacity, Member.deceased_on)
                .where(Member.household_id.in_(ids)).order_by(Member.household_id, Member.position)):
            if m.deceased_on is not None and m.deceased_on < first:
                continue
            row = {"member_id": m.id, "name": m.name, "labour_capacity": m.labour_capacity, "labour": []}
            members[m.household_id].append(row)
            by_member[m.id] = row
        for a in uow.session.execute(
                sa.select(LabourAttendance.member_id, LabourAttendance.labour_date, LabourAttendance.activity,
                          LabourAttendance.attendance)
                .where(LabourAttendance.household_id.in_(ids), LabourAttendance.labour_date >= first,
                       LabourAttendance.labour_date < after)
                .order_by(LabourAttendance.labour_date, LabourAttendance.id)):
            if a.member_id in by_member:
                by_member[a.member_id]["labour"].append({"labour_date": a.labour_date.isoformat(),
                                                         "activity": a.activity, "attendance": a.attendance})
    households = [{"household_id": r.id, "head_name": r.head_name, "community_code": r.community_code,
                   "case_id": r.case_id, "case_status": r.status,
                   "checked_in_on": checked[r.id].isoformat() if r.id in checked else None,
                   "members": members[r.id]} for r in rows]
    return {"unit_code": unit, "month": month, "households": households,
            "checked_in": sum(1 for h in households if h["checked_in_on"]),
            "missing": sum(1 for h in households if not h["checked_in_on"])}
