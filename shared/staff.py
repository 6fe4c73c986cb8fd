"""The staff registry (工作人员名册), as intake and review keep it: a
projection of identity's events (TOKENS.md) — who works in which unit, in
which role, since when, until when.

``staff(user, name, unit, role, since, until, ended_by)``: one row per
period an account held a role in its unit. ``account_created`` opens one row
per role, ``role_granted`` opens one, ``role_revoked`` closes it,
``account_disabled`` closes every open row of the account (``ended_by
disabled``) and ``account_enabled`` reopens those. Identity is the source of
truth; this is what the separation-of-duties rules ask at signing time
(:func:`holds_role`).

Each service declares the table on its own metadata (:func:`staff_model`)
and consumes identity's events with one handler (:func:`apply_identity_event`)
bound to every identity event, so the events of one account are applied in
the order identity emitted them.
"""
from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from shared.events import load_payload

STAFF_EVENTS = ("account_created", "role_granted", "role_revoked", "account_disabled", "account_enabled")


def staff_model(Base):
    """The ``staff`` table on a service's declarative base."""

    class Staff(Base):
        """One period an account held a role in its unit (工作人员名册)."""

        __tablename__ = "staff"
        id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
        user: Mapped[str] = mapped_column(sa.String(64), index=True)
        name: Mapped[str] = mapped_column(sa.String(50))
        unit: Mapped[str] = mapped_column(sa.String(12), index=True)
        role: Mapped[str] = mapped_column(sa.String(32))
        since: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
        until: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True), nullable=True)
        ended_by: Mapped[str | None] = mapped_column(sa.String(16), nullable=True)

    return Staff


def staff_columns() -> list:
    """The columns, for the services' migrations."""
    return [
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("user", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.Column("unit", sa.String(length=12), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_by", sa.String(length=16), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    ]


def _at(env: dict) -> datetime:
    value = datetime.fromisoformat(env["occurred_at"])
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _aware(value: datetime | None) -> datetime | None:
    """SQLite gives naive datetimes back: they were stored as UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value


def _open(session, Staff, user: str, unit: str | None = None, role: str | None = None) -> list:
    stmt = sa.select(Staff).where(Staff.user == user, Staff.until.is_(None))
    if unit is not None:
        stmt = stmt.where(Staff.unit == unit)
    if role is not None:
        stmt = stmt.where(Staff.role == role)
    return list(session.scalars(stmt))


def _name_of(session, Staff, user: str) -> str:
    return session.scalar(sa.select(Staff.name).where(Staff.user == user).order_by(Staff.id.desc()).limit(1)) or user


def apply_identity_event(uow, env: dict, Staff) -> None:
    """One identity event applied to the projection (other types: nothing)."""
    if env["type"] not in STAFF_EVENTS:
        return
    p = load_payload(env)
    session, at, user = uow.session, _at(env), p["user"]
    if env["type"] == "account_created":
        for role in p["roles"]:
            if not _open(session, Staff, user, p["unit"], role):
                session.add(Staff(user=user, name=p["name"], unit=p["unit"], role=role, since=at))
    elif env["type"] == "role_granted":
        if not _open(session, Staff, user, p["unit"], p["role"]):
            session.add(Staff(user=user, name=_name_of(session, Staff, user), unit=p["unit"], role=p["role"],
                              since=at))
    elif env["type"] == "role_revoked":
        rows = _open(session, Staff, user, p["unit"], p["role"])
        for row in rows:
            row.until, row.ended_by = at, "revoked"
        if not rows:   # revoked while the account was disabled: it does not come back with it
            for row in session.scalars(sa.select(Staff).where(
                    Staff.user == user, Staff.unit == p["unit"], Staff.role == p["role"],
                    Staff.ended_by == "disabled")):
                row.ended_by = "revoked"
    elif env["type"] == "account_disabled":
        for row in _open(session, Staff, user):
            row.until, row.ended_by = at, "disabled"
    elif env["type"] == "account_enabled":
        closed = list(session.scalars(sa.select(Staff).where(Staff.user == user, Staff.ended_by == "disabled")))
        for row in closed:
            row.ended_by = "disabled_then_enabled"
            if not _open(session, Staff, user, row.unit, row.role):
                session.add(Staff(user=user, name=row.name, unit=row.unit, role=row.role, since=at))
    session.flush()


def staff_member(session, Staff, user: str, at: datetime | None = None) -> list:
    """The rows of ``user`` in force at ``at`` (now when None)."""
    at = at or datetime.now(timezone.utc)
    rows = session.scalars(sa.select(Staff).where(Staff.user == user))
    return [r for r in rows if _aware(r.since) <= at and (r.until is None or _aware(r.until) > at)]


def holds_role(session, Staff, user: str, role: str, division_code: str, at: datetime | None = None) -> bool:
    """The registry says ``user`` holds ``role`` at ``at``, in a unit covering ``division_code``."""
    return any(r.role == role and r.unit and division_code.startswith(r.unit)
               for r in staff_member(session, Staff, user, at))


def staff_within(session, Staff, unit_code: str, at: datetime | None = None) -> list[dict]:
    """Who works, now, in ``unit_code`` or a unit inside it, in which roles."""
    at = at or datetime.now(timezone.utc)
    rows = session.scalars(sa.select(Staff).where(Staff.unit.startswith(unit_code, autoescape=True))
                           .order_by(Staff.unit, Staff.user, Staff.role))
    return [{"user": r.user, "name": r.name, "unit": r.unit, "role": r.role, "since": _aware(r.since).isoformat()}
            for r in rows if _aware(r.since) <= at and (r.until is None or _aware(r.until) > at)]
