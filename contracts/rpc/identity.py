"""What identity's RPCs accept and answer (marshmallow).

Passwords and codes are loaded as plain strings bounded in length; no
answer schema has a field for a password hash or a stored secret. The one
answers that carry a secret — a one-time password and a new TOTP secret —
are given once, to the security administrator who made them.
"""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from shared.divisions import DivisionCode

#: argon2 takes any length; a bound keeps a request's cost bounded
PASSWORD_MAX_LENGTH = 128

UserId = lambda **kw: fields.String(validate=validate.Length(1, 64), **kw)  # noqa: E731
Secret = lambda **kw: fields.String(validate=validate.Length(0, PASSWORD_MAX_LENGTH), **kw)  # noqa: E731


class LoginSchema(Schema):
    user = UserId(required=True)
    password = Secret(required=True)
    otp = fields.String(load_default=None, allow_none=True, validate=validate.Length(0, 10))


class ServiceTokenSchema(Schema):
    service = fields.String(required=True, validate=validate.Length(1, 40))
    secret = fields.String(required=True, validate=validate.Length(1, 200))


class ChangePasswordSchema(Schema):
    old_password = Secret(required=True)
    new_password = Secret(required=True)


class RevocationsSchema(Schema):
    since = fields.AwareDateTime(load_default=None, allow_none=True, format="iso")


class BootstrapSchema(Schema):
    user = UserId(required=True)
    name = fields.String(required=True, validate=validate.Length(1, 50))
    unit = DivisionCode(required=True)


class AddAccountSchema(Schema):
    user = UserId(required=True)
    name = fields.String(required=True, validate=validate.Length(1, 50))
    unit = DivisionCode(required=True)
    roles = fields.List(fields.String(validate=validate.Length(1, 40)), load_default=list,
                        validate=validate.Length(0, 12))


class UserSchema(Schema):
    user = UserId(required=True)


class RoleSchema(Schema):
    user = UserId(required=True)
    role = fields.String(required=True, validate=validate.Length(1, 40))


class ResetSchema(Schema):
    user = UserId(required=True)
    what = fields.String(load_default="password", validate=validate.OneOf(["password", "totp"]))


class ListAccountsSchema(Schema):
    unit = DivisionCode(load_default=None, allow_none=True)
    status = fields.String(load_default=None, allow_none=True,
                           validate=validate.OneOf(["active", "disabled", "locked"]))


# --- answers -----------------------------------------------------------------------

class TokenOut(Schema):
    token = fields.String()
    expires_at = fields.AwareDateTime(format="iso")
    must_change_password = fields.Boolean()


class ServiceTokenOut(Schema):
    token = fields.String()
    expires_at = fields.AwareDateTime(format="iso")


class AccountOut(Schema):
    user = fields.String()
    name = fields.String()
    unit = fields.String()
    roles = fields.List(fields.String())
    status = fields.String(metadata={"doc": "active | disabled | locked"})
    must_change_password = fields.Boolean()
    password_set_at = fields.AwareDateTime(format="iso")
    totp = fields.Boolean(metadata={"doc": "has a TOTP secret"})
    failed_attempts = fields.Integer()
    locked_until = fields.AwareDateTime(format="iso", allow_none=True)
    last_login_at = fields.AwareDateTime(format="iso", allow_none=True)


class CredentialsOut(Schema):
    """Given once to the security administrator, to hand to the person."""

    user = fields.String()
    one_time_password = fields.String(allow_none=True)
    totp_secret = fields.String(allow_none=True)
    totp_uri = fields.String(allow_none=True)


class WhoamiOut(Schema):
    user = fields.String()
    name = fields.String()
    unit = fields.String()
    roles = fields.List(fields.String())
    kind = fields.String()
    session_id = fields.String()
    expires_at = fields.AwareDateTime(format="iso")
    idle_deadline = fields.AwareDateTime(format="iso", allow_none=True)
    must_change_password = fields.Boolean()


class RevocationOut(Schema):
    session_id = fields.String()
    user = fields.String()
    revoked_at = fields.AwareDateTime(format="iso")
