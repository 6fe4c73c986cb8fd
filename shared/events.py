"""The event contract: one envelope for every event, a catalogue of types.

An event is a fact a service tells the world (DESIGN §3.2). On the wire it
is nameko's own format: a JSON body published to the topic exchange
``<source>.events`` with the event type as routing key, so a partner
bureau's plain ``@event_handler("intake", "application_submitted")``
receives the envelope below as its argument.

The payload of each type has a marshmallow schema registered here with its
version; ``docs/events.md`` is generated from this catalogue. Payloads are
plain JSON — amounts as strings, dates as ISO strings — and never carry a
resident ID number or an income.
"""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable, Iterator

from marshmallow import EXCLUDE, Schema, fields
from marshmallow import ValidationError as MarshmallowValidationError

from shared.errors import ValidationFailed


class ActorSchema(Schema):
    user = fields.String(required=True)
    name = fields.String(required=True)
    role = fields.String(required=True)
    unit = fields.String(required=True)


class EnvelopeSchema(Schema):
    """The envelope every event shares (schema version 1)."""

    event_id = fields.UUID(required=True, metadata={"doc": "unique id; consumers dedupe on it"})
    type = fields.String(required=True, metadata={"doc": "event type, also the routing key"})
    source = fields.String(required=True, metadata={"doc": "the service that emitted it"})
    version = fields.Integer(required=True, metadata={"doc": "payload schema version"})
    occurred_at = fields.AwareDateTime(required=True, format="iso", metadata={"doc": "UTC time of the commit"})
    actor = fields.Nested(ActorSchema, allow_none=True, required=True,
                          metadata={"doc": "who caused it (null for the system clock)"})
    subject = fields.Dict(keys=fields.String(), values=fields.String(), required=True,
                          metadata={"doc": "ids of what it is about: household_id, application_id, case_id…"})
    correlation_id = fields.String(required=True, metadata={"doc": "ties together the events of one operator action"})
    payload = fields.Dict(required=True, metadata={"doc": "the type's payload, below"})


@dataclass(frozen=True)
class EventType:
    source: str
    name: str
    version: int
    schema: type[Schema]
    description: str
    instance: Schema
    #: what partner bureaus receive: None (internal: nothing), or the payload
    #: fields of the partner form (all of them when it is partner-safe as is)
    partner_fields: frozenset | None = None
    partner_schema: type[Schema] | None = None

    @property
    def partner_as_is(self) -> bool:
        return self.partner_schema is self.schema


CATALOGUE: dict[tuple[str, str], EventType] = {}


def _field_keys(schema_cls: type[Schema]) -> frozenset:
    return frozenset(f.data_key or name for name, f in schema_cls().fields.items())


def event_type(source: str, name: str, version: int = 1, partner: bool | type[Schema] = False):
    """Register a payload schema as the contract of ``source``/``name``.

    ``partner`` says what partner bureaus receive (DESIGN §3.4a): ``False``
    (the default) — it is internal, they receive nothing; ``True`` — it is
    partner-safe as it is; a Schema class — its *partner form*: only the
    payload fields that schema names (none from which an income, an asset,
    an account or an ID number can be derived)."""

    def register(schema_cls: type[Schema]) -> type[Schema]:
        key = (source, name)
        if key in CATALOGUE and CATALOGUE[key].schema is not schema_cls:
            raise ValueError(f"event {source}.{name} registered twice")
        doc = (schema_cls.__doc__ or "").strip()
        partner_schema = schema_cls if partner is True else (partner or None)
        partner_fields = _field_keys(partner_schema) if partner_schema else None
        if partner_fields is not None and not partner_fields <= _field_keys(schema_cls):
            raise ValueError(f"the partner form of {source}.{name} names fields the event does not have: "
                             f"{sorted(partner_fields - _field_keys(schema_cls))}")
        CATALOGUE[key] = EventType(source, name, version, schema_cls, doc, schema_cls(), partner_fields,
                                   partner_schema)
        return schema_cls

    return register


def partner_form(source: str, name: str, body: str) -> str | None:
    """The body of a separate partner copy: only for types with a partner
    form (a type partner-safe as it is reaches partners by an exchange
    binding, :mod:`shared.outbox`; an internal one never)."""
    spec = CATALOGUE.get((source, name))
    if spec is None or spec.partner_fields is None or spec.partner_as_is:
        return None
    return partner_body(source, name, body)


def partner_body(source: str, name: str, body: str) -> str | None:
    """The body partner bureaus receive for an event published by ``source``
    (None: internal, they receive nothing): the same text when the type is
    partner-safe as it is, else the envelope with the partner form's payload."""
    spec = CATALOGUE.get((source, name))
    if spec is None or spec.partner_fields is None:
        return None
    if spec.partner_as_is:
        return body
    env = json.loads(body)
    payload = env.get("payload") or {}
    env["payload"] = {k: v for k, v in payload.items() if k in spec.partner_fields}
    return encode(env)


@dataclass
class Event:
    """A domain event as the domain records it: what happened, to whom."""

    source: str
    type: str
    subject: dict[str, Any]
    payload: dict[str, Any] = field(default_factory=dict)
    event_id: uuid.UUID = field(default_factory=uuid.uuid4)


def envelope(event: Event, actor: dict | None, correlation_id: str,
             occurred_at: datetime | None = None) -> dict:
    """Build the plain-JSON envelope; the payload goes through its schema."""
    try:
        spec = CATALOGUE[(event.source, event.type)]
    except KeyError:
        raise LookupError(f"event {event.source}.{event.type} is not in the catalogue") from None
    payload = spec.instance.dump(event.payload)
    errors = spec.instance.validate(payload)
    if errors:
        raise ValueError(f"event {event.source}.{event.type} payload does not match its schema: {errors}")
    return {
        "event_id": str(event.event_id),
        "type": event.type,
        "source": event.source,
        "version": spec.version,
        "occurred_at": (occurred_at or datetime.now(timezone.utc)).isoformat(),
        "actor": actor,
        "subject": {k: str(v) for k, v in event.subject.items() if v is not None},
        "correlation_id": correlation_id,
        "payload": payload,
    }


def encode(env: dict) -> str:
    return json.dumps(env, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def encode_many(source: str, name: str, items: Iterable[tuple[dict, dict]], actor: dict | None,
                correlation_id: str, occurred_at: datetime) -> Iterator[tuple[str, str]]:
    """``(event_id, body)`` for many events of one type, for bulk work: ``items``
    yields ``(subject, payload)`` with payloads already plain JSON (amounts as
    2-place strings). No schema round-trip per row — the first payload is
    checked against the registered schema — yet each body is the text
    :func:`encode` gives for its envelope (sorted keys), assembled around the
    per-row parts."""
    spec = CATALOGUE[(source, name)]
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode
    head = f'{{"actor":{dumps(actor)},"correlation_id":{dumps(correlation_id)},"event_id":"'
    middle = f'","occurred_at":{dumps(occurred_at.isoformat())},"payload":'
    middle_source = f',"source":{dumps(source)},"subject":'
    tail = f',"type":{dumps(name)},"version":{spec.version}}}'
    checked = False
    for subject, payload in items:
        if not checked:
            errors = spec.instance.validate(payload)
            if errors:
                raise ValueError(f"{source}.{name} payload does not match its schema: {errors}")
            checked = True
        event_id = str(uuid.uuid4())
        yield event_id, head + event_id + middle + dumps(payload) + middle_source + dumps(subject) + tail


def parse(body: Any) -> dict:
    """Validate a received envelope (a dict, or JSON text/bytes)."""
    if isinstance(body, (bytes, bytearray)):
        body = body.decode("utf-8")
    if isinstance(body, str):
        body = json.loads(body)
    errors = EnvelopeSchema().validate(body)
    if errors:
        raise ValidationFailed.from_messages(errors, "malformed event envelope")
    spec = CATALOGUE.get((body["source"], body["type"]))
    if spec is not None and body["version"] > spec.version:
        raise ValidationFailed.field("version", f"unknown version {body['version']} of {body['source']}.{body['type']}")
    return body


def load_payload(env: dict) -> dict:
    """An envelope's payload loaded through its type's schema (dates as
    dates, amounts as Decimal), or ValidationFailed naming the fields.
    Fields this consumer does not know yet are ignored: adding a field is a
    compatible change."""
    spec = CATALOGUE.get((env["source"], env["type"]))
    if spec is None:
        raise ValidationFailed.field("type", f"unknown event type {env['source']}.{env['type']}")
    try:
        return spec.instance.load(env["payload"], unknown=EXCLUDE)
    except MarshmallowValidationError as exc:
        raise ValidationFailed.from_messages(exc.messages, f"malformed {env['source']}.{env['type']} payload") from None


def render_markdown() -> str:
    """docs/events.md, generated from the catalogue."""
    lines = [
        "# Dibao events",
        "",
        "Generated from `shared/events.py` and the `contracts/` package (one module per "
        "producing service) by `dibao docs events`; a test fails when this file and the code disagree.",
        "",
        "## Wire format",
        "",
        "Each event is a JSON message published to the durable topic exchange "
        "`<source>.events` with the event type as routing key — nameko's own "
        "event format. A partner bureau subscribes with a plain nameko service:",
        "",
        "```python",
        "from nameko.events import event_handler",
        "",
        "class FinanceBureau:",
        '    name = "finance_bureau"',
        "",
        '    @event_handler("intake", "application_submitted")',
        "    def on_application(self, event):",
        '        print(event["subject"]["application_id"], event["payload"])',
        "```",
        "",
        "Delivery is at least once: dedupe on `event_id`. Adding a field is a "
        "compatible change; renaming or removing one makes a new `version`.",
        "No event carries a resident ID number or an income.",
        "",
        "## Partner bureaus",
        "",
        "A partner bureau connects with the URI `dibao broker partner-add NAME` "
        "prints, to a vhost of its own; the same handler as above works there "
        "unchanged. It receives only the partner-safe events, each as it is or in "
        "its *partner form* (the payload without the fields named below): nothing "
        "from which a household's income, assets, account or ID number can be "
        "derived. Internal events (the figures payments recalculates from, staff's "
        "free-text reasons, who read a file) stay in the core. Events published "
        "before the partner first connects wait for it.",
        "",
        "## The contracts as a package (optional)",
        "",
        "The handler above needs nothing of Dibao's. A partner that wants the payloads "
        "checked and typed by Dibao's own schemas installs the `dibao` distribution "
        "(`pip install -c constraints.txt /path/to/dibao`, a checkout or a wheel from "
        "`pip wheel --no-deps .`) and imports only `contracts` — one module per producing "
        "service, which imports nothing of Dibao's but the platform package `shared`: "
        "no service's code is loaded and nothing runs:",
        "",
        "```python",
        "import contracts.intake  # registers intake's event types",
        "from shared.events import load_payload, parse",
        "",
        "payload = load_payload(parse(event))  # dates as dates, amounts as Decimal",
        "```",
        "",
        "`contracts.load_all()` registers every type; `contracts/audit_chain.py`, "
        "`audit_checkpoints.py` and `audit_bundle.py` are the audit log's record, "
        "signed-checkpoint and bundle formats, for a third party that verifies it.",
        "A partner form loads with its own schema: "
        "`CATALOGUE[(source, type)].partner_schema`.",
        "",
        "## Envelope",
        "",
        "| field | type | meaning |",
        "|---|---|---|",
    ]
    for name, fld in EnvelopeSchema().fields.items():
        lines.append(f"| `{name}` | {_type_name(fld)} | {fld.metadata.get('doc', '')} |")
    lines.append("")
    by_source: dict[str, list[EventType]] = {}
    for spec in CATALOGUE.values():
        by_source.setdefault(spec.source, []).append(spec)
    for source in sorted(by_source):
        lines += [f"## {source}", ""]
        for spec in sorted(by_source[source], key=lambda s: s.name):
            lines += [f"### `{source}.{spec.name}` (version {spec.version})", "", spec.description, "",
                      _partner_line(spec), "",
                      "| field | type | required | meaning |", "|---|---|---|---|"]
            for name, fld in spec.schema().fields.items():
                lines.append(f"| `{name}` | {_type_name(fld)} | {'yes' if fld.required else 'no'} | "
                             f"{fld.metadata.get('doc', '')} |")
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _partner_line(spec: EventType) -> str:
    if spec.partner_fields is None:
        return "**Partners:** internal — partner bureaus do not receive it."
    if spec.partner_as_is:
        return "**Partners:** receive it as it is."
    left_out = sorted(_field_keys(spec.schema) - spec.partner_fields)
    return ("**Partners:** receive its partner form — the payload without "
            + ", ".join(f"`{name}`" for name in left_out) + ".")


def _type_name(fld) -> str:
    if isinstance(fld, fields.List):
        return f"list of {_type_name(fld.inner)}"
    if isinstance(fld, fields.Nested):
        return "object"
    return {
        "UUID": "uuid string", "String": "string", "Integer": "integer", "Boolean": "boolean",
        "Date": "ISO date", "AwareDateTime": "ISO date-time", "DateTime": "ISO date-time",
        "Dict": "object", "Money": "decimal string (yuan, 2 places)",
    }.get(type(fld).__name__, type(fld).__name__)
