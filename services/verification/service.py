"""The verification service (核对): asks the partner bureaus about a household's
income and assets, takes their answers, keeps the report, and watches the
active cases (动态监测). Why a service of its own: docs/verification.md.

Run alone: ``nameko run --config config.yml services.verification.service``.
Each method loads its input with a schema, calls a handler, dumps the answer.
"""
from __future__ import annotations

import logging
from datetime import date
from pathlib import Path

import sqlalchemy as sa
from nameko.dependency_providers import Config
from sqlalchemy.exc import IntegrityError

from contracts import intake as _intake_events  # noqa: F401 - the facts that start a round
from contracts import review as _review_events  # noqa: F401 - the cases it monitors
from contracts import verification as events
from services.verification import answers, monitoring, report, requests
from services.verification.channel import bureau_channel, park
from services.verification.models import WORKDAY_SCHEDULE, Base, PendingApplication
from shared import deadletter  # the module: `nameko run` would take a top-level class for a service
from shared.broker import bureau_of_user, expected_bureau_publisher, verification_bureaus
from shared.db import AlreadyConsumed, Database
from shared.errors import Conflict, NotFound
from shared.events import parse
from shared.identity import Identity, authorize
from shared.inbox import bus_health, consume_event, raise_alarm
from shared.jurisdiction import within
from shared.policy import load_policy
from shared.reference import Reference
from shared.remote import ServiceRpc
from shared.rpc import load, rpc
from shared.timer import config_timer
from shared.workday_schedule import refresh as refresh_schedule

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).parent / "migrations"
REPORT_OUT = events.ReportOut()
DISCREPANCY_OUT = events.DiscrepancyOut()
OVERDUE_OUTS = events.OverdueOut(many=True)


class VerificationService(deadletter.DeadLetterReplay):
    name = "verification"

    db = Database("verification", Base.metadata, MIGRATIONS)
    caller = Identity()
    ref = Reference()
    remote = ServiceRpc()

    settings = Config()

    # --- settings -------------------------------------------------------------------
    @property
    def bureaus(self) -> tuple[str, ...]:
        return verification_bureaus(self.settings)

    def answer_workdays(self) -> int:
        return int(self.settings.get("VERIFICATION_ANSWER_WORKDAYS", 5))

    @rpc
    def ping(self):
        self.db.answers()
        return {"service": self.name, **bus_health(self.name), "policy": self.ref.policy.name,
                "bureaus": list(self.bureaus)}

    # --- requests -------------------------------------------------------------------
    def _subjects(self, household_ids: list[str]) -> dict[str, dict]:
        return {h["household_id"]: h for h in self.remote.intake.verification_subjects(household_ids)}

    def _start(self, asked_by: str, household_id: str, application_id: str | None, policy_name: str,
               pending_on_conflict: bool):
        household = self._subjects([household_id]).get(household_id)
        if household is None:
            raise NotFound.of("household", household_id, "household_id")
        with self.db() as uow:
            try:
                round_ = requests.start_round(uow, asked_by, household, "application", load_policy(policy_name),
                                              self.ref.calendar, self.bureaus, self.answer_workdays(),
                                              self.ref.today(), application_id=application_id)
                uow.session.flush()
                report.refresh(uow, round_, self.ref, self.ref.today())
            except Conflict:
                if not pending_on_conflict or not application_id:
                    raise
                uow.rollback()
                if uow.session.get(PendingApplication, application_id) is None:
                    uow.session.add(PendingApplication(application_id=application_id, household_id=household_id,
                                                       since=self.ref.today()))
                round_ = None
            uow.commit()
            return round_

    @rpc
    def request_verification(self, data):
        """Ask every configured bureau about a household (Conflict without its authorization 授权书)."""
        data = load(events.RequestVerificationIn, data)
        actor = authorize(self.caller.actor, report.OFFICERS)
        household = self._subjects([data["household_id"]]).get(data["household_id"])
        missing = NotFound.of("household", data["household_id"], "household_id")
        within(actor, household["community_code"] if household else None, missing)
        round_ = self._start(actor.user, data["household_id"], data["application_id"], self.ref.policy.name, False)
        with self.db.read() as uow:
            return REPORT_OUT.dump(report.report_of(uow, report.round_for(uow, actor, report.READERS, None,
                                                                          round_.id), self.ref.today()))

    def _application_fact(self, body, starts_on: str):
        event = parse(body)
        consumer = f"verification.on_{starts_on}"
        policy = load_policy(event["payload"].get("policy") or self.ref.policy.name)
        with self.db.read() as uow:
            if uow.consumed(event, consumer):
                raise AlreadyConsumed(event["event_id"])
        if policy.verification_starts_on == starts_on:
            application_id = event["subject"]["application_id"]
            with self.db.read() as uow:
                started = requests.open_round_of(uow, application_id) is not None
            if not started:
                asked_by = (event.get("actor") or {}).get("user") or "service:verification"
                self._start(asked_by, event["subject"]["household_id"], application_id, policy.name, True)
        with self.db() as uow:
            uow.consume(event, consumer)
            uow.commit()

    @consume_event("intake", "application_submitted")
    def on_application_submitted(self, body):
        """national2021: the requests go out when the application is accepted."""
        self._application_fact(body, "application_submitted")

    @consume_event("intake", "investigation_recorded")
    def on_investigation_recorded(self, body):
        """jiangxia: the requests go out with the home investigation."""
        self._application_fact(body, "investigation_recorded")

    @consume_event("intake", "document_registered")
    def on_document_registered(self, body):
        """An authorization (授权书) arrived for an application waiting for it: ask now."""
        event = parse(body)
        if event["payload"].get("kind") == "authorization":
            with self.db.read() as uow:
                waiting = list(uow.session.scalars(sa.select(PendingApplication).where(
                    PendingApplication.household_id == event["subject"]["household_id"])))
            for pending in waiting:
                asked_by = (event.get("actor") or {}).get("user") or "service:verification"
                self._start(asked_by, pending.household_id, pending.application_id, self.ref.policy.name, True)

    # --- the bureaus' answers (their own channel) ----------------------------------------
    @bureau_channel()
    def on_bureau_message(self, items):
        """Answers and change reports, a batch at a time (``(raw, user_id, message_id)`` each): each
        applied whole, or refused whole (parked, the bureau told why); one transaction per batch."""
        config = self.settings
        taken = [(raw, answers.Publisher(user_id, bureau_of_user(config, user_id),
                                         lambda bureau: expected_bureau_publisher(config, bureau), self.bureaus),
                  message_id) for raw, user_id, message_id in items]
        try:
            with self.db() as uow:
                outcomes = answers.take_batch(uow, taken, self.ref, self.ref.today())
        except IntegrityError:     # another worker took one of them at the same time: one by one
            outcomes = []
            for raw, publisher, message_id in taken:
                with self.db() as uow:
                    outcomes.append(answers.take(uow, raw, publisher, message_id, self.ref, self.ref.today()))
        for (raw, publisher, message_id), outcome in zip(taken, outcomes):
            if outcome.refusal is not None:
                if outcome.refusal.reason == "not_authenticated":
                    raise_alarm(self.name, message_id, outcome.refusal.detail)
                park(config, raw, publisher.user_id, outcome.refusal.reason, outcome.refusal.detail)
        return {"accepted": sum(o.accepted for o in outcomes), "duplicate": sum(o.duplicate for o in outcomes)}

    # --- the report (核对报告) ----------------------------------------------------------------
    @rpc
    def report(self, data):
        """The report of a household's latest round (or of one round): declared beside found."""
        data = load(events.ReportIn, data)
        with self.db.read() as uow:
            round_ = report.round_for(uow, self.caller.actor, report.READERS, data["household_id"], data["round_id"])
            return REPORT_OUT.dump(report.report_of(uow, round_, self.ref.today()))

    @rpc
    def resolve_discrepancy(self, data):
        """How a discrepancy was resolved (explained / reinvestigated / grounds_for_rejection), with the reason."""
        data = load(events.ResolveIn, data)
        with self.db() as uow:
            return DISCREPANCY_OUT.dump(report.resolve(uow, self.caller.actor, data, self.ref, self.ref.today()))

    # --- deadlines, the worklist, statistics ----------------------------------------------
    @rpc
    def overdue(self, unit_code, as_of=None):
        """Requests past their answer deadline (working days), within the unit."""
        data = load(events.UnitAsOfIn, {"unit_code": unit_code, **({"as_of": as_of} if as_of else {})})
        with self.db.read() as uow:
            return OVERDUE_OUTS.dump(monitoring.overdue(uow, self.caller.actor, data["unit_code"],
                                                        data["as_of"] or self.ref.today()))

    @rpc
    def stats(self, unit_code, as_of=None):
        """Per bureau: requests, answered, open, overdue, reminders, member answers, refused messages."""
        data = load(events.UnitAsOfIn, {"unit_code": unit_code, **({"as_of": as_of} if as_of else {})})
        with self.db.read() as uow:
            return monitoring.stats(uow, self.caller.actor, data["unit_code"], data["as_of"] or self.ref.today())

    @rpc
    def send_reminders(self):
        """Re-send every overdue request now (at most once a day each)."""
        authorize(self.caller.actor, monitoring.RUNNERS)
        return {"reminded": self._remind()}

    def _remind(self) -> int:
        with self.db() as uow:
            sent = requests.send_reminders(uow, self.ref.today())
            uow.commit()
        return sent

    @config_timer("VERIFICATION_CHECK_SECONDS", default=3600)
    def check_when_due(self):
        """Reminders for overdue requests, and the monitoring rounds that are due."""
        self._remind()
        self._monitor(self.ref.today(), None)

    # --- dynamic monitoring (低收入人口动态监测) ------------------------------------------------
    @consume_event("review", "case_approved")
    def on_case_approved(self, body):
        self.db.consume(body, "on_case_approved", monitoring.case_approved)

    @consume_event("review", "case_cancelled")
    def on_case_cancelled(self, body):
        self.db.consume(body, "on_case_cancelled", monitoring.case_cancelled)

    @consume_event("review", "case_restored")
    def on_case_restored(self, body):
        """复核: a cancelled case restored is monitored again."""
        self.db.consume(body, "on_case_restored", monitoring.case_restored, self.ref.policy.name)

    @rpc
    def run_monitoring(self, data=None):
        """Re-verify the active cases due by ``as_of`` (default today), of the caller's unit, in batches."""
        data = load(events.MonitoringIn, data or {})
        actor = authorize(self.caller.actor, monitoring.RUNNERS)
        return self._monitor(data["as_of"] or self.ref.today(), actor.unit)

    def _monitor(self, as_of: date, unit: str | None) -> dict:
        batch = int(self.settings.get("VERIFICATION_BATCH", 500))
        totals = {"rounds": 0, "requests": 0, "without_consent": 0}
        skipped: set[str] = set()
        while True:
            with self.db.read() as uow:
                cases = [c for c in monitoring.due_cases(uow, as_of, unit, batch + len(skipped))
                         if c.case_id not in skipped][:batch]
                uow.session.expunge_all()
            if not cases:
                return totals
            households = self._subjects(sorted({c.household_id for c in cases}))
            with self.db() as uow:
                done = monitoring.start_rounds(uow, cases, households, self.ref, self.bureaus,
                                               self.answer_workdays(), as_of, self.ref.today())
            for key in totals:
                totals[key] += done[key]
            skipped |= set(done["skipped"])     # no valid authorization: stay due, not asked again in this run
            if len(cases) < batch:
                return totals

    # --- the working-day calendar ------------------------------------------------------------
    @consume_event("review", "calendar_schedule_loaded")
    def on_calendar_schedule_loaded(self, body):
        from services.verification.calendar import schedule_loaded

        self.db.consume(body, "on_calendar_schedule_loaded", schedule_loaded)
        self.refresh_calendar()

    @config_timer("CALENDAR_REFRESH_SECONDS", default=300)
    def refresh_calendar(self):
        with self.db.read() as uow:
            refresh_schedule(self.ref.calendar, uow.session, WORKDAY_SCHEDULE)
