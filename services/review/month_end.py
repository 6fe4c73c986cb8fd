"""Month end (月末) of dynamic management: the rules that act on recorded
facts, evaluated set-based over every active case at once, and the
re-review reminders.

Each rule is one ``INSERT … SELECT`` into ``case_proposal`` (never a Python
loop over cases); ``NOT EXISTS`` on (case, rule, fact) and the table's
unique constraint make a second run, or a run on the timer and one by an
operator at the same time, propose nothing twice. A case that already has
a cancellation pending gets no second one. The pure form of each rule, with
the same policy parameters, is in services/review/rules.py.

Every statement is filtered by the unit it runs for (a division-code
prefix): an operator's run acts only on the cases of their unit; the
service's own timer runs for every case (``unit=None``).

Re-review reminders: every active case whose re-review date falls within
the policy's lead time gets one ``review.review_due`` per due date
(``review_due_sent`` remembers it).
"""
from __future__ import annotations

from datetime import date, timedelta

import sqlalchemy as sa

from services.review import rules
from services.review.models import Case, CaseProposal, HouseholdCheckIn, LabourFact, ReviewDueSent
from shared.db import UnitOfWork
from shared.sealing import random_id
from shared.policy.base import Policy

SOURCE = "review"
PROPOSAL_COLUMNS = ("case_id", "rule", "fact", "reason", "action", "gradual_exit_months", "wrongly_included",
                    "status", "proposed_on", "proposed_by", "approvals", "version")


def month_number(column):
    """SQL: 'YYYY-MM' → year × 12 + month (portable: SQLite and PostgreSQL)."""
    return (sa.cast(sa.func.substr(column, 1, 4), sa.Integer) * 12
            + sa.cast(sa.func.substr(column, 6, 2), sa.Integer))


def in_unit(unit: str | None):
    """SQL: the case lies within ``unit`` (a division-code prefix); None: every case."""
    return sa.true() if unit is None else Case.community_code.startswith(unit, autoescape=True)


def _no_pending_cancellation():
    p = sa.orm.aliased(CaseProposal)
    return ~sa.exists().where(p.case_id == Case.id, p.status == "pending", p.action == "cancel")


def _not_proposed_yet(rule: str, fact):
    p = sa.orm.aliased(CaseProposal)
    return ~sa.exists().where(p.case_id == Case.id, p.rule == rule, p.fact == fact)


def _propose(uow: UnitOfWork, select_rows: sa.Select) -> int:
    """INSERT … SELECT the proposals ``select_rows`` yields (columns as
    PROPOSAL_COLUMNS), each with a ``seal_id`` of its own made in SQL."""
    table = CaseProposal.__table__
    rows = select_rows.add_columns(random_id().label("seal_id"))
    result = uow.session.execute(
        table.insert().from_select([table.c[name] for name in PROPOSAL_COLUMNS] + [table.c.seal_id], rows))
    return result.rowcount or 0


def _constants(rule: str, reason, action: str, today: date):
    return [sa.literal(reason) if isinstance(reason, str) else reason, sa.literal(action),
            sa.literal(0), sa.literal(False), sa.literal("pending"), sa.literal(today, sa.Date),
            sa.literal(f"rule:{rule}"), sa.literal([], sa.JSON), sa.literal(1)]


def two_missed_checkins_in_a_row(uow: UnitOfWork, policy: Policy, month: str, today: date,
                                 unit: str | None = None) -> int:
    n = policy.checkin_missed_in_a_row
    if not n:
        return 0
    window = [rules.add_months_to_month(month, i - (n - 1)) for i in range(n)]
    rule, fact = rules.RULE_TWO_IN_A_ROW, f"checkins:{window[0]}..{window[-1]}"
    stamped = sa.exists().where(HouseholdCheckIn.household_id == Case.household_id,
                                HouseholdCheckIn.month.in_(window))
    rows = (sa.select(Case.id, sa.literal(rule), sa.literal(fact),
                      *_constants(rule, f"连续{n}个月未续保登记（{window[0]}至{window[-1]}）", "cancel", today))
            .where(Case.status == "active", in_unit(unit), Case.start_month <= window[0], ~stamped,
                   _no_pending_cancellation(), _not_proposed_yet(rule, fact)))
    return _propose(uow, rows)


def three_missed_checkins_in_a_year(uow: UnitOfWork, policy: Policy, month: str, today: date,
                                    unit: str | None = None) -> int:
    n = policy.checkin_missed_per_year
    if not n:
        return 0
    rule, fact, january = rules.RULE_THREE_IN_A_YEAR, f"checkins:{month[:4]}", f"{month[:4]}-01"
    first = sa.case((Case.start_month > january, Case.start_month), else_=january)
    expected = sa.literal(rules.month_number(month)) - month_number(first) + 1
    stamped = (sa.select(sa.func.count()).select_from(HouseholdCheckIn)
               .where(HouseholdCheckIn.household_id == Case.household_id, HouseholdCheckIn.month >= first,
                      HouseholdCheckIn.month <= month)
               .correlate(Case).scalar_subquery())
    rows = (sa.select(Case.id, sa.literal(rule), sa.literal(fact),
                      *_constants(rule, f"{month[:4]}年内累计{n}次以上未续保登记（截至{month}）", "cancel", today))
            .where(Case.status == "active", in_unit(unit), Case.start_month <= month, expected - stamped >= n,
                   _no_pending_cancellation(), _not_proposed_yet(rule, fact)))
    return _propose(uow, rows)


def _labour_counts(attendance: str, as_of: date, unit: str | None):
    """Per active case and member: how many times the member's attendance was
    ``attendance`` since the case was approved."""
    return (sa.select(Case.id.label("case_id"), LabourFact.member_id, sa.func.count().label("times"))
            .join(LabourFact, LabourFact.household_id == Case.household_id)
            .where(Case.status == "active", in_unit(unit), LabourFact.attendance == attendance,
                   LabourFact.labour_date >= Case.approved_on, LabourFact.labour_date <= as_of)
            .group_by(Case.id, LabourFact.member_id).subquery())


def unexcused_labour_absence(uow: UnitOfWork, policy: Policy, as_of: date, today: date,
                             unit: str | None = None) -> int:
    """公益劳动: each unexcused absence at or over the threshold is a new fact (the
    township may still reject the proposal: the absence *may* cancel)."""
    n = policy.labour_unexcused_absences_to_cancel
    if not n:
        return 0
    rule = rules.RULE_UNEXCUSED_LABOUR
    counts = _labour_counts("unexcused", as_of, unit)
    fact = sa.literal("labour:") + counts.c.member_id + sa.literal(":") + sa.cast(counts.c.times, sa.String)
    rows = (sa.select(Case.id, sa.literal(rule), fact,
                      *_constants(rule, f"家庭成员无故不参加公益劳动（累计{n}次以上）", "cancel", today))
            .join(counts, counts.c.case_id == Case.id)
            .where(counts.c.times >= n, _no_pending_cancellation(), _not_proposed_yet(rule, fact)))
    return _propose(uow, rows)


def refused_suitable_work(uow: UnitOfWork, policy: Policy, as_of: date, today: date,
                          unit: str | None = None) -> int:
    """National: a member refusing suitable work N times: stop that person's share, once per member."""
    n = policy.work_refusals_to_stop_share
    if not n:
        return 0
    rule = rules.RULE_REFUSED_WORK
    counts = _labour_counts("refused", as_of, unit)
    fact = sa.literal("refused:") + counts.c.member_id
    rows = (sa.select(Case.id, sa.literal(rule), fact,
                      *_constants(rule, f"家庭成员无正当理由{n}次拒绝适当工作，停发其本人保障金", "stop_share", today))
            .join(counts, counts.c.case_id == Case.id)
            .where(counts.c.times >= n, _not_proposed_yet(rule, fact)))
    return _propose(uow, rows)


def reviews_due(uow: UnitOfWork, policy: Policy, as_of: date, today: date, unit: str | None = None) -> int:
    """复核提醒: one review_due per case and due date, ``rereview_lead_days`` ahead."""
    horizon = as_of + timedelta(days=policy.rereview_lead_days)
    sent = sa.exists().where(ReviewDueSent.case_id == Case.id, ReviewDueSent.due_on == Case.next_rereview_on)
    due = uow.session.execute(
        sa.select(Case.id, Case.household_id, Case.community_code, Case.township_code, Case.category,
                  Case.next_rereview_on)
        .where(Case.status == "active", in_unit(unit), Case.next_rereview_on <= horizon, ~sent)).all()
    if not due:
        return 0
    uow.session.execute(ReviewDueSent.__table__.insert(),
                        [{"case_id": r.id, "due_on": r.next_rereview_on, "sent_on": today} for r in due])
    uow.emit_many(SOURCE, "review_due", (
        ({"household_id": r.household_id, "case_id": r.id},
         {"case_id": r.id, "household_id": r.household_id, "community_code": r.community_code,
          "township_code": r.township_code, "category": r.category, "due_on": r.next_rereview_on.isoformat()})
        for r in due))
    return len(due)


def run(uow: UnitOfWork, policy: Policy, as_of: date, today: date, unit: str | None = None) -> dict:
    """Every month-end rule for the month that has ended by ``as_of``, and the
    reminders due by then, for the cases within ``unit`` (None: all); one transaction."""
    month = rules.month_evaluated(as_of)
    proposals = {
        rules.RULE_TWO_IN_A_ROW: two_missed_checkins_in_a_row(uow, policy, month, today, unit),
        rules.RULE_THREE_IN_A_YEAR: three_missed_checkins_in_a_year(uow, policy, month, today, unit),
        rules.RULE_UNEXCUSED_LABOUR: unexcused_labour_absence(uow, policy, as_of, today, unit),
        rules.RULE_REFUSED_WORK: refused_suitable_work(uow, policy, as_of, today, unit),
    }
    due = reviews_due(uow, policy, as_of, today, unit)
    uow.commit()
    out = {"month": month, "as_of": as_of.isoformat(), "proposals": proposals, "review_due": due}
    if unit is not None:
        out["unit_code"] = unit
    return out
