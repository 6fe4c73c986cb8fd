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
from functools import lru_cache
from datetime import date, datetime, timezone

import sqlalchemy as sa
from marshmallow import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.attributes import set_committed_value

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


def _parse(raw: bytes, property_id: str | None):
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        data = None
    return data, _message_id(data, raw, property_id)


def take(uow: UnitOfWork, raw: bytes, publisher: Publisher, property_id: str | None, ref: ReferenceData,
         today: date) -> Outcome:
    """Apply or refuse one message from the answers' channel, in this unit of work (committed here)."""
    data, message_id = _parse(raw, property_id)
    seen = uow.session.get(BureauMessage, (message_id, publisher.user_id or ""))
    if seen is not None:
        return Outcome(accepted=seen.accepted, duplicate=True)
    try:
        request, bureau = _apply(uow, data, message_id, publisher, ref, today, None)
    except _Duplicate as dup:
        uow.rollback()
        return dup.outcome
    except rules.Refused as refusal:
        uow.rollback()
        reply_to = _reply_to(publisher, data)
        _refuse(uow, message_id, publisher, refusal, reply_to)
        return _commit_once(uow, message_id, publisher) or Outcome(accepted=False, refusal=refusal,
                                                                   reply_to=reply_to)
    uow.session.add(BureauMessage(message_id=message_id, publisher=publisher.user_id or "", bureau=bureau,
                                  request_id=request.id, accepted=True, received_at=now()))
    return _commit_once(uow, message_id, publisher) or Outcome(accepted=True)


class _Duplicate(Exception):
    def __init__(self, outcome: Outcome):
        self.outcome = outcome


def _reply_to(publisher: Publisher, data) -> str | None:
    reply_to = publisher.bureau if publisher.bureau in publisher.configured else None
    if publisher.expected_for("") is None and isinstance(data, dict) and data.get("bureau") in publisher.configured:
        reply_to = data["bureau"]           # broker users off: nobody is authenticated, answer the claim
    return reply_to


@lru_cache(maxsize=None)
def _schema(kind: str):
    """One schema instance per message type (building one deep-copies its fields: ~0.3 ms)."""
    return INCOMING[kind]()


def _apply(uow: UnitOfWork, data, message_id: str, publisher: Publisher, ref: ReferenceData, today: date,
           batch: "Batch | None"):
    """Validate one message and apply it (raises rules.Refused before writing anything)."""
    if not isinstance(data, dict) or data.get("type") not in INCOMING:
        raise rules.Refused("malformed", "not a JSON object whose type is verification_answer or change_report")
    try:
        message = _schema(data["type"]).load(data)
    except ValidationError as exc:
        raise rules.Refused("malformed", json.dumps(exc.messages, ensure_ascii=False)[:500],
                            data.get("request_id") if isinstance(data.get("request_id"), str) else None)
    bureau = rules.publisher_is_the_bureau(publisher.user_id, publisher.bureau,
                                           publisher.expected_for(message["bureau"]), message["bureau"])
    if batch is None:
        request = uow.session.get(BureauRequest, message["request_id"], with_for_update=True)
        if request is not None:     # the same message taken at once by another worker: it held the lock first
            seen = uow.session.get(BureauMessage, (message_id, publisher.user_id or ""), populate_existing=True)
            if seen is not None:
                raise _Duplicate(Outcome(accepted=seen.accepted, duplicate=True))
    else:
        request = batch.requests.get(message["request_id"])
    rules.request_is_the_bureaus(request, bureau, message["request_id"])
    if message["type"] == "verification_answer":
        _answer(uow, message, request, ref, today, batch)
    else:
        _change(uow, message, request, ref, today, batch)
    return request, bureau


@dataclass
class Batch:
    """The rows a batch of messages touches, read (and locked) in one query each."""

    requests: dict
    members: dict            # request_id -> {member_ref: _Member}
    rounds: dict
    touched: dict            # round_id -> the round, its report refreshed once at the end
    answered: list           # (request_id, member_ref) answered in this batch: one UPDATE at the end
    received: list           # answer_received (subject, payload): written together (emit_many)
    closed: list             # requests closed in this batch: one UPDATE for them and their members


@dataclass
class _Member:
    """What a batch needs of a request's member (not its encrypted ID number)."""

    request_id: str
    member_ref: str
    answered: bool


def _preload(uow: UnitOfWork, parsed: list) -> Batch:
    ids = sorted({d["request_id"] for d, _ in parsed if isinstance(d, dict) and isinstance(d.get("request_id"), str)
                  and len(d["request_id"]) <= 36})
    session = uow.session
    requests = {r.id: r for r in session.scalars(sa.select(BureauRequest).where(BureauRequest.id.in_(ids))
                                                 .order_by(BureauRequest.id).with_for_update())} if ids else {}
    members: dict = {}
    if requests:
        for request_id, member_ref, answered in session.execute(
                sa.select(RequestMember.request_id, RequestMember.member_ref, RequestMember.answered)
                .where(RequestMember.request_id.in_(sorted(requests)))):
            members.setdefault(request_id, {})[member_ref] = _Member(request_id, member_ref, answered)
    round_ids = sorted({r.round_id for r in requests.values()})
    rounds = {r.id: r for r in session.scalars(sa.select(VerificationRound).where(VerificationRound.id.in_(round_ids))
                                               .order_by(VerificationRound.id).with_for_update())} if round_ids else {}
    return Batch(requests, members, rounds, {}, [], [], [])


_MEMBER_ANSWERED = (sa.update(RequestMember.__table__)
                    .where(RequestMember.__table__.c.request_id == sa.bindparam("rid"),
                           RequestMember.__table__.c.member_ref == sa.bindparam("ref"))
                    .values(answered=True))


def _write_answered(uow: UnitOfWork, batch: Batch) -> None:
    """The requests closed and the members answered in this batch, set-based (an executemany is a
    round trip a row on PostgreSQL): the closed requests and all their members in one UPDATE each."""
    if batch.closed:
        at = now()
        for i in range(0, len(batch.closed), 500):
            ids = batch.closed[i:i + 500]
            uow.session.execute(sa.update(BureauRequest).where(BureauRequest.id.in_(ids))
                                .values(members_answered=BureauRequest.members, status="closed", closed_at=at)
                                .execution_options(synchronize_session=False))
            uow.session.execute(sa.update(RequestMember).where(RequestMember.request_id.in_(ids))
                                .values(answered=True).execution_options(synchronize_session=False))
    closed = set(batch.closed)
    rest = [{"rid": rid, "ref": ref} for rid, ref in batch.answered if rid not in closed]
    if rest:
        uow.session.execute(_MEMBER_ANSWERED, rest)


def take_batch(uow: UnitOfWork, items: list[tuple[bytes, Publisher, str | None]], ref: ReferenceData,
               today: date) -> list[Outcome]:
    """Many messages in one transaction: each applied or refused whole, the rows they touch read
    in one query per table, the rounds' reports refreshed together, one flush, one commit. Raises
    what the commit raises (IntegrityError: another worker took one of them) — the caller then takes
    them one by one (:func:`take`)."""
    parsed = [_parse(raw, property_id) for raw, _, property_id in items]
    keys = {(mid, (p.user_id or "")) for (_, mid), (_, p, _) in zip(parsed, items)}
    seen = {(m.message_id, m.publisher): m for m in uow.session.scalars(sa.select(BureauMessage).where(
        sa.tuple_(BureauMessage.message_id, BureauMessage.publisher).in_(sorted(keys))))} if keys else {}
    batch = _preload(uow, parsed)
    outcomes = []
    for (data, message_id), (raw, publisher, _) in zip(parsed, items):
        key = (message_id, publisher.user_id or "")
        if key in seen:
            outcomes.append(Outcome(accepted=seen[key].accepted, duplicate=True))
            continue
        try:        # every rule is checked before a message writes anything: a refusal has nothing to undo
            request, bureau = _apply(uow, data, message_id, publisher, ref, today, batch)
            row = BureauMessage(message_id=message_id, publisher=key[1], bureau=bureau, request_id=request.id,
                                accepted=True, received_at=now())
            uow.session.add(row)
            outcomes.append(Outcome(accepted=True))
        except rules.Refused as refusal:
            reply_to = _reply_to(publisher, data)
            row = _refuse(uow, message_id, publisher, refusal, reply_to)
            outcomes.append(Outcome(accepted=False, refusal=refusal, reply_to=reply_to))
        seen[key] = row
    _write_answered(uow, batch)
    if batch.received:
        uow.emit_many(SOURCE, "answer_received", batch.received)
    report.refresh_many(uow, list(batch.touched.values()), ref, today)
    uow.commit()
    return outcomes


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


def _answer(uow: UnitOfWork, message: dict, request: BureauRequest, ref: ReferenceData, today: date,
            batch: Batch | None = None) -> None:
    rules.request_is_open(request)
    if batch is None:
        members = {m.member_ref: m for m in uow.session.scalars(
            sa.select(RequestMember).where(RequestMember.request_id == request.id))}
    else:
        members = batch.members.get(request.id, {})
    rules.members_are_in_request([m["member_ref"] for m in message["members"]], members, request.id)
    counts = {"found": 0, "no_record": 0, "cannot_answer": 0}
    for answer in message["members"]:
        uow.session.add(BureauAnswer(
            message_id=message["message_id"], request_id=request.id, round_id=request.round_id,
            bureau=request.bureau, member_ref=answer["member_ref"], outcome=answer["outcome"],
            reason=answer.get("reason"), findings=_findings_json(answer["findings"]), pushed=False,
            answered_at=message["answered_at"], received_at=now()))
        members[answer["member_ref"]].answered = True
        if batch is not None:
            batch.answered.append((request.id, answer["member_ref"]))
        counts[answer["outcome"]] += 1
    answered = request.members_answered + len(message["members"])
    if batch is not None and answered >= request.members:
        # closed in this batch: written by one UPDATE for all of them (_write_answered), not a row each
        for name, value in (("members_answered", answered), ("status", "closed"), ("closed_at", now())):
            set_committed_value(request, name, value)
        batch.closed.append(request.id)
    else:
        request.members_answered = answered
        if answered >= request.members:
            request.status, request.closed_at = "closed", now()
    round_ = (uow.session.get(VerificationRound, request.round_id, with_for_update=True) if batch is None
              else batch.rounds[request.round_id])
    subject = round_subject(round_, request_id=request.id)
    payload = {"community_code": round_.community_code, "bureau": request.bureau,
               "members_answered": len(message["members"]), **counts, "request_closed": request.status == "closed"}
    if batch is None:
        uow.emit(Event(SOURCE, "answer_received", subject, payload))
        uow.session.flush()
        report.refresh(uow, round_, ref, today)
    else:
        batch.received.append((subject, payload))
        batch.touched[round_.id] = round_        # refreshed once for the whole batch


def _change(uow: UnitOfWork, message: dict, request: BureauRequest, ref: ReferenceData, today: date,
            batch: Batch | None = None) -> None:
    """A change the bureau reports on its own, for a person it was asked about, within the consent."""
    member = (uow.session.get(RequestMember, (request.id, message["member_ref"])) if batch is None
              else batch.members.get(request.id, {}).get(message["member_ref"]))
    if member is None:
        raise rules.Refused("member_not_in_request", f"member_ref {message['member_ref']} is not in request "
                                                     f"{request.id}", request.id)
    round_ = (uow.session.get(VerificationRound, request.round_id, with_for_update=True) if batch is None
              else batch.rounds[request.round_id])
    rules.change_within_consent(round_.consent_valid_until, today, request.id)
    uow.session.add(BureauAnswer(
        message_id=message["message_id"], request_id=request.id, round_id=round_.id, bureau=request.bureau,
        member_ref=message["member_ref"], outcome="found", reason=None, findings=_findings_json(message["findings"]),
        pushed=True, answered_at=message["reported_at"], received_at=now()))
    uow.session.flush()
    report.refresh(uow, round_, ref, today, report_changes=False)     # one change: one proposal, not two
    report.pushed_change(uow, round_, request.bureau, message, today)


def _refuse(uow: UnitOfWork, message_id: str, publisher: Publisher, refusal: rules.Refused,
            reply_to: str | None) -> BureauMessage:
    row = BureauMessage(message_id=message_id, publisher=publisher.user_id or "", bureau=publisher.bureau,
                        request_id=(refusal.request_id or "")[:36] or None, accepted=False,
                        reason=refusal.reason, received_at=now())
    uow.session.add(row)
    uow.emit(Event(SOURCE, "answer_refused", {"request_id": (refusal.request_id or "")[:36] or None},
                   {"bureau": publisher.bureau or "", "reason": refusal.reason}))
    if reply_to:
        reply_id = str(uuid.uuid4())
        body = json.dumps({"type": "answer_refused", "version": PROTOCOL_VERSION, "message_id": reply_id,
                           "refused_message_id": message_id, "request_id": refusal.request_id,
                           "reason": refusal.reason, "detail": refusal.detail},
                          ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        uow.send_direct(bureau_routing(reply_to), "answer_refused", body, reply_id)
    return row
