"""Review's state: applications under the entry review (进口) and the cases
they become."""
from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.crypto import EncryptedDecimal
from shared.db import RecordsEvents, platform_tables
from shared.staff import staff_model
from shared.workday_schedule import schedule_table


class Base(DeclarativeBase):
    pass


OUTBOX, INBOX = platform_tables(Base.metadata)
#: the official working-day schedules review owns (shared/workday_schedule.py)
WORKDAY_SCHEDULE = schedule_table(Base.metadata)


def new_id() -> str:
    return str(uuid.uuid4())


class ReviewFile(RecordsEvents, Base):
    """An application's way through the review: which step, since when, due when."""

    __tablename__ = "review_file"
    application_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    household_id: Mapped[str] = mapped_column(sa.String(36), index=True)
    community_code: Mapped[str] = mapped_column(sa.String(12), index=True)
    township_code: Mapped[str] = mapped_column(sa.String(9), index=True)
    area_type: Mapped[str] = mapped_column(sa.String(5))
    policy: Mapped[str] = mapped_column(sa.String(32))
    accepted_on: Mapped[date] = mapped_column(sa.Date)
    household_size: Mapped[int] = mapped_column()
    #: awaiting_investigation | in_review | awaiting_reinvestigation | approved | rejected
    status: Mapped[str] = mapped_column(sa.String(24), index=True)
    step: Mapped[str | None] = mapped_column(sa.String(32), nullable=True)
    step_opened_on: Mapped[date | None] = mapped_column(sa.Date, nullable=True)
    step_due_on: Mapped[date | None] = mapped_column(sa.Date, nullable=True)
    process_due_on: Mapped[date | None] = mapped_column(sa.Date, nullable=True)
    #: the deadline's count crossed a provisional day (a year without its official schedule)
    step_due_provisional: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    process_due_provisional: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    investigators: Mapped[list] = mapped_column(sa.JSON, default=list)   # [{user, name}] of the latest investigation
    investigation_id: Mapped[str | None] = mapped_column(sa.String(36), nullable=True)
    objections: Mapped[int] = mapped_column(default=0)
    notice_id: Mapped[str | None] = mapped_column(sa.String(36), nullable=True)
    decided_on: Mapped[date | None] = mapped_column(sa.Date, nullable=True)
    rejection_reason: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    #: who recorded the rejection (the evaluation's or township's recorder, or who rejected it)
    rejected_by: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)
    flags: Mapped[list] = mapped_column(sa.JSON, default=list)
    version: Mapped[int] = mapped_column(default=1)

    __mapper_args__ = {"version_id_col": version}


#: the worklist's look-up: the open files (a few) among every decided one, within a unit
sa.Index("ix_review_file_status_community", ReviewFile.status, ReviewFile.community_code)


class CommunityEvaluation(Base):
    """民主评议: the meeting, who took part and signed, the votes."""

    __tablename__ = "community_evaluation"
    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    application_id: Mapped[str] = mapped_column(sa.ForeignKey("review_file.application_id"), index=True)
    meeting_date: Mapped[date | None] = mapped_column(sa.Date, nullable=True)
    participants: Mapped[list] = mapped_column(sa.JSON)
    votes_for: Mapped[int] = mapped_column(default=0)
    votes_against: Mapped[int] = mapped_column(default=0)
    abstentions: Mapped[int] = mapped_column(default=0)
    passed: Mapped[bool] = mapped_column()
    skipped: Mapped[bool] = mapped_column(default=False)
    remarks: Mapped[str] = mapped_column(sa.Text, default="")
    recorded_by: Mapped[str] = mapped_column(sa.String(64))
    recorded_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))


class TownshipReview(Base):
    """乡镇街审核: the committee's opinions, or the township's initial opinion."""

    __tablename__ = "township_review"
    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    application_id: Mapped[str] = mapped_column(sa.ForeignKey("review_file.application_id"), index=True)
    kind: Mapped[str] = mapped_column(sa.String(16))
    meeting_date: Mapped[date] = mapped_column(sa.Date)
    members: Mapped[list] = mapped_column(sa.JSON)
    passed: Mapped[bool] = mapped_column()
    remarks: Mapped[str] = mapped_column(sa.Text, default="")
    recorded_by: Mapped[str] = mapped_column(sa.String(64))
    recorded_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))


class JointReviewSignature(Base):
    """会审: one of the three distinct people in three roles signs."""

    __tablename__ = "joint_review_signature"
    __table_args__ = (
        sa.UniqueConstraint("application_id", "role", name="uq_joint_review_role"),
        sa.UniqueConstraint("application_id", "user", name="uq_joint_review_user"),
    )
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    application_id: Mapped[str] = mapped_column(sa.ForeignKey("review_file.application_id"), index=True)
    role: Mapped[str] = mapped_column(sa.String(32))
    user: Mapped[str] = mapped_column(sa.String(64))
    name: Mapped[str] = mapped_column(sa.String(50))
    signed_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    benefit_override: Mapped[Decimal | None] = mapped_column(sa.Numeric(12, 2), nullable=True)
    override_reason: Mapped[str | None] = mapped_column(sa.Text, nullable=True)


class Case(RecordsEvents, Base):
    """低保对象: an approved household, its category and monthly benefit."""

    __tablename__ = "case"
    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    application_id: Mapped[str] = mapped_column(sa.String(36), unique=True)
    household_id: Mapped[str] = mapped_column(sa.String(36), index=True)
    community_code: Mapped[str] = mapped_column(sa.String(12), index=True)
    township_code: Mapped[str] = mapped_column(sa.String(9), index=True)
    area_type: Mapped[str] = mapped_column(sa.String(5))
    household_size: Mapped[int] = mapped_column()
    standard: Mapped[Decimal] = mapped_column(sa.Numeric(12, 2))
    verified_income: Mapped[Decimal] = mapped_column(EncryptedDecimal)
    monthly_benefit: Mapped[Decimal] = mapped_column(sa.Numeric(12, 2))
    benefit_override_reason: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    category: Mapped[str] = mapped_column(sa.String(16))
    start_month: Mapped[str] = mapped_column(sa.String(7))
    next_rereview_on: Mapped[date] = mapped_column(sa.Date)
    status: Mapped[str] = mapped_column(sa.String(16), default="active")
    approved_on: Mapped[date] = mapped_column(sa.Date)
    policy: Mapped[str] = mapped_column(sa.String(32))
    # --- dynamic management (动态管理) ---
    last_rereview_on: Mapped[date | None] = mapped_column(sa.Date, nullable=True)
    ended_on: Mapped[date | None] = mapped_column(sa.Date, nullable=True)   # the day the cancellation was decided
    #: first month NOT paid once cancelled; with a gradual exit, paid through ``gradual_exit_until``
    end_month: Mapped[str | None] = mapped_column(sa.String(7), nullable=True)
    gradual_exit_until: Mapped[str | None] = mapped_column(sa.String(7), nullable=True)
    #: 分类施保: members the policy counts as vulnerable at approval (extras per member)
    vulnerable_members: Mapped[int] = mapped_column(default=0, server_default="0")


#: the month-end job reads active cases by their re-review date
sa.Index("ix_case_status_rereview", Case.status, Case.next_rereview_on)


class GuaranteeStandard(Base):
    """低保标准 as payments set it (payments.standard_changed): the standards
    review fixes benefits with, over the configured STANDARDS_FILE."""

    __tablename__ = "guarantee_standard"
    division_code: Mapped[str] = mapped_column(sa.String(12), primary_key=True)
    area_type: Mapped[str] = mapped_column(sa.String(5), primary_key=True)
    effective_from: Mapped[date] = mapped_column(sa.Date, primary_key=True)
    monthly_amount: Mapped[Decimal] = mapped_column(sa.Numeric(12, 2))


# --- dynamic management (动态管理, the exit 出口) -----------------------------------

class HouseholdCheckIn(Base):
    """续保登记 as intake recorded it (intake.checkin_recorded): the month-end
    check-in rules read these, set-based."""

    __tablename__ = "household_checkin"
    __table_args__ = (sa.UniqueConstraint("household_id", "month", name="uq_household_checkin_month"),)
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    household_id: Mapped[str] = mapped_column(sa.String(36))
    month: Mapped[str] = mapped_column(sa.String(7))


class LabourFact(Base):
    """公益劳动 attendance as intake recorded it (intake.labour_recorded)."""

    __tablename__ = "labour_fact"
    __table_args__ = (sa.UniqueConstraint("member_id", "labour_date", "activity", name="uq_labour_fact"),)
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    household_id: Mapped[str] = mapped_column(sa.String(36), index=True)
    member_id: Mapped[str] = mapped_column(sa.String(36))
    labour_date: Mapped[date] = mapped_column(sa.Date)
    activity: Mapped[str] = mapped_column(sa.String(100))
    #: attended | excused | unexcused | refused (refused suitable work, 拒绝适当工作)
    attendance: Mapped[str] = mapped_column(sa.String(20))


class CaseProposal(Base):
    """A proposal to adjust or cancel a case: made by a named rule over a
    recorded fact (or by an officer, rule ``manual``), decided by the people
    the policy names, in order. One proposal per (case, rule, fact), ever."""

    __tablename__ = "case_proposal"
    __table_args__ = (sa.UniqueConstraint("case_id", "rule", "fact", name="uq_case_proposal_fact"),)
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(sa.ForeignKey("case.id"), index=True)
    rule: Mapped[str] = mapped_column(sa.String(40))
    fact: Mapped[str] = mapped_column(sa.String(160))
    reason: Mapped[str] = mapped_column(sa.Text)
    #: cancel | adjust (raise or lower to ``proposed_*``) | stop_share | rereview
    action: Mapped[str] = mapped_column(sa.String(16))
    proposed_income: Mapped[Decimal | None] = mapped_column(EncryptedDecimal(row_key="seal_id"), nullable=True)
    #: the row id the proposed income's token is bound to (known before the INSERT; ``id`` is not)
    seal_id: Mapped[str] = mapped_column(sa.String(36), default=new_id, unique=True)
    proposed_size: Mapped[int | None] = mapped_column(nullable=True)
    gradual_exit_months: Mapped[int] = mapped_column(default=0)
    wrongly_included: Mapped[bool] = mapped_column(default=False)
    #: pending | approved | rejected | applied (a rule acting alone, e.g. bringing a re-review forward)
    #: | withdrawn (the case was cancelled by another proposal meanwhile)
    status: Mapped[str] = mapped_column(sa.String(10), default="pending", index=True)
    proposed_on: Mapped[date] = mapped_column(sa.Date)
    proposed_by: Mapped[str] = mapped_column(sa.String(64))
    approvals: Mapped[list] = mapped_column(sa.JSON, default=list)   # [{role, user, name, on, remarks}]
    decided_on: Mapped[date | None] = mapped_column(sa.Date, nullable=True)
    decision_reason: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    #: what the approved proposal did to the case: cancelled | adjusted | unchanged (None: not applied)
    outcome: Mapped[str | None] = mapped_column(sa.String(10), nullable=True)
    #: the case before it (an upheld appeal reverts a benefit change to these)
    previous_benefit: Mapped[Decimal | None] = mapped_column(sa.Numeric(12, 2), nullable=True)
    previous_size: Mapped[int | None] = mapped_column(nullable=True)
    previous_income: Mapped[Decimal | None] = mapped_column(EncryptedDecimal(row_key="seal_id"), nullable=True)
    version: Mapped[int] = mapped_column(default=1)

    __mapper_args__ = {"version_id_col": version}


class Appeal(RecordsEvents, Base):
    """复核: a household asks for a review of a rejection, a cancellation or a
    benefit change; someone who took no part in that decision decides it."""

    __tablename__ = "appeal"
    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    #: rejection | cancellation | benefit_change
    kind: Mapped[str] = mapped_column(sa.String(16))
    #: the decision under appeal, once: ``rejection:<application>:<n>`` or ``proposal:<id>``
    decision_key: Mapped[str] = mapped_column(sa.String(90), unique=True)
    application_id: Mapped[str] = mapped_column(sa.String(36), index=True)
    case_id: Mapped[str | None] = mapped_column(sa.String(36), nullable=True)
    proposal_id: Mapped[int | None] = mapped_column(nullable=True)
    household_id: Mapped[str] = mapped_column(sa.String(36))
    community_code: Mapped[str] = mapped_column(sa.String(12), index=True)
    township_code: Mapped[str] = mapped_column(sa.String(9))
    policy: Mapped[str] = mapped_column(sa.String(32))
    decided_on_original: Mapped[date] = mapped_column(sa.Date)
    original_reason: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    filed_on: Mapped[date] = mapped_column(sa.Date)
    #: officer (through the community) | online (the public pages)
    filed_via: Mapped[str] = mapped_column(sa.String(8))
    filed_by: Mapped[str] = mapped_column(sa.String(64))
    grounds: Mapped[str] = mapped_column(sa.Text)
    due_on: Mapped[date] = mapped_column(sa.Date)
    due_provisional: Mapped[bool] = mapped_column(default=False)
    #: who took part in the decision under appeal: [{user, name, part}] (user or name may be null)
    participants: Mapped[list] = mapped_column(sa.JSON, default=list)
    #: open | upheld | dismissed
    status: Mapped[str] = mapped_column(sa.String(10), default="open", index=True)
    decided_on: Mapped[date | None] = mapped_column(sa.Date, nullable=True)
    decided_by: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)
    decided_by_name: Mapped[str | None] = mapped_column(sa.String(50), nullable=True)
    decision_reason: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    #: what the upheld appeal reopened: the step, ``reinvestigation``, ``restored`` or ``reverted``
    reopened_at: Mapped[str | None] = mapped_column(sa.String(32), nullable=True)
    version: Mapped[int] = mapped_column(default=1)

    __mapper_args__ = {"version_id_col": version}


class ReviewDueSent(Base):
    """A review_due reminder went out for this case and due date: once each."""

    __tablename__ = "review_due_sent"
    case_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    due_on: Mapped[date] = mapped_column(sa.Date, primary_key=True)
    sent_on: Mapped[date] = mapped_column(sa.Date)


class Campaign(RecordsEvents, Base):
    """入户清查: a re-inspection of every active case of a unit by inspection teams."""

    __tablename__ = "campaign"
    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    unit_code: Mapped[str] = mapped_column(sa.String(12), index=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    starts_on: Mapped[date] = mapped_column(sa.Date)
    ends_on: Mapped[date] = mapped_column(sa.Date)
    teams: Mapped[list] = mapped_column(sa.JSON)
    created_by: Mapped[str] = mapped_column(sa.String(64))
    created_on: Mapped[date] = mapped_column(sa.Date)


class CampaignInspection(Base):
    """One case of a campaign: its team, and the result once inspected."""

    __tablename__ = "campaign_inspection"
    __table_args__ = (sa.UniqueConstraint("campaign_id", "case_id", name="uq_campaign_case"),)
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    campaign_id: Mapped[str] = mapped_column(sa.ForeignKey("campaign.id"), index=True)
    case_id: Mapped[str] = mapped_column(sa.String(36))
    household_id: Mapped[str] = mapped_column(sa.String(36))
    community_code: Mapped[str] = mapped_column(sa.String(12))
    township_code: Mapped[str] = mapped_column(sa.String(9))
    team: Mapped[str] = mapped_column(sa.String(100))
    #: kept | raised | lowered | cancelled | wrongly_included (None: not inspected yet)
    result: Mapped[str | None] = mapped_column(sa.String(20), nullable=True)
    remarks: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    inspected_on: Mapped[date | None] = mapped_column(sa.Date, nullable=True)
    recorded_by: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)
    proposal_id: Mapped[int | None] = mapped_column(nullable=True)


#: the staff registry, projected from identity's events (shared/staff.py):
#: who holds which role in which unit, asked when someone signs or approves
Staff = staff_model(Base)


class VerificationState(Base):
    """What review knows of an application's verification (核对), from verification.report_updated:
    the latest revision of its report — which bureaus have not answered, how many discrepancies are open."""

    __tablename__ = "verification_state"
    application_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    round_id: Mapped[str] = mapped_column(sa.String(36))
    revision: Mapped[int] = mapped_column()
    complete: Mapped[bool] = mapped_column()
    bureaus_missing: Mapped[list] = mapped_column(sa.JSON, default=list)
    answers_missing: Mapped[int] = mapped_column()
    #: the last answer deadline of the bureaus still missing (a report may count as complete after it)
    answers_due_by: Mapped[date | None] = mapped_column(sa.Date, nullable=True)
    open_discrepancies: Mapped[int] = mapped_column()
    discrepancy_rules: Mapped[list] = mapped_column(sa.JSON, default=list)
