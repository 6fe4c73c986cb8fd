"""Review's events: the entry review (进口) and the cases it creates."""
from marshmallow import Schema, fields

from shared.events import event_type
from shared.money import Money

SOURCE = "review"


@event_type(SOURCE, "review_step_opened", partner=True)
class ReviewStepOpened(Schema):
    """An application reached a review step; its clock starts. Subject: household_id, application_id."""

    step = fields.String(required=True, metadata={"doc": "policy step name, e.g. community_evaluation"})
    kind = fields.String(required=True, metadata={"doc": "evaluation | notice | committee | initial_opinion | joint_review"})
    level = fields.String(required=True, metadata={"doc": "community | township | district"})
    unit_code = fields.String(required=True, metadata={"doc": "division code of the unit that acts"})
    opened_on = fields.Date(required=True)
    due_on = fields.Date(allow_none=True, required=True, metadata={"doc": "statutory deadline (working days), or null"})


@event_type(SOURCE, "community_evaluated", partner=True)
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
    signed_by = fields.List(fields.Dict(), load_default=list,
                            metadata={"doc": "[{name, role}] of the participants who signed (accountable)"})


@event_type(SOURCE, "township_reviewed", partner=True)
class TownshipReviewed(Schema):
    """The township/street reviewed the application (评审委员会 or 初审意见). Subject: household_id, application_id."""

    township_code = fields.String(required=True)
    kind = fields.String(required=True, metadata={"doc": "committee | initial_opinion"})
    passed = fields.Boolean(required=True)
    members = fields.Integer(required=True, metadata={"doc": "committee members whose opinion was recorded"})
    unanimous = fields.Boolean(required=True)
    signed_by = fields.List(fields.Dict(), load_default=list,
                            metadata={"doc": "[{name, department, opinion}] of the members who signed"})


@event_type(SOURCE, "notice_requested")
class NoticeRequested(Schema):
    """Review asks notify to post a public notice (张榜公示/公布). Subject: household_id, application_id (, case_id)."""

    stage = fields.String(required=True, metadata={"doc": "the review step, or `result` for the published decision"})
    unit_code = fields.String(required=True, metadata={"doc": "community or township code whose board shows it"})
    days = fields.Integer(required=True, metadata={"doc": "posting period in calendar days"})
    household_size = fields.Integer(required=True)
    monthly_benefit = Money(allow_none=True, required=True, metadata={"doc": "for `result` notices"})
    blocking = fields.Boolean(required=True, metadata={"doc": "the review waits for notice_closed"})


@event_type(SOURCE, "reinvestigation_required", partner=True)
class ReinvestigationRequired(Schema):
    """An objection sent the application back to a home investigation. Subject: household_id, application_id."""

    community_code = fields.String(required=True)
    step = fields.String(required=True, metadata={"doc": "the step the objection interrupted"})
    objection_id = fields.String(required=True)


# Each partner form (``…ForPartners``, DESIGN §3.4a) declares the fields partners
# receive; the full event subclasses it and adds the rest, so a field is declared
# once and the partner form can only ever be a subset of the event.

class CaseApprovedForPartners(Schema):
    """What partners receive of ``case_approved``: no benefit, standard or gap
    (with the household size they give the verified income by subtraction)."""

    community_code = fields.String(required=True)
    township_code = fields.String(required=True)
    area_type = fields.String(required=True)
    household_size = fields.Integer(required=True)
    category = fields.String(required=True, metadata={"doc": "re-review category per policy"})
    start_month = fields.String(required=True, metadata={"doc": "YYYY-MM, the month after approval"})
    next_rereview_on = fields.Date(required=True)
    approved_on = fields.Date(required=True)
    policy = fields.String(required=True)


@event_type(SOURCE, "case_approved", partner=CaseApprovedForPartners)
class CaseApproved(CaseApprovedForPartners):
    """The district joint review approved: a case exists. Subject: household_id, application_id, case_id."""

    monthly_benefit = Money(required=True, metadata={"doc": "yuan per month, decimal string"})
    # added for payments (issue 5); absent from events emitted before
    standard_amount = Money(allow_none=True, metadata={"doc": "the guarantee standard (yuan per person per month) used"})
    benefit_gap = Money(allow_none=True, metadata={
        "doc": "standard × household size − verified income, unclamped (may be negative); the basis payments "
               "recalculates from on a standard change"})
    vulnerable_members = fields.Integer(allow_none=True, metadata={"doc": "members counted for 分类施保 extras"})
    benefit_overridden = fields.Boolean(allow_none=True, metadata={"doc": "the joint review set the benefit by hand"})


class ApplicationRejectedForPartners(Schema):
    """What partners receive of ``application_rejected``: not the reason (staff's words, may name figures)."""

    community_code = fields.String(required=True)
    step = fields.String(required=True)
    rejected_on = fields.Date(required=True)


@event_type(SOURCE, "application_rejected", partner=ApplicationRejectedForPartners)
class ApplicationRejected(ApplicationRejectedForPartners):
    """The application was refused at a step, with the reason. Subject: household_id, application_id."""

    reason = fields.String(required=True)


# --- dynamic management (动态管理, the exit 出口) -------------------------------------

#: the rules a proposal names (its ``rule``; the month-end rules of DESIGN §2.4, or ``manual``)
RULE_TWO_IN_A_ROW = "two_missed_checkins_in_a_row"
RULE_THREE_IN_A_YEAR = "three_missed_checkins_in_a_year"
RULE_UNEXCUSED_LABOUR = "unexcused_labour_absence"
RULE_REFUSED_WORK = "refused_suitable_work"
RULE_INCOME_ABOVE = "income_above_standard"
RULE_INCOME_CHANGED = "income_changed"
RULE_DEATH_REVIEW = "member_death_review"
RULE_CAMPAIGN = "campaign_inspection"
RULE_MANUAL = "manual"
RULE_VERIFICATION_CHANGE = "verification_change"


class _CaseFacts(Schema):
    """What every case change says, partner-safe (no staff's words)."""

    case_id = fields.String(required=True, metadata={"doc": "also in the subject"})
    household_id = fields.String(required=True, metadata={"doc": "also in the subject"})
    community_code = fields.String(required=True)
    township_code = fields.String(required=True)
    area_type = fields.String(required=True)
    household_size = fields.Integer(required=True, metadata={"doc": "persons guaranteed (保障人口) from now"})
    effective_month = fields.String(required=True, metadata={"doc": "YYYY-MM"})
    rule = fields.String(required=True, metadata={"doc": "the rule that proposed it, or `manual`"})


class _ProposalReason(Schema):
    reason = fields.String(required=True, metadata={"doc": "why, in words (the proposal's reason)"})


class CaseAdjustedForPartners(_CaseFacts):
    """What partners receive of ``case_adjusted``: the direction, no benefit, gap or reason."""

    direction = fields.String(required=True, metadata={"doc": "raised | lowered"})


@event_type(SOURCE, "case_adjusted", partner=CaseAdjustedForPartners)
class CaseAdjusted(_ProposalReason, CaseAdjustedForPartners):
    """A case's benefit was raised or lowered (approved proposal). Subject: household_id, application_id, case_id."""

    old_benefit = Money(required=True)
    new_benefit = Money(required=True)
    benefit_gap = Money(required=True, metadata={"doc": "standard × size − income, unclamped (may be negative)"})


class CaseCancelledForPartners(_CaseFacts):
    """What partners receive of ``case_cancelled``: no reason (staff's words)."""

    wrongly_included = fields.Boolean(required=True, metadata={"doc": "a campaign found it should never have "
                                                                      "been included (audit: who let them in)"})
    gradual_exit_until = fields.String(allow_none=True, required=True,
                                       metadata={"doc": "YYYY-MM: paid through that month, then stops; or null"})


@event_type(SOURCE, "case_cancelled", partner=CaseCancelledForPartners)
class CaseCancelled(_ProposalReason, CaseCancelledForPartners):
    """A case was cancelled after an approved proposal (never silently). Subject: household_id, application_id, case_id.

    ``effective_month`` is the first month NOT paid."""


@event_type(SOURCE, "review_due", partner=True)
class ReviewDue(Schema):
    """A case's re-review (复核) falls due soon: the community officer is reminded. Subject: household_id, case_id."""

    case_id = fields.String(required=True)
    household_id = fields.String(required=True)
    community_code = fields.String(required=True)
    township_code = fields.String(required=True)
    category = fields.String(required=True)
    due_on = fields.Date(required=True)


class CategoryChangedForPartners(Schema):
    """What partners receive of ``category_changed``: no reason (staff's words)."""

    community_code = fields.String(required=True)
    old_category = fields.String(required=True)
    new_category = fields.String(required=True)
    next_rereview_on = fields.Date(required=True)


@event_type(SOURCE, "category_changed", partner=CategoryChangedForPartners)
class CategoryChanged(CategoryChangedForPartners):
    """A case's category (re-review cadence) changed, with its reason. Subject: household, application, case ids."""

    reason = fields.String(required=True)


@event_type(SOURCE, "campaign_created", partner=True)
class CampaignCreated(Schema):
    """A re-inspection campaign (入户清查) over a unit's active cases. Subject: campaign_id."""

    campaign_id = fields.String(required=True)
    unit_code = fields.String(required=True)
    starts_on = fields.Date(required=True)
    ends_on = fields.Date(required=True)
    cases = fields.Integer(required=True, metadata={"doc": "active cases assigned to its teams"})


@event_type(SOURCE, "inspection_recorded", partner=True)
class InspectionRecorded(Schema):
    """A campaign's team recorded a case's result. Subject: campaign_id, household_id, case_id."""

    campaign_id = fields.String(required=True)
    case_id = fields.String(required=True)
    household_id = fields.String(required=True)
    community_code = fields.String(required=True)
    township_code = fields.String(required=True)
    result = fields.String(required=True, metadata={"doc": "kept | raised | lowered | cancelled | wrongly_included"})
    team = fields.String(required=True)


class ScheduleDay(Schema):
    date = fields.Date(required=True)
    workday = fields.Boolean(required=True, metadata={"doc": "true: a working day (e.g. 调休上班); false: a day off"})
    note = fields.String(required=True, metadata={"doc": "e.g. 春节, 国庆节调休上班"})


@event_type(SOURCE, "calendar_schedule_loaded")
class CalendarScheduleLoaded(Schema):
    """The bureau loaded the official working-day schedule (放假安排 with 调休) of
    one or more years; every service that counts working days uses it from now
    on (the listed days as listed, the other days of those years Monday–Friday).
    Replaces any earlier schedule of the same years. Subject: none."""

    years = fields.List(fields.Integer(), required=True, metadata={"doc": "the years the schedule covers"})
    days = fields.List(fields.Nested(ScheduleDay), required=True,
                       metadata={"doc": "every listed day of those years, in date order"})


# --- appeals (复核): DESIGN §2.8, docs/appeals.md ------------------------------------------

#: the rule a restoring or reverting change names (its ``rule``)
RULE_APPEAL = "appeal_upheld"


class _AppealFacts(Schema):
    """What every appeal event says, partner-safe (no grounds, no staff's words)."""

    appeal_id = fields.String(required=True, metadata={"doc": "also in the subject"})
    kind = fields.String(required=True, metadata={"doc": "rejection | cancellation | benefit_change"})
    community_code = fields.String(required=True)
    township_code = fields.String(required=True)
    deciding_unit = fields.String(required=True, metadata={"doc": "division code of the unit that decides"})


class AppealFiledForPartners(_AppealFacts):
    """What partners receive of ``appeal_filed``: not the grounds (the household's words)."""

    filed_on = fields.Date(required=True)
    filed_via = fields.String(required=True, metadata={"doc": "officer | online"})
    due_on = fields.Date(required=True, metadata={"doc": "decided by this day (working days)"})


@event_type(SOURCE, "appeal_filed", partner=AppealFiledForPartners)
class AppealFiled(AppealFiledForPartners):
    """A household asked for a review (复核) of a decision, within the policy's period.
    Subject: household_id, application_id, appeal_id (, case_id)."""

    grounds = fields.String(required=True, metadata={"doc": "why the household asks, in its words"})
    filed_by = fields.String(required=True, metadata={"doc": "the officer's user id, or `public` (online)"})
    decision_on = fields.Date(required=True, metadata={"doc": "the day of the decision under appeal"})
    proposal_id = fields.Integer(allow_none=True, required=True,
                                 metadata={"doc": "the approved proposal under appeal (cancellation, change)"})


class AppealDecidedForPartners(_AppealFacts):
    """What partners receive of ``appeal_decided``: the outcome, not the reason."""

    outcome = fields.String(required=True, metadata={"doc": "upheld | dismissed"})
    decided_on = fields.Date(required=True)
    on_time = fields.Boolean(required=True, metadata={"doc": "decided by its due day"})
    reopened_at = fields.String(allow_none=True, required=True, metadata={
        "doc": "upheld: the review step reopened, `reinvestigation`, `restored` (case) or `reverted` (benefit)"})


@event_type(SOURCE, "appeal_decided", partner=AppealDecidedForPartners)
class AppealDecided(AppealDecidedForPartners):
    """An appeal was decided, with its reason, by someone who took no part in the
    decision under appeal. Subject: household_id, application_id, appeal_id (, case_id)."""

    reason = fields.String(required=True)
    decided_by = fields.String(required=True, metadata={"doc": "user id of who decided (accountable)"})


@event_type(SOURCE, "application_reopened", partner=True)
class ApplicationReopened(Schema):
    """An upheld appeal reopened a rejected application (the review goes on from
    ``step``; ``reinvestigation``: a new home investigation first). Subject: household_id,
    application_id, appeal_id."""

    appeal_id = fields.String(required=True)
    community_code = fields.String(required=True)
    step = fields.String(required=True, metadata={"doc": "the review step reopened, or `reinvestigation`"})
    reopened_on = fields.Date(required=True)


@event_type(SOURCE, "case_restored", partner=True)
class CaseRestored(_CaseFacts):
    """An upheld appeal restored a cancelled case to active: it is paid again
    (``effective_month``: the first month paid again; the months the cancellation
    stopped are owed). Subject: household_id, application_id, case_id, appeal_id."""

    appeal_id = fields.String(required=True)
    cancelled_effective_month = fields.String(required=True,
                                              metadata={"doc": "YYYY-MM: the cancellation's first unpaid month"})
    restored_on = fields.Date(required=True)
