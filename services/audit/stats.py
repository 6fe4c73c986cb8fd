"""The bureau's statistics and the supervision scorecard, projected from the
recorded events (统计与考评) — set-based SQL over ``audit_records``, so the
figures are right for any past date D.

Business dates decide, not the time an event was recorded:
- a case is active at D when its ``review.case_approved`` has
  ``approved_on ≤ D`` and no ``review.case_cancelled`` has taken effect by
  D's month (``effective_month ≤ M`` and any gradual exit ended before M);
  unless a later ``review.case_restored`` (an upheld appeal) has ``restored_on ≤ D``;
- its benefit and size at D are those of the latest ``review.case_adjusted``
  or ``payments.benefit_changed`` with ``effective_month ≤ M``, else the
  approval's;
- "over the year" counts events of the year of D up to D: approvals by
  ``approved_on``, cancellations / adjustments / benefit changes by
  ``effective_month`` (each event once, as households and their persons);
- the month's expenditure is the sum of ``payments.payment_disbursed`` for
  M when there are any (``expenditure_source = "disbursed"``), else the sum
  of the active urban cases' benefits (``"benefits"``); the rural quarter's
  payout likewise from disbursements for ``YYYY-Qn``, else three months of
  the active rural cases' benefits. Where rural benefits are paid monthly
  (national 2021), the quarter's payout is the sum of its months' disbursements.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

import sqlalchemy as sa

from services.audit.models import audit_records as T
from shared.months import months_of_quarter, quarter_of

P = T.c.payload


def _s(key, table=None):
    return (table.c.payload if table is not None else P)[key].as_string()


def _fen(expr):
    """'820.00' → 82000 (contract amounts always carry two decimals)."""
    return sa.cast(sa.func.replace(expr, ".", ""), sa.BigInteger)


def _int(key, table=None):
    return sa.cast(_s(key, table), sa.Integer)


def _type(name: str, source: str = "review"):
    return sa.and_(T.c.type == name, T.c.source == source)


def yuan(fen: int | None) -> Decimal:
    return (Decimal(fen or 0) / 100).quantize(Decimal("0.01"))


def active_cases(d: date):
    """One row per case active at D: case_id, area_type, community, township, size, benefit_fen."""
    month = d.strftime("%Y-%m")
    approved = (sa.select(T.c.case_id, _s("area_type").label("area_type"),
                          _s("community_code").label("community_code"), _s("township_code").label("township_code"),
                          T.c.household_id, _int("household_size").label("size"),
                          _fen(_s("monthly_benefit")).label("benefit"))
                .where(_type("case_approved"), _s("approved_on") <= d.isoformat())).subquery("approved")
    cancelled = T.alias("cancelled")
    restored = T.alias("restored")
    stopped = sa.exists().where(
        cancelled.c.type == "case_cancelled", cancelled.c.source == "review",
        cancelled.c.case_id == approved.c.case_id,
        _s("effective_month", cancelled) <= month,
        sa.or_(_s("gradual_exit_until", cancelled).is_(None), _s("gradual_exit_until", cancelled) < month),
        # an upheld appeal (复核) restored it by D: that cancellation no longer stands
        ~sa.exists().where(restored.c.type == "case_restored", restored.c.source == "review",
                           restored.c.case_id == cancelled.c.case_id, restored.c.seq > cancelled.c.seq,
                           _s("restored_on", restored) <= d.isoformat()))
    changes = T.alias("changes")
    change_types = sa.or_(sa.and_(changes.c.type == "case_adjusted", changes.c.source == "review"),
                          sa.and_(changes.c.type == "benefit_changed", changes.c.source == "payments"))
    latest = (sa.select(changes.c.case_id, sa.func.max(changes.c.seq).label("seq"))
              .where(change_types, _s("effective_month", changes) <= month)
              .group_by(changes.c.case_id)).subquery("latest")
    change = T.alias("change")
    return (sa.select(approved.c.case_id, approved.c.area_type, approved.c.community_code,
                      approved.c.township_code, approved.c.household_id,
                      sa.func.coalesce(_int("household_size", change), approved.c.size).label("size"),
                      sa.func.coalesce(_fen(_s("new_benefit", change)), approved.c.benefit).label("benefit"))
            .select_from(approved.outerjoin(latest, latest.c.case_id == approved.c.case_id)
                         .outerjoin(change, change.c.seq == latest.c.seq))
            .where(~stopped)).subquery("active")


def by_township(conn, d: date) -> list[dict]:
    """Per township: the cases active at D (households, persons) and their monthly benefit (yuan)."""
    active = active_cases(d)
    rows = conn.execute(sa.select(active.c.township_code, sa.func.count().label("households"),
                                  sa.func.coalesce(sa.func.sum(active.c.size), 0).label("persons"),
                                  sa.func.coalesce(sa.func.sum(active.c.benefit), 0).label("benefit"))
                        .group_by(active.c.township_code).order_by(active.c.township_code))
    return [{"township_code": r.township_code or "", "households": int(r.households), "persons": int(r.persons),
             "monthly_benefit": str(yuan(int(r.benefit)))} for r in rows]


def _households_persons(conn, where, size_expr=None) -> tuple[int, int]:
    size_expr = size_expr if size_expr is not None else _int("household_size")
    row = conn.execute(sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(size_expr), 0)).where(*where)).one()
    return int(row[0]), int(row[1])


@dataclass
class Statistics:
    date: str
    urban_households: int
    urban_persons: int
    non_agricultural_population: int | None
    urban_share_percent: Decimal | None
    monthly_expenditure: Decimal
    expenditure_source: str
    average_topup_per_person: Decimal
    cancelled: tuple[int, int]
    lowered: tuple[int, int]
    added: tuple[int, int]
    raised: tuple[int, int]
    rural_households: int
    rural_persons: int
    rural_quarter: str
    rural_quarter_payout: Decimal
    rural_payout_source: str
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        out = asdict(self)
        for key, value in out.items():
            if isinstance(value, Decimal):
                out[key] = str(value)
            elif isinstance(value, tuple):
                out[key] = {"households": value[0], "persons": value[1]}
        return out

    def paragraph(self) -> str:
        """The seed's headline paragraph (江夏区民政局), filled."""
        d = date.fromisoformat(self.date)
        share = f"{self.urban_share_percent}%" if self.urban_share_percent is not None else "（未配置非农业人口）"
        return (f"截止{d.year}年{d.month}月，全区城镇低保对象已达{self.urban_households}户{self.urban_persons}人，"
                f"占非农业人口的{share}，月支出保障金{self.monthly_expenditure}元，"
                f"月人均补差{self.average_topup_per_person}元，"
                f"全年共取消低保对象{self.cancelled[0]}户{self.cancelled[1]}人，"
                f"降低标准{self.lowered[0]}户{self.lowered[1]}人，"
                f"新增对象{self.added[0]}户{self.added[1]}人，"
                f"提高标准{self.raised[0]}户{self.raised[1]}人；"
                f"享受农村低保对象达到{self.rural_households}户{self.rural_persons}人，"
                f"季发放低保金{self.rural_quarter_payout}元。")

    def table(self) -> list[tuple[str, str]]:
        return [
            ("统计日期", self.date),
            ("城镇低保户数", str(self.urban_households)), ("城镇低保人数", str(self.urban_persons)),
            ("占非农业人口比例(%)", "" if self.urban_share_percent is None else str(self.urban_share_percent)),
            ("月支出保障金(元)", str(self.monthly_expenditure)),
            ("支出口径", {"disbursed": "实际发放", "benefits": "核定保障金"}[self.expenditure_source]),
            ("月人均补差(元)", str(self.average_topup_per_person)),
            ("全年取消(户/人)", f"{self.cancelled[0]}/{self.cancelled[1]}"),
            ("全年降低标准(户/人)", f"{self.lowered[0]}/{self.lowered[1]}"),
            ("全年新增(户/人)", f"{self.added[0]}/{self.added[1]}"),
            ("全年提高标准(户/人)", f"{self.raised[0]}/{self.raised[1]}"),
            ("农村低保户数", str(self.rural_households)), ("农村低保人数", str(self.rural_persons)),
            (f"{self.rural_quarter}季发放(元)", str(self.rural_quarter_payout)),
            ("农村发放口径", {"disbursed": "实际发放", "benefits": "核定保障金×3"}[self.rural_payout_source]),
        ]


def statistics(conn, d: date, non_agricultural_population: int | None) -> Statistics:
    month, year_start, year_month = d.strftime("%Y-%m"), f"{d.year}-01-01", f"{d.year}-01"
    active = active_cases(d)
    by_area = {row.area_type: row for row in conn.execute(
        sa.select(active.c.area_type, sa.func.count().label("households"),
                  sa.func.coalesce(sa.func.sum(active.c.size), 0).label("persons"),
                  sa.func.coalesce(sa.func.sum(active.c.benefit), 0).label("benefit"))
        .group_by(active.c.area_type))}
    urban, rural = by_area.get("urban"), by_area.get("rural")
    u_h, u_p, u_b = (int(urban.households), int(urban.persons), int(urban.benefit)) if urban else (0, 0, 0)
    r_h, r_p, r_b = (int(rural.households), int(rural.persons), int(rural.benefit)) if rural else (0, 0, 0)

    def disbursed(periods: list[str], area: str):
        return conn.execute(sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(_fen(_s("amount"))), 0))
                            .where(_type("payment_disbursed", "payments"), _s("period").in_(periods),
                                   _s("area_type") == area)).one()

    n, paid = disbursed([month], "urban")
    expenditure, source = (int(paid), "disbursed") if n else (u_b, "benefits")
    quarter = quarter_of(d)
    # the quarter's rural payout: paid for the quarter (季发放), or month by month where the policy pays monthly
    n, paid = disbursed([quarter, *months_of_quarter(d)], "rural")
    rural_payout, rural_source = (int(paid), "disbursed") if n else (3 * r_b, "benefits")
    average = (yuan(expenditure) / u_p).quantize(Decimal("0.01"), ROUND_HALF_UP) if u_p else Decimal("0.00")
    share = None
    if non_agricultural_population:
        share = (Decimal(u_p) * 100 / non_agricultural_population).quantize(Decimal("0.01"), ROUND_HALF_UP)

    urban_only = _s("area_type") == "urban"
    in_year = [_s("effective_month") >= year_month, _s("effective_month") <= month, urban_only]
    changed = sa.or_(_type("case_adjusted"), _type("benefit_changed", "payments"))
    return Statistics(
        date=d.isoformat(), urban_households=u_h, urban_persons=u_p,
        non_agricultural_population=non_agricultural_population, urban_share_percent=share,
        monthly_expenditure=yuan(expenditure), expenditure_source=source, average_topup_per_person=average,
        cancelled=_households_persons(conn, [_type("case_cancelled"), *in_year]),
        lowered=_households_persons(conn, [changed, _s("direction") == "lowered", *in_year]),
        added=_households_persons(conn, [_type("case_approved"), urban_only, _s("approved_on") >= year_start,
                                         _s("approved_on") <= d.isoformat()]),
        raised=_households_persons(conn, [changed, _s("direction") == "raised", *in_year]),
        rural_households=r_h, rural_persons=r_p, rural_quarter=quarter,
        rural_quarter_payout=yuan(rural_payout), rural_payout_source=rural_source,
    )


# --- the supervision scorecard (考评) -------------------------------------------------

def scorecard(conn, d: date, unit: str = "") -> list[dict]:
    """Per township and community within ``unit``: overdue review steps (a
    step whose deadline passed by D before the next step, the approval or
    the rejection came), missed re-reviews (``review_due`` with ``due_on``
    before D and no later inspection, adjustment, cancellation or next
    ``review_due`` for the case), check-in gaps (cases active at D whose
    household has no check-in for the month before D's), and cases found
    wrongly included (cancelled as such by D's month, or so found by an
    inspection recorded by D — inspection_recorded carries no business date)."""
    today = d.isoformat()
    prev_month = (d.replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
    submitted = (sa.select(T.c.application_id, _s("community_code").label("community_code"),
                           _s("township_code").label("township_code"))
                 .where(_type("application_submitted", "intake"))).subquery("submitted")
    nxt = T.alias("nxt")
    successor_date = (sa.select(sa.func.coalesce(_s("opened_on", nxt), _s("approved_on", nxt),
                                                 _s("rejected_on", nxt)))
                      .where(nxt.c.application_id == T.c.application_id, nxt.c.seq > T.c.seq,
                             nxt.c.source == "review",
                             nxt.c.type.in_(("review_step_opened", "case_approved", "application_rejected")))
                      .order_by(nxt.c.seq).limit(1).scalar_subquery())
    overdue = (sa.select(submitted.c.township_code, submitted.c.community_code, sa.func.count().label("n"))
               .select_from(T.join(submitted, submitted.c.application_id == T.c.application_id))
               .where(_type("review_step_opened"), _s("due_on").is_not(None), _s("due_on") < today,
                      sa.or_(successor_date.is_(None), successor_date > _s("due_on")))
               .group_by(submitted.c.township_code, submitted.c.community_code))
    later = T.alias("later")
    missed = (sa.select(_s("township_code").label("township_code"), _s("community_code").label("community_code"),
                        sa.func.count().label("n"))
              .where(_type("review_due"), _s("due_on") < today,
                     ~sa.exists().where(later.c.case_id == T.c.case_id, later.c.seq > T.c.seq,
                                        later.c.type.in_(("inspection_recorded", "case_adjusted",
                                                          "case_cancelled", "review_due"))))
              .group_by(_s("township_code"), _s("community_code")))
    active = active_cases(d)
    checkin = T.alias("checkin")
    gaps = (sa.select(active.c.township_code, active.c.community_code, sa.func.count().label("n"))
            .where(~sa.exists().where(checkin.c.household_id == active.c.household_id,
                                      checkin.c.type == "checkin_recorded", checkin.c.source == "intake",
                                      _s("month", checkin) == prev_month))
            .group_by(active.c.township_code, active.c.community_code))
    wrong = (sa.select(_s("township_code").label("township_code"), _s("community_code").label("community_code"),
                       sa.func.count(sa.distinct(T.c.case_id)).label("n"))
             .where(sa.or_(sa.and_(_type("case_cancelled"), P["wrongly_included"].as_boolean().is_(True),
                                   _s("effective_month") <= d.strftime("%Y-%m")),
                           sa.and_(_type("inspection_recorded"), _s("result") == "wrongly_included",
                                   T.c.occurred_at <= today + "T23:59:59.999999Z")))
             .group_by(_s("township_code"), _s("community_code")))
    board: dict[tuple, dict] = {}
    for column, query in (("overdue_steps", overdue), ("missed_rereviews", missed), ("checkin_gaps", gaps),
                          ("wrongly_included", wrong)):
        for row in conn.execute(query):
            if not (row.community_code or "").startswith(unit) and not (row.township_code or "").startswith(unit):
                continue
            key = (row.township_code or "", row.community_code or "")
            entry = board.setdefault(key, {"township_code": key[0], "community_code": key[1], "overdue_steps": 0,
                                           "missed_rereviews": 0, "checkin_gaps": 0, "wrongly_included": 0})
            entry[column] += int(row.n)
    return [board[k] for k in sorted(board)]


# --- verification with the partner bureaus (核对) ------------------------------------------

def verification_by_bureau(conn, d: date) -> list[dict]:
    """Per partner bureau at D, from verification's recorded events (recorded by the end of D):
    requests sent (``request_sent``, reminder 0), reminders re-sent, requests answered (the
    ``answer_received`` that closed them), requests overdue at D (sent, due before D, not answered
    by D) and messages refused (``answer_refused``)."""
    until = d.isoformat() + "T23:59:59.999999Z"

    def recorded(kind: str, table=T):
        return sa.and_(table.c.type == kind, table.c.source == "verification", table.c.occurred_at <= until)

    def request_of(table=T):
        return table.c.subject["request_id"].as_string()

    closed = T.alias("closed")
    answered_by_d = sa.exists().where(recorded("answer_received", closed),
                                      closed.c.payload["request_closed"].as_boolean().is_(True),
                                      request_of(closed) == request_of())
    first = _int("reminder") == 0
    counts = {
        "requests": [recorded("request_sent"), first],
        "reminders": [recorded("request_sent"), _int("reminder") > 0],
        "answered": [recorded("answer_received"), P["request_closed"].as_boolean().is_(True)],
        "overdue": [recorded("request_sent"), first, _s("answer_by") < d.isoformat(), ~answered_by_d],
        "refused": [recorded("answer_refused")],
    }
    board: dict[str, dict] = {}
    for column, where in counts.items():
        for bureau, n in conn.execute(sa.select(_s("bureau"), sa.func.count()).where(*where).group_by(_s("bureau"))):
            entry = board.setdefault(bureau or "", {"bureau": bureau or "", **{key: 0 for key in counts}})
            entry[column] = int(n)
    return [board[b] for b in sorted(board)]


# --- appeals (复核) ----------------------------------------------------------------------

def appeals(conn, d: date, unit: str = "") -> dict:
    """Appeals over the year of D up to D, from review's recorded events: filed (``appeal_filed``
    by ``filed_on``), upheld and dismissed (``appeal_decided`` by ``decided_on``), decided late
    (``on_time`` false), and open at D past their due day (filed by D, due before D, no decision
    by D), per kind of decision appealed."""
    today, year_start = d.isoformat(), f"{d.year}-01-01"
    decided = T.alias("decided")
    within_unit = _s("community_code").startswith(unit, autoescape=True)
    filed = [_type("appeal_filed"), _s("filed_on") >= year_start, _s("filed_on") <= today, within_unit]
    decisions = [_type("appeal_decided"), _s("decided_on") >= year_start, _s("decided_on") <= today, within_unit]
    counts = {
        "filed": filed,
        "upheld": decisions + [_s("outcome") == "upheld"],
        "dismissed": decisions + [_s("outcome") == "dismissed"],
        "decided_late": decisions + [P["on_time"].as_boolean().is_(False)],
        "overdue": [_type("appeal_filed"), _s("filed_on") <= today, _s("due_on") < today, within_unit,
                    ~sa.exists().where(decided.c.type == "appeal_decided", decided.c.source == "review",
                                       _s("appeal_id", decided) == _s("appeal_id"),
                                       _s("decided_on", decided) <= today)],
    }
    out = {key: 0 for key in counts}
    by_kind: dict[str, dict] = {}
    for column, where in counts.items():
        for kind, n in conn.execute(sa.select(_s("kind"), sa.func.count()).where(*where).group_by(_s("kind"))):
            out[column] += int(n)
            by_kind.setdefault(kind or "", {key: 0 for key in counts})[column] = int(n)
    return {**out, "by_kind": [{"kind": k, **by_kind[k]} for k in sorted(by_kind)]}
