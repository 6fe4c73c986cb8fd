"""Identity's events: the staff registry, logins and sessions (TOKENS.md).

Subject of each: ``{"user": <user id>}``. No event carries a password, a
password hash, a one-time code or a TOTP secret. Other services keep their
staff registry projection from ``account_created``, ``role_granted``,
``role_revoked``, ``account_disabled`` and ``account_enabled``, and drop a
token within seconds of ``session_revoked`` or ``account_disabled``.
"""
from marshmallow import Schema, fields

from shared.events import event_type

SOURCE = "identity"


@event_type(SOURCE, "account_created")
class AccountCreated(Schema):
    """A person's account was created (also the first security administrator by bootstrap). Subject: user."""

    user = fields.String(required=True)
    name = fields.String(required=True)
    unit = fields.String(required=True, metadata={"doc": "division code of the account's unit"})
    roles = fields.List(fields.String(), required=True, metadata={"doc": "roles held in that unit"})


@event_type(SOURCE, "account_disabled")
class AccountDisabled(Schema):
    """An account was disabled: every token of it stops working. Subject: user."""

    user = fields.String(required=True)


@event_type(SOURCE, "account_enabled")
class AccountEnabled(Schema):
    """A disabled account was enabled again (its old sessions stay revoked). Subject: user."""

    user = fields.String(required=True)


@event_type(SOURCE, "account_unlocked")
class AccountUnlocked(Schema):
    """The security administrator lifted a lock after failed logins. Subject: user."""

    user = fields.String(required=True)


@event_type(SOURCE, "role_granted")
class RoleGranted(Schema):
    """The account holds a role in its unit from now on (staff registry). Subject: user."""

    user = fields.String(required=True)
    unit = fields.String(required=True)
    role = fields.String(required=True)


@event_type(SOURCE, "role_revoked")
class RoleRevoked(Schema):
    """The account no longer holds the role (its sessions are revoked too). Subject: user."""

    user = fields.String(required=True)
    unit = fields.String(required=True)
    role = fields.String(required=True)


@event_type(SOURCE, "credentials_reset")
class CredentialsReset(Schema):
    """The security administrator reset a password or the TOTP secret; the user sets a new password at next login
    (password). Subject: user."""

    user = fields.String(required=True)
    what = fields.String(required=True, metadata={"doc": "password | totp"})


@event_type(SOURCE, "password_changed")
class PasswordChanged(Schema):
    """The user changed their own password (every session of theirs revoked). Subject: user."""

    user = fields.String(required=True)


@event_type(SOURCE, "login_succeeded")
class LoginSucceeded(Schema):
    """Someone logged in (a person, or a service as its own identity). Subject: user."""

    user = fields.String(required=True)
    session_id = fields.String(required=True, metadata={"doc": "the token's jti"})
    kind = fields.String(required=True, metadata={"doc": "person | service"})
    must_change_password = fields.Boolean(required=True,
                                          metadata={"doc": "the token only serves to change the password"})


@event_type(SOURCE, "login_failed")
class LoginFailed(Schema):
    """A login was refused (never a password or a code in it). Subject: user (empty for an unknown user id)."""

    user = fields.String(required=True, metadata={"doc": "the account's id; empty when no such account"})
    reason = fields.String(required=True, metadata={
        "doc": "unknown_user | wrong_password | wrong_code | code_reused | locked | disabled | bad_service_secret"})
    failed_attempts = fields.Integer(required=True, metadata={"doc": "consecutive failures counted now"})
    locked_until = fields.AwareDateTime(required=True, allow_none=True, format="iso",
                                        metadata={"doc": "set when this failure (or an earlier one) locked it"})


@event_type(SOURCE, "session_revoked")
class SessionRevoked(Schema):
    """A session's token stops working everywhere. Subject: user."""

    session_id = fields.String(required=True)
    user = fields.String(required=True)
    reason = fields.String(required=True, metadata={
        "doc": "logout | account_disabled | role_revoked | password_changed | credentials_reset"})
