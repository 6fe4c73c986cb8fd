"""Notify's state: public notices (公示), objections (异议), messages sent.

A notice keeps only what the board shows: the head's name, the household
size, the amount of a result notice, and the head's resident ID number
*masked* (the full number is never stored here). An objector's contact
details are encrypted at rest.
"""
from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.crypto import EncryptedString
from shared.db import RecordsEvents, platform_tables


class Base(DeclarativeBase):
    pass


OUTBOX, INBOX = platform_tables(Base.metadata)


def new_id() -> str:
    return str(uuid.uuid4())


class Notice(RecordsEvents, Base):
    """张榜公示/公布: one household on one board for a posting period."""

    __tablename__ = "notice"
    __table_args__ = (sa.Index("ix_notice_due", "status", "closes_on"),)
    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    request_event_id: Mapped[str] = mapped_column(sa.String(36), unique=True)  # review.notice_requested
    household_id: Mapped[str] = mapped_column(sa.String(36), index=True)
    application_id: Mapped[str | None] = mapped_column(sa.String(36), nullable=True, index=True)
    case_id: Mapped[str | None] = mapped_column(sa.String(36), nullable=True)
    stage: Mapped[str] = mapped_column(sa.String(40))
    unit_code: Mapped[str] = mapped_column(sa.String(12), index=True)       # the board
    community_code: Mapped[str] = mapped_column(sa.String(12), index=True)  # the household's (jurisdiction)
    head_name: Mapped[str] = mapped_column(sa.String(50))
    masked_resident_id: Mapped[str] = mapped_column(sa.String(18))
    household_size: Mapped[int] = mapped_column()
    monthly_benefit: Mapped[Decimal | None] = mapped_column(sa.Numeric(12, 2), nullable=True)
    blocking: Mapped[bool] = mapped_column()
    posted_on: Mapped[date] = mapped_column(sa.Date)
    closes_on: Mapped[date] = mapped_column(sa.Date)   # last day of the posting period
    status: Mapped[str] = mapped_column(sa.String(10), default="posted")  # posted | closed
    closed_on: Mapped[date | None] = mapped_column(sa.Date, nullable=True)
    posted_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))


class Objection(RecordsEvents, Base):
    """群众异议: recorded by staff on behalf of a member of the public."""

    __tablename__ = "objection"
    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    notice_id: Mapped[str] = mapped_column(sa.ForeignKey("notice.id"), index=True)
    text: Mapped[str] = mapped_column(sa.Text)
    anonymous: Mapped[bool] = mapped_column()
    contact_name: Mapped[str | None] = mapped_column(EncryptedString, nullable=True)
    contact_phone: Mapped[str | None] = mapped_column(EncryptedString, nullable=True)
    filed_on: Mapped[date] = mapped_column(sa.Date)
    filed_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    filed_by: Mapped[str] = mapped_column(sa.String(64))


class Message(Base):
    """A message sent to a household about a decision, one row per channel."""

    __tablename__ = "message"
    __table_args__ = (sa.UniqueConstraint("event_id", "channel", name="uq_message_event_channel"),)
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(sa.String(36))     # the decision event
    household_id: Mapped[str] = mapped_column(sa.String(36), index=True)
    kind: Mapped[str] = mapped_column(sa.String(40))         # the decision event's type
    channel: Mapped[str] = mapped_column(sa.String(40))
    status: Mapped[str] = mapped_column(sa.String(10))       # sent | skipped (the channel cannot reach it)
    sent_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))


class Reminder(Base):
    """A reminder to a community's dibao officer (社区低保专干), e.g. a case's
    re-review falls due (review.review_due); one per event."""

    __tablename__ = "reminder"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(sa.String(36), unique=True)
    kind: Mapped[str] = mapped_column(sa.String(40))
    unit_code: Mapped[str] = mapped_column(sa.String(12), index=True)   # the officer's community
    household_id: Mapped[str] = mapped_column(sa.String(36))
    case_id: Mapped[str | None] = mapped_column(sa.String(36), nullable=True)
    due_on: Mapped[date | None] = mapped_column(sa.Date, nullable=True)
    text: Mapped[str] = mapped_column(sa.Text)
    created_on: Mapped[date] = mapped_column(sa.Date)


class FileProblem(Base):
    """A file notify could not write (公示 PDF, board page, the file channel's
    messages) for a known operational reason — a missing font, a full disk, a
    refused permission — pending until a retry writes it (``dibao health notify``)."""

    __tablename__ = "file_problem"
    kind: Mapped[str] = mapped_column(sa.String(20), primary_key=True)     # board_html | board_pdf | message
    target: Mapped[str] = mapped_column(sa.String(40), primary_key=True)   # the unit code, or the channel
    code: Mapped[str] = mapped_column(sa.String(20))                       # font_missing | disk_full | permission | io_error
    detail: Mapped[str] = mapped_column(sa.Text)                           # what happened, what to fix
    since: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    last_tried: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(default=1)
