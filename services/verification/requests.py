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


def start_round(uow: UnitOfWork, asked_by: str, household: dict, purpose: str, policy: Policy,
                calendar: WorkdayCalendar, bureaus: tuple[str, ...], answer_workdays: int, today: date,
                application_id: str | None = None, case_id: str | None = None) -> VerificationRound:
    """One round: the authorization checked (Conflict naming the rule), then a request per bureau."""
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
    uow.session.add(round_)
    uow.session.flush()      # the round, its requests, their members: INSERTs in that order (no relationships)
    counted = calendar.count(today, answer_workdays)
    asked = [{"member_ref": m["member_id"], "name": m["name"], "resident_id": m["resident_id"]} for m in living]
    for bureau in bureaus:
        request = BureauRequest(id=str(uuid.uuid4()), round_id=round_.id, bureau=bureau,
                                community_code=round_.community_code, sent_on=today, answer_by=counted.day,
                                answer_by_provisional=counted.provisional, status="open", members=len(asked),
                                members_answered=0, reminders=0)
        uow.session.add(request)
        uow.session.flush()
        for m in asked:
            uow.session.add(RequestMember(request_id=request.id, member_ref=m["member_ref"], name=m["name"],
                                          resident_id=m["resident_id"], answered=False))
        message_id, body = request_message(request, round_, asked, "verification_request")
        uow.send_direct(bureau_routing(bureau), "verification_request", body, message_id)
        round_.record(Event(SOURCE, "request_sent", round_subject(round_, request_id=request.id), {
            "community_code": round_.community_code, "bureau": bureau, "purpose": purpose,
            "member_count": len(asked), "answer_by": counted.day, "reminder": 0}))
    if application_id:
        pending = uow.session.get(PendingApplication, application_id)
        if pending is not None:
            uow.session.delete(pending)
    return round_


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
    for request in due:
        round_ = uow.session.get(VerificationRound, request.round_id)
        missing = list(uow.session.scalars(sa.select(RequestMember).where(
            RequestMember.request_id == request.id, RequestMember.answered.is_(False))))
        request.reminders += 1
        request.last_reminded_on = today
        asked = [{"member_ref": m.member_ref, "name": m.name, "resident_id": m.resident_id} for m in missing]
        message_id, body = request_message(request, round_, asked, "verification_reminder", request.reminders)
        uow.send_direct(bureau_routing(request.bureau), "verification_reminder", body, message_id)
        uow.emit(Event(SOURCE, "request_sent", round_subject(round_, request_id=request.id), {
            "community_code": request.community_code, "bureau": request.bureau, "purpose": round_.purpose,
            "member_count": len(asked), "answer_by": request.answer_by, "reminder": request.reminders}))
    return len(due)
