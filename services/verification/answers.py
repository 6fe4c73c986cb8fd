"""What the bureaus send back (核对答复): answers and changes reported on their own.

Every message on the answers' channel is taken once (``BureauMessage``,
keyed by its ``message_id`` and the publisher RabbitMQ validated) and is
either applied whole or refused whole: a malformed message, one whose
``user_id`` is not the bureau it names, one for a request sent to another
bureau, for a closed request, or for a member not in the request, changes
nothing; the bureau is sent an ``answer_refused`` with the typed reason,
and the service parks the message on ``dibao.dead-letter``.
"""
from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timezone

import sqlalchemy as sa
from marshmallow import ValidationError
from sqlalchemy.exc import IntegrityError

from contracts.verification_bureau import INCOMING, PROTOCOL_VERSION
from services.verification import report, rules
from services.verification.models import (BureauAnswer, BureauMessage, BureauRequest, RequestMember,
                                          VerificationRound)
from services.verification.requests import bureau_routing, round_subject
from shared.db import UnitOfWork
from shared.events import Event
from shared.reference import ReferenceData

SOURCE = "verification"


@dataclass(frozen=True)
class Publisher:
    """Who published, as the broker validated it, and what the deployment expects."""

    user_id: str | None
    bureau: str | None           # the bureau whose partner user that is (None: not a bureau's)
    expected_for: object         # bureau name -> the user_id it must carry (None: users are off)
    configured: tuple[str, ...]  # the bureaus with a request channel (a refusal can be sent to)


@dataclass
class Outcome:
    accepted: bool
    duplicate: bool = False
    refusal: rules.Refused | None = None
    reply_to: str | None = None


def now() -> datetime:
    return datetime.now(timezone.utc)


def _message_id(data, raw: bytes, property_id: str | None) -> str:
    if isinstance(data, dict) and isinstance(data.get("message_id"), str) and 0 < len(data["message_id"]) <= 64:
        return data["message_id"]
    return (property_id or "")[:64] or "sha256:" + hashlib.sha256(raw).hexdigest()[:56]


def take(uow: UnitOfWork, raw: bytes, publisher: Publisher, property_id: str | None, ref: ReferenceData,
         today: date) -> Outcome:
    """Apply or refuse one message from the answers' channel, in this unit of work (committed here)."""
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        data = None
    message_id = _message_id(data, raw, property_id)
    seen = uow.session.get(BureauMessage, (message_id, publisher.user_id or ""))
    if seen is not None:
        return Outcome(accepted=seen.accepted, duplicate=True)
    try:
        if not isinstance(data, dict) or data.get("type") not in INCOMING:
            raise rules.Refused("malformed", "not a JSON object whose type is verification_answer or change_report")
        try:
            message = INCOMING[data["type"]]().load(data)
        except ValidationError as exc:
            raise rules.Refused("malformed", json.dumps(exc.messages, ensure_ascii=False)[:500],
                                data.get("request_id") if isinstance(data.get("request_id"), str) else None)
        bureau = rules.publisher_is_the_bureau(publisher.user_id, publisher.bureau,
                                               publisher.expected_for(message["bureau"]), message["bureau"])
        request = uow.session.get(BureauRequest, message["request_id"], with_for_update=True)
        if request is not None:     # the same message taken at once by another worker: it held the lock first
            seen = uow.session.get(BureauMessage, (message_id, publisher.user_id or ""), populate_existing=True)
            if seen is not None:
                uow.rollback()
                return Outcome(accepted=seen.accepted, duplicate=True)
        rules.request_is_the_bureaus(request, bureau, message["request_id"])
        if message["type"] == "verification_answer":
            _answer(uow, message, request, ref, today)
        else:
            _change(uow, message, request, ref, today)
    except rules.Refused as refusal:
        uow.rollback()
        reply_to = publisher.bureau if publisher.bureau in publisher.configured else None
        if publisher.expected_for("") is None and isinstance(data, dict) and data.get("bureau") in publisher.configured:
            reply_to = data["bureau"]           # broker users off: nobody is authenticated, answer the claim
        _refuse(uow, message_id, publisher, refusal, reply_to)
        return _commit_once(uow, message_id, publisher) or Outcome(accepted=False, refusal=refusal,
                                                                   reply_to=reply_to)
    uow.session.add(BureauMessage(message_id=message_id, publisher=publisher.user_id or "", bureau=bureau,
                                  request_id=request.id, accepted=True, received_at=now()))
    return _commit_once(uow, message_id, publisher) or Outcome(accepted=True)


def _commit_once(uow: UnitOfWork, message_id: str, publisher: Publisher) -> Outcome | None:
    """Commit; None — or, when another worker took the same message first (its key), the duplicate's outcome."""
    try:
        uow.commit()
        return None
    except IntegrityError:
        uow.rollback()
        seen = uow.session.get(BureauMessage, (message_id, publisher.user_id or ""))
        if seen is None:
            raise
        return Outcome(accepted=seen.accepted, duplicate=True)


def _findings_json(findings: list[dict]) -> str:
    return json.dumps([{"kind": f["kind"], "description": f["description"],
                        "amount": None if f["amount"] is None else str(f["amount"]),
                        "as_of": f["as_of"].isoformat()} for f in findings], ensure_ascii=False)


def _answer(uow: UnitOfWork, message: dict, request: BureauRequest, ref: ReferenceData, today: date) -> None:
    rules.request_is_open(request)
    members = {m.member_ref: m for m in uow.session.scalars(
        sa.select(RequestMember).where(RequestMember.request_id == request.id))}
    rules.members_are_in_request([m["member_ref"] for m in message["members"]], members, request.id)
    counts = {"found": 0, "no_record": 0, "cannot_answer": 0}
    for answer in message["members"]:
        uow.session.add(BureauAnswer(
            message_id=message["message_id"], request_id=request.id, round_id=request.round_id,
            bureau=request.bureau, member_ref=answer["member_ref"], outcome=answer["outcome"],
            reason=answer.get("reason"), findings=_findings_json(answer["findings"]), pushed=False,
            answered_at=message["answered_at"], received_at=now()))
        members[answer["member_ref"]].answered = True
        counts[answer["outcome"]] += 1
    request.members_answered += len(message["members"])
    if request.members_answered >= request.members:
        request.status, request.closed_at = "closed", now()
    round_ = uow.session.get(VerificationRound, request.round_id, with_for_update=True)
    uow.emit(Event(SOURCE, "answer_received", round_subject(round_, request_id=request.id), {
        "community_code": round_.community_code, "bureau": request.bureau,
        "members_answered": len(message["members"]), **counts, "request_closed": request.status == "closed"}))
    uow.session.flush()
    report.refresh(uow, round_, ref, today)


def _change(uow: UnitOfWork, message: dict, request: BureauRequest, ref: ReferenceData, today: date) -> None:
    """A change the bureau reports on its own, for a person it was asked about, within the consent."""
    member = uow.session.get(RequestMember, (request.id, message["member_ref"]))
    if member is None:
        raise rules.Refused("member_not_in_request", f"member_ref {message['member_ref']} is not in request "
                                                     f"{request.id}", request.id)
    round_ = uow.session.get(VerificationRound, request.round_id, with_for_update=True)
    rules.change_within_consent(round_.consent_valid_until, today, request.id)
    uow.session.add(BureauAnswer(
        message_id=message["message_id"], request_id=request.id, round_id=round_.id, bureau=request.bureau,
        member_ref=message["member_ref"], outcome="found", reason=None, findings=_findings_json(message["findings"]),
        pushed=True, answered_at=message["reported_at"], received_at=now()))
    uow.session.flush()
    report.refresh(uow, round_, ref, today, report_changes=False)     # one change: one proposal, not two
    report.pushed_change(uow, round_, request.bureau, message, today)


def _refuse(uow: UnitOfWork, message_id: str, publisher: Publisher, refusal: rules.Refused,
            reply_to: str | None) -> None:
    uow.session.add(BureauMessage(message_id=message_id, publisher=publisher.user_id or "", bureau=publisher.bureau,
                                  request_id=(refusal.request_id or "")[:36] or None, accepted=False,
                                  reason=refusal.reason, received_at=now()))
    uow.emit(Event(SOURCE, "answer_refused", {"request_id": (refusal.request_id or "")[:36] or None},
                   {"bureau": publisher.bureau or "", "reason": refusal.reason}))
    if reply_to:
        reply_id = str(uuid.uuid4())
        body = json.dumps({"type": "answer_refused", "version": PROTOCOL_VERSION, "message_id": reply_id,
                           "refused_message_id": message_id, "request_id": refusal.request_id,
                           "reason": refusal.reason, "detail": refusal.detail},
                          ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        uow.send_direct(bureau_routing(reply_to), "answer_refused", body, reply_id)
