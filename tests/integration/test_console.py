"""The console in headless Chromium, over real RabbitMQ: the people log in
with their password and one-time code at identity, and every page calls the
services as them.

- A community officer logs in, sees the worklist (待办) with the application
  waiting for them, finds it among the unit's applications, opens it and sees
  its review status, opens the household
  file (ID numbers masked), logs out — and the session no longer works.
- A community officer cannot open another community's household: the 403
  page (the same as for a household that does not exist), and intake's
  record of the refused read reaches the audit.

Screenshots of the pages go to docs/console/ (referenced by docs/console.md).
"""
from __future__ import annotations

import re
from datetime import date

import pytest
import requests

from shared.identity import Role
from shared.testing import rpc_as, wait_for
from tests.browser_helpers import fresh, start_console
from tests.helpers import COMMUNITY, DISTRICT, OTHER_COMMUNITY, household
from tests.identity_helpers import add_person, bootstrap_admin, code

pytestmark = [pytest.mark.integration, pytest.mark.slow]

UUID_PATH = re.compile(r"^/(applications|households)/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def officer_of(config):
    admin = bootstrap_admin(config)
    return add_person(config, admin, "wang.officer", ["community_officer"], unit=COMMUNITY, name="王专干")


def registered(config, unit=COMMUNITY, user="wang.officer", seed=5):
    """A household with an accepted application in ``unit``, registered by its officer."""
    data = household(seed=seed, community=unit)
    with rpc_as(config, Role.COMMUNITY_OFFICER, unit, user=user) as rpc:
        created = rpc.intake.register_household(data)
        application = rpc.intake.submit_application({"household_id": created["household_id"],
                                                     "accepted_on": date.today().isoformat()})
    return created["household_id"], application["id"], data


def session_cookie(console) -> dict:
    return {c["name"]: c["value"] for c in console.driver.get_cookies() if c["name"] == "dibao_session"}


def test_an_officer_logs_in_sees_the_worklist_and_opens_an_applications_review_status(
        console_deployment, browser):
    config, base = console_deployment
    officer = officer_of(config)
    household_id, application_id, data = registered(config)
    wait_for(lambda: rpc_review_file(config, application_id), timeout=20, message="review's file of the application")

    console = fresh(browser, base)
    console.open("/")
    assert console.path == "/login"                       # no login: the login page
    console.screenshot("login")
    console.login("wang.officer", officer.password, code(officer.totp_secret))
    assert console.path == "/"
    page = console.text()
    assert "审核待办" in page and "待入户调查" in page, page
    assert "东城社区" in page
    cookie = next(c for c in console.driver.get_cookies() if c["name"] == "dibao_session")
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict"
    console.screenshot("worklist")

    console.find('nav.main a[href="/applications"]').click()     # the unit's applications (申请)
    console.wait_path(lambda p: p == "/applications")
    assert "待入户调查" in console.text("#applications")
    console.screenshot("applications")
    console.find(f'#applications a[href="/applications/{application_id}"]').click()
    console.wait_path(lambda p: p.startswith("/applications/"))
    assert UUID_PATH.match(console.path), console.path       # nothing personal in the URL
    assert console.find("#status").get_attribute("data-status") == "awaiting_investigation"
    assert "待入户调查" in console.text("#review-status")
    console.screenshot("application")

    console.submit("#household-link")
    console.wait_path(lambda p: p.startswith("/households/"))
    assert UUID_PATH.match(console.path), console.path
    source = console.driver.page_source
    head = data["members"][0]
    assert head["name"] in source
    assert head["resident_id"] not in source                 # ID numbers masked (脱敏)
    assert head["resident_id"][:3] + "*" * 11 + head["resident_id"][-4:] in source
    console.screenshot("household")

    token = session_cookie(console)
    console.logout()
    assert console.path == "/login"
    # the session ended at identity: the old cookie no longer opens anything
    answer = requests.get(base + "/", cookies=token, allow_redirects=False, timeout=20)
    assert answer.status_code == 303 and answer.headers["Location"].endswith("/login")
    api = requests.get(base + f"/api/applications/{application_id}/review", cookies=token, timeout=20)
    assert api.status_code == 401 and api.json()["code"] == "unauthenticated"


def rpc_review_file(config, application_id):
    from shared.errors import NotFound

    with rpc_as(config, Role.COMMUNITY_OFFICER, COMMUNITY, user="wang.officer") as rpc:
        try:
            return rpc.review.get_application(application_id)
        except NotFound:
            return None


def test_an_officer_cannot_open_another_communitys_household(container_factory, sqlite_config, browser):
    from services.audit.service import AuditService

    config, base = start_console(container_factory, sqlite_config, extra=(AuditService,))
    officer = officer_of(config)
    elsewhere, _, _ = registered(config, unit=OTHER_COMMUNITY, user="qian.other", seed=9)

    console = fresh(browser, base).login("wang.officer", officer.password, code(officer.totp_secret))
    console.open(f"/households/{elsewhere}")
    assert console.find("section.error").get_attribute("data-code") == "forbidden"
    assert "无权查看" in console.text()
    console.screenshot("forbidden")

    cookie = session_cookie(console)
    refused = requests.get(base + f"/households/{elsewhere}", cookies=cookie, timeout=20)
    never_issued = requests.get(base + "/households/00000000-0000-4000-8000-000000000000", cookies=cookie,
                                timeout=20)
    assert refused.status_code == never_issued.status_code == 403
    assert refused.text.count("无权查看") == never_issued.text.count("无权查看") >= 1

    def refusal_recorded():
        with rpc_as(config, Role.AUDITOR, DISTRICT, user="audit.li") as rpc:
            entries = rpc.audit.trace({"household_id": elsewhere})
        return [e for e in entries if e["what"] == "intake.get_household" and e["user"] == "wang.officer"]

    recorded = wait_for(refusal_recorded, timeout=30, message="the refused read in the audit")
    assert {e["outcome"] for e in recorded} == {"not_found"}
