"""Reconciliation: the bank's return file (回盘文件) against the run's lines.

Paid lines are settled, failed lines kept with the bank's reason and
carried forward into the next run of their area.
"""
from __future__ import annotations

import base64
import binascii
import csv
from datetime import date
from decimal import Decimal

import sqlalchemy as sa

from contracts.payments import SOURCE
from services.payments import rules
from services.payments.handlers import RUN_CHECKERS, RUN_MAKERS, P, now, raw, yuan
from services.payments.models import PaymentRun
from services.payments.runs import run_for
from shared.bank_formats import ReturnFileError, load_format
from shared.db import UnitOfWork
from shared.errors import Conflict, ValidationFailed
from shared.identity import Actor


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
    run = run_for(uow, actor, RUN_MAKERS + RUN_CHECKERS, data["run_id"], for_update=True)
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
