"""Review's events: the entry review (进口) and the cases it creates."""
from marshmallow import Schema, fields

from shared.events import event_type
from shared.money import Money

SOURCE = "review"


@event_type(SOURCE, "review_step_opened")
class ReviewStepOpened(Schema):
    """An application reached a review step; its clock starts. Subject: household_id, application_id."""

    step = fields.String(required=True, metadata={"doc": "policy step name, e.g. community_evaluation"})
    kind = fields.String(required=True, metadata={"doc": "evaluation | notice | committee | initial_opinion | joint_review"})
    level = fields.String(required=True, metadata={"doc": "community | township | district"})
    unit_code = fields.String(required=True, metadata={"doc": "division code of the unit that acts"})
    opened_on = fields.Date(required=True)
    due_on = fields.Date(allow_none=True, required=True, metadata={"doc": "statutory deadline (working days), or null"})


@event_type(SOURCE, "community_evaluated")
class CommunityEvaluated(Schema):
    """The community democratic evaluation (民主评议) was held. Subject: household_id, application_id."""

    community_code = fields.String(required=True)
    meeting_date = fields.Date(required=True)
    passed = fields.Boolean(required=True)
    participants = fields.Integer(required=True)
    votes_for = fields.Integer(required=True)
    votes_against = fields.Integer(required=True)
    abstentions = fields.Integer(required=True)
    skipped = fields.Boolean(required=True, metadata={"doc": "skipped as the policy allows (no objection)"})


@event_type(SOURCE, "township_reviewed")
class TownshipReviewed(Schema):
    """The township/street reviewed the application (评审委员会 or 初审意见). Subject: household_id, application_id."""

    township_code = fields.String(required=True)
    kind = fields.String(required=True, metadata={"doc": "committee | initial_opinion"})
    passed = fields.Boolean(required=True)
    members = fields.Integer(required=True, metadata={"doc": "committee members whose opinion was recorded"})
    unanimous = fields.Boolean(required=True)


@event_type(SOURCE, "notice_requested")
class NoticeRequested(Schema):
    """Review asks notify to post a public notice (张榜公示/公布). Subject: household_id, application_id (, case_id)."""

    stage = fields.String(required=True, metadata={"doc": "the review step, or `result` for the published decision"})
    unit_code = fields.String(required=True, metadata={"doc": "community or township code whose board shows it"})
    days = fields.Integer(required=True, metadata={"doc": "posting period in calendar days"})
    household_size = fields.Integer(required=True)
    monthly_benefit = Money(allow_none=True, required=True, metadata={"doc": "for `result` notices"})
    blocking = fields.Boolean(required=True, metadata={"doc": "the review waits for notice_closed"})


@event_type(SOURCE, "reinvestigation_required")
class ReinvestigationRequired(Schema):
    """An objection sent the application back to a home investigation. Subject: household_id, application_id."""

    community_code = fields.String(required=True)
    step = fields.String(required=True, metadata={"doc": "the step the objection interrupted"})
    objection_id = fields.String(required=True)


@event_type(SOURCE, "case_approved")
class CaseApproved(Schema):
    """The district joint review approved: a case exists. Subject: household_id, application_id, case_id."""

    community_code = fields.String(required=True)
    township_code = fields.String(required=True)
    area_type = fields.String(required=True)
    household_size = fields.Integer(required=True)
    monthly_benefit = Money(required=True, metadata={"doc": "yuan per month, decimal string"})
    category = fields.String(required=True, metadata={"doc": "re-review category per policy"})
    start_month = fields.String(required=True, metadata={"doc": "YYYY-MM, the month after approval"})
    next_rereview_on = fields.Date(required=True)
    approved_on = fields.Date(required=True)
    policy = fields.String(required=True)
    # added for payments (issue 5); absent from events emitted before
    standard_amount = Money(allow_none=True, metadata={"doc": "the guarantee standard (yuan per person per month) used"})
    benefit_gap = Money(allow_none=True, metadata={
        "doc": "standard × household size − verified income, unclamped (may be negative); the basis payments "
               "recalculates from on a standard change"})
    vulnerable_members = fields.Integer(allow_none=True, metadata={"doc": "members counted for 分类施保 extras"})
    benefit_overridden = fields.Boolean(allow_none=True, metadata={"doc": "the joint review set the benefit by hand"})


@event_type(SOURCE, "application_rejected")
class ApplicationRejected(Schema):
    """The application was refused at a step, with the reason. Subject: household_id, application_id."""

    community_code = fields.String(required=True)
    step = fields.String(required=True)
    reason = fields.String(required=True)
    rejected_on = fields.Date(required=True)
