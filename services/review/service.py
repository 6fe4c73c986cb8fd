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
from nameko.dependency_providers import Config
from sqlalchemy.exc import IntegrityError

from contracts import identity as _identity_events  # noqa: F401 - the staff registry's source
from contracts import intake as _intake_events  # noqa: F401 - the contract we consume
from contracts import notify as _notify_events  # noqa: F401
from contracts import payments as _payments_events  # noqa: F401
from contracts import review as events  # noqa: F401 - registers review's event contract
from contracts import verification as _verification_events  # noqa: F401 - the 核对 reports it gates on
from contracts.rpc import review as schemas
from services.review import appeals, calendar, dynamic, handlers, month_end, rules
from services.review.models import WORKDAY_SCHEDULE, Base, Case, Staff
from shared.broker import verification_bureaus
from shared.db import AlreadyConsumed, Database
from shared import deadletter  # the module, not the class: `nameko run` would take a top-level class for a service
from shared.events import parse
from shared.identity import Identity, authorize
from shared.inbox import bus_health, consume_event
from shared.reference import Reference
from shared.staff import staff_within
from shared.remote import ServiceRpc
from shared.rpc import load, rpc
from shared.timer import config_timer
from shared.workday_schedule import event_payload as schedule_payload
from shared.workday_schedule import refresh as refresh_schedule

MIGRATIONS = Path(__file__).parent / "migrations"
FILE_OUT = schemas.ReviewFileOut()
PUBLIC_STATUS_OUT = schemas.PublicStatusOut()
FILES_OUT = schemas.ReviewFileOut(many=True)
CASE_OUT = schemas.CaseOut()
SHEET_OUT = schemas.JointReviewSheetOut()
CASES_OUT = schemas.CaseOut(many=True)
PROPOSAL_OUT = schemas.ProposalOut()
CAMPAIGN_OUT = schemas.CampaignOut()
CAMPAIGNS_OUT = schemas.CampaignOut(many=True)
INSPECTIONS_OUT = schemas.InspectionOut(many=True)
APPEAL_OUT = schemas.AppealOut()
APPEAL_ITEM_OUT = schemas.AppealItemOut()
PUBLIC_APPEAL_OUT = schemas.PublicAppealOut()


class ReviewService(deadletter.DeadLetterReplay):
    name = "review"

    db = Database("review", Base.metadata, MIGRATIONS)
    caller = Identity()
    ref = Reference()
    remote = ServiceRpc()
    settings = Config()

    @property
    def bureaus_asked(self) -> bool:
        """The deployment asks partner bureaus (核对, config VERIFICATION_BUREAUS)."""
        return bool(verification_bureaus(self.settings))

    # --- facts from other services (inbox: each event has one effect) ----------
    @consume_event("intake", "application_submitted")
    def on_application_submitted(self, body):
        self.db.consume(body, "on_application_submitted", handlers.application_submitted, self.ref)

    @consume_event("intake", "investigation_recorded")
    def on_investigation_recorded(self, body):
        self.db.consume(body, "on_investigation_recorded", handlers.investigation_recorded, self.ref,
                        self.ref.today())

    @consume_event("notify", "notice_closed")
    def on_notice_closed(self, body):
        self.db.consume(body, "on_notice_closed", handlers.notice_closed, self.ref, self.ref.today())

    @consume_event("notify", "notice_posted")
    def on_notice_posted(self, body):
        self.db.consume(body, "on_notice_posted", handlers.notice_posted, self.ref)

    @consume_event("notify", "objection_filed")
    def on_objection_filed(self, body):
        self.db.consume(body, "on_objection_filed", handlers.objection_filed, self.ref)

    @consume_event("payments", "standard_changed")
    def on_standard_changed(self, body):
        self.db.consume(body, "on_standard_changed", handlers.standard_changed, self.ref)

    @consume_event("payments", "benefit_changed")
    def on_benefit_changed(self, body):
        self.db.consume(body, "on_benefit_changed", handlers.benefit_changed, self.ref)

    @consume_event("identity", "*")
    def on_identity_event(self, body):
        """The staff registry follows identity's accounts and roles (shared/staff.py)."""
        self.db.consume(body, "on_identity_event", handlers.identity_event)

    @consume_event("verification", "report_updated")
    def on_verification_report_updated(self, body):
        """核对: the steps the policy makes wait for the bureaus' answers, and approval for the discrepancies."""
        self.db.consume(body, "on_verification_report_updated", handlers.verification_report_updated)

    @consume_event("verification", "change_reported")
    def on_verification_change(self, body):
        """A bureau's change (or a monitoring discrepancy) for an active case: a proposal, once."""
        self.db.consume(body, "on_verification_change", dynamic.verification_change, self.ref, self.ref.today())

    @rpc
    def list_staff(self, unit_code):
        """The staff registry as review has it (who may sign, approve)."""
        data = load(schemas.UnitAsOfSchema, {"unit_code": unit_code})
        with self.db.read() as uow:
            authorize(self.caller.actor, handlers.READERS, data["unit_code"])
            return staff_within(uow.session, Staff, data["unit_code"])

    # --- operators ----------------------------------------------------------------
    @rpc
    def ping(self):
        self.db.answers()
        return {"service": self.name, **bus_health(self.name), "policy": self.ref.policy.name}

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
            f = handlers.file_for(uow, actor, (), data["application_id"])
            deciding = handlers.missing_roles(uow, f) == {data["role"]}
        if deciding:
            latest = self.remote.intake.get_application(f.application_id)["investigations"][-1]
            facts = handlers.HouseholdFacts(Decimal(latest["verified_monthly_income"]),
                                            self.remote.intake.get_household(f.household_id)["members"])
        with self.db() as uow:
            f, case = handlers.sign_joint_review(uow, actor, data, self.ref, self.ref.today(), facts,
                                                 self.bureaus_asked)
            out = FILE_OUT.dump(f)
            out["case"] = CASE_OUT.dump(case) if case else None
            return out

    @rpc
    def joint_review_sheet(self, application_id):
        """会审单: who has signed which seat, and — while the joint review is
        open — the benefit with its calculation (shape: schemas.JointReviewSheetOut)."""
        actor = self.caller.actor
        with self.db.read() as uow:
            f = handlers.file_for(uow, actor, handlers.READERS, str(application_id)[:36])
            open_review = (f.status == "in_review" and f.step is not None
                           and handlers.policy_of(f).step(f.step).kind == "joint_review")
        facts = None
        if open_review:
            latest = self.remote.intake.get_application(f.application_id)["investigations"][-1]
            facts = handlers.HouseholdFacts(Decimal(latest["verified_monthly_income"]),
                                            self.remote.intake.get_household(f.household_id)["members"])
        with self.db.read() as uow:
            return SHEET_OUT.dump(handlers.joint_review_sheet(uow, actor, f.application_id, self.ref,
                                                              self.ref.today(), facts, self.bureaus_asked))

    @rpc
    def reject_application(self, data):
        data = load(schemas.RejectSchema, data)
        with self.db() as uow:
            return FILE_OUT.dump(handlers.reject_application(uow, self.caller.actor, data, self.ref,
                                                             self.ref.today()))

    @rpc
    def get_application(self, application_id):
        with self.db.read() as uow:
            f = handlers.file_for(uow, self.caller.actor, handlers.READERS, application_id)
            out = FILE_OUT.dump(f)
            case = uow.session.scalar(sa.select(Case).where(Case.application_id == f.application_id))
            out["case"] = CASE_OUT.dump(case) if case else None
            return out

    @rpc
    def public_status(self, application_id):
        """The step and its dates of one application (the public status page,
        through the gateway's own identity, once intake matched the applicant)."""
        with self.db.read() as uow:
            return PUBLIC_STATUS_OUT.dump(handlers.public_status(uow, self.caller.actor, application_id))

    @rpc
    def overdue(self, unit_code, as_of=None):
        """The statutory clock: applications past a step's or the process's deadline."""
        data = load(schemas.OverdueSchema, {"unit_code": unit_code, **({"as_of": as_of} if as_of else {})})
        with self.db.read() as uow:
            files = handlers.overdue(uow, self.caller.actor, data["unit_code"], data["as_of"] or self.ref.today())
            return FILES_OUT.dump(files)

    @rpc
    def worklist(self, unit_code=None, as_of=None, limit=200):
        """待办: the open applications within the unit (default: the caller's)
        that wait for a level the caller works at, with their deadlines,
        overdue and provisional marks: the late ones first, then by the nearest
        deadline (the answer's shape: schemas.WorkItemOut)."""
        given = {"unit_code": unit_code, "as_of": as_of, "limit": limit}
        data = load(schemas.WorklistSchema, {k: v for k, v in given.items() if v is not None})
        actor = self.caller.actor
        with self.db.read() as uow:
            items = handlers.worklist(uow, actor, data["unit_code"] or actor.unit, data["as_of"] or self.ref.today(),
                                      data["limit"])
            return [dict(FILE_OUT.dump(i.file), level=i.level, overdue=i.overdue) for i in items]

    @rpc
    def files(self, unit_code=None, status=None, limit=200):
        """The applications in the review within the unit (default: the caller's), of one
        status if given, the latest accepted first."""
        given = {"unit_code": unit_code, "status": status, "limit": limit}
        data = load(schemas.FilesSchema, {k: v for k, v in given.items() if v is not None})
        actor = self.caller.actor
        with self.db.read() as uow:
            return FILES_OUT.dump(handlers.files_within(uow, actor, data["unit_code"] or actor.unit, data["status"],
                                                        data["limit"]))

    # --- dynamic management (动态管理, the exit 出口) ----------------------------------
    @consume_event("intake", "checkin_recorded")
    def on_checkin_recorded(self, body):
        self.db.consume(body, "on_checkin_recorded", dynamic.checkin_recorded)

    @consume_event("intake", "labour_recorded")
    def on_labour_recorded(self, body):
        self.db.consume(body, "on_labour_recorded", dynamic.labour_recorded)

    @consume_event("intake", "member_died")
    def on_member_died(self, body):
        self.db.consume(body, "on_member_died", dynamic.member_died, self.ref, self.ref.today())

    @consume_event("intake", "household_updated")
    def on_household_updated(self, body):
        """收入变化: intake's facts (incomes are not in events) fetched outside any write transaction."""
        event = parse(body)
        consumer = "review.on_household_updated"
        with self.db.read() as uow:
            if uow.consumed(event, consumer):
                raise AlreadyConsumed(event["event_id"])
            case = dynamic.active_case_of(uow, event["subject"]["household_id"])
        facts = None
        if case is not None:
            facts = dynamic.HouseholdFacts.from_household(
                self.remote.intake.get_household(event["subject"]["household_id"]))
        with self.db() as uow:
            uow.consume(event, consumer)
            case = dynamic.active_case_of(uow, event["subject"]["household_id"])
            if case is not None and facts is not None:
                dynamic.household_facts(uow, case, facts, self.ref, self.ref.today())
            uow.commit()

    @config_timer("MONTH_END_CHECK_SECONDS", default=3600)
    def month_end_when_due(self):
        """The month-end rules and re-review reminders, from stored facts: a run
        judges the month that has ended by today; a second run adds nothing."""
        today = self.ref.today()
        self._month_end(today, today, None)   # the service's own run: every case

    def _month_end(self, as_of, today, unit: str | None) -> dict:
        """One run; when another run (the timer, an operator, another replica)
        committed the same proposals first, the unique constraints refuse
        ours and a fresh run finds nothing left to add."""
        for attempt in range(3):
            try:
                with self.db() as uow:
                    return month_end.run(uow, self.ref.policy, as_of, today, unit)
            except IntegrityError:
                if attempt == 2:
                    raise

    @rpc
    def run_month_end(self, as_of=None):
        """Run the month-end rules now (operators, tests): the month ended by
        ``as_of``, for the cases of the caller's unit only; a day after today
        only on a test or demo clock."""
        data = load(schemas.MonthEndSchema, {"as_of": as_of} if as_of is not None else {})
        actor = authorize(self.caller.actor, dynamic.MONTH_END_RUNNERS)
        today = self.ref.today()
        as_of = rules.month_end_not_after_today(data["as_of"] or today, today, self.ref.clock.moves_at_will)
        return self._month_end(as_of, today, actor.unit)

    @rpc
    def get_case(self, case_id):
        with self.db.read() as uow:
            case = dynamic.case_for(uow, self.caller.actor, dynamic.CASE_READERS, case_id)
            out = CASE_OUT.dump(case)
            proposals = uow.session.scalars(sa.select(dynamic.CaseProposal)
                                            .where(dynamic.CaseProposal.case_id == case.id)
                                            .order_by(dynamic.CaseProposal.id))
            out["proposals"] = [dict(PROPOSAL_OUT.dump(p), **dict(zip(("approval_order", "waiting_for"),
                                                                      dynamic.approval_order(case, p))))
                                for p in proposals]
            return out

    @rpc
    def change_category(self, data):
        """分类管理: a case's category and so its re-review cadence, with the reason."""
        data = load(schemas.CategoryChangeSchema, data)
        with self.db() as uow:
            return CASE_OUT.dump(dynamic.change_category(uow, self.caller.actor, data, self.ref, self.ref.today()))

    @rpc
    def record_rereview(self, data):
        """复核: judged on the household's facts as intake has them now."""
        data = load(schemas.RereviewSchema, data)
        with self.db.read() as uow:
            case = dynamic.case_for(uow, self.caller.actor, dynamic.INSPECTORS, data["case_id"])
        facts = dynamic.HouseholdFacts.from_household(self.remote.intake.get_household(case.household_id))
        with self.db() as uow:
            case, proposal = dynamic.record_rereview(uow, self.caller.actor, data, facts, self.ref, self.ref.today())
            return {"case": CASE_OUT.dump(case), "proposal": PROPOSAL_OUT.dump(proposal) if proposal else None}

    @rpc
    def overdue_rereviews(self, unit_code, as_of=None):
        """Active cases past their re-review date within a unit (per township and community)."""
        data = load(schemas.UnitAsOfSchema, {"unit_code": unit_code, **({"as_of": as_of} if as_of else {})})
        with self.db.read() as uow:
            return CASES_OUT.dump(dynamic.overdue_rereviews(uow, self.caller.actor, data["unit_code"],
                                                            data["as_of"] or self.ref.today()))

    @rpc
    def propose(self, data):
        """An officer's own proposal to adjust or cancel (rule ``manual``)."""
        data = load(schemas.ProposeSchema, data)
        with self.db() as uow:
            return PROPOSAL_OUT.dump(dynamic.propose_manually(uow, self.caller.actor, data, self.ref,
                                                              self.ref.today()))

    @rpc
    def list_proposals(self, unit_code, status=None):
        data = load(schemas.ListProposalsSchema, {"unit_code": unit_code, "status": status})
        with self.db.read() as uow:
            rows = dynamic.list_proposals(uow, self.caller.actor, data["unit_code"], data["status"])
            return [dict(PROPOSAL_OUT.dump(p), household_id=c.household_id, community_code=c.community_code,
                         township_code=c.township_code, monthly_benefit=str(c.monthly_benefit),
                         case_status=c.status, **dict(zip(("approval_order", "waiting_for"),
                                                          dynamic.approval_order(c, p))))
                    for p, c in rows]

    @rpc
    def approve_proposal(self, data):
        """One approval in the policy's order; the last applies it (case_adjusted / case_cancelled)."""
        data = load(schemas.ApproveSchema, data)
        with self.db() as uow:
            return PROPOSAL_OUT.dump(dynamic.approve_proposal(uow, self.caller.actor, data, self.ref,
                                                              self.ref.today()))

    @rpc
    def reject_proposal(self, data):
        data = load(schemas.RejectProposalSchema, data)
        with self.db() as uow:
            return PROPOSAL_OUT.dump(dynamic.reject_proposal(uow, self.caller.actor, data, self.ref,
                                                             self.ref.today()))

    @rpc
    def create_campaign(self, data):
        """入户清查: every active case of the unit assigned to the teams, round-robin."""
        data = load(schemas.CampaignSchema, data)
        with self.db() as uow:
            campaign = dynamic.create_campaign(uow, self.caller.actor, data, self.ref, self.ref.today())
            return CAMPAIGN_OUT.dump(campaign)

    @rpc
    def record_inspection(self, data):
        data = load(schemas.InspectionSchema, data)
        with self.db() as uow:
            inspection, proposal = dynamic.record_inspection(uow, self.caller.actor, data, self.ref,
                                                             self.ref.today())
            return {"campaign_id": inspection.campaign_id, "case_id": inspection.case_id,
                    "team": inspection.team, "result": inspection.result,
                    "proposal": PROPOSAL_OUT.dump(proposal) if proposal else None}

    @rpc
    def list_campaigns(self, unit_code=None):
        """入户清查: the campaigns organised for the unit (default: the caller's), above it or within it."""
        data = load(schemas.CampaignsSchema, {"unit_code": unit_code})
        with self.db.read() as uow:
            return CAMPAIGNS_OUT.dump(dynamic.list_campaigns(uow, self.caller.actor, data["unit_code"]))

    @rpc
    def campaign_inspections(self, campaign_id, community_code=None, limit=200):
        """A campaign's cases within the caller's jurisdiction, each with its team and result."""
        data = load(schemas.CampaignInspectionsSchema, {"campaign_id": campaign_id, "community_code": community_code,
                                                        "limit": limit})
        with self.db.read() as uow:
            return INSPECTIONS_OUT.dump(dynamic.campaign_inspections(uow, self.caller.actor, data))

    @rpc
    def campaign_progress(self, campaign_id):
        with self.db.read() as uow:
            return dynamic.campaign_progress(uow, self.caller.actor, campaign_id)

    # --- appeals (复核) ---------------------------------------------------------------
    @rpc
    def file_appeal(self, data):
        """复核申请 for the household (its officer): within the policy's period of the decision."""
        data = load(schemas.AppealFileSchema, data)
        with self.db() as uow:
            return APPEAL_OUT.dump(appeals.file_appeal(uow, self.caller.actor, data, self.ref, self.ref.today()))

    @rpc
    def file_public_appeal(self, data):
        """An online appeal (the public page, as the gateway, once intake matched the applicant)."""
        data = load(schemas.PublicAppealSchema, data)
        with self.db() as uow:
            return PUBLIC_APPEAL_OUT.dump(appeals.file_appeal(uow, self.caller.actor, data, self.ref,
                                                              self.ref.today(), via="online"))

    @rpc
    def decide_appeal(self, data):
        """复核决定: upheld (reopens, restores, reverts) or dismissed, with the reason, by someone
        who took no part in the decision under appeal."""
        data = load(schemas.AppealDecideSchema, data)
        with self.db() as uow:
            return APPEAL_OUT.dump(appeals.decide_appeal(uow, self.caller.actor, data, self.ref, self.ref.today()))

    @rpc
    def list_appeals(self, unit_code=None, status=None, as_of=None, limit=200):
        """The appeals within the unit (default: the caller's), the earliest due first, with
        the overdue mark (shape: schemas.AppealItemOut)."""
        given = {"unit_code": unit_code, "status": status, "as_of": as_of, "limit": limit}
        data = load(schemas.ListAppealsSchema, {k: v for k, v in given.items() if v is not None})
        actor = self.caller.actor
        as_of = data["as_of"] or self.ref.today()
        with self.db.read() as uow:
            rows = appeals.list_appeals(uow, actor, data["unit_code"] or actor.unit, data["status"], data["limit"])
            return [dict(APPEAL_ITEM_OUT.dump(a), overdue=appeals.rules.appeal_overdue(a.status, a.due_on, as_of))
                    for a in rows]

    @rpc
    def get_appeal(self, appeal_id):
        with self.db.read() as uow:
            return APPEAL_OUT.dump(appeals.appeal_for(uow, self.caller.actor, appeals.READERS, appeal_id))

    # --- the working-day calendar's official schedules (review owns them) ----------
    @rpc
    def import_calendar(self, rows):
        """Load the official schedule(s) (放假安排, 调休) in ``rows`` ([{line, date,
        workday, note}]): validated (ValidationFailed names the line, nothing
        changed), stored, then every service uses it (calendar_schedule_loaded)."""
        with self.db() as uow:
            answer, years = calendar.import_calendar(uow, self.caller.actor, rows, self.ref)
        self.ref.calendar.load_years(years)
        return answer

    @rpc
    def calendar_year(self, year):
        """A year's days off and make-up working days, each with its source; confirmed or provisional."""
        return calendar.calendar_year(self.caller.actor, year, self.ref)

    @rpc
    def calendar_schedules(self):
        """Every loaded official schedule, as the event carries it ({years, days}):
        for a CLI or a service that counts working days on its own."""
        authorize(self.caller.actor, calendar.VIEWERS)
        return events.CalendarScheduleLoaded().dump(schedule_payload(self.ref.calendar.schedule))

    @config_timer("CALENDAR_REFRESH_SECONDS", default=300)
    def refresh_calendar(self):
        """The stored official schedules into this process's calendar: on start,
        and for a replica that did not take the import itself."""
        with self.db.read() as uow:
            refresh_schedule(self.ref.calendar, uow.session, WORKDAY_SCHEDULE)
