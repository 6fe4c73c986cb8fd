"""What intake's RPCs accept and answer (marshmallow)."""
from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from shared.divisions import DivisionCode
from shared.money import Money
from shared.resident_id import ResidentId, birth_date_of, sex_of

RELATIONS = ("head", "spouse", "child", "parent", "grandchild", "grandparent", "sibling", "in_law", "other")
LABOUR_CAPACITY = ("full", "partial", "none")          # 劳动能力: 完全 / 部分 / 无
DISABILITY = ("none", "grade1", "grade2", "grade3", "grade4")  # 残疾等级
ILLNESS = ("none", "chronic", "serious")               # 慢性病 / 重病
EMPLOYMENT = ("employed", "flexible", "unemployed", "farming", "student", "retired", "preschool", "none")
INCOME_SOURCES = ("wages", "business", "farming", "pension", "transfer", "property", "alimony", "other")
ASSET_KINDS = ("house", "vehicle", "savings", "securities", "land", "livestock", "other")
DOCUMENT_KINDS = (
    "application_form",       # 低保申请书
    "household_register",     # 户口簿复印件
    "id_copies",              # 身份证复印件
    "income_proof",           # 收入证明
    "investigation_record",   # 入户调查表
    "evaluation_minutes",     # 民主评议记录
    "notice_record",          # 公示记录
    "township_review",        # 乡镇街审核意见
    "approval_decision",      # 审批表/决定
    "checkin_record",         # 续保登记
    "reinvestigation_record", # 复核调查
    "authorization",          # 家庭经济状况核对授权书 (signed_by: the members who signed)
    "verification_report",    # 核对报告 (filed by the verification service)
    "other",
)


class MemberSchema(Schema):
    id = fields.String(dump_only=True)
    name = fields.String(required=True, validate=validate.Length(1, 50))
    resident_id = ResidentId(required=True, load_only=True)
    relation = fields.String(required=True, validate=validate.OneOf(RELATIONS))
    birth_date = fields.Date(load_default=None)
    labour_capacity = fields.String(required=True, validate=validate.OneOf(LABOUR_CAPACITY))
    disability = fields.String(load_default="none", validate=validate.OneOf(DISABILITY))
    illness = fields.String(load_default="none", validate=validate.OneOf(ILLNESS))
    employment = fields.String(required=True, validate=validate.OneOf(EMPLOYMENT))

    @validates_schema(skip_on_field_errors=True)
    def _birth_date_matches_id(self, data, **kwargs):
        # the field has validated the number: read its parts without validating again
        born = birth_date_of(data["resident_id"], validated=True)
        data["sex"] = sex_of(data["resident_id"], validated=True)
        if data.get("birth_date") is None:
            data["birth_date"] = born
        elif data["birth_date"] != born:
            raise ValidationError("birth date does not match the resident ID number", "birth_date")


class IncomeSchema(Schema):
    member = fields.Integer(load_default=None, validate=validate.Range(min=0),
                            metadata={"doc": "index of the member in `members`; null for household income"})
    source = fields.String(required=True, validate=validate.OneOf(INCOME_SOURCES))
    monthly_amount = Money(required=True, minimum=0, maximum=1_000_000)


class AssetSchema(Schema):
    kind = fields.String(required=True, validate=validate.OneOf(ASSET_KINDS))
    description = fields.String(load_default="", validate=validate.Length(max=200))
    value = Money(required=True, minimum=0, maximum=100_000_000)


class HouseholdSchema(Schema):
    """A household as a community officer registers it (户籍 + 家庭状况)."""

    community_code = DivisionCode(level="community", required=True)
    address = fields.String(required=True, validate=validate.Length(1, 200))
    phone = fields.String(load_default=None, validate=validate.Regexp(r"^\+?[0-9\- ]{5,20}$"))
    area_type = fields.String(load_default=None, validate=validate.OneOf(("urban", "rural")))
    members = fields.List(fields.Nested(MemberSchema), required=True, validate=validate.Length(1, 30))
    incomes = fields.List(fields.Nested(IncomeSchema), load_default=list)
    assets = fields.List(fields.Nested(AssetSchema), load_default=list)

    @validates_schema(skip_on_field_errors=True)
    def _one_head_and_known_members(self, data, **kwargs):
        heads = [m for m in data["members"] if m["relation"] == "head"]
        if len(heads) != 1:
            raise ValidationError("a household has exactly one head (relation 'head')", "members")
        ids = [m["resident_id"] for m in data["members"]]
        if len(set(ids)) != len(ids):
            raise ValidationError("the same resident ID number appears twice", "members")
        for i, income in enumerate(data["incomes"]):
            if income["member"] is not None and income["member"] >= len(data["members"]):
                raise ValidationError({i: {"member": ["no such member"]}}, "incomes")


class UnitSchema(Schema):
    unit_code = DivisionCode(required=True)


class ApplicationSchema(Schema):
    household_id = fields.String(required=True)
    accepted_on = fields.Date(required=True)
    reason = fields.String(load_default="", validate=validate.Length(max=2000))


class InvestigatorSchema(Schema):
    user = fields.String(required=True)
    signed = fields.Boolean(required=True, metadata={"doc": "the investigator signed the record"})


class FamilySignatureSchema(Schema):
    member_id = fields.String(required=True)


class VerifiedIncomeSchema(Schema):
    member_id = fields.String(load_default=None)
    source = fields.String(required=True, validate=validate.OneOf(INCOME_SOURCES))
    monthly_amount = Money(required=True, minimum=0, maximum=1_000_000)


class InvestigationSchema(Schema):
    """入户调查表 as recorded after the visit."""

    application_id = fields.String(required=True)
    investigated_on = fields.Date(required=True)
    investigators = fields.List(fields.Nested(InvestigatorSchema), required=True)
    family_signatures = fields.List(fields.Nested(FamilySignatureSchema), load_default=list)
    verified_incomes = fields.List(fields.Nested(VerifiedIncomeSchema), load_default=list)
    verified_assets = fields.List(fields.Nested(AssetSchema), load_default=list)
    findings = fields.String(load_default="", validate=validate.Length(max=5000))


class DocumentSchema(Schema):
    household_id = fields.String(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(DOCUMENT_KINDS))
    title = fields.String(required=True, validate=validate.Length(1, 200))
    document_date = fields.Date(required=True)
    reference = fields.String(load_default=None, validate=validate.Length(max=36))  # column is VARCHAR(36)
    signed_by = fields.List(fields.String(validate=validate.Length(1, 36)), load_default=None,
                            metadata={"doc": "authorization (授权书): the ids of the members who signed"})

    @validates_schema
    def authorization_is_signed(self, data, **kwargs):
        if data["kind"] == "verification_report":
            raise ValidationError("filed by the verification service, not registered by hand", "kind")
        if data["kind"] == "authorization" and not data.get("signed_by"):
            raise ValidationError("an authorization names the members who signed it", "signed_by")
        if data["kind"] != "authorization" and data.get("signed_by"):
            raise ValidationError("only an authorization is signed by members", "signed_by")


class SubjectsSchema(Schema):
    """intake.verification_subjects: the households a verification round asks about."""

    household_ids = fields.List(fields.String(validate=validate.Length(1, 36)), required=True,
                                validate=validate.Length(1, 1000))


class Base64File(fields.String):
    """A file's bytes sent as base64 text (loads as bytes)."""

    def _deserialize(self, value, attr, data, **kwargs):
        import base64
        import binascii

        text = super()._deserialize(value, attr, data, **kwargs)
        if len(text) > 3 * 1024 * 1024:
            raise ValidationError("the file is too large")
        try:
            return base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise ValidationError("not base64") from None


class ScanSchema(Schema):
    """扫描件 of a filed document: the file's bytes as base64 (PDF, JPEG or PNG, at most SCAN_MAX_BYTES)."""

    document_id = fields.String(required=True, validate=validate.Length(1, 36))
    content_type = fields.String(required=True, validate=validate.Length(1, 100))
    content = Base64File(required=True, metadata={"doc": "base64 of the file"})


class CheckInSchema(Schema):
    household_id = fields.String(required=True)
    month = fields.String(required=True, validate=validate.Regexp(r"^\d{4}-(0[1-9]|1[0-2])$"))
    checked_in_on = fields.Date(required=True)


class SheetSchema(Schema):
    """The community's month sheet (月度签到 / 公益劳动): a unit and a month."""

    unit_code = DivisionCode(required=True)
    month = fields.String(required=True, validate=validate.Regexp(r"^\d{4}-(0[1-9]|1[0-2])$"))
    limit = fields.Integer(load_default=500, validate=validate.Range(1, 5000))


class LabourSchema(Schema):
    household_id = fields.String(required=True)
    member_id = fields.String(required=True)
    labour_date = fields.Date(required=True)
    activity = fields.String(required=True, validate=validate.Length(1, 100))
    #: refused: the member refused suitable work offered (拒绝适当工作, national rule)
    attendance = fields.String(required=True, validate=validate.OneOf(("attended", "excused", "unexcused",
                                                                       "refused")))


class DeathSchema(Schema):
    """A member's death, recorded as a fact (e.g. from the death certificate)."""

    household_id = fields.String(required=True)
    member_id = fields.String(required=True)
    died_on = fields.Date(required=True)


class LookupSchema(Schema):
    resident_id = ResidentId(required=True)


class ApplicantCheckSchema(Schema):
    """An application's number (its id, on the receipt) and the last four
    characters of the applicant's (the head's) resident ID: the public status page's question."""

    application_id = fields.String(required=True, validate=validate.Length(1, 36))
    id_last4 = fields.String(required=True, validate=validate.Regexp(r"^[0-9]{3}[0-9Xx]$"))


class ListApplicationsSchema(Schema):
    """Filters of list_applications (keyword arguments; None means "not given")."""

    community_code = DivisionCode(load_default=None)
    status = fields.String(load_default=None, validate=validate.Length(1, 20))
    limit = fields.Integer(load_default=200, validate=validate.Range(min=1, max=1000))


# --- answers -----------------------------------------------------------------

class MemberOut(Schema):
    id = fields.String()
    name = fields.String()
    resident_id = fields.String()
    relation = fields.String()
    birth_date = fields.Date()
    sex = fields.String()
    labour_capacity = fields.String()
    disability = fields.String()
    illness = fields.String()
    employment = fields.String()
    deceased_on = fields.Date(allow_none=True)


class IncomeOut(Schema):
    member_id = fields.String(allow_none=True)
    source = fields.String()
    monthly_amount = Money()


class AssetOut(Schema):
    kind = fields.String()
    description = fields.String()
    value = Money()


class ScanOut(Schema):
    id = fields.String()
    document_id = fields.String()
    content_type = fields.String()
    size = fields.Integer()
    sha256 = fields.String()
    uploaded_by = fields.String()
    uploaded_at = fields.DateTime()


class DocumentOut(Schema):
    id = fields.String()
    kind = fields.String()
    title = fields.String()
    document_date = fields.Date()
    reference = fields.String(allow_none=True)
    registered_by = fields.String()
    signed_by = fields.List(fields.String(), allow_none=True)


class HouseholdOut(Schema):
    id = fields.String()
    head_name = fields.String()
    address = fields.String()
    phone = fields.String(allow_none=True)
    community_code = fields.String()
    township_code = fields.String()
    district_code = fields.String()
    area_type = fields.String()
    version = fields.Integer()
    members = fields.List(fields.Nested(MemberOut))
    incomes = fields.List(fields.Nested(IncomeOut))
    assets = fields.List(fields.Nested(AssetOut))
    documents = fields.List(fields.Nested(DocumentOut))


class ApplicationOut(Schema):
    id = fields.String()
    household_id = fields.String()
    community_code = fields.String()
    accepted_on = fields.Date()
    accepted_by = fields.String()
    status = fields.String()
    investigation_deadline = fields.Date(allow_none=True)
    investigation_deadline_provisional = fields.Boolean()
    provisional = fields.Function(lambda a: bool(a.investigation_deadline_provisional),
                                  metadata={"doc": "the investigation start deadline was counted across a year "
                                                   "whose official working-day schedule is not loaded yet"})
    policy = fields.String()


class InvestigationOut(Schema):
    id = fields.String()
    application_id = fields.String()
    household_id = fields.String()
    investigated_on = fields.Date()
    investigators = fields.List(fields.Dict())
    family_signatures = fields.List(fields.Dict())
    findings = fields.String()
    verified_monthly_income = Money()
    verified_assets_value = Money()
    started_late = fields.Boolean()


class HouseholdRegisteredOut(Schema):
    """register_household's answer: the new household and its members' ids, in the order given."""

    household_id = fields.String()
    member_ids = fields.List(fields.String())


class HouseholdUpdatedOut(HouseholdRegisteredOut):
    version = fields.Integer(metadata={"doc": "the household record's new version"})
