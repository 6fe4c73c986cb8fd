"""What notify's RPCs accept and answer (marshmallow)."""
from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from shared.divisions import DivisionCode
from shared.money import Money


class ObjectionSchema(Schema):
    """群众异议 as the officer records it for the person who objects."""

    notice_id = fields.String(required=True, validate=validate.Length(1, 36))
    text = fields.String(required=True, validate=validate.Length(1, 2000))
    anonymous = fields.Boolean(required=True, metadata={"doc": "the objector gives no name or contact"})
    contact_name = fields.String(load_default=None, validate=validate.Length(1, 50))
    contact_phone = fields.String(load_default=None, validate=validate.Regexp(r"^\+?[0-9\- ]{5,20}$"))

    @validates_schema(skip_on_field_errors=True)
    def _contact_matches_anonymity(self, data, **kwargs):
        if not data["text"].strip():
            raise ValidationError("the objection has no text", "text")
        if data["anonymous"]:
            for name in ("contact_name", "contact_phone"):
                if data[name] is not None:
                    raise ValidationError("an anonymous objection records no contact details", name)
        elif data["contact_name"] is None:
            raise ValidationError("required unless the objection is anonymous", "contact_name")


class PublicObjectionSchema(ObjectionSchema):
    """群众异议 given online on a public board (the gateway passes it on)."""

    unit_code = DivisionCode(required=True, metadata={"doc": "the board the notice is on"})


class PublicSheetSchema(Schema):
    """The printable sheet of a board (no notice_id) or of one notice on it."""

    unit_code = DivisionCode(required=True)
    notice_id = fields.String(load_default=None, validate=validate.Length(1, 36))


class ListNoticesSchema(Schema):
    """Arguments of list_notices."""

    unit_code = DivisionCode(required=True)
    active_only = fields.Boolean(load_default=True)


class UnitSchema(Schema):
    unit_code = DivisionCode(required=True)


class CloseDueSchema(Schema):
    as_of = fields.Date(load_default=None, metadata={"doc": "close notices whose period ended before this day"})


# --- answers -----------------------------------------------------------------

class NoticeOut(Schema):
    id = fields.String()
    household_id = fields.String()
    application_id = fields.String(allow_none=True)
    case_id = fields.String(allow_none=True)
    stage = fields.String()
    unit_code = fields.String()
    community_code = fields.String()
    head_name = fields.String()
    masked_resident_id = fields.String()
    household_size = fields.Integer()
    monthly_benefit = Money(allow_none=True)
    blocking = fields.Boolean()
    posted_on = fields.Date()
    closes_on = fields.Date()
    status = fields.String()
    closed_on = fields.Date(allow_none=True)


class ObjectionOut(Schema):
    id = fields.String()
    notice_id = fields.String()
    text = fields.String()
    anonymous = fields.Boolean()
    contact_name = fields.String(allow_none=True)
    contact_phone = fields.String(allow_none=True)
    filed_on = fields.Date()
    filed_by = fields.String()


class ReminderOut(Schema):
    id = fields.Integer()
    kind = fields.String()
    unit_code = fields.String()
    household_id = fields.String()
    case_id = fields.String(allow_none=True)
    due_on = fields.Date(allow_none=True)
    text = fields.String()
    created_on = fields.Date()
