"""Payments' handlers: plain functions taking a unit of work, by subject.

- :mod:`services.payments.ledger` — the cases paid, from review's events and
  intake's check-ins; payees.
- :mod:`services.payments.standards` — guarantee standards and their changes.
- :mod:`services.payments.runs` — payment runs and their bank files.
- :mod:`services.payments.reconciliation` — the bank's return file.

This module is what they share: who may do what, the tables, fen arithmetic.
"""
from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa

from services.payments.models import (BenefitAdjustment, BenefitPeriod, CheckIn, HoldBack, LedgerCase, PaymentLine,
                                      Standard)
from shared.identity import Role

STANDARD_SETTERS = (Role.CENTRE_DIRECTOR, Role.DEPUTY_DIRECTOR)
RUN_MAKERS = (Role.FINANCE_OFFICER, Role.DISTRICT_OFFICER)
RUN_CHECKERS = (Role.FINANCE_OFFICER, Role.CENTRE_DIRECTOR, Role.DEPUTY_DIRECTOR)
PAYEE_SETTERS = (Role.COMMUNITY_OFFICER, Role.DISTRICT_OFFICER, Role.FINANCE_OFFICER)
READERS = (Role.FINANCE_OFFICER, Role.DISTRICT_OFFICER, Role.CENTRE_DIRECTOR, Role.DEPUTY_DIRECTOR,
           Role.TOWNSHIP_OFFICER, Role.COMMUNITY_OFFICER, Role.AUDITOR)
#: who may prepare a run as of another day than today (a corrected clock, the
#: demo): the system administrator, who runs the services — and prepares no other run
CLOCK_SETTERS = (Role.SYSTEM_ADMIN,)

L = LedgerCase.__table__
P = PaymentLine.__table__
H = HoldBack.__table__
A = BenefitAdjustment.__table__
S = Standard.__table__
C = CheckIn.__table__
B = BenefitPeriod.__table__


def now() -> datetime:
    return datetime.now(timezone.utc)


def raw(column):
    """A Fen column as the integer fen it stores, for SQL arithmetic."""
    return sa.type_coerce(column, sa.BigInteger)


def num(value: int):
    return sa.literal(value, sa.BigInteger)


def yuan(fen: int) -> str:
    """Integer fen → the event's "12.34" (never through a float)."""
    sign = "-" if fen < 0 else ""
    fen = abs(int(fen))
    return f"{sign}{fen // 100}.{fen % 100:02d}"


class CaseNotYetKnown(Exception):
    """An event about a case the ledger has not seen approved yet: retried (then parked)."""
