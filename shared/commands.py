"""Every RPC command, recorded: ``<service>.command_recorded`` (责任追究).

One mechanism for every service, not code per method: the ``@rpc``
entrypoint (:mod:`shared.rpc`) and the ``Database`` dependency
(:mod:`shared.db`) share a :class:`CommandRecorder` per worker.

- A call whose unit of work commits: the record goes into the *same*
  outbox transaction as the state change (atomic with it).
- A call refused or failed (no commit): the entrypoint writes the record
  in a small transaction of its own, with the outcome.
- A call that succeeded without ever opening a write unit of work changed
  nothing (a pure read): not recorded — a household file's reads are
  audited by intake's ``file_viewed``. A method can ask for its successful
  reads to be recorded too with ``@rpc(record_reads=True)`` (the audit
  service's own queries).

The record carries who (the envelope's actor), what (service, method, the
ids named in the arguments — only uuid-valued keys ending in ``_id``, never
an ID number or an amount), the outcome, and for bad input the names of the
fields — never their values.
"""
from __future__ import annotations

import inspect
import logging
import uuid

from marshmallow import Schema, fields

from shared.config import SERVICES
from shared.errors import DibaoError, ValidationFailed
from shared.events import Event, event_type

log = logging.getLogger(__name__)

COMMAND_RECORDED = "command_recorded"
OUTCOMES = ("ok", "validation_failed", "forbidden", "not_found", "conflict", "internal_error")
#: the subject keys the audit store indexes (the rest stay in ``subject_ids``)
MAX_IDS = 20


class CommandRecorded(Schema):
    """An RPC command was called, with its outcome (refused calls too). Subject: the ids named in its arguments."""

    service = fields.String(required=True)
    method = fields.String(required=True)
    outcome = fields.String(required=True, metadata={"doc": " | ".join(OUTCOMES)})
    error_fields = fields.List(fields.String(), required=True,
                               metadata={"doc": "names of the invalid fields (never their values)"})
    subject_ids = fields.Dict(keys=fields.String(), values=fields.String(), required=True,
                              metadata={"doc": "uuid-valued `*_id` arguments"})
    call_id = fields.String(required=True, metadata={"doc": "nameko call id"})
    reason = fields.String(required=False, metadata={
        "doc": "a refusal's reason code (e.g. expired, revoked, bad_signature, service_not_permitted), else empty"})


def _register_all() -> None:
    for service in SERVICES:
        # one schema class per service: the catalogue keys on (source, name)
        cls = type(f"{service.title()}CommandRecorded", (CommandRecorded,), {"__doc__": CommandRecorded.__doc__})
        event_type(service, COMMAND_RECORDED)(cls)


_register_all()


def outcome_of(exc: BaseException | None) -> str:
    if exc is None:
        return "ok"
    code = getattr(exc, "code", None) if isinstance(exc, DibaoError) else None
    return code if code in OUTCOMES else "internal_error"


def _is_uuid(value) -> bool:
    if not isinstance(value, str) or len(value) != 36:
        return False
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def subject_ids(arguments: dict) -> dict[str, str]:
    """The uuid-valued ``*_id`` keys anywhere in the arguments (first
    occurrence wins; lists of ids are not subjects)."""
    found: dict[str, str] = {}
    stack = [arguments]
    while stack and len(found) < MAX_IDS:
        value = stack.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                if isinstance(key, str) and key.endswith("_id") and _is_uuid(item):
                    found.setdefault(key, item)
                elif isinstance(item, (dict, list)):
                    stack.append(item)
        elif isinstance(value, list):
            stack.extend(v for v in value[:100] if isinstance(v, (dict, list)))
    return found


_SIGNATURES: dict = {}


def call_arguments(worker_ctx) -> dict:
    """The call's arguments by name (positional ones named from the method)."""
    args = worker_ctx.args or ()
    kwargs = dict(worker_ctx.kwargs or {})
    if args:
        key = (worker_ctx.service_name, worker_ctx.entrypoint.method_name)
        names = _SIGNATURES.get(key)
        if names is None:
            method = getattr(worker_ctx.container.service_cls, worker_ctx.entrypoint.method_name)
            names = _SIGNATURES[key] = [p for p in inspect.signature(method).parameters][1:]
        kwargs.update({name: value for name, value in zip(names, args)})
    return kwargs


class CommandRecorder:
    """The per-call state shared by the entrypoint and the database: did a
    write unit of work open, did the record go out with a commit."""

    __slots__ = ("worker_ctx", "wrote", "recorded", "record_reads", "write_alone", "refused")

    def __init__(self, worker_ctx, record_reads: bool = False, write_alone=None):
        self.worker_ctx = worker_ctx
        self.wrote = False
        self.recorded = False
        self.record_reads = record_reads
        #: ``write_alone(event)`` commits one event in a transaction of its own
        self.write_alone = write_alone
        #: the refusal of a call that commits before it raises (UnitOfWork.commit_refused)
        self.refused: BaseException | None = None

    def event(self, exc: BaseException | None = None, events: list[Event] = ()) -> Event:
        """The record; ``events`` committed with it lend their subject ids
        (a registration names the household it created)."""
        ctx = self.worker_ctx
        service = ctx.service_name
        ids = subject_ids(call_arguments(ctx))
        for ev in events:
            for key, value in ev.subject.items():
                if key not in ids and len(ids) < MAX_IDS and _is_uuid(str(value)):
                    ids[key] = str(value)
        error_fields = sorted(exc.fields) if isinstance(exc, ValidationFailed) else []
        reason = exc.details.get("reason") if isinstance(exc, DibaoError) and isinstance(exc.details, dict) else None
        return Event(service, COMMAND_RECORDED, ids, {
            "service": service, "method": ctx.entrypoint.method_name, "outcome": outcome_of(exc),
            "error_fields": error_fields[:50], "subject_ids": ids, "call_id": ctx.call_id or "",
            "reason": str(reason or "")[:64]})

    def pending_event(self, events: list[Event] = ()) -> Event | None:
        """The record to commit with the first write of this call (once)."""
        return None if self.recorded else self.event(self.refused, events)

    def needs_own_record(self, exc: BaseException | None) -> bool:
        if self.recorded:
            return False
        return exc is not None or self.wrote or self.record_reads

    def record_alone(self, exc: BaseException | None) -> None:
        """The record of a call that committed nothing (refused, failed, a
        recorded read). A database that is down loses the record, not the
        caller's answer: logged loudly."""
        try:
            self.write_alone(self.event(exc))
            self.recorded = True
        except Exception:  # noqa: BLE001 - the answer to the caller must still go out
            log.exception("could not record the command %s.%s (call %s)", self.worker_ctx.service_name,
                          self.worker_ctx.entrypoint.method_name, self.worker_ctx.call_id)


def recorder_of(worker_ctx) -> CommandRecorder | None:
    return getattr(worker_ctx, "dibao_command", None)
