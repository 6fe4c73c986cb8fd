"""Identity's operator calls: who am I, change my password, log out — and
the security administrator's accounts (账号管理): add, list, roles, unlock,
disable / enable, reset the password or the one-time-code secret.

Each is identity's RPC as the logged-in person: identity checks the role
(only the security administrator manages accounts; never their own; the
audit administrator lists them), the unit and 三员分立, and records the
command. The account is named in the body, never in a URL (as the console's
forms do). New credentials are answered once, to the administrator who
made them. Logging in stays ``dibao login`` / the console's login page: the
API takes the token it gives.
"""
from __future__ import annotations

from contracts.rpc import identity as s
from services.gateway.api import Route

TAG = "identity 账号与登录"
ADMIN = "identity 账号管理 (security administrator)"

ROUTES = [
    Route("GET", "/identity/whoami", "identity", "whoami", "Who the token is: account, unit, roles, session", TAG,
          response=s.WhoamiOut),
    Route("POST", "/identity/password", "identity", "change_password",
          "Change your own password: every session of yours ends, the answer is the new session's token", TAG,
          body=s.ChangePasswordSchema, body_as=None, response=s.TokenOut, ends_session=True),
    Route("POST", "/identity/logout", "identity", "logout", "Log out: this session ends", TAG,
          ends_session=True),
    Route("GET", "/identity/accounts", "identity", "list_accounts",
          "The accounts within your unit (security or audit administrator)", ADMIN,
          query=s.ListAccountsSchema, response=s.AccountOut, many=True),
    Route("POST", "/identity/accounts", "identity", "add_account",
          "Add an account with its roles; the one-time password and TOTP secret are answered once", ADMIN,
          body=s.AddAccountSchema, response=s.CredentialsOut, status=201),
    Route("POST", "/identity/role-grants", "identity", "grant_role",
          "Grant a role (never to your own account; 三员分立 kept)", ADMIN, body=s.RoleSchema, body_as=None,
          response=s.AccountOut, status=201),
    Route("POST", "/identity/role-revocations", "identity", "revoke_role",
          "Revoke a role: it ends now, and the account's sessions with it", ADMIN, body=s.RoleSchema,
          body_as=None, response=s.AccountOut, status=201),
    Route("POST", "/identity/unlocks", "identity", "unlock_account",
          "Unlock an account locked by failed logins", ADMIN, body=s.UserSchema, body_as=None,
          response=s.AccountOut, status=201),
    Route("POST", "/identity/disablements", "identity", "disable_account",
          "Disable an account: its sessions end (never the last security administrator)", ADMIN,
          body=s.UserSchema, body_as=None, response=s.AccountOut, status=201),
    Route("POST", "/identity/enablements", "identity", "enable_account", "Enable a disabled account", ADMIN,
          body=s.UserSchema, body_as=None, response=s.AccountOut, status=201),
    Route("POST", "/identity/credential-resets", "identity", "reset_credentials",
          "A new one-time password or TOTP secret (answered once); the account's sessions end", ADMIN,
          body=s.ResetSchema, body_as=None, response=s.CredentialsOut, status=201),
]
