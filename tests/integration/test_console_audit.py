"""The console's audit pages in headless Chromium, over real RabbitMQ: the
timeline of a household shows who did each step (name, login, role, unit),
the chain's status, the statistics paragraph and table with server-made SVG
charts (inline markup, no script), and the scorecard.
"""
from __future__ import annotations

from datetime import date

import pytest

from shared.errors import NotFound
from shared.identity import Role
from shared.testing import rpc_as, wait_for
from tests.browser_helpers import fresh, start_console
from tests.helpers import COMMUNITY, DISTRICT, household
from tests.identity_helpers import add_person, bootstrap_admin, code

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_the_audit_timeline_shows_who_did_each_step(container_factory, sqlite_config, browser):
    from services.audit.service import AuditService

    config, base = start_console(container_factory, sqlite_config, extra=(AuditService,))
    admin = bootstrap_admin(config)
    auditor = add_person(config, admin, "sun.audit", ["auditor"], unit=DISTRICT, name="孙审计")
    with rpc_as(config, Role.COMMUNITY_OFFICER, COMMUNITY, user="wang.officer", name="王专干") as rpc:
        created = rpc.intake.register_household(household(seed=3, community=COMMUNITY))
    with rpc_as(config, Role.COMMUNITY_OFFICER, COMMUNITY, user="li.officer", name="李专干") as rpc:
        rpc.intake.submit_application({"household_id": created["household_id"],
                                       "accepted_on": date.today().isoformat()})

    def recorded():
        with rpc_as(config, Role.AUDITOR, DISTRICT, user="probe.audit") as rpc:
            try:
                entries = rpc.audit.trace({"household_id": created["household_id"]})
            except NotFound:
                return None
        users = {e["user"] for e in entries}
        return entries if {"wang.officer", "li.officer"} <= users else None
    wait_for(recorded, timeout=30, message="the household's steps in the audit")

    console = fresh(browser, base)
    console.login("sun.audit", auditor.password, code(auditor.totp_secret))
    console.find('nav.main a[href="/audit"]').click()
    console.wait_path(lambda p: p == "/audit")
    assert console.find("#chain").get_attribute("data-broken") == "no"
    assert "链路连续" in console.text("#chain")
    console.screenshot("audit")
    console.fill("#trace-household_id", created["household_id"]).submit("#trace-household_id-go")
    console.wait_path(lambda p: p.startswith("/audit/trace"))
    steps = {li.get_attribute("data-what"): li.text for li in console.all("#timeline li")}
    registered = steps["intake.register_household"]
    accepted = steps["intake.submit_application"]
    assert "王专干（wang.officer）" in registered and "社区低保专干" in registered and "东城社区" in registered, registered
    assert "李专干（li.officer）" in accepted, accepted
    assert household(seed=3, community=COMMUNITY)["members"][0]["resident_id"] not in console.driver.page_source
    console.screenshot("audit-timeline")

    console.find('nav.main a[href="/audit/statistics"]').click()
    console.wait_path(lambda p: p.startswith("/audit/statistics"))
    assert "城镇低保对象已达" in console.text("#paragraph")
    assert "城镇低保户数" in console.text("#stat-table")
    charts = console.all("#charts svg")
    assert len(charts) == 4 and "每月保障户数" in charts[0].get_attribute("aria-label")
    assert not console.all("script:not([src])")                     # no inline script (the CSP allows none)
    console.screenshot("audit-statistics")
    console.open("/audit/scorecard")
    assert "考评" in console.text("h1")
