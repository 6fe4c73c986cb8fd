"""The security administrator's accounts page in headless Chromium, over real
RabbitMQ: add an account (its one-time credentials shown once), grant a role,
unlock an account locked by failed logins, reset a password — each identity's
RPC as the administrator.
"""
from __future__ import annotations

import pytest

from shared.errors import Forbidden
from tests.identity_helpers import rpc_with
from tests.browser_helpers import fresh, start_console
from tests.helpers import COMMUNITY
from tests.identity_helpers import ADMIN_PASSWORD, add_person, bootstrap_admin, code  # noqa: I001

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_the_security_administrator_adds_grants_unlocks_and_resets(container_factory, sqlite_config, browser):
    config, base = start_console(container_factory, dict(sqlite_config, LOGIN_MAX_FAILURES=2))
    admin = bootstrap_admin(config)
    officer = add_person(config, admin, "wang.officer", ["community_officer"], unit=COMMUNITY, name="王专干")
    for _ in range(2):                                               # two wrong passwords: locked
        with rpc_with(config) as rpc, pytest.raises(Forbidden):
            rpc.identity.login("wang.officer", "wrong-password-1", "000000")

    console = fresh(browser, base)
    console.login("sec.admin", ADMIN_PASSWORD, code(admin.totp_secret))
    console.find('nav.main a[href="/admin/accounts"]').click()
    console.wait_path(lambda p: p == "/admin/accounts")
    row = '#accounts li[data-user="wang.officer"]'
    assert console.find(row).get_attribute("data-status") == "locked"
    console.screenshot("admin-accounts")
    console.submit(f"{row} button.unlock")
    console.wait_path(lambda p: p == "/admin/accounts/action")
    assert "已解锁" in console.text("#message")
    assert console.find(row).get_attribute("data-status") == "active"

    console.fill("#new-user", "li.panel").fill("#new-name", "李评议").fill("#new-unit", COMMUNITY)
    console.find('#new-roles option[value="community_panel"]').click()
    console.submit("#add")
    console.wait_path(lambda p: p == "/admin/accounts")
    assert console.find("#one-time-password").text and console.find("#totp-secret").text
    assert "li.panel" not in console.path
    added = '#accounts li[data-user="li.panel"]'
    assert "社区评议小组成员" in console.text(added)

    console.find(f'{added} select[name="role"] option[value="community_officer"]').click()
    console.submit(f"{added} button.grant")
    console.wait_path(lambda p: p == "/admin/accounts/action")
    assert "社区低保专干" in console.text(added)
    console.submit(f"{row} button.reset-password")
    console.wait_path(lambda p: p == "/admin/accounts/action")
    assert "已重置密码" in console.text("#message") and console.find("#one-time-password").text
    console.logout()

    # the reset took: the officer's old password no longer works
    with rpc_with(config) as rpc, pytest.raises(Forbidden):
        rpc.identity.login("wang.officer", officer.password, code(officer.totp_secret))
