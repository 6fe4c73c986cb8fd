"""Payments' input and output schemas, and the review events it consumes
that review's branch registers (case_adjusted, case_cancelled): read here
with local schemas so both branches merge without a second registration."""
from __future__ import annotations

import re

from marshmallow import Schema, ValidationError, fields, validate, validates

from shared.money import Money

AREA_TYPES = ("urban", "rural")
DIVISION = validate.Regexp(r"^\d{6}(\d{3}(\d{3})?)?$", error="a division code of 6, 9 or 12 digits")
MONTH = validate.Regexp(r"^\d{4}-(0[1-9]|1[0-2])$", error="a month YYYY-MM")
PERIOD = validate.Regexp(r"^\d{4}-((0[1-9]|1[0-2])|Q[1-4])$", error="a month YYYY-MM or a quarter YYYY-Qn")
ACCOUNT = re.compile(r"^\d{12,30}$")


class SetStandardSchema(Schema):
    division_code = fields.String(required=True, validate=DIVISION)
    area_type = fields.String(required=True, validate=validate.OneOf(AREA_TYPES))
    effective_from = fields.Date(required=True)
    effective_to = fields.Date(load_default=None, allow_none=True)
    monthly_amount = Money(required=True, minimum="0.01", metadata={"doc": "yuan per person per month, > 0"})


class StandardQuerySchema(Schema):
    division_code = fields.String(load_default=None, allow_none=True, validate=DIVISION)
    area_type = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(AREA_TYPES))
    on = fields.Date(load_default=None, allow_none=True)


class StandardOut(Schema):
    id = fields.String()
    division_code = fields.String()
    area_type = fields.String()
    effective_from = fields.Date()
    effective_to = fields.Date(allow_none=True)
    monthly_amount = Money()
    set_by = fields.String()


class StandardChangeOut(Schema):
    id = fields.String()
    standard_id = fields.String()
    division_code = fields.String()
    area_type = fields.String()
    effective_from = fields.Date()
    old_amount = Money(allow_none=True)
    new_amount = Money()
    cases_raised = fields.Integer()
    cases_lowered = fields.Integer()
    cases_unchanged = fields.Integer()
    cases_held = fields.Integer()


class SetPayeeSchema(Schema):
    """Where a case's benefit is paid: the account holder and the account (银行账号)."""

    case_id = fields.String(required=True, validate=validate.Length(1, 36))
    payee_name = fields.String(required=True, validate=validate.Length(1, 40))
    account_number = fields.String(required=True)
    bank_name = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=60))

    @validates("account_number")
    def _account(self, value, **kwargs):
        if not ACCOUNT.match(value):
            raise ValidationError("an account number is 12 to 30 digits")


class CreateRunSchema(Schema):
    period = fields.String(required=True, validate=PERIOD)
    area_type = fields.String(required=True, validate=validate.OneOf(AREA_TYPES))
    division_code = fields.String(required=True, validate=DIVISION)
    as_of = fields.Date(load_default=None, allow_none=True, metadata={
        "doc": "prepare the run as of this day (administrator only: the demo, catching up)"})


class RunIdSchema(Schema):
    run_id = fields.String(required=True, validate=validate.Length(1, 36))


class ExportSchema(RunIdSchema):
    format = fields.String(required=True, validate=validate.Length(1, 40))


class ImportReturnSchema(ExportSchema):
    content = fields.String(required=True, metadata={"doc": "the return file, base64"})


class ListRunsSchema(Schema):
    division_code = fields.String(load_default=None, allow_none=True, validate=DIVISION)
    period = fields.String(load_default=None, allow_none=True, validate=PERIOD)


class ListCasesSchema(Schema):
    division_code = fields.String(load_default=None, allow_none=True, validate=DIVISION)
    area_type = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(AREA_TYPES))
    limit = fields.Integer(load_default=1000, validate=validate.Range(1, 10_000))


class MonthsSchema(Schema):
    months = fields.List(fields.String(validate=MONTH), required=True, validate=validate.Length(1, 24))


class RunOut(Schema):
    id = fields.String()
    period = fields.String()
    area_type = fields.String()
    division_code = fields.String()
    status = fields.String()
    lines = fields.Integer()
    total = Money()
    held = fields.Integer()
    carried = fields.Integer()
    prepared_by = fields.String()
    prepared_on = fields.Date()
    approved_by = fields.String(allow_none=True)
    approved_at = fields.AwareDateTime(allow_none=True)
    exported_format = fields.String(allow_none=True)
    reconciled_at = fields.AwareDateTime(allow_none=True)


class LineOut(Schema):
    id = fields.Integer()
    case_id = fields.String()
    household_id = fields.String()
    period = fields.String()
    community_code = fields.String()
    area_type = fields.String()
    household_size = fields.Integer()
    months = fields.Integer()
    amount = Money()
    payee_name_masked = fields.String(allow_none=True)
    account_masked = fields.String(allow_none=True)
    status = fields.String()
    failure_reason = fields.String(allow_none=True)
    paid_on = fields.Date(allow_none=True)
    carried_from = fields.Integer(allow_none=True)


class HoldBackOut(Schema):
    case_id = fields.String()
    household_id = fields.String()
    community_code = fields.String()
    reason = fields.String()


class LedgerOut(Schema):
    case_id = fields.String()
    household_id = fields.String()
    community_code = fields.String()
    area_type = fields.String()
    household_size = fields.Integer()
    monthly_benefit = Money()
    benefit_from_month = fields.String()
    standard_amount = Money(allow_none=True)
    benefit_gap = Money(allow_none=True)
    vulnerable_members = fields.Integer()
    start_month = fields.String()
    stop_month = fields.String(allow_none=True)
    status = fields.String()
    hold_reason = fields.String(allow_none=True)
    hold_from_month = fields.String(allow_none=True)
    payee_name_masked = fields.String(allow_none=True)
    account_masked = fields.String(allow_none=True)


class BenefitPeriodOut(Schema):
    from_month = fields.String()
    amount = Money()


class StatementLineOut(LineOut):
    run_id = fields.String()
    run_status = fields.String()


class CaseStatementOut(Schema):
    """One case's ledger by month: its benefit periods and what each run paid (accounts masked)."""

    case = fields.Nested(LedgerOut)
    periods = fields.List(fields.Nested(BenefitPeriodOut))
    lines = fields.List(fields.Nested(StatementLineOut))
