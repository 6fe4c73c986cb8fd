"""Issue #12, "done when": after ``dibao demo`` the demo's community officer
logs in with ``dibao login`` (password on stdin, a TOTP code) from the
accounts file the demo wrote, and their session works; a token made any
other way — signed with another key — is refused; the file is 0600.

Real intake, review, notify and identity containers (RabbitMQ, SQLite): the
demo makes its people's accounts at identity, which signs their logins."""
from __future__ import annotations

import json
import stat
from datetime import datetime, timezone
from pathlib import Path

import jwt
import pyotp
import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

from cli import app
from shared.db import make_engine
from shared.identity import sign_token
from tests.integration.test_cli import dibao, start_review

pytestmark = pytest.mark.integration
runner = CliRunner()


def next_code(secret: str) -> str:
    """The code of the next 30-second step: the demo used this step's (a code counts once)."""
    totp = pyotp.TOTP(secret)
    return totp.generate_otp(totp.timecode(datetime.now(timezone.utc)) + 1)


def application_in(config: dict, community: str) -> str:
    engine = make_engine(config["DB_URIS"]["review"])
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text("SELECT application_id FROM review_file WHERE community_code = :c"),
                                {"c": community}).scalars().first()
    finally:
        engine.dispose()


def test_a_demo_person_logs_in_from_the_accounts_file_and_only_identitys_tokens_work(
        container_factory, sqlite_config, tmp_path):
    config, config_file = start_review(container_factory, sqlite_config, "jiangxia", tmp_path, notify=True,
                                       identity=True)
    result = dibao(config_file, "demo", "--households", "6", "--seed", "3")
    assert result.exit_code == 0, result.output
    path = Path(config["DATA_DIR"]) / "demo" / "accounts.json"
    assert "accounts.json" in result.output and "dibao login --user" in result.output
    assert stat.S_IMODE(path.stat().st_mode) == 0o600                     # demo data, its owner's only
    accounts = json.loads(path.read_text(encoding="utf-8"))
    assert all(set(a) == {"user", "name", "role", "unit", "password", "totp_secret"} for a in accounts)
    roles = {a["role"] for a in accounts}
    assert {"security_admin", "system_admin", "community_officer", "township_officer", "district_officer",
            "deputy_director", "centre_director"} <= roles
    officer = next(a for a in accounts if a["role"] == "community_officer"
                   and application_in(config, a["unit"]) is not None)
    application = application_in(config, officer["unit"])

    session = tmp_path / "home" / "session.json"
    env = {"DIBAO_SESSION_FILE": str(session), "COLUMNS": "200"}
    login = runner.invoke(app, ["--config", config_file, "login", "--user", officer["user"], "--password-stdin",
                                "--otp", next_code(officer["totp_secret"])], input=officer["password"] + "\n", env=env)
    assert login.exit_code == 0, login.output
    assert "must be changed" not in login.output                         # the demo set the password already
    stored = json.loads(session.read_text(encoding="utf-8"))
    token = stored["token"]
    header, claims = jwt.get_unverified_header(token), jwt.decode(token, options={"verify_signature": False})
    assert header["alg"] == "EdDSA" and claims["sub"] == officer["user"] and claims["roles"] == ["community_officer"]

    whoami = runner.invoke(app, ["--config", config_file, "auth", "whoami"], env=env)
    assert whoami.exit_code == 0 and officer["user"] in whoami.output and "community_officer" in whoami.output
    status = runner.invoke(app, ["--config", config_file, "review", "status", application], env=env)
    assert status.exit_code == 0, status.output
    assert application in status.output

    # the same claims signed with any other key: refused, in one line
    forged = sign_token(Ed25519PrivateKey.generate(), dict(claims, jti="f" * 32))
    session.write_text(json.dumps(dict(stored, token=forged)), encoding="utf-8")
    refused = runner.invoke(app, ["--config", config_file, "review", "status", application], env=env)
    assert refused.exit_code == 1 and "Traceback" not in refused.output
    assert "forbidden" in refused.output.lower() and "in_review" not in refused.output
    refused = runner.invoke(app, ["--config", config_file, "auth", "whoami"], env=env)
    assert refused.exit_code == 1 and "community_officer" not in refused.output
