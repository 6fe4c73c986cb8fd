"""Payments' state: standards, the benefit ledger of approved cases, payment
runs and their lines, hold-backs, standard changes and the adjustments they
made.

Every amount is stored as an integer number of fen (分) — :class:`Fen` —
so that the set-based SQL of a payment run or a recalculation is integer
arithmetic on SQLite and PostgreSQL alike (SQLite's NUMERIC would be a
binary float); Python sees ``Decimal`` exact to the fen.
"""
from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from shared.crypto import EncryptedString
from shared.db import RecordsEvents, platform_tables
from shared.money import FEN, to_money


class Base(DeclarativeBase):
    pass


OUTBOX, INBOX = platform_tables(Base.metadata)


def new_id() -> str:
    return str(uuid.uuid4())


def to_fen(amount) -> int:
    """Decimal/int/str yuan → integer fen, exactly (``"12.34"`` → 1234)."""
    return int(to_money(amount) * 100)


def from_fen(fen) -> Decimal:
    """Integer fen → Decimal yuan with two places (1234 → ``Decimal("12.34")``)."""
    if isinstance(fen, (bool, float)):
        raise TypeError(f"fen must be an integer, not {type(fen).__name__}")
    return (Decimal(int(fen)) / 100).quantize(FEN)


class Fen(TypeDecorator[Decimal]):
    """An amount column: ``Decimal`` yuan in Python, BIGINT fen in the database."""

    impl = sa.BigInteger
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return None if value is None else to_fen(value)

    def process_result_value(self, value, dialect):
        return None if value is None else from_fen(value)


class Standard(Base):
    """低保标准: yuan per person per month for a division (code prefix) and
    urban/rural, in force from ``effective_from`` to ``effective_to`` (inclusive;
    None: until further notice). Periods of one division and area never overlap."""

    __tablename__ = "standard"
    __table_args__ = (sa.UniqueConstraint("division_code", "area_type", "effective_from", name="uq_standard_from"),)
    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    division_code: Mapped[str] = mapped_column(sa.String(12), index=True)
    area_type: Mapped[str] = mapped_column(sa.String(5))
    effective_from: Mapped[date] = mapped_column(sa.Date)
    effective_to: Mapped[date | None] = mapped_column(sa.Date, nullable=True)
    monthly_amount: Mapped[Decimal] = mapped_column(Fen)
    set_by: Mapped[str] = mapped_column(sa.String(64))
    set_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))


class LedgerCase(Base):
    """A case as payments keeps it (from review's events): who is paid, how
    much a month, from which month, until which month; and the basis of the
    benefit (the unclamped gap and the standard it used) for recalculation.
    No income is kept here."""

    __tablename__ = "ledger_case"
    case_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    household_id: Mapped[str] = mapped_column(sa.String(36))
    community_code: Mapped[str] = mapped_column(sa.String(12))
    township_code: Mapped[str] = mapped_column(sa.String(9))
    area_type: Mapped[str] = mapped_column(sa.String(5))
    household_size: Mapped[int] = mapped_column()
    #: the latest benefit, in force from ``benefit_from_month`` (BenefitPeriod has them all)
    monthly_benefit: Mapped[Decimal] = mapped_column(Fen)
    benefit_from_month: Mapped[str] = mapped_column(sa.String(7))
    standard_amount: Mapped[Decimal | None] = mapped_column(Fen, nullable=True)
    benefit_gap: Mapped[Decimal | None] = mapped_column(Fen, nullable=True)
    vulnerable_members: Mapped[int] = mapped_column(default=0)
    #: first month paid (YYYY-MM) and first month NOT paid (None: open)
    start_month: Mapped[str] = mapped_column(sa.String(7))
    stop_month: Mapped[str | None] = mapped_column(sa.String(7), nullable=True)
    status: Mapped[str] = mapped_column(sa.String(10), default="active")   # active | cancelled
    #: why no payment can be made, from ``hold_from_month`` on, until someone
    #: acts (e.g. benefit_basis_missing after a standard change)
    hold_reason: Mapped[str | None] = mapped_column(sa.String(40), nullable=True)
    hold_from_month: Mapped[str | None] = mapped_column(sa.String(7), nullable=True)
    payee_name: Mapped[str | None] = mapped_column(EncryptedString, nullable=True)
    payee_name_masked: Mapped[str | None] = mapped_column(sa.String(40), nullable=True)
    account_number: Mapped[str | None] = mapped_column(EncryptedString, nullable=True)
    account_masked: Mapped[str | None] = mapped_column(sa.String(40), nullable=True)
    bank_name: Mapped[str | None] = mapped_column(sa.String(60), nullable=True)
    approved_on: Mapped[date] = mapped_column(sa.Date)
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))

    __table_args__ = (sa.Index("ix_ledger_area", "area_type", "community_code"),)


class BenefitPeriod(Base):
    """The monthly benefit of a case from a month on (until its next row):
    a run pays each month what was in force for that month."""

    __tablename__ = "benefit_period"
    case_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    from_month: Mapped[str] = mapped_column(sa.String(7), primary_key=True)
    amount: Mapped[Decimal] = mapped_column(Fen)


class CheckIn(Base):
    """续保登记 recorded by intake: the household's book stamped for a month."""

    __tablename__ = "checkin"
    household_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    month: Mapped[str] = mapped_column(sa.String(7), primary_key=True)


class PaymentRun(RecordsEvents, Base):
    """A payment run for a period and an area: prepared by one person,
    approved (and so frozen) by another, exported, reconciled."""

    __tablename__ = "payment_run"
    __table_args__ = (sa.UniqueConstraint("period", "area_type", "division_code", name="uq_run_period_area"),)
    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    period: Mapped[str] = mapped_column(sa.String(7))                # YYYY-MM or YYYY-Qn
    area_type: Mapped[str] = mapped_column(sa.String(5))
    division_code: Mapped[str] = mapped_column(sa.String(12))
    #: prepared | approved | exported | reconciled
    status: Mapped[str] = mapped_column(sa.String(12), default="prepared")
    lines: Mapped[int] = mapped_column(default=0)
    total: Mapped[Decimal] = mapped_column(Fen, default=Decimal("0.00"))
    held: Mapped[int] = mapped_column(default=0)
    carried: Mapped[int] = mapped_column(default=0)
    prepared_by: Mapped[str] = mapped_column(sa.String(64))
    prepared_on: Mapped[date] = mapped_column(sa.Date)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    approved_by: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)
    approved_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True), nullable=True)
    exported_format: Mapped[str | None] = mapped_column(sa.String(20), nullable=True)
    reconciled_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True), nullable=True)


class PaymentLine(Base):
    """One household's payment in a run, with the household data it used
    (snapshotted: later edits of the ledger change only later runs).

    Exactly once: at most one line per (case, period) that is not failed —
    a failed line is carried into a later run as a new line for the same
    period (``carried_from``), never paid twice."""

    __tablename__ = "payment_line"
    __table_args__ = (
        sa.Index("uq_payable_case_period", "case_id", "period", unique=True,
                 sqlite_where=sa.text("status != 'failed'"), postgresql_where=sa.text("status != 'failed'")),
        sa.Index("ix_line_run", "run_id", "id"),
        sa.Index("ix_line_failed", "area_type", "community_code",
                 sqlite_where=sa.text("status = 'failed'"), postgresql_where=sa.text("status = 'failed'")),
        sa.Index("uq_line_carried_from", "carried_from", unique=True,
                 sqlite_where=sa.text("carried_from IS NOT NULL"),
                 postgresql_where=sa.text("carried_from IS NOT NULL")),
    )
    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(sa.ForeignKey("payment_run.id"))
    case_id: Mapped[str] = mapped_column(sa.String(36))
    household_id: Mapped[str] = mapped_column(sa.String(36))
    period: Mapped[str] = mapped_column(sa.String(7))
    community_code: Mapped[str] = mapped_column(sa.String(12))
    township_code: Mapped[str] = mapped_column(sa.String(9))
    area_type: Mapped[str] = mapped_column(sa.String(5))
    household_size: Mapped[int] = mapped_column()
    months: Mapped[int] = mapped_column()
    amount: Mapped[Decimal] = mapped_column(Fen)
    #: the case's payee and account as the ledger had them (its tokens, copied by the run's
    #: INSERT … SELECT): sealed as the ledger's, keyed by the case (shared/sealing.py)
    payee_name: Mapped[str | None] = mapped_column(EncryptedString(bound_as="ledger_case", row_key="case_id"),
                                                   nullable=True)
    payee_name_masked: Mapped[str | None] = mapped_column(sa.String(40), nullable=True)
    account_number: Mapped[str | None] = mapped_column(
        EncryptedString(bound_as="ledger_case", row_key="case_id"), nullable=True)
    account_masked: Mapped[str | None] = mapped_column(sa.String(40), nullable=True)
    #: pending | paid | failed
    status: Mapped[str] = mapped_column(sa.String(8), default="pending")
    failure_reason: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    paid_on: Mapped[date | None] = mapped_column(sa.Date, nullable=True)
    carried_from: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)


class HoldBack(Base):
    """A case due in a run but not paid in it, with the reason (never skipped silently)."""

    __tablename__ = "hold_back"
    run_id: Mapped[str] = mapped_column(sa.ForeignKey("payment_run.id"), primary_key=True)
    case_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    household_id: Mapped[str] = mapped_column(sa.String(36))
    community_code: Mapped[str] = mapped_column(sa.String(12))
    reason: Mapped[str] = mapped_column(sa.String(40))


class StandardChange(RecordsEvents, Base):
    """提标/降标: a new standard and what it did to the cases under it."""

    __tablename__ = "standard_change"
    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    standard_id: Mapped[str] = mapped_column(sa.ForeignKey("standard.id"))
    division_code: Mapped[str] = mapped_column(sa.String(12))
    area_type: Mapped[str] = mapped_column(sa.String(5))
    effective_from: Mapped[date] = mapped_column(sa.Date)
    old_amount: Mapped[Decimal | None] = mapped_column(Fen, nullable=True)
    new_amount: Mapped[Decimal] = mapped_column(Fen)
    cases_raised: Mapped[int] = mapped_column(default=0)
    cases_lowered: Mapped[int] = mapped_column(default=0)
    cases_unchanged: Mapped[int] = mapped_column(default=0)
    cases_held: Mapped[int] = mapped_column(default=0)
    changed_by: Mapped[str] = mapped_column(sa.String(64))
    changed_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))


class BenefitAdjustment(Base):
    """A case's benefit raised or lowered (by a standard change, or by review),
    or held because it could not be computed."""

    __tablename__ = "benefit_adjustment"
    __table_args__ = (sa.Index("ix_adjustment_change", "change_id", "case_id"),)
    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    change_id: Mapped[str | None] = mapped_column(sa.String(36), nullable=True)
    case_id: Mapped[str] = mapped_column(sa.String(36))
    old_benefit: Mapped[Decimal | None] = mapped_column(Fen, nullable=True)
    new_benefit: Mapped[Decimal | None] = mapped_column(Fen, nullable=True)
    #: raised | lowered | held
    direction: Mapped[str] = mapped_column(sa.String(8))
    effective_month: Mapped[str] = mapped_column(sa.String(7))
    reason: Mapped[str] = mapped_column(sa.String(200))
