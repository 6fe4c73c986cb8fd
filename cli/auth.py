"""``dibao login``, ``dibao logout``, ``dibao auth …``, ``dibao users …``:
people log in to identity, and every command acts as the logged-in person.

The session is a file (mode 0600) at ``DIBAO_SESSION_FILE``, by default
``$XDG_CONFIG_HOME/dibao/session.json`` (``~/.config/dibao/session.json``),
holding the token identity signed and when it expires — never a password.
:func:`session_context` is what every other command passes as its RPC
context data. ``dibao users`` is the security administrator's (安全管理员)
account work; ``dibao users bootstrap`` makes the first one.
"""
from __future__ import annotations

import json
import os
import sys
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import List, Optional

import typer
from rich.markup import escape
from rich.table import Table

from cli.common import cli_command, console, fail, get_config

app = typer.Typer(help="The logged-in session: who am I, the token for scripts.", no_args_is_help=True)
users_app = typer.Typer(help="Accounts and roles (the security administrator, 安全管理员).", no_args_is_help=True)

SESSION_ENV = "DIBAO_SESSION_FILE"


def register(root: typer.Typer) -> None:
    root.command("login")(login)
    root.command("logout")(logout)


# --- the session file -----------------------------------------------------------------

def session_path() -> Path:
    explicit = os.environ.get(SESSION_ENV)
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "dibao" / "session.json"


def write_session(answer: dict, user: str) -> Path:
    """Keep the token in a file only its owner reads (0600, in a 0700 directory)."""
    path = session_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump({"user": user, "token": answer["token"], "expires_at": answer["expires_at"]}, fh)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return path


def read_session() -> dict | None:
    path = session_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        fail(f"the session file {path} is unreadable; log in again: dibao login --user <id>")
    if not isinstance(data, dict) or not data.get("token"):
        fail(f"the session file {path} holds no session; log in again: dibao login --user <id>")
    return data


def logged_in() -> dict:
    """The stored session, or a one-line error telling how to log in."""
    data = read_session()
    if data is None:
        fail("not logged in: dibao login --user <id>")
    try:
        expires = datetime.fromisoformat(data["expires_at"])
    except (KeyError, TypeError, ValueError):
        expires = None
    if expires is not None and expires <= datetime.now(timezone.utc):
        fail(f"the session of {data.get('user', '?')} has expired: dibao login --user {data.get('user', '<id>')}")
    return data


def session_context() -> dict:
    """RPC context data acting as the logged-in person: ``{"auth_token": token}``."""
    from shared.identity import AUTH_TOKEN_KEY

    return {AUTH_TOKEN_KEY: logged_in()["token"]}


@contextmanager
def identity_rpc(config: dict, context: dict | None = None):
    """identity's RPC, as the tools' own broker user (``<prefix>cli``) when
    broker users are on — never as AMQP_URI's administrator."""
    from shared.client import rpc_with

    with rpc_with(config, context) as proxy:
        yield proxy.identity


# --- reading secrets ------------------------------------------------------------------

def _read_secret(prompt: str, from_stdin: bool, confirm: bool = False) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        if not line:
            fail(f"{prompt}: nothing on standard input")
        return line.rstrip("\r\n")
    return typer.prompt(prompt, hide_input=True, confirmation_prompt=confirm)


# --- dibao login / logout ---------------------------------------------------------------

@cli_command
def login(
    ctx: typer.Context,
    user: str = typer.Option(..., "--user", "-u", help="your user id"),
    password_stdin: bool = typer.Option(False, "--password-stdin",
                                        help="read the password (and, if it must change, the new one on the "
                                             "next line) from standard input"),
    otp: Optional[str] = typer.Option(None, "--otp", help="the one-time code of your authenticator (TOTP)"),
) -> None:
    """Log in to identity; the session is kept for the other commands."""
    config = get_config(ctx)
    password = _read_secret("password", password_stdin)
    if otp is None and not password_stdin:
        otp = typer.prompt("one-time code (empty if your account has none)", default="", show_default=False)
    with identity_rpc(config) as identity:
        answer = identity.login(user, password, otp or None)
        if answer["must_change_password"]:
            console.print("the password must be changed now (12+ characters of 3 kinds, not your user id)")
            new = _read_secret("new password", password_stdin, confirm=not password_stdin)
            with identity_rpc(config, {"auth_token": answer["token"]}) as as_user:
                answer = as_user.change_password(password, new)
    path = write_session(answer, user)
    console.print(f"logged in as [bold]{escape(user)}[/bold] until {answer['expires_at']} (session in {path})",
                  soft_wrap=True)


@cli_command
def logout(ctx: typer.Context) -> None:
    """End the session at identity (its token stops working) and forget it here."""
    data = read_session()
    if data is None:
        console.print("not logged in")
        return
    config = get_config(ctx)
    try:
        with identity_rpc(config, {"auth_token": data["token"]}) as identity:
            identity.logout()
    except Exception as exc:  # noqa: BLE001 - an expired session: still forget it
        from shared.errors import Forbidden
        if not isinstance(exc, Forbidden):
            raise
    session_path().unlink(missing_ok=True)
    console.print(f"logged out {data.get('user', '')}")


# --- dibao auth ------------------------------------------------------------------------------

@app.command("whoami")
@cli_command
def whoami(ctx: typer.Context) -> None:
    """Who the session is, as identity sees it."""
    config = get_config(ctx)
    with identity_rpc(config, session_context()) as identity:
        me = identity.whoami()
    roles = ", ".join(me["roles"]) or "(none)"
    console.print(f"{me['user']} {me['name']} — unit {me['unit'] or '-'} — roles {roles} — "
                  f"session until {me['expires_at']}", soft_wrap=True)


@app.command("print-token")
@cli_command
def print_token() -> None:
    """Print the session's token (for scripts: Authorization / context data)."""
    typer.echo(logged_in()["token"])


# --- dibao users ------------------------------------------------------------------------------

def _print_credentials(made: dict) -> None:
    console.print(f"account [bold]{made['user']}[/bold] — give these to the person, once (shown only now):")
    if made.get("one_time_password"):
        console.print(f"  one-time password: {escape(made['one_time_password'])}  (to be changed at first login)",
                      soft_wrap=True)
    if made.get("totp_secret"):
        console.print(f"  TOTP secret:       {made['totp_secret']}", soft_wrap=True)
        console.print(f"  authenticator URI: {escape(made['totp_uri'])}", soft_wrap=True)


def _print_account(view: dict) -> None:
    console.print(f"{view['user']} {view['name']} — unit {view['unit']} — {view['status']} — roles "
                  f"{', '.join(view['roles']) or '(none)'}", soft_wrap=True)


@users_app.command("bootstrap")
@cli_command
def users_bootstrap(
    ctx: typer.Context,
    user: str = typer.Option(..., "--user", "-u", help="the first security administrator's user id"),
    name: str = typer.Option(..., "--name", "-n", help="their name"),
    unit: str = typer.Option(..., "--unit", help="division code of their unit (the district)"),
) -> None:
    """Make the first security administrator (only while no account exists)."""
    with identity_rpc(get_config(ctx)) as identity:
        _print_credentials(identity.bootstrap(user, name, unit))


@users_app.command("add")
@cli_command
def users_add(
    ctx: typer.Context,
    user: str = typer.Option(..., "--user", "-u", help="user id: lower-case letters, digits, . _ -"),
    name: str = typer.Option(..., "--name", "-n", help="the person's name"),
    unit: str = typer.Option(..., "--unit", help="division code of their unit"),
    role: List[str] = typer.Option([], "--role", "-r", help="a role held in that unit (repeatable)"),
) -> None:
    """Create an account; prints its one-time password and TOTP secret once."""
    with identity_rpc(get_config(ctx), session_context()) as identity:
        _print_credentials(identity.add_account({"user": user, "name": name, "unit": unit, "roles": role}))


def _account_command(method: str, doc: str):
    @cli_command
    def command(ctx: typer.Context, user: str = typer.Argument(..., help="the account's user id")) -> None:
        with identity_rpc(get_config(ctx), session_context()) as identity:
            _print_account(getattr(identity, method)(user))

    command.__doc__ = doc
    return command


users_app.command("disable")(_account_command("disable_account", "Disable an account: its sessions end at once."))
users_app.command("enable")(_account_command("enable_account", "Enable a disabled account again."))
users_app.command("unlock")(_account_command("unlock_account", "Lift the lock after repeated failed logins."))


@users_app.command("grant")
@cli_command
def users_grant(ctx: typer.Context, user: str = typer.Argument(...), role: str = typer.Argument(...)) -> None:
    """Grant a role in the account's unit."""
    with identity_rpc(get_config(ctx), session_context()) as identity:
        _print_account(identity.grant_role(user, role))


@users_app.command("revoke")
@cli_command
def users_revoke(ctx: typer.Context, user: str = typer.Argument(...), role: str = typer.Argument(...)) -> None:
    """Revoke a role (the account's sessions end)."""
    with identity_rpc(get_config(ctx), session_context()) as identity:
        _print_account(identity.revoke_role(user, role))


@users_app.command("reset")
@cli_command
def users_reset(
    ctx: typer.Context,
    user: str = typer.Argument(...),
    totp: bool = typer.Option(False, "--totp", help="a new TOTP secret instead of a new password"),
) -> None:
    """A new one-time password (changed at next login) or a new TOTP secret."""
    with identity_rpc(get_config(ctx), session_context()) as identity:
        _print_credentials(identity.reset_credentials(user, "totp" if totp else "password"))


@users_app.command("list")
@cli_command
def users_list(
    ctx: typer.Context,
    unit: Optional[str] = typer.Option(None, "--unit", help="only accounts within this division"),
    status: Optional[str] = typer.Option(None, "--status", help="active | disabled | locked"),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """The accounts within your unit (no secret is ever shown)."""
    with identity_rpc(get_config(ctx), session_context()) as identity:
        accounts = identity.list_accounts(unit, status)
    if as_json:
        typer.echo(json.dumps(accounts, ensure_ascii=False, indent=2))
        return
    table = Table(title=f"accounts ({len(accounts)})")
    for column in ("user", "name", "unit", "roles", "status", "password set", "last login"):
        table.add_column(column, overflow="fold")
    for a in accounts:
        table.add_row(a["user"], a["name"], a["unit"], ", ".join(a["roles"]), a["status"],
                      (a["password_set_at"] or "")[:10], (a["last_login_at"] or "")[:16])
    console.print(table)
