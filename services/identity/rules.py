"""Identity's rules: pure functions named after the rule they enforce.

The login policy is configuration with 等保 (MLPS) level-3 defaults
(:class:`LoginPolicy`): passwords of at least 12 characters from 3 classes
that do not contain the user id, 5 failures lock the account for 15
minutes, a one-time code (TOTP, RFC 6238) for the staff roles, a password
at most 90 days old. 三员分立: the system, security and audit administrator
roles are held by three different accounts, each holding that role alone.
"""
from __future__ import annotations

import hmac
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

import pyotp

from contracts.rpc.identity import PASSWORD_MAX_LENGTH
from shared.errors import Conflict, Forbidden, ValidationFailed

SYSTEM_ADMIN = "system_admin"        # 系统管理员: runs services, dead-letter replay; no case data
SECURITY_ADMIN = "security_admin"    # 安全管理员: accounts and roles; no case data
AUDIT_ADMIN = "audit_admin"          # 审计管理员: reads the audit; changes nothing
ADMIN_ROLES = frozenset({SYSTEM_ADMIN, SECURITY_ADMIN, AUDIT_ADMIN})

#: The roles a person's account may hold (shared.identity.Role's case-working roles and the three administrators).
CASE_ROLES = frozenset({
    "community_officer", "community_panel", "township_officer", "township_committee", "district_officer",
    "centre_director", "deputy_director", "finance_officer", "auditor", "partner_bureau",
})
PERSON_ROLES = CASE_ROLES | ADMIN_ROLES
#: The role of a service's own identity (service:<name>).
SERVICE_ROLE = "service"

#: Roles that read the account list (the audit administrator reads, changes nothing).
ACCOUNT_READERS = frozenset({SECURITY_ADMIN, AUDIT_ADMIN})

USER_ID = re.compile(r"^[a-z][a-z0-9._-]{1,63}$")


@dataclass(frozen=True)
class LoginPolicy:
    """The login policy (config keys in brackets; defaults are 等保 level 3)."""

    password_min_length: int = 12            # PASSWORD_MIN_LENGTH
    password_min_classes: int = 3            # PASSWORD_MIN_CLASSES (of lower, upper, digit, other)
    password_max_age_days: int = 90          # PASSWORD_MAX_AGE_DAYS
    max_failures: int = 5                    # LOGIN_MAX_FAILURES
    lockout_seconds: int = 900               # LOGIN_LOCKOUT_SECONDS
    totp_required_roles: frozenset = PERSON_ROLES - {"partner_bureau"}   # TOTP_REQUIRED_ROLES ("*" = all)
    totp_valid_window: int = 1               # TOTP_VALID_WINDOW (30-second steps either side)
    token_ttl_seconds: int = 28800           # TOKEN_TTL_SECONDS (≤ 8 h)
    session_idle_seconds: int = 1800         # SESSION_IDLE_SECONDS
    password_change_ttl_seconds: int = 600   # a must-change login's token: only change_password

    @classmethod
    def from_config(cls, config: dict) -> "LoginPolicy":
        default = cls()

        def number(key: str, value: int, low: int, high: int) -> int:
            raw = config.get(key)
            result = value if raw in (None, "") else int(raw)
            if not low <= result <= high:
                raise ValueError(f"{key} must lie in {low}..{high}, not {result}")
            return result

        roles = config.get("TOTP_REQUIRED_ROLES")
        if roles in (None, ""):
            required = default.totp_required_roles
        elif isinstance(roles, str) and roles.strip() == "*":
            required = PERSON_ROLES
        else:
            names = roles.split(",") if isinstance(roles, str) else list(roles)
            required = frozenset(n.strip() for n in names if n and n.strip() and n.strip() != "none")
            unknown = required - PERSON_ROLES
            if unknown:
                raise ValueError(f"TOTP_REQUIRED_ROLES names unknown roles: {', '.join(sorted(unknown))}")
        return cls(
            password_min_length=number("PASSWORD_MIN_LENGTH", default.password_min_length, 8, PASSWORD_MAX_LENGTH),
            password_min_classes=number("PASSWORD_MIN_CLASSES", default.password_min_classes, 1, 4),
            password_max_age_days=number("PASSWORD_MAX_AGE_DAYS", default.password_max_age_days, 1, 3650),
            max_failures=number("LOGIN_MAX_FAILURES", default.max_failures, 1, 100),
            lockout_seconds=number("LOGIN_LOCKOUT_SECONDS", default.lockout_seconds, 1, 86400 * 30),
            totp_required_roles=required,
            totp_valid_window=number("TOTP_VALID_WINDOW", default.totp_valid_window, 0, 4),
            token_ttl_seconds=number("TOKEN_TTL_SECONDS", default.token_ttl_seconds, 60, 8 * 3600),
            session_idle_seconds=number("SESSION_IDLE_SECONDS", default.session_idle_seconds, 60, 8 * 3600),
        )


# --- passwords -------------------------------------------------------------------

def character_classes(password: str) -> int:
    """How many of lower case, upper case, digits and other characters it uses."""
    return sum((
        any(c.islower() for c in password),
        any(c.isupper() for c in password),
        any(c.isdigit() for c in password),
        any(not c.isalnum() for c in password) or any(c.isalpha() and not (c.islower() or c.isupper())
                                                     for c in password),
    ))


def password_meets_policy(password: str, user: str, policy: LoginPolicy, field: str = "new_password") -> None:
    """口令复杂度: long enough, from enough classes, not containing the user id."""
    if not isinstance(password, str) or len(password) < policy.password_min_length:
        raise ValidationFailed.field(field, f"at least {policy.password_min_length} characters")
    if len(password) > PASSWORD_MAX_LENGTH:
        raise ValidationFailed.field(field, f"at most {PASSWORD_MAX_LENGTH} characters")
    if character_classes(password) < policy.password_min_classes:
        raise ValidationFailed.field(field, f"characters of at least {policy.password_min_classes} classes "
                                            "(lower case, upper case, digits, other)")
    if user and user.lower() in password.lower():
        raise ValidationFailed.field(field, "must not contain the user id")


def password_differs(old: str, new: str) -> None:
    if hmac.compare_digest(old.encode("utf-8"), new.encode("utf-8")):
        raise ValidationFailed.field("new_password", "must differ from the current password")


def password_expired(set_at: datetime, now: datetime, policy: LoginPolicy) -> bool:
    """口令定期更换: older than the policy's maximum age."""
    return now - set_at > timedelta(days=policy.password_max_age_days)


# --- lockout ----------------------------------------------------------------------

def is_locked(locked_until: datetime | None, now: datetime) -> bool:
    return locked_until is not None and locked_until > now


def lock_after_failure(failures: int, now: datetime, policy: LoginPolicy) -> datetime | None:
    """登录失败处理: the time the account stays locked to after this many
    consecutive failures, or None while below the limit."""
    if failures >= policy.max_failures:
        return now + timedelta(seconds=policy.lockout_seconds)
    return None


# --- one-time codes (TOTP, RFC 6238) -------------------------------------------------

def totp_required(roles, policy: LoginPolicy) -> bool:
    """双因素: an account holding any role the policy names needs a one-time code."""
    return bool(set(roles) & policy.totp_required_roles)


def totp_step(secret: str, code: str | None, now: datetime, window: int) -> int | None:
    """The 30-second time step whose code ``code`` is (within ``window``
    steps of now), or None. Constant-time comparison of each candidate."""
    if not code or not secret or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now)
    found = None
    for offset in range(-window, window + 1):
        candidate = totp.generate_otp(current + offset)
        if hmac.compare_digest(candidate.encode(), code.encode()):
            found = current + offset
    return found


def code_not_replayed(step: int | None, last_step: int | None) -> bool:
    """A code counts once: its time step must come after the last one used."""
    return step is not None and (last_step is None or step > last_step)


# --- sessions -------------------------------------------------------------------------

def session_refusal(revoked_at, expires_at: datetime, idle_deadline: datetime | None, now: datetime) -> str | None:
    """Why a session no longer works (a reason code), or None when it does."""
    if revoked_at is not None:
        return "revoked"
    if expires_at <= now:
        return "expired"
    if idle_deadline is not None and idle_deadline <= now:
        return "idle_timeout"
    return None


# --- accounts, roles and 三员分立 ----------------------------------------------------------

def user_id_is_valid(user: str) -> None:
    if not USER_ID.match(user or ""):
        raise ValidationFailed.field("user", "2 to 64 characters: lower-case letters, digits, '.', '_', '-', "
                                             "starting with a letter")


def role_is_known(role: str) -> None:
    if role not in PERSON_ROLES:
        raise ValidationFailed.field("role", f"unknown role {role!r}")


def roles_compatible(roles) -> None:
    """三员分立: an administrator role is held alone — never two of the three,
    never beside a case-working role (the administrators have no case data)."""
    roles = set(roles)
    admin = roles & ADMIN_ROLES
    if len(admin) > 1:
        raise Conflict("an account holds at most one of the administrator roles (三员分立)",
                       {"roles": sorted(admin)})
    if admin and len(roles) > 1:
        raise Conflict("an administrator account holds no other role (三员分立)", {"roles": sorted(roles)})


def is_security_admin(roles) -> bool:
    return SECURITY_ADMIN in set(roles)


def may_administer(actor_roles, actor_unit: str, actor_user: str, target_user: str | None,
                   target_unit: str | None) -> None:
    """Only a security administrator manages accounts and grants roles (an
    administrator role too), within the unit they cover, never their own
    account (no one raises or unlocks themselves)."""
    if not is_security_admin(actor_roles):
        raise Forbidden("only the security administrator manages accounts and roles",
                        {"reason": "not_security_admin"})
    if target_user is not None and target_user == actor_user:
        raise Forbidden("the security administrator does not manage their own account",
                        {"reason": "own_account"})
    if target_unit is not None and not target_unit.startswith(actor_unit):
        raise Forbidden("the account's unit is outside the administrator's unit", {"reason": "jurisdiction"})


def keeps_a_security_admin(remaining_active_security_admins: int) -> None:
    """The last active security administrator cannot be disabled or lose the
    role: nobody could manage accounts afterwards."""
    if remaining_active_security_admins < 1:
        raise Conflict("this is the last active security administrator", {"reason": "last_security_admin"})


def no_account_exists(count: int) -> None:
    """``bootstrap`` makes the first security administrator, only while no account exists."""
    if count:
        raise Conflict("accounts exist already: bootstrap makes only the first security administrator",
                       {"reason": "already_bootstrapped"})
