"""Intake's state: households and their file (一户一档).

ID numbers and amounts are encrypted at rest (``EncryptedString`` /
``EncryptedDecimal``, each token bound to its table, column and row:
shared/sealing.py); a member is found by ID number through
``resident_id_index``, a keyed blind index. Incomes and assets, whose ids
the database numbers, carry a ``seal_id`` made before the INSERT: the row id
their tokens are bound to.
"""
from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from shared.crypto import EncryptedDecimal, EncryptedString
from shared.db import RecordsEvents, platform_tables
from shared.staff import staff_model
from shared.workday_schedule import schedule_table


class Base(DeclarativeBase):
    pass


OUTBOX, INBOX = platform_tables(Base.metadata)
#: the official working-day schedules, as review.calendar_schedule_loaded brings them
WORKDAY_SCHEDULE = schedule_table(Base.metadata)


def new_id() -> str:
    return str(uuid.uuid4())


#: the staff registry, projected from identity's events (shared/staff.py):
#: who may be named as an investigator (工作人员)
Staff = staff_model(Base)


class Household(RecordsEvents, Base):
    """户: the unit the guarantee is granted to."""

    __tablename__ = "household"
    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    head_name: Mapped[str] = mapped_column(sa.String(50))
    address: Mapped[str] = mapped_column(sa.String(200))
    phone: Mapped[str | None] = mapped_column(EncryptedString, nullable=True)
    community_code: Mapped[str] = mapped_column(sa.String(12), index=True)
    township_code: Mapped[str] = mapped_column(sa.String(9), index=True)
    district_code: Mapped[str] = mapped_column(sa.String(6), index=True)
    area_type: Mapped[str] = mapped_column(sa.String(5))  # urban 城镇 | rural 农村
    registered_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    registered_by: Mapped[str] = mapped_column(sa.String(64))
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    version: Mapped[int] = mapped_column(default=1)

    members: Mapped[list["Member"]] = relationship(back_populates="household", cascade="all, delete-orphan",
                                                   order_by="Member.position")
    incomes: Mapped[list["Income"]] = relationship(cascade="all, delete-orphan", order_by="Income.id")
    assets: Mapped[list["Asset"]] = relationship(cascade="all, delete-orphan", order_by="Asset.id")
    documents: Mapped[list["FileDocument"]] = relationship(cascade="all, delete-orphan",
                                                           order_by="FileDocument.registered_at")


class Member(Base):
    """家庭成员."""

    __tablename__ = "member"
    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    household_id: Mapped[str] = mapped_column(sa.ForeignKey("household.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(default=0)
    name: Mapped[str] = mapped_column(sa.String(50))
    resident_id: Mapped[str] = mapped_column(EncryptedString)
    resident_id_index: Mapped[str] = mapped_column(sa.String(64), unique=True)
    relation: Mapped[str] = mapped_column(sa.String(16))
    birth_date: Mapped[date] = mapped_column(sa.Date)
    sex: Mapped[str] = mapped_column(sa.String(1))
    labour_capacity: Mapped[str] = mapped_column(sa.String(16))
    disability: Mapped[str] = mapped_column(sa.String(16))
    illness: Mapped[str] = mapped_column(sa.String(16))
    employment: Mapped[str] = mapped_column(sa.String(16))
    deceased_on: Mapped[date | None] = mapped_column(sa.Date, nullable=True)

    household: Mapped[Household] = relationship(back_populates="members")


class Income(Base):
    """A member's (or the household's) declared monthly income by source."""

    __tablename__ = "income"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    household_id: Mapped[str] = mapped_column(sa.ForeignKey("household.id", ondelete="CASCADE"), index=True)
    member_id: Mapped[str | None] = mapped_column(sa.ForeignKey("member.id", ondelete="CASCADE"), nullable=True)
    source: Mapped[str] = mapped_column(sa.String(16))
    monthly_amount: Mapped[Decimal] = mapped_column(EncryptedDecimal(row_key="seal_id"))
    #: the row id the amount's token is bound to (known before the INSERT; ``id`` is not)
    seal_id: Mapped[str] = mapped_column(sa.String(36), default=new_id, unique=True)

    member: Mapped["Member | None"] = relationship()  # orders the INSERTs: member first


class Asset(Base):
    __tablename__ = "asset"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    household_id: Mapped[str] = mapped_column(sa.ForeignKey("household.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(sa.String(16))
    description: Mapped[str] = mapped_column(sa.String(200), default="")
    value: Mapped[Decimal] = mapped_column(EncryptedDecimal(row_key="seal_id"))
    #: the row id the value's token is bound to (known before the INSERT; ``id`` is not)
    seal_id: Mapped[str] = mapped_column(sa.String(36), default=new_id, unique=True)


class Application(RecordsEvents, Base):
    """低保申请, accepted at the community."""

    __tablename__ = "application"
    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    household_id: Mapped[str] = mapped_column(sa.ForeignKey("household.id"), index=True)
    community_code: Mapped[str] = mapped_column(sa.String(12), index=True)
    accepted_on: Mapped[date] = mapped_column(sa.Date)
    accepted_by: Mapped[str] = mapped_column(sa.String(64))
    reason: Mapped[str] = mapped_column(sa.Text, default="")
    status: Mapped[str] = mapped_column(sa.String(20), default="submitted")  # submitted | investigated
    investigation_deadline: Mapped[date | None] = mapped_column(sa.Date, nullable=True)
    #: the deadline's count crossed a provisional day (a year without its official schedule)
    investigation_deadline_provisional: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    policy: Mapped[str] = mapped_column(sa.String(32))
    submitted_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))

    household: Mapped[Household] = relationship()
    investigations: Mapped[list["HomeInvestigation"]] = relationship(back_populates="application",
                                                                     order_by="HomeInvestigation.recorded_at")


#: the worklist's look-up: the applications of one status within a unit
sa.Index("ix_application_status_community", Application.status, Application.community_code)


class HomeInvestigation(RecordsEvents, Base):
    """入户调查: who went, what they verified, who signed."""

    __tablename__ = "home_investigation"
    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    application_id: Mapped[str] = mapped_column(sa.ForeignKey("application.id"), index=True)
    household_id: Mapped[str] = mapped_column(sa.ForeignKey("household.id"), index=True)
    investigated_on: Mapped[date] = mapped_column(sa.Date)
    investigators: Mapped[list] = mapped_column(sa.JSON)         # [{user, name, signed_at}]
    family_signatures: Mapped[list] = mapped_column(sa.JSON)     # [{member_id, name}]
    findings: Mapped[str] = mapped_column(sa.Text, default="")
    verified_monthly_income: Mapped[Decimal] = mapped_column(EncryptedDecimal)
    verified_assets_value: Mapped[Decimal] = mapped_column(EncryptedDecimal)
    verified_detail: Mapped[str] = mapped_column(EncryptedString)  # JSON of verified incomes and assets
    started_late: Mapped[bool] = mapped_column(default=False)
    recorded_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    recorded_by: Mapped[str] = mapped_column(sa.String(64))

    application: Mapped[Application] = relationship(back_populates="investigations")


class FileDocument(Base):
    """A document registered in the household's file (一户一档)."""

    __tablename__ = "file_document"
    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    household_id: Mapped[str] = mapped_column(sa.ForeignKey("household.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(sa.String(32))
    title: Mapped[str] = mapped_column(sa.String(200))
    document_date: Mapped[date] = mapped_column(sa.Date)
    reference: Mapped[str | None] = mapped_column(sa.String(36), nullable=True)
    registered_by: Mapped[str] = mapped_column(sa.String(64))
    registered_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    #: an authorization (授权书): the ids of the members who signed it
    signed_by: Mapped[list | None] = mapped_column(sa.JSON, nullable=True)


class DocumentScan(Base):
    """A scan (扫描件) of a filed document: the file itself is sealed (AES-GCM,
    bound to this row's id) under ``SCAN_DIR``, outside any web root; the row
    says what it is. The original name is not kept (it may carry a name)."""

    __tablename__ = "document_scan"
    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    document_id: Mapped[str] = mapped_column(sa.ForeignKey("file_document.id", ondelete="CASCADE"), index=True)
    household_id: Mapped[str] = mapped_column(sa.String(36), index=True)
    content_type: Mapped[str] = mapped_column(sa.String(40))
    size: Mapped[int] = mapped_column(sa.Integer)
    sha256: Mapped[str] = mapped_column(sa.String(64))
    uploaded_by: Mapped[str] = mapped_column(sa.String(64))
    uploaded_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))


class CheckIn(Base):
    """续保登记: the household's book stamped for a month."""

    __tablename__ = "checkin"
    __table_args__ = (sa.UniqueConstraint("household_id", "month", name="uq_checkin_household_month"),)
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    household_id: Mapped[str] = mapped_column(sa.ForeignKey("household.id"), index=True)
    month: Mapped[str] = mapped_column(sa.String(7))  # YYYY-MM
    checked_in_on: Mapped[date] = mapped_column(sa.Date)
    recorded_by: Mapped[str] = mapped_column(sa.String(64))


class LabourAttendance(Base):
    """公益劳动: a member's attendance at public-welfare labour."""

    __tablename__ = "labour_attendance"
    __table_args__ = (sa.UniqueConstraint("member_id", "labour_date", "activity", name="uq_labour_member_day"),)
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    household_id: Mapped[str] = mapped_column(sa.ForeignKey("household.id"), index=True)
    member_id: Mapped[str] = mapped_column(sa.ForeignKey("member.id"))
    labour_date: Mapped[date] = mapped_column(sa.Date)
    activity: Mapped[str] = mapped_column(sa.String(100))
    attendance: Mapped[str] = mapped_column(sa.String(20))  # attended | excused | unexcused
    recorded_by: Mapped[str] = mapped_column(sa.String(64))


class CaseStatus(Base):
    """What intake knows of a household's case, from review's events
    (case_approved, case_cancelled): a check-in for a cancelled case is refused."""

    __tablename__ = "case_status"
    case_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    household_id: Mapped[str] = mapped_column(sa.String(36), index=True)
    status: Mapped[str] = mapped_column(sa.String(16))   # active | cancelled
    start_month: Mapped[str] = mapped_column(sa.String(7))
    #: first month not paid, once cancelled (after any gradual exit)
    end_month: Mapped[str | None] = mapped_column(sa.String(7), nullable=True)
