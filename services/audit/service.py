"""The audit service: the lossless, tamper-evident record (审计) of every
event and every command, responsibility traces, statistics and scorecards.

Run alone: ``nameko run --config config.yml services.audit.service``.
It ingests the ``dibao.audit`` queue in batches into the hash chain
(:mod:`services.audit.ingest`) and signs its head on a schedule, publishing
each checkpoint to the partners (:mod:`services.audit.checkpoints`); its RPC methods answer auditors, directors
and (statistics only) partner bureaus, and record each query.
"""
from __future__ import annotations

from pathlib import Path

from nameko.dependency_providers import Config

from contracts import audit as events  # noqa: F401 - registers every service's contract
from contracts.rpc import audit as schemas
from services.audit import handlers
from services.audit.ingest import AuditIngest
from services.audit.models import Base
from shared.db import Database
from shared import deadletter  # the module, not the class: `nameko run` would take a top-level class for a service
from shared.identity import Identity
from shared.inbox import bus_health
from shared.rpc import load, rpc

MIGRATIONS = Path(__file__).parent / "migrations"


class AuditService(deadletter.DeadLetterReplay):
    name = "audit"

    db = Database("audit", Base.metadata, MIGRATIONS)
    caller = Identity()
    ingest = AuditIngest()
    config = Config()

    def _answer(self, query, *args):
        """Read the answer, then record the query (a short write of its own)."""
        with self.db.read() as uow:
            answer, asked = query(uow.session.connection(), self.caller.actor, *args)
        with self.db() as uow:
            handlers.record_query(uow, asked)
        return answer

    @rpc
    def ping(self):
        self.db.answers()
        checkpoints = self.ingest.checkpoints if self.ingest else None
        return {"service": self.name, **bus_health(self.name), "recorded": self.ingest.recorded if self.ingest else 0,
                "checkpoints": checkpoints.health() if checkpoints else {"enabled": False}}

    @rpc
    def trace(self, data):
        """Who (name, role, unit), what, when, outcome — for a household,
        application, case, operator (period) or unit."""
        return self._answer(handlers.run_trace, load(schemas.TraceSchema, data))

    @rpc
    def who_let_them_in(self, case_id):
        """Everyone who took part in the entry of a case (wrongly included?)."""
        data = load(schemas.CaseSchema, {"case_id": case_id})
        return self._answer(handlers.who_let_them_in, str(data["case_id"]))

    @rpc
    def file_readers(self, household_id):
        """Who read the household's file (intake.file_viewed)."""
        data = load(schemas.HouseholdSchema, {"household_id": household_id})
        return self._answer(handlers.file_readers, str(data["household_id"]))

    @rpc
    def statistics(self, date):
        """The seed's headline figures for any date (no personal data)."""
        data = load(schemas.StatisticsSchema, {"date": date})
        return self._answer(handlers.statistics, data["date"], self.config)

    @rpc
    def scorecard(self, date, unit_code=None):
        """考评: per township and community, overdue steps, missed re-reviews, check-in gaps, wrongly included."""
        given = {"date": date, **({"unit_code": unit_code} if unit_code else {})}
        data = load(schemas.StatisticsSchema, given)
        return self._answer(handlers.scorecard, data["date"], data["unit_code"])
