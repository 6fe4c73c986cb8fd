"""Identity's state: accounts, the staff registry, sessions.

- ``account``: who logs in (user id, name, unit), status, the argon2id hash
  of the password and when it was set, the TOTP secret **encrypted at rest**
  (field encryption, DATA_KEY_IDENTITY, bound to the account), failed attempts and the lock.
- ``staff_role``: the staff registry (人员角色登记) — which account holds
  which role in its unit, since when and until when; a revoked role keeps
  its row with ``until`` set (history for separation-of-duties checks).
- ``login_session``: one row per token id (``jti``): issued, expires, idle
  deadline, revoked.

Neither a password nor a TOTP secret is ever stored in clear, logged, or put
in an event.
"""
from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.crypto import EncryptedString
from shared.db import platform_tables


class Base(DeclarativeBase):
    pass


OUTBOX, INBOX = platform_tables(Base.metadata)


class Account(Base):
    """A person's account (账号)."""

    __tablename__ = "account"
    user_id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(50))
    unit: Mapped[str] = mapped_column(sa.String(12), index=True)   # division code of the account's unit
    status: Mapped[str] = mapped_column(sa.String(10), default="active")   # active | disabled
    password_hash: Mapped[str] = mapped_column(sa.String(200))
    password_set_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    must_change_password: Mapped[bool] = mapped_column(default=True)
    totp_secret: Mapped[str | None] = mapped_column(EncryptedString, nullable=True)
    totp_last_step: Mapped[int | None] = mapped_column(sa.BigInteger, nullable=True)   # a code counts once
    failed_attempts: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True), nullable=True)
    disabled_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True), nullable=True)
    last_login_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    created_by: Mapped[str] = mapped_column(sa.String(64))


class StaffRole(Base):
    """One role an account holds (held) in its unit, from ``since`` to ``until``."""

    __tablename__ = "staff_role"
    __table_args__ = (sa.Index("ix_staff_role_current", "user_id", "until"),)
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(sa.ForeignKey("account.user_id"))
    unit: Mapped[str] = mapped_column(sa.String(12))
    role: Mapped[str] = mapped_column(sa.String(40))
    since: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    until: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True), nullable=True)
    granted_by: Mapped[str] = mapped_column(sa.String(64))
    revoked_by: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)


class LoginSession(Base):
    """A session: one signed token (its ``jti``), a person's or a service's."""

    __tablename__ = "login_session"
    __table_args__ = (sa.Index("ix_login_session_user", "user_id", "revoked_at"),
                      sa.Index("ix_login_session_revoked", "revoked_at"))
    jti: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(sa.String(80))     # the token's sub: a user id or service:<name>
    kind: Mapped[str] = mapped_column(sa.String(10))        # person | service
    purpose: Mapped[str] = mapped_column(sa.String(20), default="session")   # session | password_change
    issued_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), index=True)
    idle_deadline: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True), nullable=True)
    revoked_reason: Mapped[str | None] = mapped_column(sa.String(40), nullable=True)


class BootstrapMark(Base):
    """One row once ``bootstrap`` made the first security administrator: a
    second bootstrap, even a concurrent one, fails on its primary key."""

    __tablename__ = "bootstrap_mark"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    user_id: Mapped[str] = mapped_column(sa.String(64))
    done_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
