"""Identity's events (TOKENS.md): the contract intake's and review's staff
registry and every service's token verifier rely on.

Written by the platform side (branch ``tokens``) because the consumers need
them before the identity service exists; the identity service emits exactly
these. Never a password, a one-time code or a secret.
"""
from marshmallow import Schema, fields

from shared.events import event_type

SOURCE = "identity"


@event_type(SOURCE, "account_created")
class AccountCreated(Schema):
    """An account was created: a person who works in a unit, in roles (staff registry). Subject: user."""

    user = fields.String(required=True, metadata={"doc": "login name, e.g. wang.fang"})
    name = fields.String(required=True, metadata={"doc": "display (Chinese) name"})
    unit = fields.String(required=True, metadata={"doc": "division code of the account's unit"})
    roles = fields.List(fields.String(), required=True, metadata={"doc": "roles held in that unit"})


@event_type(SOURCE, "account_disabled")
class AccountDisabled(Schema):
    """An account was disabled: its tokens stop working everywhere. Subject: user."""

    user = fields.String(required=True)


@event_type(SOURCE, "account_enabled")
class AccountEnabled(Schema):
    """A disabled account was enabled again (its old sessions stay revoked). Subject: user."""

    user = fields.String(required=True)


@event_type(SOURCE, "role_granted")
class RoleGranted(Schema):
    """An account was granted a role in its unit. Subject: user."""

    user = fields.String(required=True)
    unit = fields.String(required=True)
    role = fields.String(required=True)


@event_type(SOURCE, "role_revoked")
class RoleRevoked(Schema):
    """An account lost a role (its sessions are revoked too). Subject: user."""

    user = fields.String(required=True)
    unit = fields.String(required=True)
    role = fields.String(required=True)


@event_type(SOURCE, "login_succeeded")
class LoginSucceeded(Schema):
    """Someone logged in (a session began). Subject: user."""

    user = fields.String(required=True)
    session_id = fields.String(required=True)


@event_type(SOURCE, "login_failed")
class LoginFailed(Schema):
    """A login was refused (never the password or the code). Subject: user."""

    user = fields.String(required=True)
    reason = fields.String(required=True, metadata={"doc": "e.g. login_failed, locked, otp_required"})


@event_type(SOURCE, "session_revoked")
class SessionRevoked(Schema):
    """A session ended before its expiry (logout, an administrator, a role revoked). Subject: user."""

    session_id = fields.String(required=True, metadata={"doc": "the token's jti"})
    user = fields.String(required=True)
