"""Audit's handlers: who may ask what, and the record of each query.

Only auditors (监督/审计) and directors query the record, each within their
unit; a partner bureau gets the statistics and the scorecard, which carry no
personal data. Every query is itself recorded: the handler emits
``audit.query_recorded`` (what was asked) in a unit of work, which the
command-recording mechanism joins with ``audit.command_recorded`` (who, the
outcome) — both reach the chain through the bus like every other event.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from services.audit import stats, trace
from shared.db import UnitOfWork
from shared.errors import Forbidden, NotFound
from shared.events import Event
from shared.identity import Actor, Role, authorize

SOURCE = "audit"
#: who reads the audit: the auditors, the directors, and the audit administrator (安全审计员)
QUERY_ROLES = (Role.AUDITOR, Role.CENTRE_DIRECTOR, Role.DEPUTY_DIRECTOR, Role.AUDIT_ADMIN)
STATISTICS_ROLES = QUERY_ROLES + (Role.PARTNER_BUREAU,)


@dataclass(frozen=True)
class Query:
    """What was asked, to be recorded after the answer was read."""

    kind: str
    criteria: dict
    results: int
    subject: dict = field(default_factory=dict)


def record_query(uow: UnitOfWork, query: Query) -> None:
    uow.emit(Event(SOURCE, "query_recorded", {k: v for k, v in query.subject.items() if v},
                   {"kind": query.kind, "results": query.results,
                    "criteria": {k: str(v) for k, v in query.criteria.items() if v is not None}}))
    uow.commit()


def _authorize_subject(conn, actor: Actor, column: str, ident: str) -> None:
    unit = trace.unit_of_subject(conn, column, ident)
    if unit is None:
        raise NotFound(f"nothing recorded for {column} {ident}", {column: ident})
    authorize(actor, QUERY_ROLES, unit)


def run_trace(conn, actor: Actor, data: dict) -> tuple[list[dict], Query]:
    authorize(actor, QUERY_ROLES)
    limit = data["limit"]
    subject = {k: str(data[k]) for k in ("household_id", "application_id", "case_id") if data.get(k)}
    if subject:
        (column, ident), = subject.items()
        _authorize_subject(conn, actor, column, ident)
        entries = trace.by_subject(conn, column, ident, limit)
    elif data.get("unit_code"):
        authorize(actor, QUERY_ROLES, data["unit_code"])
        entries = trace.by_unit(conn, data["unit_code"], data["date_from"], data["date_to"], limit)
    else:
        within = actor.unit
        entries = trace.by_operator(conn, data["operator"], data["date_from"], data["date_to"], within, limit)
    criteria = {**subject, "operator": data.get("operator"), "unit_code": data.get("unit_code"),
                "from": data.get("date_from"), "to": data.get("date_to")}
    return entries, Query("trace", {k: v for k, v in criteria.items() if v is not None}, len(entries), subject)


def who_let_them_in(conn, actor: Actor, case_id: str) -> tuple[dict, Query]:
    authorize(actor, QUERY_ROLES)
    _authorize_subject(conn, actor, "case_id", case_id)
    answer = trace.who_let_them_in(conn, case_id)
    return answer, Query("who_let_them_in", {"case_id": case_id}, len(answer["people"]), {"case_id": case_id})


def file_readers(conn, actor: Actor, household_id: str) -> tuple[list[dict], Query]:
    authorize(actor, QUERY_ROLES)
    _authorize_subject(conn, actor, "household_id", household_id)
    entries = trace.file_readers(conn, household_id)
    return entries, Query("file_readers", {"household_id": household_id}, len(entries), {"household_id": household_id})


def non_agricultural_population(config: dict, unit: str) -> int | None:
    """The configured figure (AUDIT_NON_AGRICULTURAL_POPULATION, per district code) for ``unit``."""
    figures = config.get("AUDIT_NON_AGRICULTURAL_POPULATION") or {}
    total = sum(int(v) for k, v in figures.items() if str(k).startswith(unit) or unit.startswith(str(k)))
    return total or None


def statistics(conn, actor: Actor, day: date, config: dict) -> tuple[dict, Query]:
    """The headline figures of the deployment's district at ``day`` (no personal data)."""
    authorize(actor, STATISTICS_ROLES)
    if len(actor.unit) > 6:
        raise Forbidden("the district's statistics are for district-level units", {"unit": actor.unit})
    figures = stats.statistics(conn, day, non_agricultural_population(config, actor.unit[:6]))
    out = figures.to_dict()
    out["paragraph"] = figures.paragraph()
    out["table"] = figures.table()
    out["verification"] = stats.verification_by_bureau(conn, day)     # 核对, per bureau (no personal data)
    out["appeals"] = stats.appeals(conn, day, actor.unit[:6])          # 复核: filed, upheld, dismissed, overdue
    out["by_township"] = stats.by_township(conn, day)
    return out, Query("statistics", {"date": day}, 1)


def scorecard(conn, actor: Actor, day: date, unit: str | None) -> tuple[list[dict], Query]:
    authorize(actor, STATISTICS_ROLES, unit or actor.unit)
    rows = stats.scorecard(conn, day, unit or actor.unit)
    return rows, Query("scorecard", {"date": day, "unit_code": unit or actor.unit}, len(rows))
