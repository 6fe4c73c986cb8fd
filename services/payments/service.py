"""The payments service: standards, the benefit ledger, payment runs, bank
files and reconciliation — every household paid exactly once per period.

Run alone: ``nameko run --config config.yml services.payments.service``.
It consumes review's ``case_approved``, ``case_adjusted``,
``case_cancelled`` and ``case_restored`` and intake's ``checkin_recorded``; finance staff prepare,
approve, export and reconcile runs over RPC.
"""
from __future__ import annotations

from pathlib import Path


from contracts import intake as _intake_events  # noqa: F401 - the contract we consume
from contracts import payments as events  # noqa: F401 - registers payments' event contract
from contracts.rpc import payments as schemas
from services.payments import ledger, reconciliation, runs, standards
from services.payments.models import Base
from contracts import review as _review_events  # noqa: F401
from shared.config import repo_path
from shared.db import Database
from shared import deadletter  # the module, not the class: `nameko run` would take a top-level class for a service
from shared.errors import ValidationFailed
from shared.identity import Identity
from shared.inbox import bus_health, consume_event
from shared.reference import Reference
from shared.rpc import load, rpc
from shared.standards import StandardsTable

MIGRATIONS = Path(__file__).parent / "migrations"
RUN_OUT = schemas.RunOut()
RUNS_OUT = schemas.RunOut(many=True)
LINES_OUT = schemas.LineOut(many=True)
HELD_OUT = schemas.HoldBackOut(many=True)
STANDARD_OUT = schemas.StandardOut()
STANDARDS_OUT = schemas.StandardOut(many=True)
CHANGE_OUT = schemas.StandardChangeOut()
LEDGER_OUT = schemas.LedgerOut()
LEDGERS_OUT = schemas.LedgerOut(many=True)
STATEMENT_OUT = schemas.CaseStatementOut()


class PaymentsDatabase(Database):
    """The payments database; on first start it takes over the standards of
    STANDARDS_FILE (payments owns standards from then on)."""

    def setup(self):
        super().setup()
        config = self.container.config
        standards.seed_standards(self.database, StandardsTable.load(repo_path(config.get("STANDARDS_FILE"))))


class PaymentsService(deadletter.DeadLetterReplay):
    name = "payments"

    db = PaymentsDatabase("payments", Base.metadata, MIGRATIONS)
    caller = Identity()
    ref = Reference()

    # --- facts from other services (inbox: each event has one effect) ----------
    @consume_event("review", "case_approved")
    def on_case_approved(self, body):
        self.db.consume(body, "on_case_approved", ledger.case_approved)

    @consume_event("review", "case_adjusted")
    def on_case_adjusted(self, body):
        self.db.consume(body, "on_case_adjusted", ledger.case_adjusted)

    @consume_event("review", "case_cancelled")
    def on_case_cancelled(self, body):
        self.db.consume(body, "on_case_cancelled", ledger.case_cancelled)

    @consume_event("review", "case_restored")
    def on_case_restored(self, body):
        self.db.consume(body, "on_case_restored", ledger.case_restored)

    @consume_event("intake", "checkin_recorded")
    def on_checkin_recorded(self, body):
        self.db.consume(body, "on_checkin_recorded", ledger.checkin_recorded)

    # --- operators ----------------------------------------------------------------
    @rpc
    def ping(self):
        self.db.answers()
        return {"service": self.name, **bus_health(self.name), "policy": self.ref.policy.name}

    @rpc
    def set_standard(self, data):
        """低保标准: a new standard; the open-ended one recalculates every case under it (提标/降标)."""
        data = load(schemas.SetStandardSchema, data)
        with self.db() as uow:
            standard, change = standards.set_standard(uow, self.caller.actor, data, self.ref.policy)
            return {"standard": STANDARD_OUT.dump(standard), "change": CHANGE_OUT.dump(change) if change else None}

    @rpc
    def list_standards(self, query=None):
        data = load(schemas.StandardQuerySchema, query or {})
        with self.db.read() as uow:
            return STANDARDS_OUT.dump(standards.list_standards(uow, self.caller.actor, data))

    @rpc
    def standard_for(self, division_code, area_type, on):
        data = load(schemas.StandardQuerySchema, {"division_code": division_code, "area_type": area_type, "on": on})
        with self.db.read() as uow:
            standard = standards.standard_for(uow, data["division_code"], data["area_type"], data["on"])
            return STANDARD_OUT.dump(standard) if standard else None

    @rpc
    def set_payee(self, data):
        """Where a case's benefit is paid (account encrypted at rest, shown masked)."""
        data = load(schemas.SetPayeeSchema, data)
        with self.db() as uow:
            return LEDGER_OUT.dump(ledger.set_payees(uow, self.caller.actor, [data])[0])

    @rpc
    def set_payees(self, items):
        """Many accounts at once (e.g. the bank's register): all or nothing."""
        if not isinstance(items, list):
            raise ValidationFailed.field("_schema", "expected a list")
        data = load(schemas.SetPayeeSchema, items, many=True)
        with self.db() as uow:
            return {"cases": len(ledger.set_payees(uow, self.caller.actor, data))}

    @rpc
    def get_case(self, case_id):
        with self.db.read() as uow:
            return LEDGER_OUT.dump(ledger.ledger_case(uow, self.caller.actor, case_id))

    @rpc
    def case_statement(self, case_id):
        """One case by month: its benefit periods and what each run paid (masked payees)."""
        with self.db.read() as uow:
            return STATEMENT_OUT.dump(ledger.case_statement(uow, self.caller.actor, str(case_id)[:36]))

    @rpc
    def list_cases(self, query=None):
        """The ledger: cases payments pays, within the caller's unit (masked payees)."""
        data = load(schemas.ListCasesSchema, query or {})
        with self.db.read() as uow:
            return LEDGERS_OUT.dump(ledger.list_cases(uow, self.caller.actor, data))

    @rpc
    def checkins(self, months):
        data = load(schemas.MonthsSchema, {"months": months})
        with self.db.read() as uow:
            return ledger.checkins_by_month(uow, self.caller.actor, data["months"])

    @rpc
    def create_run(self, data):
        """Prepare the run for a period and an area; again (before approval) prepares the same run afresh."""
        data = load(schemas.CreateRunSchema, data)
        with self.db() as uow:
            return RUN_OUT.dump(runs.create_run(uow, self.caller.actor, data, self.ref.policy, self.ref.today()))

    @rpc
    def approve_run(self, run_id):
        data = load(schemas.RunIdSchema, {"run_id": run_id})
        with self.db() as uow:
            return RUN_OUT.dump(runs.approve_run(uow, self.caller.actor, data["run_id"]))

    @rpc
    def export_run(self, run_id, format):  # noqa: A002 - the RPC's argument name
        data = load(schemas.ExportSchema, {"run_id": run_id, "format": format})
        with self.db() as uow:
            return runs.export_run(uow, self.caller.actor, data["run_id"], data["format"])

    @rpc
    def import_return(self, data):
        """对账: the bank's return file (base64) through its format plugin."""
        data = load(schemas.ImportReturnSchema, data)
        with self.db() as uow:
            return reconciliation.import_return(uow, self.caller.actor, data)

    @rpc
    def list_runs(self, query=None):
        data = load(schemas.ListRunsSchema, query or {})
        with self.db.read() as uow:
            return RUNS_OUT.dump(runs.list_runs(uow, self.caller.actor, data))

    @rpc
    def get_run(self, run_id, limit=200):
        data = load(schemas.RunIdSchema, {"run_id": run_id})
        if isinstance(limit, bool) or not isinstance(limit, int) or not 0 <= limit <= 100_000:
            raise ValidationFailed.field("limit", "a whole number from 0 to 100000")
        with self.db.read() as uow:
            run, lines, held, by_status = runs.run_detail(uow, self.caller.actor, data["run_id"], limit)
            out = RUN_OUT.dump(run)
            out.update(lines_shown=LINES_OUT.dump(lines), held_back=HELD_OUT.dump(held), line_status=by_status)
            return out
