"""The review service: the three-level entry review (进口) and the cases it
creates.

Run alone: ``nameko run --config config.yml services.review.service``.
It consumes intake's ``application_submitted`` and ``investigation_recorded``
and notify's ``notice_closed`` and ``objection_filed``; operators record the
evaluation, the township review and the joint review over RPC.
"""
from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa

from services.intake import events as _intake_events  # noqa: F401 - the contract we consume
from services.notify import events as _notify_events  # noqa: F401
from services.review import events  # noqa: F401 - registers review's event contract
from services.review import handlers, schemas
from services.review.models import Base, Case
from shared.db import Database
from shared.events import parse
from shared.identity import Identity, authorize
from shared.inbox import consume_event
from shared.reference import Reference
from shared.remote import ServiceRpc
from shared.rpc import load, rpc

MIGRATIONS = Path(__file__).parent / "migrations"
FILE_OUT = schemas.ReviewFileOut()
FILES_OUT = schemas.ReviewFileOut(many=True)
CASE_OUT = schemas.CaseOut()


class ReviewService:
    name = "review"

    db = Database("review", Base.metadata, MIGRATIONS)
    caller = Identity()
    ref = Reference()
    remote = ServiceRpc()

    # --- facts from other services (inbox: each event has one effect) ----------
    def _consume(self, body, consumer: str, handler, *args):
        event = parse(body)
        with self.db() as uow:
            uow.consume(event, f"review.{consumer}")
            handler(uow, event, self.ref, *args)
            uow.commit()

    @consume_event("intake", "application_submitted")
    def on_application_submitted(self, body):
        self._consume(body, "on_application_submitted", handlers.application_submitted)

    @consume_event("intake", "investigation_recorded")
    def on_investigation_recorded(self, body):
        self._consume(body, "on_investigation_recorded", handlers.investigation_recorded, self.ref.today())

    @consume_event("notify", "notice_closed")
    def on_notice_closed(self, body):
        self._consume(body, "on_notice_closed", handlers.notice_closed, self.ref.today())

    @consume_event("notify", "notice_posted")
    def on_notice_posted(self, body):
        self._consume(body, "on_notice_posted", handlers.notice_posted)

    @consume_event("notify", "objection_filed")
    def on_objection_filed(self, body):
        self._consume(body, "on_objection_filed", handlers.objection_filed)

    # --- operators ----------------------------------------------------------------
    @rpc
    def ping(self):
        with self.db.read() as uow:
            uow.session.execute(sa.text("SELECT 1"))
        return {"service": self.name, "policy": self.ref.policy.name}

    @rpc
    def record_evaluation(self, data):
        """社区民主评议: the meeting, its signed participants, votes and decision."""
        data = load(schemas.EvaluationSchema, data)
        with self.db() as uow:
            return FILE_OUT.dump(handlers.record_evaluation(uow, self.caller.actor, data, self.ref, self.ref.today()))

    @rpc
    def skip_evaluation(self, data):
        data = load(schemas.SkipSchema, data)
        with self.db() as uow:
            return FILE_OUT.dump(handlers.skip_evaluation(uow, self.caller.actor, data, self.ref, self.ref.today()))

    @rpc
    def record_township_review(self, data):
        """乡镇街评审委员会 or initial opinion, per policy."""
        data = load(schemas.TownshipReviewSchema, data)
        with self.db() as uow:
            f = handlers.record_township_review(uow, self.caller.actor, data, self.ref, self.ref.today())
            return FILE_OUT.dump(f)

    @rpc
    def sign_joint_review(self, data):
        """会审: one of three signatures; the third fixes the benefit and approves."""
        data = load(schemas.JointReviewSchema, data)
        actor = self.caller.actor
        facts = None
        with self.db.read() as uow:   # intake's facts only for the signature that decides
            f = handlers.load_file(uow, data["application_id"])
            deciding = handlers.missing_roles(uow, f) == {data["role"]}
        if deciding:
            latest = self.remote.intake.get_application(f.application_id)["investigations"][-1]
            facts = handlers.HouseholdFacts(Decimal(latest["verified_monthly_income"]),
                                            self.remote.intake.get_household(f.household_id)["members"])
        with self.db() as uow:
            f, case = handlers.sign_joint_review(uow, actor, data, self.ref, self.ref.today(), facts)
            out = FILE_OUT.dump(f)
            out["case"] = CASE_OUT.dump(case) if case else None
            return out

    @rpc
    def reject_application(self, data):
        data = load(schemas.RejectSchema, data)
        with self.db() as uow:
            return FILE_OUT.dump(handlers.reject_application(uow, self.caller.actor, data, self.ref,
                                                             self.ref.today()))

    @rpc
    def get_application(self, application_id):
        with self.db.read() as uow:
            f = handlers.load_file(uow, application_id)
            authorize(self.caller.actor, handlers.READERS, f.community_code)
            out = FILE_OUT.dump(f)
            case = uow.session.scalar(sa.select(Case).where(Case.application_id == f.application_id))
            out["case"] = CASE_OUT.dump(case) if case else None
            return out

    @rpc
    def overdue(self, unit_code, as_of=None):
        """The statutory clock: applications past a step's or the process's deadline."""
        data = load(schemas.OverdueSchema, {"unit_code": unit_code, **({"as_of": as_of} if as_of else {})})
        with self.db.read() as uow:
            files = handlers.overdue(uow, self.caller.actor, data["unit_code"], data["as_of"] or self.ref.today())
            return FILES_OUT.dump(files)
