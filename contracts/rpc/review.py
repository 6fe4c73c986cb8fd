"""What review's RPCs accept and answer."""
from marshmallow import Schema, fields, validate

from shared.divisions import DivisionCode
from shared.money import Money

ID = {"required": True, "validate": validate.Length(1, 36)}


class ParticipantSchema(Schema):
    name = fields.String(required=True, validate=validate.Length(1, 50))
    role = fields.String(required=True, validate=validate.OneOf(("representative", "officer", "panel", "other")),
                         metadata={"doc": "residents' representative (居民代表), officer, panel member"})
    signed = fields.Boolean(required=True)
    related_to_applicant = fields.Boolean(load_default=False)


class EvaluationSchema(Schema):
    """民主评议记录."""

    application_id = fields.String(**ID)
    meeting_date = fields.Date(required=True)
    participants = fields.List(fields.Nested(ParticipantSchema), required=True, validate=validate.Length(1, 200))
    votes_for = fields.Integer(required=True, validate=validate.Range(min=0))
    votes_against = fields.Integer(required=True, validate=validate.Range(min=0))
    abstentions = fields.Integer(load_default=0, validate=validate.Range(min=0))
    passed = fields.Boolean(required=True)
    remarks = fields.String(load_default="", validate=validate.Length(max=2000))


class SkipSchema(Schema):
    application_id = fields.String(**ID)
    reason = fields.String(required=True, validate=validate.Length(1, 500))


class CommitteeMemberSchema(Schema):
    name = fields.String(required=True, validate=validate.Length(1, 50))
    department = fields.String(required=True, validate=validate.OneOf(
        ("civil_affairs", "finance", "justice", "police", "affairs_office", "other")))
    opinion = fields.String(required=True, validate=validate.OneOf(("agree", "disagree")))
    signed = fields.Boolean(required=True)


class TownshipReviewSchema(Schema):
    """评审委员会 (every member's opinion) or the township's initial opinion."""

    application_id = fields.String(**ID)
    meeting_date = fields.Date(required=True)
    members = fields.List(fields.Nested(CommitteeMemberSchema), load_default=list, validate=validate.Length(max=50))
    passed = fields.Boolean(required=True)
    remarks = fields.String(load_default="", validate=validate.Length(max=2000))


class JointReviewSchema(Schema):
    """One of the three signatures of the district joint review (会审)."""

    application_id = fields.String(**ID)
    role = fields.String(required=True, validate=validate.OneOf(("deputy_director", "centre_director", "investigator")))
    benefit_override = Money(load_default=None, allow_none=True, minimum=0, maximum=100_000)
    override_reason = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=2000))


class RejectSchema(Schema):
    application_id = fields.String(**ID)
    reason = fields.String(required=True, validate=validate.Length(1, 2000))


class OverdueSchema(Schema):
    unit_code = DivisionCode(required=True)
    as_of = fields.Date(load_default=None)


class WorklistSchema(Schema):
    """待办: the caller's unit unless a unit within it is named."""

    unit_code = DivisionCode(load_default=None)
    as_of = fields.Date(load_default=None, metadata={"doc": "judge lateness on this day (default: today)"})
    limit = fields.Integer(load_default=200, validate=validate.Range(min=1, max=1000))


class FilesSchema(Schema):
    """The review files of a unit (default: the caller's), of one status if given."""

    unit_code = DivisionCode(load_default=None)
    status = fields.String(load_default=None, validate=validate.OneOf(
        ("awaiting_investigation", "in_review", "awaiting_reinvestigation", "approved", "rejected")))
    limit = fields.Integer(load_default=200, validate=validate.Range(min=1, max=1000))


class ReviewFileOut(Schema):
    application_id = fields.String()
    household_id = fields.String()
    community_code = fields.String()
    township_code = fields.String()
    policy = fields.String()
    status = fields.String()
    step = fields.String(allow_none=True)
    step_opened_on = fields.Date(allow_none=True)
    step_due_on = fields.Date(allow_none=True)
    process_due_on = fields.Date(allow_none=True)
    step_due_provisional = fields.Boolean()
    process_due_provisional = fields.Boolean()
    provisional = fields.Function(lambda f: bool(f.step_due_provisional or f.process_due_provisional),
                                  metadata={"doc": "a deadline was counted across a year whose official "
                                                   "working-day schedule is not loaded yet"})
    accepted_on = fields.Date()
    objections = fields.Integer()
    decided_on = fields.Date(allow_none=True)
    rejection_reason = fields.String(allow_none=True)
    flags = fields.List(fields.Dict())
    investigators = fields.List(fields.Dict())
    notice_id = fields.String(allow_none=True, metadata={"doc": "notify's notice standing for the open notice step"})


class PublicStatusOut(Schema):
    """An application's status as the public status page answers it: the
    step and its dates, nothing about the household, the votes or the money."""

    status = fields.String()
    step = fields.String(allow_none=True)
    accepted_on = fields.Date()
    step_opened_on = fields.Date(allow_none=True)
    step_due_on = fields.Date(allow_none=True)
    process_due_on = fields.Date(allow_none=True)
    decided_on = fields.Date(allow_none=True)


class WorkItemOut(ReviewFileOut):
    """An open file on a worklist: the file, the level that acts next, whether it is late."""

    level = fields.String(metadata={"doc": "community | township | district: who acts next"})
    overdue = fields.Boolean(metadata={"doc": "past the step's or the whole process's deadline"})


class SeatOut(Schema):
    role = fields.String(metadata={"doc": "deputy_director | centre_director | investigator"})
    signed = fields.Boolean()
    user = fields.String()
    name = fields.String()
    signed_at = fields.DateTime()
    benefit_override = Money(allow_none=True)
    override_reason = fields.String(allow_none=True)


class BenefitCalculationOut(Schema):
    """How the benefit comes about: standard × size − verified income, the formula, 分类施保 extras, the minimum."""

    standard = Money()
    household_size = fields.Integer()
    verified_income = Money()
    gap = Money(metadata={"doc": "standard × household size − verified monthly income"})
    formula = fields.String(metadata={"doc": "gap | banded"})
    vulnerable_members = fields.Integer()
    extra_per_vulnerable_member = Money()
    extras = Money()
    before_extras = Money()
    minimum_benefit = Money(allow_none=True)
    benefit = Money()


class VerificationOnSheetOut(Schema):
    """The 核对 report as review knows it, and the rule that keeps the signatures waiting (if any)."""

    report_required = fields.Boolean(metadata={"doc": "the policy approves only on a complete report"})
    has_report = fields.Boolean()
    complete = fields.Boolean(metadata={"doc": "every bureau answered"})
    bureaus_missing = fields.List(fields.String())
    answers_due_by = fields.Date(allow_none=True)
    open_discrepancies = fields.Integer()
    blocked_by = fields.String(allow_none=True, metadata={
        "doc": "verification_report_required | verification_discrepancy_open | None"})


class JointReviewSheetOut(Schema):
    """会审单: the three seats and who signed each; the benefit while the joint review is open."""

    application_id = fields.String()
    status = fields.String()
    step = fields.String(allow_none=True)
    seats = fields.List(fields.Nested(SeatOut))
    investigators = fields.List(fields.Dict())
    calculation = fields.Nested(BenefitCalculationOut, allow_none=True)
    verification = fields.Nested(VerificationOnSheetOut)


class CaseOut(Schema):
    id = fields.String()
    application_id = fields.String()
    household_id = fields.String()
    community_code = fields.String()
    area_type = fields.String()
    household_size = fields.Integer()
    standard = Money()
    monthly_benefit = Money()
    vulnerable_members = fields.Integer(metadata={"doc": "分类施保: members counted vulnerable at approval"})
    benefit_override_reason = fields.String(allow_none=True)
    category = fields.String()
    start_month = fields.String()
    next_rereview_on = fields.Date()
    status = fields.String()
    approved_on = fields.Date()
    policy = fields.String()
    township_code = fields.String()
    last_rereview_on = fields.Date(allow_none=True)
    ended_on = fields.Date(allow_none=True)
    end_month = fields.String(allow_none=True)
    gradual_exit_until = fields.String(allow_none=True)


# --- dynamic management (动态管理) ---------------------------------------------------

class MonthEndSchema(Schema):
    as_of = fields.Date(load_default=None, metadata={"doc": "judge the month ended by this day (default: today)"})


class UnitAsOfSchema(Schema):
    unit_code = DivisionCode(required=True)
    as_of = fields.Date(load_default=None)


class CategoryChangeSchema(Schema):
    case_id = fields.String(**ID)
    category = fields.String(required=True, validate=validate.Length(1, 16))
    reason = fields.String(load_default="", validate=validate.Length(max=2000))


class RereviewSchema(Schema):
    case_id = fields.String(**ID)
    reviewed_on = fields.Date(load_default=None)
    remarks = fields.String(load_default="", validate=validate.Length(max=2000))


class ProposeSchema(Schema):
    case_id = fields.String(**ID)
    action = fields.String(required=True, validate=validate.OneOf(("adjust", "cancel")))
    reason = fields.String(load_default="", validate=validate.Length(max=2000))
    verified_income = Money(load_default=None, allow_none=True, minimum=0, maximum=1_000_000)
    household_size = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(1, 30))
    gradual_exit_months = fields.Integer(load_default=0, validate=validate.Range(0, 24))


class ApproveSchema(Schema):
    proposal_id = fields.Integer(required=True, strict=False)
    remarks = fields.String(load_default="", validate=validate.Length(max=2000))


class RejectProposalSchema(Schema):
    proposal_id = fields.Integer(required=True, strict=False)
    reason = fields.String(load_default="", validate=validate.Length(max=2000))


class ListProposalsSchema(Schema):
    unit_code = DivisionCode(required=True)
    status = fields.String(load_default=None, allow_none=True,
                           validate=validate.OneOf(("pending", "approved", "rejected", "applied", "withdrawn")))


class CampaignSchema(Schema):
    """入户清查: a unit, a date range, the inspection teams."""

    unit_code = DivisionCode(required=True)
    name = fields.String(load_default="", validate=validate.Length(max=200))
    starts_on = fields.Date(required=True)
    ends_on = fields.Date(required=True)
    teams = fields.List(fields.String(validate=validate.Length(1, 100)), required=True,
                        validate=validate.Length(1, 100))


class InspectionSchema(Schema):
    campaign_id = fields.String(**ID)
    case_id = fields.String(**ID)
    result = fields.String(required=True, validate=validate.OneOf(
        ("kept", "raised", "lowered", "cancelled", "wrongly_included")))
    verified_income = Money(load_default=None, allow_none=True, minimum=0, maximum=1_000_000)
    household_size = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(1, 30))
    remarks = fields.String(load_default="", validate=validate.Length(max=2000))


class ProposalOut(Schema):
    id = fields.Integer()
    case_id = fields.String()
    rule = fields.String()
    fact = fields.String()
    reason = fields.String()
    action = fields.String()
    proposed_size = fields.Integer(allow_none=True)
    gradual_exit_months = fields.Integer()
    wrongly_included = fields.Boolean()
    status = fields.String()
    proposed_on = fields.Date()
    proposed_by = fields.String()
    approvals = fields.List(fields.Dict())
    decided_on = fields.Date(allow_none=True)
    decision_reason = fields.String(allow_none=True)


class CampaignOut(Schema):
    id = fields.String()
    unit_code = fields.String()
    name = fields.String()
    starts_on = fields.Date()
    ends_on = fields.Date()
    teams = fields.List(fields.String())
    created_by = fields.String()
    created_on = fields.Date()


class CampaignsSchema(Schema):
    """The campaigns touching a unit (organised for it, above it or within it)."""

    unit_code = DivisionCode(load_default=None, allow_none=True)


class InspectionsQuerySchema(Schema):
    """Which of a campaign's cases: within a community (default: the caller's unit), how many."""

    community_code = DivisionCode(load_default=None, allow_none=True)
    limit = fields.Integer(load_default=200, validate=validate.Range(1, 5000))


class CampaignInspectionsSchema(InspectionsQuerySchema):
    campaign_id = fields.String(**ID)


class InspectionOut(Schema):
    case_id = fields.String()
    household_id = fields.String()
    community_code = fields.String()
    township_code = fields.String()
    team = fields.String()
    result = fields.String(allow_none=True)
    remarks = fields.String(allow_none=True)
    inspected_on = fields.Date(allow_none=True)
    recorded_by = fields.String(allow_none=True)
    proposal_id = fields.Integer(allow_none=True)



# --- appeals (复核) ---------------------------------------------------------------------

APPEAL_KINDS = ("rejection", "cancellation", "benefit_change")


class AppealFileSchema(Schema):
    """复核申请, recorded by an officer for the household: the application whose rejection,
    cancellation or benefit change is appealed (the latest such decision), and why."""

    application_id = fields.String(**ID)
    kind = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(APPEAL_KINDS),
                         metadata={"doc": "optional: the decision appealed must be of this kind"})
    grounds = fields.String(required=True, validate=validate.Length(1, 2000))


class PublicAppealSchema(Schema):
    """An online appeal (the public page, after intake matched the applicant's ID ending)."""

    application_id = fields.String(**ID)
    grounds = fields.String(required=True, validate=validate.Length(1, 2000))


class AppealDecideSchema(Schema):
    appeal_id = fields.String(**ID)
    outcome = fields.String(required=True, validate=validate.OneOf(("upheld", "dismissed")))
    reason = fields.String(load_default="", validate=validate.Length(max=2000),
                           metadata={"doc": "required: why (a decision without one is refused)"})


class ListAppealsSchema(Schema):
    """The appeals of a unit (default: the caller's), of one status if given."""

    unit_code = DivisionCode(load_default=None)
    status = fields.String(load_default=None, allow_none=True,
                           validate=validate.OneOf(("open", "upheld", "dismissed")))
    as_of = fields.Date(load_default=None, metadata={"doc": "judge lateness on this day (default: today)"})
    limit = fields.Integer(load_default=200, validate=validate.Range(min=1, max=1000))


class AppealOut(Schema):
    id = fields.String()
    kind = fields.String(metadata={"doc": "rejection | cancellation | benefit_change"})
    application_id = fields.String()
    case_id = fields.String(allow_none=True)
    proposal_id = fields.Integer(allow_none=True)
    household_id = fields.String()
    community_code = fields.String()
    township_code = fields.String()
    deciding_unit = fields.Function(lambda a: a.community_code[:6])
    policy = fields.String()
    decided_on_original = fields.Date(metadata={"doc": "the day of the decision under appeal"})
    original_reason = fields.String(allow_none=True)
    filed_on = fields.Date()
    filed_via = fields.String(metadata={"doc": "officer | online"})
    filed_by = fields.String()
    grounds = fields.String()
    due_on = fields.Date(metadata={"doc": "to be decided by (working days)"})
    due_provisional = fields.Boolean(metadata={"doc": "counted across a provisional year"})
    participants = fields.List(fields.Dict(), metadata={"doc": "[{part, user, name}] who took part in the decision"})
    status = fields.String(metadata={"doc": "open | upheld | dismissed"})
    decided_on = fields.Date(allow_none=True)
    decided_by = fields.String(allow_none=True)
    decided_by_name = fields.String(allow_none=True)
    decision_reason = fields.String(allow_none=True)
    reopened_at = fields.String(allow_none=True)


class AppealItemOut(AppealOut):
    """An appeal on a list: with whether it is late on the day asked."""

    overdue = fields.Boolean(metadata={"doc": "open and past its decision deadline"})


class PublicAppealOut(Schema):
    """What the public page answers: the kind and the dates, nothing of the record."""

    kind = fields.String()
    filed_on = fields.Date()
    due_on = fields.Date()
    status = fields.String()
