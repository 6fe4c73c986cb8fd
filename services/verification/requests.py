"""Sending verification requests (核对请求) and reminders to the partner bureaus.

A round asks every configured bureau about one household: one request per
bureau, carrying only the members' names and ID numbers (and the consent's
dates), on that bureau's own channel (``verification.to.<bureau>``,
shared/bus.py) through the outbox. Beside each, a partner-safe
``request_sent`` event records who asked, when, which household, which
bureau — for the audit; no ID number is in it.
"""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timezone

import sqlalchemy as sa

from contracts.verification_bureau import BUREAU_KINDS, PROTOCOL_VERSION
from services.verification import rules
from services.verification.models import BureauRequest, PendingApplication, RequestMember, VerificationRound
from shared.db import UnitOfWork
from shared.events import Event
from shared.policy.base import Policy
from shared.workdays import WorkdayCalendar

SOURCE = "verification"


def now() -> datetime:
    return datetime.now(timezone.utc)


def bureau_routing(bureau: str) -> str:
    return f"verification.to.{bureau}"


def request_message(request: BureauRequest, round_: VerificationRound, members: list[dict], kind: str,
                    reminder: int = 0) -> tuple[str, str]:
    """(message_id, body) of a request or reminder (contracts/verification_bureau.py)."""
    message_id = str(uuid.uuid4())
    body = {
        "type": kind, "version": PROTOCOL_VERSION, "message_id": message_id, "request_id": request.id,
        "bureau": request.bureau, "sent_at": now().isoformat(), "answer_by": request.answer_by.isoformat(),
        "purpose": round_.purpose, "reminder": reminder,
        "consent": {"signed_on": round_.consent_signed_on.isoformat(),
                    "valid_until": round_.consent_valid_until.isoformat()},
        "kinds": list(BUREAU_KINDS.get(request.bureau, ())),
        "members": [{"member_ref": m["member_ref"], "name": m["name"], "resident_id": m["resident_id"]}
                    for m in members],
    }
    return message_id, json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def round_subject(round_: VerificationRound, **more) -> dict:
    return {"household_id": round_.household_id, "round_id": round_.id, "application_id": round_.application_id,
            "case_id": round_.case_id, **more}


@dataclass
class PlannedRound:
    """A round with its requests and their members, not yet in the session (:func:`start_rounds`)."""

    round_: VerificationRound
    requests: list[BureauRequest]
    members: list[RequestMember]
    asked: list[dict]


def plan_round(asked_by: str, household: dict, purpose: str, policy: Policy, answer_by, bureaus: tuple[str, ...],
               today: date, application_id: str | None = None, case_id: str | None = None) -> PlannedRound:
    """One round: the authorization checked (Conflict naming the rule), then a request per bureau
    (``answer_by``: the calendar's count from today, the same for a whole batch)."""
    members = [dict(m, birth_date=date.fromisoformat(m["birth_date"]),
                    deceased_on=date.fromisoformat(m["deceased_on"]) if m["deceased_on"] else None)
               for m in household["members"]]
    auth = household["authorization"]
    if auth is not None:
        auth = dict(auth, signed_on=date.fromisoformat(auth["signed_on"]))
    valid_until = rules.authorization_is_on_file(auth, members, today, policy)
    living = [m for m in members if m["deceased_on"] is None]
    round_ = VerificationRound(
        id=str(uuid.uuid4()), household_id=household["household_id"], application_id=application_id,
        case_id=case_id, purpose=purpose, community_code=household["community_code"],
        area_type=household["area_type"], household_size=len(living), policy=policy.name, requested_by=asked_by,
        requested_at=now(), consent_document_id=auth["document_id"], consent_signed_on=auth["signed_on"],
        consent_valid_until=valid_until,
        declared=json.dumps({"incomes": household["incomes"], "assets": household["assets"]}), status="open",
        revision=0)
    asked = [{"member_ref": m["member_id"], "name": m["name"], "resident_id": m["resident_id"]} for m in living]
    requests, request_members = [], []
    for bureau in bureaus:
        request = BureauRequest(id=str(uuid.uuid4()), round_id=round_.id, bureau=bureau,
                                community_code=round_.community_code, sent_on=today, answer_by=answer_by.day,
                                answer_by_provisional=answer_by.provisional, status="open", members=len(asked),
                                members_answered=0, reminders=0)
        requests.append(request)
        request_members += [RequestMember(request_id=request.id, member_ref=m["member_ref"], name=m["name"],
                                          resident_id=m["resident_id"], answered=False) for m in asked]
    return PlannedRound(round_, requests, request_members, asked)


def start_rounds(uow: UnitOfWork, planned: list[PlannedRound]) -> list[VerificationRound]:
    """Set-based: the rounds, then their requests, then the members, each one multi-row INSERT
    (no relationships: the flushes keep the foreign keys' order); a message per request on its
    bureau's channel and a ``request_sent`` beside it, all in the caller's transaction."""
    session = uow.session
    for rows in ([p.round_ for p in planned], [r for p in planned for r in p.requests],
                 [m for p in planned for m in p.members]):
        session.add_all(rows)
        session.flush()
    sent = []
    for p in planned:
        round_ = p.round_
        for request in p.requests:
            message_id, body = request_message(request, round_, p.asked, "verification_request")
            uow.send_direct(bureau_routing(request.bureau), "verification_request", body, message_id)
            sent.append((round_subject(round_, request_id=request.id), {
                "community_code": round_.community_code, "bureau": request.bureau, "purpose": round_.purpose,
                "member_count": len(p.asked), "answer_by": request.answer_by.isoformat(), "reminder": 0}))
    uow.emit_many(SOURCE, "request_sent", sent)      # one per request: no schema round trip each
    applications = [p.round_.application_id for p in planned if p.round_.application_id]
    if applications:
        session.execute(sa.delete(PendingApplication).where(PendingApplication.application_id.in_(applications))
                        .execution_options(synchronize_session=False))
    return [p.round_ for p in planned]


def start_round(uow: UnitOfWork, asked_by: str, household: dict, purpose: str, policy: Policy,
                calendar: WorkdayCalendar, bureaus: tuple[str, ...], answer_workdays: int, today: date,
                application_id: str | None = None, case_id: str | None = None) -> VerificationRound:
    """One household's round now (an application, an officer's request)."""
    planned = plan_round(asked_by, household, purpose, policy, calendar.count(today, answer_workdays), bureaus,
                         today, application_id=application_id, case_id=case_id)
    return start_rounds(uow, [planned])[0]


def open_round_of(uow: UnitOfWork, application_id: str) -> VerificationRound | None:
    return uow.session.scalar(sa.select(VerificationRound).where(VerificationRound.application_id == application_id)
                              .order_by(VerificationRound.requested_at.desc()).limit(1))


def send_reminders(uow: UnitOfWork, today: date, limit: int = 1000) -> int:
    """Re-send each overdue request (its unanswered members) — once a day at most."""
    due = list(uow.session.scalars(
        sa.select(BureauRequest).where(BureauRequest.status == "open", BureauRequest.answer_by < today,
                                       sa.or_(BureauRequest.last_reminded_on.is_(None),
                                              BureauRequest.last_reminded_on < today))
        .order_by(BureauRequest.answer_by).limit(limit).with_for_update()))
    rounds = {r.id: r for r in uow.session.scalars(
        sa.select(VerificationRound).where(VerificationRound.id.in_({r.round_id for r in due})))} if due else {}
    unanswered: dict = {}
    if due:
        for member in uow.session.scalars(sa.select(RequestMember).where(
                RequestMember.request_id.in_([r.id for r in due]), RequestMember.answered.is_(False))):
            unanswered.setdefault(member.request_id, []).append(member)
    for request in due:
        round_, missing = rounds[request.round_id], unanswered.get(request.id, [])
        request.reminders += 1
        request.last_reminded_on = today
        asked = [{"member_ref": m.member_ref, "name": m.name, "resident_id": m.resident_id} for m in missing]
        message_id, body = request_message(request, round_, asked, "verification_reminder", request.reminders)
        uow.send_direct(bureau_routing(request.bureau), "verification_reminder", body, message_id)
        uow.emit(Event(SOURCE, "request_sent", round_subject(round_, request_id=request.id), {
            "community_code": request.community_code, "bureau": request.bureau, "purpose": round_.purpose,
            "member_count": len(asked), "answer_by": request.answer_by, "reminder": request.reminders}))
    return len(due)
