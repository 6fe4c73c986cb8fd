"""The notify service: public notices (张榜公示/公布) with their board page and
printable sheet, objections from the public (群众异议), and messages to
households on each decision through channel plugins.

Run alone: ``nameko run --config config.yml services.notify.service``.
Each method loads its input with a schema, calls a handler, dumps the answer.
"""
from __future__ import annotations

import base64
import logging
from pathlib import Path

import sqlalchemy as sa

from contracts import notify as events  # noqa: F401 - registers notify's event contract
from contracts.rpc import notify as schemas
from services.notify import handlers, rendering
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
from shared.problems import OperationalProblem, classify
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
        self._changed(notice.unit_code, notice_id=notice.id)

    @config_timer("NOTICE_CHECK_SECONDS", default=60)
    def close_notices_when_due(self):
        """The posting period's clock, from stored dates: also closes what fell
        due while notify was down, as soon as it is back. Then the files that
        could not be written before (a missing font, a full disk) are tried again."""
        with self.db() as uow:
            closed = handlers.close_due_notices(uow, None, self.ref.today(), self.ref)
        self._closed(closed)
        with self.db.read() as uow:
            retry = handlers.boards_to_retry(uow)   # boards whose page or sheet could not be written
        self._rerender(*retry)
        try:
            with self.db.read() as uow:
                sheets = handlers.retry_notice_sheets(uow, self.board, self.ref)
            with self.db() as uow:
                for sheet in sheets:
                    handlers.note_problems(uow, ("notice_pdf",), sheet["notice_id"], sheet["problems"])
        except Exception:  # noqa: BLE001 - the next tick tries again
            log.exception("the notice sheets to retry were not written")

    @rpc
    def close_due_notices(self, as_of=None):
        """Close the notices whose period ended before ``as_of`` (default today)."""
        data = load(schemas.CloseDueSchema, {"as_of": as_of} if as_of is not None else {})
        with self.db() as uow:
            closed = handlers.close_due_notices(uow, self.caller.actor, data["as_of"] or self.ref.today(),
                                                self.ref)
        self._closed(closed)
        return [{"notice_id": c["id"], "unit_code": c["unit_code"], "objections": c["objections"]}
                for c in closed]

    @rpc
    def render_board(self, unit_code):
        """The unit's whole board: its index page and the printable sheet of
        all it shows; a file that cannot be written is null and listed in
        ``problems`` (retried on the timer)."""
        data = load(schemas.UnitSchema, {"unit_code": unit_code})
        return self._render(self.caller.actor, data["unit_code"])

    def _render(self, actor, unit_code) -> dict:
        with self.board.lock(unit_code):
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

    def _closed(self, closed: list[dict]) -> None:
        by_unit: dict[str, list[str]] = {}
        for c in closed:
            by_unit.setdefault(c["unit_code"], []).append(c["id"])
        for unit_code, ids in sorted(by_unit.items()):
            self._changed(unit_code, closed=ids)

    def _changed(self, unit_code: str, notice_id: str | None = None, closed=()) -> None:
        """A board changed: the notice's own sheet and the index (per notice
        plus an index: rendering.py). Boards are derived from the notices: a
        file that fails (a missing font) is logged, listed by ``ping`` and
        written again by the timer; the notice itself stands."""
        try:
            with self.board.lock(unit_code):
                with self.db.read() as uow:
                    result = handlers.board_changed(uow, unit_code, self.board, self.ref, notice_id, closed)
            with self.db() as uow:
                handlers.note_problems(uow, ("board_html",), unit_code,
                                       [p for p in result["problems"] if p["kind"] == "board_html"])
                for sheet in result.get("sheets", ()):
                    handlers.note_problems(uow, ("notice_pdf",), sheet,
                                           [p for p in result["problems"] if p["kind"] == "notice_pdf"])
        except Exception:  # noqa: BLE001 - see above
            log.exception("the board of %s was not updated", unit_code)

    def _rerender(self, *unit_codes):
        for unit_code in sorted(set(unit_codes)):
            try:
                self._render(None, unit_code)
            except Exception:  # noqa: BLE001 - retried on the next tick
                log.exception("the board of %s was not rendered", unit_code)

    # --- the public boards: the gateway's own identity reads them (no login) -----------

    @rpc
    def public_board(self, unit_code):
        """张榜公示 as the public page shows it: the notices up on the board
        now, each row the cells its printed sheet shows (the ID masked)."""
        data = load(schemas.UnitSchema, {"unit_code": unit_code})
        with self.db.read() as uow:
            return handlers.public_board(uow, self.caller.actor, data["unit_code"], self.board, self.ref)

    @rpc
    def public_sheet(self, unit_code, notice_id=None):
        """The printable sheet (PDF, base64) of a board or of one notice up on
        it: the file notify wrote (a board's is made now if the index changed
        since); a sheet that cannot be made is an OperationalProblem."""
        data = load(schemas.PublicSheetSchema, {"unit_code": unit_code, "notice_id": notice_id})
        unit_code, notice_id = data["unit_code"], data["notice_id"]
        with self.db.read() as uow:
            path = handlers.public_sheet_path(uow, self.caller.actor, unit_code, notice_id, self.board, self.ref)
        content = rendering.read_sheet(path)
        if content is None:
            if notice_id is not None:
                self._changed(unit_code, notice_id=notice_id)
            else:
                self._render(None, unit_code)
            content = rendering.read_sheet(path)
        if content is None:
            raise OperationalProblem("the printable sheet cannot be made now", {
                "problem": "sheet_unavailable", "fix": "`dibao health notify` names what is missing"})
        name = f"{unit_code}-{notice_id}.pdf" if notice_id else f"{unit_code}.pdf"
        return {"filename": name, "content_base64": base64.b64encode(content).decode("ascii")}

    # --- objections ------------------------------------------------------------

    @rpc
    def file_objection(self, data):
        data = load(schemas.ObjectionSchema, data)
        with self.db() as uow:
            return OBJECTION_OUT.dump(handlers.file_objection(uow, self.caller.actor, data, self.ref))

    @rpc
    def file_public_objection(self, data):
        """群众异议 given online on a public board (the gateway's own identity
        passes it on): recorded and routed as one given at the office."""
        data = load(schemas.PublicObjectionSchema, data)
        with self.db() as uow:
            objection = handlers.file_public_objection(uow, self.caller.actor, data, self.ref)
            return {"objection_id": objection.id, "filed_on": objection.filed_on.isoformat()}

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

    @consume_event("review", "appeal_decided")
    def on_appeal_decided(self, body):
        """复核: upheld or dismissed, with the reason, to the household that asked."""
        self._tell_household(body)

    @consume_event("review", "case_restored")
    def on_case_restored(self, body):
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
