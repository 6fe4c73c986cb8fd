"""The console's web security over plain HTTP (no browser: quick), as an
insider would try it: forms without their CSRF token, a login whose password
must change, the headers every page carries, a household page view recorded
as ``file_viewed`` — and nothing personal in what comes back in a URL.
"""
from __future__ import annotations

import json
import re

import pytest
import requests
import sqlalchemy as sa

from shared.db import make_engine
from shared.identity import Role
from shared.testing import rpc_as
from tests.helpers import COMMUNITY, household
from tests.identity_helpers import bootstrap_admin, code, rpc_with

pytestmark = pytest.mark.integration

TIMEOUT = 20
NEW_PASSWORD = "Officer-Pass-2026"


def csrf_of(page: str) -> str:
    return re.search(r'name="csrf_token" value="([0-9a-f]{64})"', page).group(1)


def form_login(session: requests.Session, base: str, user: str, password: str, otp: str):
    token = csrf_of(session.get(base + "/login", timeout=TIMEOUT).text)
    return session.post(base + "/login", data={"csrf_token": token, "user": user, "password": password, "otp": otp},
                        allow_redirects=False, timeout=TIMEOUT)


def test_first_login_changes_the_password_then_lands_on_the_worklist(console_deployment):
    config, base = console_deployment
    admin = bootstrap_admin(config)
    with rpc_with(config, admin.token) as rpc:
        made = rpc.identity.add_account({"user": "wang.officer", "name": "王专干", "unit": COMMUNITY,
                                         "roles": ["community_officer"]})
    browser = requests.Session()

    # a form without its token is refused before anything is asked of identity
    refused = browser.post(base + "/login", data={"user": "wang.officer", "password": made["one_time_password"],
                                                  "otp": code(made["totp_secret"])}, timeout=TIMEOUT)
    assert refused.status_code == 403 and 'data-code="forbidden"' in refused.text

    wrong = form_login(browser, base, "wang.officer", "Wrong-Password-1", code(made["totp_secret"]))
    assert wrong.status_code == 401 and "登录失败" in wrong.text and "Wrong-Password-1" not in wrong.text

    answer = form_login(browser, base, "wang.officer", made["one_time_password"], code(made["totp_secret"]))
    assert answer.status_code == 303 and answer.headers["Location"].endswith("/password")
    assert "dibao_session" not in browser.cookies                      # no session before the new password
    cookie = answer.headers["Set-Cookie"]
    assert "dibao_password_change=" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert "Path=/password" in cookie

    # the password-change token opens nothing but /password
    assert browser.get(base + "/", allow_redirects=False, timeout=TIMEOUT).headers["Location"].endswith("/login")
    page = browser.get(base + "/password", timeout=TIMEOUT)
    assert page.status_code == 200 and "首次登录" in page.text
    weak = browser.post(base + "/password", data={"csrf_token": csrf_of(page.text),
                                                  "old_password": made["one_time_password"],
                                                  "new_password": "short", "confirm_password": "short"},
                        timeout=TIMEOUT)
    assert weak.status_code == 400 and "新密码不符合要求" in weak.text
    changed = browser.post(base + "/password", data={"csrf_token": csrf_of(page.text),
                                                     "old_password": made["one_time_password"],
                                                     "new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD},
                           allow_redirects=False, timeout=TIMEOUT)
    assert changed.status_code == 303 and changed.headers["Location"].endswith("/")
    assert "dibao_session" in browser.cookies
    worklist = browser.get(base + "/", timeout=TIMEOUT)
    assert worklist.status_code == 200 and "待办" in worklist.text and "王专干" in worklist.text

    # logging out is a form too: without the token it ends nothing
    assert browser.post(base + "/logout", timeout=TIMEOUT).status_code == 403
    assert browser.get(base + "/", timeout=TIMEOUT).url.endswith("/")
    out = browser.post(base + "/logout", data={"csrf_token": csrf_of(worklist.text)}, allow_redirects=False,
                       timeout=TIMEOUT)
    assert out.status_code == 303 and out.headers["Location"].endswith("/login")


def test_pages_carry_the_security_headers_and_a_household_view_is_recorded(console_deployment):
    config, base = console_deployment
    admin = bootstrap_admin(config)
    from tests.identity_helpers import add_person

    officer = add_person(config, admin, "wang.officer", ["community_officer"], unit=COMMUNITY, name="王专干")
    data = household(seed=41)
    data["address"] = '<script>alert("x")</script>纸坊大街1号'
    with rpc_as(config, Role.COMMUNITY_OFFICER, COMMUNITY, user="wang.officer") as rpc:
        household_id = rpc.intake.register_household(data)["household_id"]
    browser = requests.Session()
    assert form_login(browser, base, "wang.officer", officer.password, code(officer.totp_secret)).status_code == 303

    page = browser.get(base + f"/households/{household_id}", timeout=TIMEOUT)
    assert page.status_code == 200
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert page.headers["X-Frame-Options"] == "DENY" and page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["Cache-Control"] == "no-store" and page.headers["Referrer-Policy"] == "no-referrer"
    assert "<script>alert" not in page.text and "&lt;script&gt;alert" in page.text      # escaped
    assert re.search(r"<script(?![^>]*\bsrc=)", page.text) is None                     # no inline script at all
    assert data["members"][0]["resident_id"] not in page.text                          # masked

    engine = make_engine(config["DB_URIS"]["intake"])
    try:
        with engine.connect() as conn:
            bodies = [json.loads(b) for b in conn.execute(sa.text(
                "SELECT body FROM outbox WHERE routing_key = 'file_viewed'")).scalars()]
    finally:
        engine.dispose()
    viewed = [b for b in bodies if b["subject"]["household_id"] == household_id]
    assert [v["actor"]["user"] for v in viewed] == ["wang.officer"]                     # the page view, as the person


def test_the_gateway_works_as_its_own_broker_user(broker_users_config, container_factory):
    """With broker users on (as `dibao up` and compose run it), the gateway connects as
    ``<prefix>gateway`` (shared/broker.py): it calls identity and gets its answers."""
    from services.gateway.service import GatewayService
    from services.identity.service import IdentityService
    from shared.broker import connection_user, service_config, user_name
    from shared.client import rpc_with as client_rpc
    from tests.browser_helpers import free_port
    from tests.identity_helpers import with_secrets

    port = free_port()
    config = dict(with_secrets(broker_users_config), WEB_SERVER_ADDRESS=f"127.0.0.1:{port}")
    assert connection_user(service_config(config, "gateway")["AMQP_URI"]) == user_name(config, "gateway")
    container_factory(IdentityService, config).start()       # each as its own user (tests/conftest.py)
    container_factory(GatewayService, config).start()
    with client_rpc(config) as rpc:                          # the tools' own broker user
        made = rpc.identity.bootstrap("sec.admin", "安全管理员", "420115")
    base, browser = f"http://127.0.0.1:{port}", requests.Session()
    answer = form_login(browser, base, "sec.admin", made["one_time_password"], code(made["totp_secret"]))
    assert answer.status_code == 303 and answer.headers["Location"].endswith("/password")
    page = browser.get(base + "/password", timeout=TIMEOUT)
    changed = browser.post(base + "/password", data={
        "csrf_token": csrf_of(page.text), "old_password": made["one_time_password"],
        "new_password": "Security-Admin-2026", "confirm_password": "Security-Admin-2026"},
        allow_redirects=False, timeout=TIMEOUT)
    assert changed.status_code == 303
    home = browser.get(base + "/", timeout=TIMEOUT)
    assert home.status_code == 200 and "安全管理员" in home.text
