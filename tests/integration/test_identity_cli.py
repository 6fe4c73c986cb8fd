"""``dibao login/logout``, ``dibao auth``, ``dibao users`` through typer's
CliRunner against a real identity container (RabbitMQ, SQLite)."""
from __future__ import annotations

import json
import re
import stat

import jwt
import pytest
from typer.testing import CliRunner

from services.identity.service import IdentityService
from cli import app
from cli.auth import session_context
from tests.identity_helpers import COMMUNITY, DISTRICT, code, rpc_with, with_secrets
from tests.integration.test_cli import write_config

pytestmark = pytest.mark.integration

runner = CliRunner()


@pytest.fixture
def cli(container_factory, sqlite_config, tmp_path, monkeypatch):
    config = with_secrets(sqlite_config)
    container_factory(IdentityService, config).start()
    config_file = write_config(tmp_path / "dibao.yml", config)
    session_file = tmp_path / "home" / "session.json"
    monkeypatch.setenv("DIBAO_SESSION_FILE", str(session_file))

    def dibao(*args: str, input: str | None = None):
        return runner.invoke(app, ["--config", config_file, *args], input=input)

    dibao.session_file = session_file
    dibao.config = config
    return dibao


def shown(output: str, label: str) -> str:
    return re.search(rf"{label}:\s+(\S+)", output).group(1)


def test_bootstrap_login_users_and_logout(cli):
    made = cli("users", "bootstrap", "--user", "sec.admin", "--name", "安全管理员", "--unit", DISTRICT)
    assert made.exit_code == 0, made.output
    password, secret = shown(made.output, "one-time password"), shown(made.output, "TOTP secret")
    again = cli("users", "bootstrap", "--user", "other", "--name", "某", "--unit", DISTRICT)
    assert again.exit_code == 1 and "conflict" in again.output

    result = cli("login", "--user", "sec.admin", "--password-stdin", "--otp", code(secret),
                 input=f"{password}\nSecurity-Admin-2026\n")
    assert result.exit_code == 0, result.output
    assert "must be changed" in result.output
    mode = stat.S_IMODE(cli.session_file.stat().st_mode)
    assert mode == 0o600
    stored = json.loads(cli.session_file.read_text())
    assert set(stored) == {"user", "token", "expires_at"} and "Security-Admin-2026" not in cli.session_file.read_text()

    whoami = cli("auth", "whoami")
    assert whoami.exit_code == 0 and "sec.admin" in whoami.output and "security_admin" in whoami.output
    token = cli("auth", "print-token").output.strip()
    assert token == stored["token"] and session_context() == {"auth_token": token}
    assert jwt.decode(token, options={"verify_signature": False})["roles"] == ["security_admin"]

    added = cli("users", "add", "--user", "wang.fang", "--name", "王芳", "--unit", COMMUNITY,
                "--role", "community_officer", "--role", "community_panel")
    assert added.exit_code == 0, added.output
    assert shown(added.output, "one-time password") and shown(added.output, "TOTP secret")
    listed = cli("users", "list", "--json")
    assert listed.exit_code == 0, listed.output
    accounts = {a["user"]: a for a in json.loads(listed.output)}
    assert accounts["wang.fang"]["roles"] == ["community_officer", "community_panel"]
    assert "hash" not in listed.output and "secret" not in listed.output
    assert cli("users", "revoke", "wang.fang", "community_panel").exit_code == 0
    assert cli("users", "grant", "wang.fang", "deputy_director").exit_code == 0
    assert "disabled" in cli("users", "disable", "wang.fang").output
    assert "active" in cli("users", "enable", "wang.fang").output
    assert cli("users", "unlock", "wang.fang").exit_code == 0
    reset = cli("users", "reset", "wang.fang", "--totp")
    assert reset.exit_code == 0 and shown(reset.output, "TOTP secret")
    refused = cli("users", "grant", "wang.fang", "system_admin")
    assert refused.exit_code == 1 and "conflict" in refused.output and "Traceback" not in refused.output

    out = cli("logout")
    assert out.exit_code == 0 and not cli.session_file.exists()
    with rpc_with(cli.config, token) as rpc:   # the token no longer works anywhere identity is asked
        from shared.errors import Forbidden
        with pytest.raises(Forbidden):
            rpc.identity.whoami()
    after = cli("auth", "whoami")
    assert after.exit_code == 1 and "not logged in" in after.output


def test_wrong_password_is_one_red_line(cli):
    cli("users", "bootstrap", "--user", "sec.admin", "--name", "安全管理员", "--unit", DISTRICT)
    result = cli("login", "--user", "sec.admin", "--password-stdin", "--otp", "123456", input="Wrong-Password-1\n")
    assert result.exit_code == 1
    assert "login failed" in result.output and "Traceback" not in result.output
    assert not cli.session_file.exists()
