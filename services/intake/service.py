"""The intake service: households, applications, home investigations, the
household file (一户一档), monthly check-ins and public-welfare labour.

Run alone: ``nameko run --config config.yml services.intake.service``.
Each method loads its input with a schema, calls a handler, dumps the answer.
"""
from __future__ import annotations

import base64
from pathlib import Path

import sqlalchemy as sa

from contracts import intake as events  # noqa: F401 - registers intake's event contract
from contracts.rpc import intake as schemas
from services.intake import calendar, handlers, sheets
from services.intake.scans import ScanStore
from contracts import identity as _identity_events  # noqa: F401 - the staff registry's source
from contracts import review as _review_events  # noqa: F401 - the review events intake consumes
from contracts import verification as _verification_events  # noqa: F401 - the 核对 reports it files
from services.intake.models import WORKDAY_SCHEDULE, Application, Base
from shared.db import Database
from shared import deadletter  # the module, not the class: `nameko run` would take a top-level class for a service
from shared.inbox import bus_health, consume_event
from shared.jurisdiction import code_within
from shared.errors import EXPECTED_ERRORS, ValidationFailed
from shared.identity import Identity, authorize
from shared.reference import Reference
from shared.rpc import load, rpc
from shared.timer import config_timer
from shared.workday_schedule import refresh as refresh_schedule

MIGRATIONS = Path(__file__).parent / "migrations"

# answers: schema instances built once
APPLICATION_OUT = schemas.ApplicationOut()
APPLICATION_OUTS = schemas.ApplicationOut(many=True)
DOCUMENT_OUT = schemas.DocumentOut()
HOUSEHOLD_OUT = schemas.HouseholdOut()
INVESTIGATION_OUT = schemas.InvestigationOut()
INVESTIGATION_OUTS = schemas.InvestigationOut(many=True)
SCAN_OUT = schemas.ScanOut()
SCAN_OUTS = schemas.ScanOut(many=True)


class IntakeService(deadletter.DeadLetterReplay):
    name = "intake"

    db = Database("intake", Base.metadata, MIGRATIONS)
    caller = Identity()
    ref = Reference()
    scans = ScanStore()

    @rpc
    def ping(self):
        """Health check: the service answers and its database is reachable."""
        self.db.answers()
        return {"service": self.name, **bus_health(self.name), "policy": self.ref.policy.name}

    @consume_event("identity", "*")
    def on_identity_event(self, body):
        """The staff registry follows identity's accounts and roles (shared/staff.py)."""
        self.db.consume(body, "on_identity_event", handlers.identity_event)

    @rpc
    def list_staff(self, unit_code):
        """The staff registry as intake has it: who works in the unit, in which role, since when."""
        data = load(schemas.UnitSchema, {"unit_code": unit_code})
        with self.db.read() as uow:
            return handlers.list_staff(uow, self.caller.actor, data["unit_code"])

    @rpc
    def register_household(self, data):
        data = load(schemas.HouseholdSchema, data)
        with self.db() as uow:
            household = handlers.register_household(uow, self.caller.actor, data, self.ref)
            return {"household_id": household.id, "member_ids": [m.id for m in household.members]}

    @rpc
    def import_households(self, rows):
        """Bulk registration: each row alone; a bad row is reported, never half-written."""
        if not isinstance(rows, list) or len(rows) > 1000:
            raise ValidationFailed.field("rows", "a list of at most 1000 households")
        actor = self.caller.actor
        results = []
        with self.db() as uow:   # one transaction, a savepoint per household
            for n, row in enumerate(rows):
                try:
                    data = load(schemas.HouseholdSchema, row)
                    with uow.savepoint():
                        household = handlers.register_household(uow, actor, data, self.ref)
                    results.append({"row": n, "household_id": household.id})
                except EXPECTED_ERRORS as exc:
                    results.append({"row": n, "error": exc.to_dict()})
            uow.commit()
        return results

    @rpc
    def update_household(self, household_id, data):
        data = load(schemas.HouseholdSchema, data)
        with self.db() as uow:
            household = handlers.update_household(uow, self.caller.actor, household_id, data, self.ref)
            return {"household_id": household.id, "version": household.version,
                    "member_ids": [m.id for m in household.members]}

    @rpc
    def get_household(self, household_id):
        """The household's whole file; the read is recorded (file_viewed).
        Each document lists its scans (扫描件: what they are, not their bytes)."""
        with self.db() as uow:
            household = handlers.view_household(uow, self.caller.actor, household_id)
            out = HOUSEHOLD_OUT.dump(household)
            scans = handlers.scans_of(uow, household.id)
            for document in out["documents"]:
                document["scans"] = SCAN_OUTS.dump(scans.get(document["id"], []))
            return out

    @rpc
    def find_household(self, data):
        """Look a household up by a member's resident ID number (blind index)."""
        data = load(schemas.LookupSchema, data)
        with self.db() as uow:
            household = handlers.find_by_resident_id(uow, self.caller.actor, data["resident_id"])
            return HOUSEHOLD_OUT.dump(household)

    @rpc
    def submit_application(self, data):
        data = load(schemas.ApplicationSchema, data)
        with self.db() as uow:
            application = handlers.submit_application(uow, self.caller.actor, data, self.ref)
            return APPLICATION_OUT.dump(application)

    @rpc
    def get_application(self, application_id):
        with self.db.read() as uow:
            application = handlers.load_application(uow, self.caller.actor, handlers.READERS, application_id,
                                                    with_investigations=True)
            out = APPLICATION_OUT.dump(application)
            out["investigations"] = INVESTIGATION_OUTS.dump(application.investigations)
            return out

    @rpc
    def public_application_check(self, data):
        """Does the applicant's ID end so? Only the application's number and
        acceptance date answer (the public status page, through the gateway's
        own identity); a wrong pair answers as an unknown number."""
        data = load(schemas.ApplicantCheckSchema, data)
        with self.db.read() as uow:
            application = handlers.applicant_matches(uow, self.caller.actor, data)
            return {"application_id": application.id, "accepted_on": application.accepted_on.isoformat()}

    @rpc
    def list_applications(self, community_code=None, status=None, limit=200):
        given = {"community_code": community_code, "status": status, "limit": limit}
        data = load(schemas.ListApplicationsSchema, {k: v for k, v in given.items() if v is not None})
        actor = self.caller.actor
        scope = data["community_code"] or actor.unit
        with self.db.read() as uow:
            authorize(actor, handlers.READERS, scope)
            stmt = (sa.select(Application)
                    .where(code_within(Application.community_code, scope))
                    .order_by(Application.submitted_at).limit(data["limit"]))
            if data["status"]:
                stmt = stmt.where(Application.status == data["status"])
            return APPLICATION_OUTS.dump(uow.session.scalars(stmt))

    @rpc
    def record_investigation(self, data):
        data = load(schemas.InvestigationSchema, data)
        with self.db() as uow:
            investigation = handlers.record_investigation(uow, self.caller.actor, data, self.ref)
            return INVESTIGATION_OUT.dump(investigation)

    @rpc
    def register_document(self, data):
        data = load(schemas.DocumentSchema, data)
        with self.db() as uow:
            return DOCUMENT_OUT.dump(handlers.register_document(uow, self.caller.actor, data, self.ref))

    @rpc
    def attach_scan(self, data):
        """扫描件: a filed document's scan (PDF, JPEG or PNG up to SCAN_MAX_BYTES,
        base64), sealed with the data key under SCAN_DIR (services/intake/scans.py)."""
        data = load(schemas.ScanSchema, data)
        with self.db() as uow:
            return SCAN_OUT.dump(handlers.attach_scan(uow, self.caller.actor, data, self.scans, self.ref.today()))

    @rpc
    def get_scan(self, scan_id):
        """A scan's bytes (base64) for a reader of its household; the read is recorded (file_viewed)."""
        with self.db() as uow:
            scan, content = handlers.read_scan(uow, self.caller.actor, str(scan_id)[:36], self.scans)
            return dict(SCAN_OUT.dump(scan), content=base64.b64encode(content).decode("ascii"))

    @rpc
    def file_report(self, household_id):
        """一户一档 completeness: required, present and missing documents."""
        with self.db.read() as uow:
            return handlers.file_report(uow, self.caller.actor, household_id)

    @rpc
    def verification_subjects(self, household_ids):
        """核对: members' names and ID numbers, declarations, authorization — for the verification service only."""
        data = load(schemas.SubjectsSchema, {"household_ids": household_ids})
        with self.db.read() as uow:
            return handlers.verification_subjects(uow, self.caller.actor, data["household_ids"])

    @consume_event("verification", "report_filed")
    def on_report_filed(self, body):
        """The verification report (核对报告) is filed in the household file."""
        self.db.consume(body, "on_report_filed", handlers.report_filed)

    @rpc
    def record_checkin(self, data):
        data = load(schemas.CheckInSchema, data)
        with self.db() as uow:
            checkin = handlers.record_checkin(uow, self.caller.actor, data, self.ref)
            return {"household_id": checkin.household_id, "month": checkin.month}

    @rpc
    def community_sheet(self, unit_code, month, limit=500):
        """月度签到 / 公益劳动: the households with a case paid in the month, their
        check-in and their members' labour that month (shape: sheets.community_sheet)."""
        data = load(schemas.SheetSchema, {"unit_code": unit_code, "month": month, "limit": limit})
        with self.db.read() as uow:
            return sheets.community_sheet(uow, self.caller.actor, data)

    @rpc
    def record_labour(self, data):
        data = load(schemas.LabourSchema, data)
        with self.db() as uow:
            record = handlers.record_labour(uow, self.caller.actor, data, self.ref)
            return {"household_id": record.household_id, "member_id": record.member_id,
                    "labour_date": record.labour_date.isoformat()}

    @rpc
    def record_death(self, data):
        """A member's death, recorded as a fact (the review brings the re-review forward)."""
        data = load(schemas.DeathSchema, data)
        with self.db() as uow:
            member = handlers.record_death(uow, self.caller.actor, data, self.ref)
            return {"household_id": member.household_id, "member_id": member.id,
                    "died_on": member.deceased_on.isoformat()}

    # --- what intake knows of cases (check-ins are refused once one is cancelled) ----
    @consume_event("review", "case_approved")
    def on_case_approved(self, body):
        self.db.consume(body, "on_case_approved", handlers.case_approved)

    @consume_event("review", "case_cancelled")
    def on_case_cancelled(self, body):
        self.db.consume(body, "on_case_cancelled", handlers.case_cancelled)

    # --- the working-day calendar's official schedules (review owns them) ----------
    @consume_event("review", "calendar_schedule_loaded")
    def on_calendar_schedule_loaded(self, body):
        """Stored here and used at once, no restart (shared/workday_schedule.py)."""
        self.db.consume(body, "on_calendar_schedule_loaded", calendar.schedule_loaded, self.ref)
        self.refresh_calendar()

    @config_timer("CALENDAR_REFRESH_SECONDS", default=300)
    def refresh_calendar(self):
        """The stored official schedules into this process's calendar: on start,
        and for a replica that did not take the event itself."""
        with self.db.read() as uow:
            refresh_schedule(self.ref.calendar, uow.session, WORKDAY_SCHEDULE)
