"""The verification service's state (核对): rounds, requests to each bureau,
their members, the answers (encrypted), the discrepancies and their
resolution, pushed changes, and the cases it monitors.

A *round* is one verification of one household (for an application, or a
monitoring re-verification of its case); it sends one *request* per bureau.
ID numbers, what was declared and what a bureau found are encrypted at rest.
"""
from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.crypto import EncryptedDecimal, EncryptedString
from shared.db import RecordsEvents, platform_tables
from shared.workday_schedule import schedule_table


class Base(DeclarativeBase):
    pass


OUTBOX, INBOX = platform_tables(Base.metadata)
WORKDAY_SCHEDULE = schedule_table(Base.metadata)


def new_id() -> str:
    return str(uuid.uuid4())


class VerificationRound(RecordsEvents, Base):
    """核对: one household asked about, of every configured bureau, at once."""

    __tablename__ = "verification_round"
    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    household_id: Mapped[str] = mapped_column(sa.String(36), index=True)
    application_id: Mapped[str | None] = mapped_column(sa.String(36), nullable=True, index=True)
    case_id: Mapped[str | None] = mapped_column(sa.String(36), nullable=True, index=True)
    purpose: Mapped[str] = mapped_column(sa.String(12))            # application | monitoring
    community_code: Mapped[str] = mapped_column(sa.String(12), index=True)
    area_type: Mapped[str] = mapped_column(sa.String(5))
    household_size: Mapped[int] = mapped_column()
    policy: Mapped[str] = mapped_column(sa.String(32))
    requested_by: Mapped[str] = mapped_column(sa.String(64))
    requested_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    consent_document_id: Mapped[str] = mapped_column(sa.String(36))
    consent_signed_on: Mapped[date] = mapped_column(sa.Date)
    consent_valid_until: Mapped[date] = mapped_column(sa.Date)
    #: what the household declared when it was asked (JSON: incomes, assets)
    declared: Mapped[str] = mapped_column(EncryptedString)
    status: Mapped[str] = mapped_column(sa.String(10), default="open")   # open | complete
    revision: Mapped[int] = mapped_column(default=0)
    filed_on: Mapped[date | None] = mapped_column(sa.Date, nullable=True)


class BureauRequest(Base):
    """The request one bureau received: open until each of its members is answered."""

    __tablename__ = "bureau_request"
    __table_args__ = (sa.UniqueConstraint("round_id", "bureau", name="uq_request_round_bureau"),)
    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    round_id: Mapped[str] = mapped_column(sa.ForeignKey("verification_round.id"), index=True)
    bureau: Mapped[str] = mapped_column(sa.String(40), index=True)
    community_code: Mapped[str] = mapped_column(sa.String(12), index=True)
    sent_on: Mapped[date] = mapped_column(sa.Date)
    answer_by: Mapped[date] = mapped_column(sa.Date, index=True)
    answer_by_provisional: Mapped[bool] = mapped_column(default=False)
    status: Mapped[str] = mapped_column(sa.String(8), default="open", index=True)   # open | closed
    members: Mapped[int] = mapped_column()
    members_answered: Mapped[int] = mapped_column(default=0)
    reminders: Mapped[int] = mapped_column(default=0)
    last_reminded_on: Mapped[date | None] = mapped_column(sa.Date, nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True), nullable=True)


class RequestMember(Base):
    """A member a request asks about (the bureau names them by ``member_ref`` when it answers)."""

    __tablename__ = "request_member"
    request_id: Mapped[str] = mapped_column(sa.ForeignKey("bureau_request.id"), primary_key=True)
    member_ref: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(50))
    resident_id: Mapped[str] = mapped_column(EncryptedString)
    answered: Mapped[bool] = mapped_column(default=False)


class BureauAnswer(Base):
    """One member's answer from one bureau (or a change it reported on its own: ``pushed``)."""

    __tablename__ = "bureau_answer"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(sa.String(64), index=True)
    request_id: Mapped[str] = mapped_column(sa.ForeignKey("bureau_request.id"), index=True)
    round_id: Mapped[str] = mapped_column(sa.String(36), index=True)
    bureau: Mapped[str] = mapped_column(sa.String(40))
    member_ref: Mapped[str] = mapped_column(sa.String(36))
    outcome: Mapped[str] = mapped_column(sa.String(16))       # found | no_record | cannot_answer
    reason: Mapped[str | None] = mapped_column(EncryptedString(row_key="seal_id"), nullable=True)
    #: JSON list of {kind, description, amount, as_of}
    findings: Mapped[str] = mapped_column(EncryptedString(row_key="seal_id"))
    pushed: Mapped[bool] = mapped_column(default=False)
    answered_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    received_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    #: the row id its encrypted columns are bound to (the database numbers ``id`` at the INSERT)
    seal_id: Mapped[str] = mapped_column(sa.String(36), default=new_id, unique=True)


class BureauMessage(Base):
    """Every message taken from the answers' channel, once (accepted or refused): idempotence."""

    __tablename__ = "bureau_message"
    message_id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    publisher: Mapped[str] = mapped_column(sa.String(120), primary_key=True)
    bureau: Mapped[str | None] = mapped_column(sa.String(40), nullable=True)
    request_id: Mapped[str | None] = mapped_column(sa.String(36), nullable=True)
    accepted: Mapped[bool] = mapped_column()
    reason: Mapped[str | None] = mapped_column(sa.String(40), nullable=True)
    received_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))


class Discrepancy(Base):
    """A named rule found what was declared and what a bureau found apart."""

    __tablename__ = "discrepancy"
    __table_args__ = (sa.UniqueConstraint("round_id", "rule", "subject", name="uq_discrepancy_rule_subject"),)
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    round_id: Mapped[str] = mapped_column(sa.ForeignKey("verification_round.id"), index=True)
    rule: Mapped[str] = mapped_column(sa.String(40))
    #: what the rule looked at (a member, the household): one discrepancy per rule and subject
    subject: Mapped[str] = mapped_column(sa.String(64))
    bureau: Mapped[str] = mapped_column(sa.String(40))
    member_ref: Mapped[str | None] = mapped_column(sa.String(36), nullable=True)
    description: Mapped[str] = mapped_column(EncryptedString(row_key="seal_id"))
    declared: Mapped[Decimal | None] = mapped_column(EncryptedDecimal(row_key="seal_id"), nullable=True)
    found: Mapped[Decimal | None] = mapped_column(EncryptedDecimal(row_key="seal_id"), nullable=True)
    threshold: Mapped[Decimal | None] = mapped_column(EncryptedDecimal(row_key="seal_id"), nullable=True)
    status: Mapped[str] = mapped_column(sa.String(8), default="open")    # open | resolved
    resolution: Mapped[str | None] = mapped_column(sa.String(24), nullable=True)
    resolution_reason: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    resolved_by: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)
    resolved_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True), nullable=True)
    found_on: Mapped[date] = mapped_column(sa.Date)
    #: the row id its encrypted columns are bound to (the database numbers ``id`` at the INSERT)
    seal_id: Mapped[str] = mapped_column(sa.String(36), default=new_id, unique=True)


class MonitoredCase(Base):
    """An active case (from review's events) and when it is next re-verified (动态监测)."""

    __tablename__ = "monitored_case"
    case_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    household_id: Mapped[str] = mapped_column(sa.String(36), index=True)
    community_code: Mapped[str] = mapped_column(sa.String(12), index=True)
    policy: Mapped[str] = mapped_column(sa.String(32))
    status: Mapped[str] = mapped_column(sa.String(10), index=True)        # active | cancelled
    next_verification_on: Mapped[date] = mapped_column(sa.Date, index=True)


class PendingApplication(Base):
    """An application the policy would verify now, waiting for its household's authorization."""

    __tablename__ = "pending_application"
    application_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    household_id: Mapped[str] = mapped_column(sa.String(36), index=True)
    since: Mapped[date] = mapped_column(sa.Date)
