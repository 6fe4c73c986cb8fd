"""What the audit service's queries accept."""
from marshmallow import Schema, ValidationError, fields, validates_schema

SUBJECTS = ("household_id", "application_id", "case_id")


class TraceSchema(Schema):
    """Exactly one of: household_id, application_id, case_id, operator, unit_code."""

    household_id = fields.UUID(load_default=None)
    application_id = fields.UUID(load_default=None)
    case_id = fields.UUID(load_default=None)
    operator = fields.String(load_default=None, validate=lambda s: 0 < len(s) <= 100)
    unit_code = fields.String(load_default=None, validate=lambda s: s.isdigit() and len(s) <= 12)
    date_from = fields.Date(load_default=None, data_key="from")
    date_to = fields.Date(load_default=None, data_key="to")
    limit = fields.Integer(load_default=1000, validate=lambda n: 0 < n <= 10000)

    @validates_schema
    def one_subject(self, data, **kwargs):
        given = [k for k in SUBJECTS + ("operator", "unit_code") if data.get(k) is not None]
        if len(given) != 1:
            raise ValidationError("give exactly one of household_id, application_id, case_id, operator, unit_code",
                                  "_schema")


class CaseSchema(Schema):
    case_id = fields.UUID(required=True)


class HouseholdSchema(Schema):
    household_id = fields.UUID(required=True)


class DateSchema(Schema):
    date = fields.Date(required=True)


class StatisticsSchema(Schema):
    date = fields.Date(required=True)
    unit_code = fields.String(load_default=None, validate=lambda s: s.isdigit() and len(s) <= 12)
