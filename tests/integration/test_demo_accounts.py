"""Issue #12, "done when": after ``dibao demo`` the demo's community officer
logs in with ``dibao login`` (password on stdin, a TOTP code) from the
accounts file the demo wrote, and their session works; a token made any
other way — signed with another key — is refused; the file is 0600.

Issue #14, "done when", on the same demo run (one run: the suite's budget):
``/api/openapi.json`` is OpenAPI 3 with the operator paths and security
schemes; the API refuses a caller without a login; ``/board/<community>``
needs no login and shows masked IDs only; in headless Chromium the demo's
community officer logs in (password + one-time code) at the gateway and
opens an application showing its review status.

Real intake, review, notify, identity and gateway containers (RabbitMQ,
SQLite): the demo makes its people's accounts at identity, which signs
their logins."""
from __future__ import annotations

import json
import re
import stat
from datetime import datetime, timezone
from pathlib import Path

import jwt
import pyotp
import pytest
import requests
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

from cli import app
from services.gateway.service import GatewayService
from shared.db import make_engine
from shared.identity import sign_token
from tests.browser_helpers import free_port, fresh
from tests.identity_helpers import with_secrets
from tests.integration.test_cli import RESIDENT_ID, dibao, start_review

pytestmark = pytest.mark.integration
runner = CliRunner()


MASKED_ID = re.compile(r"^\d{3}\*{8,}[\dX]{4}$")


def next_code(secret: str, steps: int = 1) -> str:
    """The code of a later 30-second step: the demo used this step's (a code counts once,
    and only a later step's after it; the test deployment accepts a few steps ahead)."""
    totp = pyotp.TOTP(secret)
    return totp.generate_otp(totp.timecode(datetime.now(timezone.utc)) + steps)


def application_in(config: dict, community: str) -> str:
    return review_row(config, community)[0]


def review_row(config: dict, community: str):
    """(application id, review status) of an application of the community, or (None, None)."""
    engine = make_engine(config["DB_URIS"]["review"])
    try:
        with engine.connect() as conn:
            row = conn.execute(sa.text("SELECT application_id, status FROM review_file WHERE community_code = :c"),
                               {"c": community}).first()
            return tuple(row) if row else (None, None)
    finally:
        engine.dispose()


def test_a_demo_person_logs_in_from_the_accounts_file_and_only_identitys_tokens_work(
        container_factory, sqlite_config, tmp_path, browser):
    config, config_file = start_review(container_factory, with_secrets(sqlite_config), "jiangxia", tmp_path,
                                       notify=True, identity=True)
    base = start_gateway(container_factory, config)
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

    # --- issue 14's "done when", at the gateway, on the same demo run -----------------------
    document = requests.get(base + "/api/openapi.json", timeout=20).json()
    assert document["openapi"].startswith("3.")
    assert {"bearerAuth", "cookieAuth"} <= set(document["components"]["securitySchemes"])
    for path in ("/households", "/applications/{application_id}/review", "/review/worklist",
                 "/review/joint-review-signatures", "/payments/runs", "/audit/trace", "/identity/accounts"):
        assert path in document["paths"], path
    for bad in (None, forged):                                       # no login, or a forged one: refused
        headers = {"Authorization": f"Bearer {bad}"} if bad else {}
        refused = requests.get(f"{base}/api/applications/{application}/review", headers=headers, timeout=20)
        assert refused.status_code == 401 and refused.json()["code"] == "unauthenticated", refused.text
    answered = requests.get(f"{base}/api/applications/{application}/review",
                            headers={"Authorization": f"Bearer {token}"}, timeout=20)
    assert answered.status_code == 200 and answered.json()["application_id"] == application, answered.text

    township = officer["unit"][:9]
    masked_cells = 0
    for unit in (officer["unit"], township):                         # no login, no cookie
        board = requests.get(f"{base}/board/{unit}", timeout=20)
        assert board.status_code == 200 and 'id="board"' in board.text, (unit, board.status_code)
        assert not RESIDENT_ID.search(board.text), f"a whole ID number on the board of {unit}"
        cells = re.findall(r'<td data-label="[^"]*" class="id">([^<]*)</td>', board.text)
        assert all(MASKED_ID.match(cell) for cell in cells), cells
        masked_cells += len(cells)
    assert masked_cells, "the demo left no notice on the community's or the township's board"

    console = fresh(browser, base)
    console.login(officer["user"], officer["password"], next_code(officer["totp_secret"], steps=2))
    assert console.path == "/" or console.path.startswith("/worklist"), console.path
    console.open(f"/applications/{application}")
    status = console.find("#status")
    assert status.get_attribute("data-status") == review_row(config, officer["unit"])[1]
    assert "申请审核状态" in console.text("h1") and "审核进度" in console.text("#review-status")
    assert status.text and console.find("#step").text


def start_gateway(container_factory, config: dict) -> str:
    """The gateway beside the demo's services (on a free port): its base URL."""
    port = free_port()
    container_factory(GatewayService, dict(config, WEB_SERVER_ADDRESS=f"127.0.0.1:{port}",
                                           WEB_SESSION_TOUCH_SECONDS=60)).start()
    return f"http://127.0.0.1:{port}"
