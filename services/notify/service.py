"""The notify service: public notices (张榜公示/公布) with their board page and
printable sheet, objections from the public (群众异议), and messages to
households on each decision through channel plugins.

Run alone: ``nameko run --config config.yml services.notify.service``.
Each method loads its input with a schema, calls a handler, dumps the answer.
"""
from __future__ import annotations

import logging
from pathlib import Path

import sqlalchemy as sa

from contracts import notify as events  # noqa: F401 - registers notify's event contract
from services.notify import handlers, rendering, schemas
from services.notify.channels import Channels, DeliveryFailed
from services.notify.models import Base
from services.notify.rendering import NoticeBoard
from contracts import review as review_events  # noqa: F401 - the events notify consumes
from shared.db import AlreadyConsumed, Database
from shared import deadletter  # the module, not the class: `nameko run` would take a top-level class for a service
from shared.events import load_payload, parse
from shared.identity import Identity
from shared.inbox import bus_health, consume_event
from shared.reference import Reference
from shared.remote import ServiceRpc
from shared.problems import classify
from shared.rpc import load, rpc
from shared.timer import config_timer

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"

NOTICE_OUT = schemas.NoticeOut()
NOTICE_OUTS = schemas.NoticeOut(many=True)
OBJECTION_OUT = schemas.ObjectionOut()
OBJECTION_OUTS = schemas.ObjectionOut(many=True)
REMINDER_OUTS = schemas.ReminderOut(many=True)


class NotifyService(deadletter.DeadLetterReplay):
    name = "notify"

    db = Database("notify", Base.metadata, MIGRATIONS)
    caller = Identity()
    ref = Reference()
    intake = ServiceRpc()
    board = NoticeBoard()
    channels = Channels()

    @rpc
    def ping(self):
        """Health check: the service answers and its database is reachable."""
        with self.db.read() as uow:
            uow.session.execute(sa.text("SELECT 1"))
            problems = handlers.pending_problems(uow)
        return {"service": self.name, **bus_health(self.name), "channels": ",".join(c.name for c in self.channels),
                "problems": problems}

    # --- notices ---------------------------------------------------------------

    @consume_event("review", "notice_requested")
    def on_notice_requested(self, body):
        event = parse(body)
        data = load_payload(event)
        household_id = handlers.subject_id(event, "household_id")
        with self.db.read() as uow:
            handlers.not_consumed(uow, event, handlers.NOTICE_CONSUMER)
        household = self.intake.intake.get_household(household_id)
        with self.db() as uow:
            notice = handlers.post_notice(uow, event, data, household, self.ref)
        self._rerender(notice.unit_code)

    @config_timer("NOTICE_CHECK_SECONDS", default=60)
    def close_notices_when_due(self):
        """The posting period's clock, from stored dates: also closes what fell
        due while notify was down, as soon as it is back."""
        with self.db() as uow:
            closed = handlers.close_due_notices(uow, None, self.ref.today(), self.ref)
        with self.db.read() as uow:
            retry = handlers.boards_to_retry(uow)   # boards whose page or sheet could not be written
        self._rerender(*(c["unit_code"] for c in closed), *retry)

    @rpc
    def close_due_notices(self, as_of=None):
        """Close the notices whose period ended before ``as_of`` (default today)."""
        data = load(schemas.CloseDueSchema, {"as_of": as_of} if as_of is not None else {})
        with self.db() as uow:
            closed = handlers.close_due_notices(uow, self.caller.actor, data["as_of"] or self.ref.today(),
                                                self.ref)
        self._rerender(*(c["unit_code"] for c in closed))
        return [{"notice_id": c["id"], "unit_code": c["unit_code"], "objections": c["objections"]}
                for c in closed]

    @rpc
    def render_board(self, unit_code):
        """The unit's board page and printable sheet; a file that cannot be
        written is null and listed in ``problems`` (retried on the timer)."""
        data = load(schemas.UnitSchema, {"unit_code": unit_code})
        return self._render(self.caller.actor, data["unit_code"])

    def _render(self, actor, unit_code) -> dict:
        with self.db.read() as uow:
            result = handlers.render_board(uow, actor, unit_code, self.board, self.ref)
        with self.db() as uow:
            handlers.note_problems(uow, handlers.BOARD_KINDS, result["unit_code"], result["problems"])
        return result

    @rpc
    def list_notices(self, unit_code, active_only=True):
        data = load(schemas.ListNoticesSchema, {"unit_code": unit_code, "active_only": active_only})
        with self.db.read() as uow:
            return NOTICE_OUTS.dump(handlers.list_notices(uow, self.caller.actor, data))

    @rpc
    def get_notice(self, notice_id):
        with self.db.read() as uow:
            return NOTICE_OUT.dump(handlers.view_notice(uow, self.caller.actor, notice_id))

    def _rerender(self, *unit_codes):
        """Boards are derived from the notices: a board that fails to render
        (a missing font) is logged and rendered again on the next change or
        by ``render_board``; the notice itself stands."""
        for unit_code in sorted(set(unit_codes)):
            try:
                self._render(None, unit_code)
            except Exception:  # noqa: BLE001 - see above
                log.exception("the board of %s was not rendered", unit_code)

    # --- objections ------------------------------------------------------------

    @rpc
    def file_objection(self, data):
        data = load(schemas.ObjectionSchema, data)
        with self.db() as uow:
            return OBJECTION_OUT.dump(handlers.file_objection(uow, self.caller.actor, data, self.ref))

    @rpc
    def list_objections(self, notice_id):
        with self.db.read() as uow:
            return OBJECTION_OUTS.dump(handlers.list_objections(uow, self.caller.actor, notice_id))

    # --- messages to households --------------------------------------------------

    @consume_event("review", "community_evaluated")
    def on_community_evaluated(self, body):
        self._tell_household(body)

    @consume_event("review", "township_reviewed")
    def on_township_reviewed(self, body):
        self._tell_household(body)

    @consume_event("review", "case_approved")
    def on_case_approved(self, body):
        self._tell_household(body)

    @consume_event("review", "application_rejected")
    def on_application_rejected(self, body):
        self._tell_household(body)

    @consume_event("review", "reinvestigation_required")
    def on_reinvestigation_required(self, body):
        self._tell_household(body)

    @consume_event("review", "case_adjusted")
    def on_case_adjusted(self, body):
        self._tell_household(body)

    @consume_event("review", "case_cancelled")
    def on_case_cancelled(self, body):
        self._tell_household(body)

    # --- reminders to officers ------------------------------------------------------

    @consume_event("review", "review_due")
    def on_review_due(self, body):
        """复核提醒 to the community's dibao officer."""
        event = parse(body)
        with self.db() as uow:
            handlers.review_due(uow, event, load_payload(event), self.ref)

    @rpc
    def list_reminders(self, unit_code):
        data = load(schemas.UnitSchema, {"unit_code": unit_code})
        with self.db.read() as uow:
            return REMINDER_OUTS.dump(handlers.list_reminders(uow, self.caller.actor, data["unit_code"]))

    def _tell_household(self, body):
        """One message per channel, each recorded with its own inbox entry: a
        channel that fails is retried without repeating the others."""
        event = parse(body)
        data = load_payload(event)
        household_id = handlers.subject_id(event, "household_id")
        with self.db.read() as uow:
            todo = handlers.channels_to_send(uow, event, self.channels)
        household = self.intake.intake.get_household(household_id)
        message = rendering.decision_message(event, data, household)
        failed = []
        for channel in todo:
            try:
                try:
                    status = handlers.deliver(channel, message)
                except OSError as exc:   # e.g. the file channel's disk is full: a visible problem, retried
                    problem = classify(exc)
                    if problem is None:
                        raise
                    with self.db() as uow:
                        handlers.note_problems(uow, ("message",), channel.name, [
                            {"kind": "message", "code": problem.code, "detail": problem.detail}])
                    raise
                with self.db() as uow:
                    handlers.record_message(uow, event, message, channel, status)
                with self.db() as uow:
                    handlers.note_problems(uow, ("message",), channel.name, [])
            except AlreadyConsumed:
                log.warning("%s %s went by %s twice (two deliveries at once)", event["type"], event["event_id"],
                            channel.name)
            except Exception as exc:  # noqa: BLE001 - the other channels still go; the event is retried
                log.warning("channel %s failed for %s %s: %s", channel.name, event["type"], event["event_id"], exc)
                failed.append(f"{channel.name}: {exc}")
        if failed:
            raise DeliveryFailed("; ".join(failed))
