"""Responsibility tracing (责任追究): who did what, when, with what outcome.

Every answer is read from the chain's indexed columns (household, application,
case, actor user, actor unit) in ``seq`` order — the order the records were
appended, which keeps each household's events in the order they happened.
"""
from __future__ import annotations

from datetime import date

import sqlalchemy as sa

from services.audit.models import audit_records as T
from shared.errors import NotFound

LIMIT = 1000


def entry(row) -> dict:
    """One line of a trace: who (name, role, unit), what, when, outcome."""
    payload = row.payload or {}
    if row.type == "command_recorded":
        what, outcome = f"{payload.get('service')}.{payload.get('method')}", payload.get("outcome", "ok")
    else:
        what = f"{row.source}.{row.type}"
        passed = payload.get("passed")
        outcome = payload.get("result") or ("ok" if passed is None else ("passed" if passed else "not passed"))
    return {"seq": row.seq, "when": row.occurred_at, "user": row.actor_user, "name": row.actor_name,
            "role": row.actor_role, "unit": row.actor_unit, "what": what, "outcome": outcome,
            "event_id": row.event_id, "household_id": row.household_id, "application_id": row.application_id,
            "case_id": row.case_id, "payload": payload}


def _rows(conn, where, limit: int = LIMIT) -> list[dict]:
    return [entry(r) for r in conn.execute(sa.select(T).where(where).order_by(T.c.seq).limit(limit))]


def _bounds(start: date | None, end: date | None):
    clauses = []
    if start:
        clauses.append(T.c.occurred_at >= start.isoformat())
    if end:
        clauses.append(T.c.occurred_at <= end.isoformat() + "T23:59:59.999999Z")
    return clauses


def unit_of_subject(conn, column: str, ident: str) -> str | None:
    """The community code the records of a household/application/case name
    (for the jurisdiction check), or None when nothing is recorded."""
    stmt = (sa.select(T.c.payload["community_code"].as_string())
            .where(T.c[column] == ident, T.c.payload["community_code"].as_string().is_not(None))
            .order_by(T.c.seq).limit(1))
    return conn.execute(stmt).scalar()


def related_ids(conn, column: str, ident: str) -> dict[str, set]:
    """The household, its applications and cases that ``column = ident``
    belongs to: a command names only what its arguments named (a joint-review
    signature names the application), so a trace gathers them all."""
    ids = {"household_id": set(), "application_id": set(), "case_id": set()}
    ids[column].add(ident)
    rows = conn.execute(sa.select(T.c.household_id, T.c.application_id, T.c.case_id).distinct()
                        .where(T.c[column] == ident, T.c.type.in_(_LINKING))).all()
    for row in rows:
        for key in ids:
            if row._mapping[key] and (column == "household_id" or key != "household_id"):
                ids[key].add(row._mapping[key])
    if column == "case_id":   # a case's trace starts with the entry of its application
        ids["household_id"].clear()
    return ids


#: the events that tie an application or a case to its household
_LINKING = ("application_submitted", "case_approved", "investigation_recorded")


def by_subject(conn, column: str, ident: str, limit: int = LIMIT) -> list[dict]:
    ids = related_ids(conn, column, ident)
    where = sa.or_(*(T.c[key].in_(sorted(values)) for key, values in ids.items() if values))
    return _rows(conn, where, limit)


def within(column, prefix: str):
    """``column`` starts with the division code ``prefix``, as a range the
    index serves on any backend and collation (LIKE 'x%' is not, on a
    PostgreSQL database with a non-C collation)."""
    if not prefix:
        return sa.true()
    if not prefix.isdigit():
        return column.startswith(prefix, autoescape=True)
    upper = str(int(prefix) + 1).zfill(len(prefix))
    if len(upper) > len(prefix):   # 999…: nothing sorts above it among codes of this length
        return column >= prefix
    return sa.and_(column >= prefix, column < upper)


def by_operator(conn, user: str, start: date | None, end: date | None, inside: str, limit: int = LIMIT):
    return _rows(conn, sa.and_(T.c.actor_user == user, within(T.c.actor_unit, inside), *_bounds(start, end)), limit)


def by_unit(conn, unit: str, start: date | None, end: date | None, limit: int = LIMIT):
    return _rows(conn, sa.and_(within(T.c.actor_unit, unit), *_bounds(start, end)), limit)


def _person(user, name, role, unit, part, when, **more) -> dict:
    return {"part": part, "user": user, "name": name, "role": role, "unit": unit, "when": when, **more}


def who_let_them_in(conn, case_id: str) -> dict:
    """For a case: was it found wrongly included, and everyone who took part in
    its entry — investigators, evaluators, the township committee, the joint
    review's signers and the approver — each with name, role, unit and when."""
    approval = conn.execute(sa.select(T).where(T.c.case_id == case_id, T.c.type == "case_approved",
                                               T.c.source == "review")).first()
    if approval is None:
        raise NotFound(f"no recorded approval of case {case_id}", {"case_id": case_id})
    findings = [entry(r) for r in conn.execute(sa.select(T).where(
        T.c.case_id == case_id, sa.or_(
            sa.and_(T.c.type == "case_cancelled", T.c.payload["wrongly_included"].as_boolean().is_(True)),
            sa.and_(T.c.type == "inspection_recorded",
                    T.c.payload["result"].as_string() == "wrongly_included"))).order_by(T.c.seq))]
    people: list[dict] = []
    for row in conn.execute(sa.select(T).where(T.c.application_id == approval.application_id,
                                               T.c.seq <= approval.seq).order_by(T.c.seq)):
        p = row.payload or {}
        signed_by = p.get("signed_by") or []
        if row.type == "investigation_recorded":
            people.append(_person(row.actor_user, row.actor_name, row.actor_role, row.actor_unit,
                                  "investigation recorded by", row.occurred_at))
            people += [_person(i.get("user"), i.get("name"), i.get("role"), i.get("unit"), "investigator",
                               row.occurred_at) for i in p.get("investigators", [])]
        elif row.type == "community_evaluated":
            people.append(_person(row.actor_user, row.actor_name, row.actor_role, row.actor_unit,
                                  "evaluation recorded by", row.occurred_at, skipped=p.get("skipped", False)))
            people += [_person(None, s.get("name"), s.get("role"), p.get("community_code"), "evaluator",
                               row.occurred_at) for s in signed_by]
        elif row.type == "township_reviewed":
            people.append(_person(row.actor_user, row.actor_name, row.actor_role, row.actor_unit,
                                  f"township {p.get('kind', 'review')} recorded by", row.occurred_at))
            people += [_person(None, s.get("name"), s.get("department"), p.get("township_code"),
                               "committee member", row.occurred_at, opinion=s.get("opinion")) for s in signed_by]
        elif (row.type == "command_recorded" and p.get("method") == "sign_joint_review"
              and p.get("outcome") == "ok"):
            people.append(_person(row.actor_user, row.actor_name, row.actor_role, row.actor_unit,
                                  "joint review signer", row.occurred_at))
        elif row.type == "case_approved":
            people.append(_person(row.actor_user, row.actor_name, row.actor_role, row.actor_unit,
                                  "approver (deciding signature)", row.occurred_at))
    return {"case_id": case_id, "application_id": approval.application_id, "household_id": approval.household_id,
            "wrongly_included": bool(findings), "findings": findings, "people": people}


def file_readers(conn, household_id: str, limit: int = LIMIT) -> list[dict]:
    """Who read the household's file (intake.file_viewed)."""
    return _rows(conn, sa.and_(T.c.household_id == household_id, T.c.type == "file_viewed",
                               T.c.source == "intake"), limit)
