"""The verification protocol with partner bureaus (核对), version 1.

What a bureau's IT implements (docs/verification.md is the contract in
prose, with worked examples): the messages that arrive in its own vhost on
the queue ``verification.requests`` and the ones it publishes to the
exchange ``verification.answers`` there. JSON (UTF-8), one object a
message, ``content_type: application/json``; the routing key is the
message's ``type``. Unknown fields are ignored: adding a field is a
compatible change, renaming or removing one makes a new ``version``.

These schemas import nothing of Dibao's but marshmallow and the money
field; a bureau may use them to check its own messages.
"""
from __future__ import annotations

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema

from shared.money import Money

PROTOCOL_VERSION = 1

#: what each bureau is asked about, and the kinds of finding it answers with
BUREAU_KINDS: dict[str, tuple[str, ...]] = {
    "public_security": ("vehicle",),                                   # 公安: 机动车
    "natural_resources": ("real_estate",),                             # 自然资源/住建: 不动产
    "human_resources": ("pension", "wage", "unemployment_benefit"),    # 人社: 养老金、工资、失业金
    "tax": ("taxable_income",),                                        # 税务: 个人所得
    "market_regulation": ("business",),                                # 市场监管: 工商登记
    "housing_fund": ("housing_fund",),                                 # 住房公积金
    "bank": ("deposit",),                                              # 银行: 存款
}
BUREAU_TITLES = {"public_security": "公安局", "natural_resources": "自然资源和规划局", "human_resources": "人社局",
                 "tax": "税务局", "market_regulation": "市场监管局", "housing_fund": "住房公积金中心", "bank": "银行"}
FINDING_KINDS = tuple(sorted({k for kinds in BUREAU_KINDS.values() for k in kinds}))
#: kinds whose amount is a monthly income (yuan a month); the others are values (yuan)
INCOME_KINDS = ("pension", "wage", "unemployment_benefit", "taxable_income")
OUTCOMES = ("found", "no_record", "cannot_answer")

#: why an answer or a change report is refused (``answer_refused.reason``)
REFUSAL_REASONS = {
    "malformed": "the message does not match its schema (detail names the fields)",
    "not_authenticated": "the message does not carry the bureau's broker user in user_id",
    "unknown_request": "no request with this request_id was sent",
    "not_asked": "this request was sent to another bureau",
    "request_closed": "the request is closed: every member was answered, or it was withdrawn",
    "member_not_in_request": "a member_ref that is not in the request",
    "member_already_answered": "this member of the request was answered before (by another message)",
    "consent_expired": "the household's authorization no longer lets the bureau report on this person",
}


class Strict(Schema):
    class Meta:
        unknown = EXCLUDE


class Consent(Strict):
    signed_on = fields.Date(required=True, metadata={"doc": "the household's authorization (授权书) was signed"})
    valid_until = fields.Date(required=True, metadata={"doc": "the bureau may report changes until this day"})


class MemberToVerify(Strict):
    member_ref = fields.String(required=True, validate=validate.Length(1, 36),
                               metadata={"doc": "opaque reference; the answer names the member by it"})
    name = fields.String(required=True)
    resident_id = fields.String(required=True, metadata={"doc": "18-digit resident ID number"})


class VerificationRequest(Strict):
    """``verification_request`` (and ``verification_reminder``: the same, re-sent for the members
    still unanswered when the deadline has passed, with ``reminder`` ≥ 1)."""

    type = fields.String(required=True, validate=validate.OneOf(("verification_request", "verification_reminder")))
    version = fields.Integer(required=True)
    message_id = fields.String(required=True)
    request_id = fields.String(required=True, metadata={"doc": "what the answer refers to"})
    bureau = fields.String(required=True)
    sent_at = fields.AwareDateTime(required=True, format="iso")
    answer_by = fields.Date(required=True, metadata={"doc": "the last day to answer (working days)"})
    purpose = fields.String(required=True, validate=validate.OneOf(("application", "monitoring")))
    reminder = fields.Integer(load_default=0)
    consent = fields.Nested(Consent, required=True)
    kinds = fields.List(fields.String(), required=True, metadata={"doc": "the kinds of finding asked for"})
    members = fields.List(fields.Nested(MemberToVerify), required=True, validate=validate.Length(min=1))


class Finding(Strict):
    kind = fields.String(required=True, validate=validate.OneOf(FINDING_KINDS))
    description = fields.String(required=True, validate=validate.Length(1, 200))
    amount = Money(required=True, allow_none=True, minimum=0,
                   metadata={"doc": "yuan: a month for pension, wage, unemployment_benefit, taxable_income; "
                                    "else the value (vehicle, real_estate, business capital, deposit, housing_fund)"})
    as_of = fields.Date(required=True)


class MemberAnswer(Strict):
    member_ref = fields.String(required=True, validate=validate.Length(1, 36))
    outcome = fields.String(required=True, validate=validate.OneOf(OUTCOMES))
    reason = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=500))
    findings = fields.List(fields.Nested(Finding), load_default=list)

    @validates_schema
    def outcome_matches(self, data, **kwargs):
        if data["outcome"] == "found" and not data["findings"]:
            raise ValidationError("found: at least one finding", "findings")
        if data["outcome"] != "found" and data["findings"]:
            raise ValidationError(f"{data['outcome']}: no findings", "findings")
        if data["outcome"] == "cannot_answer" and not (data.get("reason") or "").strip():
            raise ValidationError("cannot_answer: say why", "reason")


class VerificationAnswer(Strict):
    """``verification_answer``: one or more members of one request (each member answered once)."""

    type = fields.String(required=True, validate=validate.Equal("verification_answer"))
    version = fields.Integer(required=True, validate=validate.Range(1, PROTOCOL_VERSION))
    message_id = fields.String(required=True, validate=validate.Length(1, 64),
                               metadata={"doc": "unique per message; a message sent twice is applied once"})
    request_id = fields.String(required=True, validate=validate.Length(1, 36))
    bureau = fields.String(required=True)
    answered_at = fields.AwareDateTime(required=True, format="iso")
    members = fields.List(fields.Nested(MemberAnswer), required=True, validate=validate.Length(min=1))

    @validates_schema
    def members_once(self, data, **kwargs):
        refs = [m["member_ref"] for m in data["members"]]
        if len(refs) != len(set(refs)):
            raise ValidationError("a member is answered twice in one message", "members")


class ChangeReport(Strict):
    """``change_report``: the bureau reports, on its own, a change for a person it was asked
    about, while the household's authorization is valid (a new vehicle, a pension started)."""

    type = fields.String(required=True, validate=validate.Equal("change_report"))
    version = fields.Integer(required=True, validate=validate.Range(1, PROTOCOL_VERSION))
    message_id = fields.String(required=True, validate=validate.Length(1, 64))
    request_id = fields.String(required=True, validate=validate.Length(1, 36),
                               metadata={"doc": "the request under which the person was asked"})
    bureau = fields.String(required=True)
    member_ref = fields.String(required=True, validate=validate.Length(1, 36))
    reported_at = fields.AwareDateTime(required=True, format="iso")
    findings = fields.List(fields.Nested(Finding), required=True, validate=validate.Length(min=1))


class AnswerRefused(Strict):
    """``answer_refused``: sent back to the bureau; nothing of the refused message was applied."""

    type = fields.String(required=True, validate=validate.Equal("answer_refused"))
    version = fields.Integer(required=True)
    message_id = fields.String(required=True)
    refused_message_id = fields.String(required=True, allow_none=True)
    request_id = fields.String(required=True, allow_none=True)
    reason = fields.String(required=True, validate=validate.OneOf(tuple(REFUSAL_REASONS)))
    detail = fields.String(required=True)


INCOMING = {"verification_answer": VerificationAnswer, "change_report": ChangeReport}
