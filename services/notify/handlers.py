"""Notify's handlers: plain functions over a unit of work.

Each checks its rules before writing, records its events, and commits; an
event handler records the event id in the inbox (``uow.consume``) in the
same transaction as its effect. The nameko service only loads, calls and
dumps.
"""
from __future__ import annotations

import logging
from datetime import date, datetime, timezone

import sqlalchemy as sa

from services.notify import rendering, rules
from services.notify.channels import Channel, OutgoingMessage
from services.notify.models import FileProblem, Message, Notice, Objection, Reminder
from services.notify.rendering import Board, review_reminder_text
from shared.db import AlreadyConsumed, UnitOfWork
from shared.errors import NotFound, ValidationFailed
from shared.events import Event
from shared.identity import Actor, Role
from shared.identity import authorize as require
from shared.jurisdiction import get_within
from shared.masking import mask_resident_id
from shared.reference import ReferenceData

log = logging.getLogger(__name__)

SOURCE = "notify"
NOTICE_CONSUMER = "notify.post_notice"
STAFF = (Role.COMMUNITY_OFFICER, Role.TOWNSHIP_OFFICER, Role.DISTRICT_OFFICER)
READERS = STAFF + (Role.CENTRE_DIRECTOR, Role.DEPUTY_DIRECTOR, Role.AUDITOR, Role.TOWNSHIP_COMMITTEE,
                   Role.COMMUNITY_PANEL)
OBJECTION_READERS = STAFF + (Role.CENTRE_DIRECTOR, Role.DEPUTY_DIRECTOR, Role.AUDITOR)
#: who closes the notices due (the timer does, on its own); the system
#: administrator may close as of a later day (a corrected clock, the demo)
CLOSERS = (Role.DISTRICT_OFFICER, Role.SYSTEM_ADMIN)


def now() -> datetime:
    return datetime.now(timezone.utc)


def subject_id(event: dict, key: str) -> str:
    value = event["subject"].get(key)
    if not value:
        raise ValidationFailed.field(f"subject.{key}", "missing")
    return value


def not_consumed(uow: UnitOfWork, event: dict, consumer: str) -> None:
    """Stop a redelivery before any remote call (the inbox)."""
    if uow.consumed(event, consumer):
        raise AlreadyConsumed(event["event_id"])


def message_consumer(channel: Channel) -> str:
    return f"notify.message.{channel.name}"


def channels_to_send(uow: UnitOfWork, event: dict, channels: list[Channel]) -> list[Channel]:
    """The channels that have not carried this event's message yet."""
    todo = [c for c in channels if not uow.consumed(event, message_consumer(c))]
    if not todo:
        raise AlreadyConsumed(event["event_id"])
    return todo


# --- notices -------------------------------------------------------------------

def post_notice(uow: UnitOfWork, event: dict, data: dict, household: dict, ref: ReferenceData) -> Notice:
    """张榜公示: put the household on a board, masked, for the period asked."""
    uow.consume(event, NOTICE_CONSUMER)
    unit = ref.division(data["unit_code"], "unit_code")
    rules.board_covers_household(unit.code, household["community_code"])
    rules.household_size_is_positive(data["household_size"])
    posted_on = ref.today()
    closes_on = rules.posting_period(posted_on, data["days"])
    head = next(m for m in household["members"] if m["relation"] == "head")
    subject = event["subject"]
    notice = Notice(request_event_id=event["event_id"], household_id=household["id"],
                    application_id=subject.get("application_id"), case_id=subject.get("case_id"),
                    stage=data["stage"], unit_code=unit.code, community_code=household["community_code"],
                    head_name=head["name"], masked_resident_id=mask_resident_id(head["resident_id"]),
                    household_size=data["household_size"], monthly_benefit=data["monthly_benefit"],
                    blocking=data["blocking"], posted_on=posted_on, closes_on=closes_on, status="posted",
                    posted_at=now())
    uow.session.add(notice)
    uow.session.flush()
    notice.record(Event(SOURCE, "notice_posted", notice_subject(notice), {
        "stage": notice.stage, "unit_code": notice.unit_code, "posted_on": posted_on, "closes_on": closes_on}))
    uow.commit()
    return notice


def notice_subject(notice: Notice, **more) -> dict:
    return {"notice_id": notice.id, "household_id": notice.household_id,
            "application_id": notice.application_id, "case_id": notice.case_id, **more}


def notice_for(uow: UnitOfWork, actor: Actor, roles, notice_id, for_update: bool = False) -> Notice:
    """The notice if the actor may see it; an outsider gets the NotFound of an unknown id."""
    return get_within(uow, actor, roles, Notice, notice_id, "notice", "notice_id", with_for_update=for_update)


def view_notice(uow: UnitOfWork, actor: Actor, notice_id) -> Notice:
    return notice_for(uow, actor, READERS, notice_id)


def list_notices(uow: UnitOfWork, actor: Actor, data: dict) -> list[Notice]:
    """Notices about the households within a unit (on any board)."""
    require(actor, READERS, data["unit_code"])
    stmt = (sa.select(Notice).where(Notice.community_code.startswith(data["unit_code"], autoescape=True))
            .order_by(Notice.posted_on, Notice.posted_at))
    if data["active_only"]:
        stmt = stmt.where(Notice.status == "posted")
    return list(uow.session.scalars(stmt))


def close_due_notices(uow: UnitOfWork, actor: Actor | None, as_of: date, ref: ReferenceData) -> list[dict]:
    """Close every notice whose posting period ended before ``as_of``; each
    closes once, whoever else runs this at the same time (the conditional
    UPDATE takes only rows still posted). ``actor`` None: the system clock."""
    if actor is not None:
        require(actor, CLOSERS)
        rules.may_close_as_of(actor, as_of, ref.today())
    stmt = (sa.update(Notice).where(Notice.status == "posted", Notice.closes_on < as_of)
            .values(status="closed", closed_on=as_of)
            .returning(Notice.id, Notice.household_id, Notice.application_id, Notice.case_id, Notice.stage,
                       Notice.unit_code)
            .execution_options(synchronize_session=False))
    if actor is not None:   # an operator closes within their unit (an empty unit covers nothing)
        stmt = stmt.where(Notice.community_code.startswith(actor.unit, autoescape=True) if actor.unit
                          else sa.false())
    closed = [row._asdict() for row in uow.session.execute(stmt)]
    counts = dict(uow.session.execute(
        sa.select(Objection.notice_id, sa.func.count()).where(Objection.notice_id.in_([c["id"] for c in closed]))
        .group_by(Objection.notice_id)).all()) if closed else {}
    for row in closed:
        row["objections"] = counts.get(row["id"], 0)
        uow.emit(Event(SOURCE, "notice_closed", {
            "notice_id": row["id"], "household_id": row["household_id"],
            "application_id": row["application_id"], "case_id": row["case_id"]}, {
            "stage": row["stage"], "unit_code": row["unit_code"], "closed_on": as_of,
            "objections": row["objections"]}))
    uow.commit()
    return closed


def board_name(ref: ReferenceData, unit) -> str:
    """The unit as its board names it: 湖北省武汉市江夏区…社区."""
    return "".join(d.name for d in ref.divisions.ancestors(unit.code)) + unit.name


def posted_at(uow: UnitOfWork, unit_code: str) -> list[Notice]:
    """What is up on a board now, in the order it went up."""
    return list(uow.session.scalars(
        sa.select(Notice).where(Notice.unit_code == unit_code, Notice.status == "posted")
        .order_by(Notice.posted_on, Notice.posted_at)))


def render_board(uow: UnitOfWork, actor: Actor | None, unit_code: str, board: Board, ref: ReferenceData) -> dict:
    """The whole board of one unit: its index page and the sheet of all it shows now."""
    unit = ref.division(unit_code, "unit_code")
    if actor is not None:
        require(actor, READERS, unit.code)
    return board.render(unit.code, board_name(ref, unit), posted_at(uow, unit.code), ref.today())


def board_changed(uow: UnitOfWork, unit_code: str, board: Board, ref: ReferenceData,
                  notice_id: str | None = None, closed=()) -> dict:
    """After a notice went up (``notice_id``: its own sheet, once) or the
    ``closed`` ones came down (their sheets withdrawn): the index page again,
    the outdated whole-board sheet removed — per notice plus an index, never
    the whole board's PDF for each notice."""
    unit = ref.division(unit_code, "unit_code")
    notices = posted_at(uow, unit.code)
    name = board_name(ref, unit)
    result = board.index(unit.code, name, notices, ref.today())
    posted = next((n for n in notices if n.id == notice_id), None) if notice_id else None
    if posted is not None:
        sheet = board.notice_sheet(unit.code, name, posted, ref.today())
        result["problems"] += sheet["problems"]
        result["sheets"] = [posted.id]
    for closed_id in closed:
        board.withdraw(unit.code, closed_id)
    return result


def retry_notice_sheets(uow: UnitOfWork, board: Board, ref: ReferenceData) -> list[dict]:
    """Notice sheets that could not be written (kind ``notice_pdf``): written
    now if the notice is still up; a closed one's problem is simply cleared."""
    out = []
    for notice_id in list(uow.session.scalars(sa.select(FileProblem.target).where(FileProblem.kind == "notice_pdf"))):
        notice = uow.session.get(Notice, notice_id)
        if notice is None or notice.status != "posted":
            out.append({"notice_id": notice_id, "problems": []})
            continue
        unit = ref.division(notice.unit_code, "unit_code")
        out.append(board.notice_sheet(unit.code, board_name(ref, unit), notice, ref.today()))
    return out


# --- the public boards (the gateway's public door: the permissions table) --------------

#: who reads the public board: the gateway's own identity (shared/permissions.py names
#: which service: ``notify.public_board``, ``notify.public_sheet``, ``notify.file_public_objection``)
PUBLIC_DOOR = (Role.SERVICE,)


def public_board(uow: UnitOfWork, actor: Actor, unit_code: str, board: Board, ref: ReferenceData) -> dict:
    """The board as the sheets print it, for the public page: the cells of
    :func:`rendering.rows` (the masked ID, nothing else a printed notice
    does not show) and each notice's id (for its sheet and an objection)."""
    require(actor, PUBLIC_DOOR)
    unit = ref.division(unit_code, "unit_code")
    notices = posted_at(uow, unit.code)
    return {"unit_code": unit.code, "unit_name": board_name(ref, unit), "title": "最低生活保障公示",
            "intro": rendering.INTRO, "how_to_object": rendering.HOW_TO_OBJECT, "columns": list(rendering.COLUMNS),
            "today": rendering.chinese_date(ref.today()),
            "notices": [{"notice_id": n.id, "cells": list(row), "closes_on": n.closes_on.isoformat()}
                        for n, row in zip(notices, rendering.rows(notices))]}


def public_notice(uow: UnitOfWork, actor: Actor, unit_code: str, notice_id: str) -> Notice:
    """A notice up on that board now; any other id (closed, another board's,
    unknown) is the one NotFound."""
    require(actor, PUBLIC_DOOR)
    notice = uow.session.get(Notice, notice_id)
    if notice is None or notice.unit_code != unit_code or notice.status != "posted":
        raise NotFound.of("notice", notice_id, "notice_id")
    return notice


def public_sheet_path(uow: UnitOfWork, actor: Actor, unit_code: str, notice_id: str | None, board: Board,
                      ref: ReferenceData):
    """Where the sheet of the board (``notice_id`` None) or of a notice up on it is written."""
    require(actor, PUBLIC_DOOR)
    unit = ref.division(unit_code, "unit_code")
    if notice_id is None:
        return board.board_sheet_path(unit.code)
    notice = public_notice(uow, actor, unit.code, notice_id)
    return board.notice_sheet_path(notice.unit_code, notice.id)


# --- objections ------------------------------------------------------------------

def file_objection(uow: UnitOfWork, actor: Actor, data: dict, ref: ReferenceData) -> Objection:
    """群众异议, recorded by an officer; the notice row is locked so that a
    closing running at the same time counts it or refuses it."""
    notice = notice_for(uow, actor, STAFF, data["notice_id"], for_update=True)
    return record_objection(uow, notice, data, actor.user, ref)


def file_public_objection(uow: UnitOfWork, actor: Actor, data: dict, ref: ReferenceData) -> Objection:
    """群众异议 given online, on the public board of ``unit_code``: recorded
    and routed as one given at the community office — the same row, the same
    ``objection_filed`` (review sends the application back to a home
    investigation) — filed by the gateway's own identity (``service:gateway``,
    the online board) for a person it does not know. A notice not on that
    board is the one NotFound; one whose period ended takes no objection."""
    require(actor, PUBLIC_DOOR)
    notice = uow.session.get(Notice, data["notice_id"], with_for_update=True)
    if notice is None or notice.unit_code != data["unit_code"]:
        raise NotFound.of("notice", data["notice_id"], "notice_id")
    return record_objection(uow, notice, data, actor.user, ref)


def record_objection(uow: UnitOfWork, notice: Notice, data: dict, filed_by: str, ref: ReferenceData) -> Objection:
    today = ref.today()
    rules.objection_window_open(notice.status, notice.closes_on, today)
    objection = Objection(notice_id=notice.id, text=data["text"].strip(), anonymous=data["anonymous"],
                          contact_name=data["contact_name"], contact_phone=data["contact_phone"],
                          filed_on=today, filed_at=now(), filed_by=filed_by)
    uow.session.add(objection)
    uow.session.flush()
    objection.record(Event(SOURCE, "objection_filed", notice_subject(notice, objection_id=objection.id), {
        "stage": notice.stage, "unit_code": notice.unit_code, "filed_on": today,
        "anonymous": objection.anonymous}))
    uow.commit()
    return objection


def list_objections(uow: UnitOfWork, actor: Actor, notice_id) -> list[Objection]:
    notice = notice_for(uow, actor, OBJECTION_READERS, notice_id)
    return list(uow.session.scalars(
        sa.select(Objection).where(Objection.notice_id == notice.id).order_by(Objection.filed_at)))


# --- messages to households ---------------------------------------------------------

def deliver(channel: Channel, message: OutgoingMessage) -> str:
    """Send through one channel, outside any transaction (on SQLite a worker
    must not wait on the network while it holds the write lock); ``sent``, or
    ``skipped`` when the channel cannot reach this household."""
    if not channel.reaches(message):
        return "skipped"
    channel.send(message)
    return "sent"


def record_message(uow: UnitOfWork, event: dict, message: OutgoingMessage, channel: Channel, status: str) -> Message:
    """The message went out: the inbox entry and the record commit together,
    so a redelivered event does not send it again. (A crash between sending
    and this commit sends it again: at least once; the message carries its
    event id for a gateway or an operator to drop the repeat.)"""
    uow.consume(event, message_consumer(channel))
    record = Message(event_id=message.event_id, household_id=message.household_id, kind=message.kind,
                     channel=channel.name, status=status, sent_at=now())
    uow.session.add(record)
    uow.commit()
    return record


# --- reminders to officers ------------------------------------------------------------

def review_due(uow: UnitOfWork, event: dict, data: dict, ref: ReferenceData) -> Reminder:
    """复核提醒: the community officer is reminded that a re-review falls due."""
    uow.consume(event, "notify.review_due")
    reminder = Reminder(event_id=event["event_id"], kind="review_due", unit_code=data["community_code"],
                        household_id=subject_id(event, "household_id"), case_id=event["subject"].get("case_id"),
                        due_on=data["due_on"], text=review_reminder_text(data), created_on=ref.today())
    uow.session.add(reminder)
    uow.commit()
    return reminder


def list_reminders(uow: UnitOfWork, actor: Actor, unit_code: str) -> list[Reminder]:
    require(actor, READERS, unit_code)
    return list(uow.session.scalars(
        sa.select(Reminder).where(Reminder.unit_code.startswith(unit_code, autoescape=True))
        .order_by(Reminder.due_on, Reminder.id)))


# --- files notify could not write (pending problems) ------------------------------------

BOARD_KINDS = ("board_html", "board_pdf")


def note_problems(uow: UnitOfWork, kinds: tuple[str, ...], target: str, problems: list[dict]) -> None:
    """After writing ``target``'s files of ``kinds``: each problem is recorded
    (logged once, when it first appears: what to fix) or counted again; a kind
    written this time is cleared (logged as resolved)."""
    at = now()
    found = {p["kind"]: p for p in problems}
    for kind in kinds:
        row = uow.session.get(FileProblem, (kind, target))
        problem = found.get(kind)
        if problem is None:
            if row is not None:
                log.info("%s of %s written again after %d failed attempt(s): problem %s resolved", kind, target,
                         row.attempts, row.code)
                uow.session.delete(row)
        elif row is None:
            log.error("%s of %s could not be written (%s): %s — notify retries every NOTICE_CHECK_SECONDS; "
                      "`dibao health notify` lists it until then", kind, target, problem["code"], problem["detail"])
            uow.session.add(FileProblem(kind=kind, target=target, code=problem["code"], detail=problem["detail"],
                                        since=at, last_tried=at, attempts=1))
        else:
            row.code, row.detail, row.last_tried, row.attempts = problem["code"], problem["detail"], at, row.attempts + 1
    uow.commit()


def pending_problems(uow: UnitOfWork) -> list[dict]:
    return [{"kind": p.kind, "target": p.target, "code": p.code, "detail": p.detail,
             "since": p.since.isoformat(), "attempts": p.attempts}
            for p in uow.session.scalars(sa.select(FileProblem).order_by(FileProblem.since, FileProblem.kind))]


def boards_to_retry(uow: UnitOfWork) -> list[str]:
    return sorted(set(uow.session.scalars(sa.select(FileProblem.target).where(FileProblem.kind.in_(BOARD_KINDS)))))
