"""The whole entry review (进口) of one household done in headless Chromium
by the people whose step it is, each logged in with password and one-time
code, over real RabbitMQ with identity, intake, review, notify and the
gateway running:

community officer (registers and edits the household, files a document
with its scan, accepts the application, records the home investigation on a
phone-sized page) → evaluation panel (民主评议) → notices (notify posts them;
the test moves the clock past their period) → township committee (评审) →
the three joint-review signers, each from their own login, seeing who has
signed and the benefit with its calculation; one person holding two
district roles is refused a second seat on the page. It ends in an approved
case. Screenshots of the pages go to docs/console/ (docs/console.md).
"""
from __future__ import annotations

import base64
import struct
import zlib
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import requests

from shared.identity import Role
from shared.testing import rpc_as, wait_for
from tests.browser_helpers import DESKTOP, PHONE, fresh, start_console
from tests.helpers import COMMUNITY, DISTRICT, TOWNSHIP, household
from tests.identity_helpers import add_person, bootstrap_admin, code

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PEOPLE = [  # user, roles, unit, name
    ("wang.officer", ["community_officer"], COMMUNITY, "王专干"),
    ("liu.panel", ["community_panel"], COMMUNITY, "刘评议"),
    ("chen.committee", ["township_committee"], TOWNSHIP, "陈委员"),
    ("zhou.director", ["centre_director", "deputy_director"], DISTRICT, "周主任"),   # two hats, one seat
    ("sun.deputy", ["deputy_director"], DISTRICT, "孙局长"),
]
#: the second investigator goes on the visit but never logs in here: identity's account event is enough
SECOND_INVESTIGATOR = {"user": "zhang.officer", "name": "张专干", "role": "community_officer", "unit": COMMUNITY}
#: a test deployment's password hashing (argon2id at its cheapest: this test is about the pages, and
#: six people log in on a shared 2-core machine; test_identity covers the deployment's parameters)
CHEAP_HASHING = {"ARGON2_TIME_COST": 1, "ARGON2_MEMORY_KIB": 1024}
URBAN_STANDARD = Decimal("820.00")      # the sample district's urban standard (config/reference)


def png() -> bytes:
    """A real 1×1 PNG (a scan's stand-in)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00\x80")) + chunk(b"IEND", b""))


def choose(console, css, value):
    from selenium.webdriver.support.ui import Select

    Select(console.find(css)).select_by_value(value)


def tick(console, css, on=True):
    box = console.find(css)
    if box.is_selected() != on:
        box.click()


def submit_and_wait(console, css, predicate):
    """Submit, wait for the next page, and for it to be where ``predicate`` says."""
    console.submit(css)
    return console.wait_path(predicate)


def at_step(console, application_id, step=None, status=None, timeout=30):
    """Reload the application's page until review shows it at ``step`` / ``status``."""
    def there():
        console.open(f"/applications/{application_id}")
        if not console.all("#step"):                 # review has not heard of it yet
            return False
        found = console.find("#step").get_attribute("data-step"), console.find("#status").get_attribute("data-status")
        return (step is None or found[0] == step) and (status is None or found[1] == status)
    wait_for(there, timeout=timeout, interval=0.3, message=f"application at {step or status}")


def pass_notice(config, application_id, stage):
    """notify posted the step's notice; its period ends (the clock moves on, as the timer would)."""
    def posted():
        with rpc_as(config, Role.DISTRICT_OFFICER, DISTRICT, user="zhao.district") as rpc:
            return [n for n in rpc.notify.list_notices(DISTRICT) if n["application_id"] == application_id
                    and n["stage"] == stage]
    wait_for(posted, timeout=30, message=f"{stage} notice posted")
    with rpc_as(config, Role.SYSTEM_ADMIN, DISTRICT, user="sys.admin") as rpc:
        rpc.notify.close_due_notices((date.today() + timedelta(days=31)).isoformat())


def people_registered(config, people):
    """identity's accounts reached intake's and review's staff registries."""
    wanted = {(u, r) for u, roles, _, _ in people for r in roles}
    with rpc_as(config, Role.DISTRICT_OFFICER, DISTRICT, user="zhao.district") as rpc:
        for service in (rpc.intake, rpc.review):
            wait_for(lambda: wanted <= {(s["user"], s["role"]) for s in service.list_staff(DISTRICT)},
                     timeout=30, message="the staff registries")


def test_the_whole_entry_review_in_the_browser_ends_in_an_approved_case(container_factory, sqlite_config, browser,
                                                                        tmp_path):
    from services.notify.service import NotifyService

    import time
    started = time.monotonic()

    def phase(name):
        print(f"{time.monotonic() - started:6.1f} s  {name}")

    import eventlet

    from shared.testing import publish_identity_event

    config, base = start_console(container_factory, dict(sqlite_config, POLICY="jiangxia", **CHEAP_HASHING),
                                 extra=(NotifyService,))
    admin = bootstrap_admin(config)
    accounts = eventlet.GreenPool(len(PEOPLE)).imap(
        lambda p: (p[0], add_person(config, admin, p[0], p[1], unit=p[2], name=p[3])), PEOPLE)
    person = dict(accounts)
    publish_identity_event(config, "account_created", {k: SECOND_INVESTIGATOR[k] for k in ("user", "name", "unit")}
                           | {"roles": [SECOND_INVESTIGATOR["role"]]})
    people_registered(config, PEOPLE + [(SECOND_INVESTIGATOR["user"], [SECOND_INVESTIGATOR["role"]], COMMUNITY, "")])

    def login(user):
        console = fresh(browser, base)
        return console.login(user, person[user].password, code(person[user].totp_secret))

    phase("people ready")
    data = household(seed=71)
    head, child = data["members"]

    # --- the community officer: register, edit, file a document with its scan, accept ---------------
    console = login("wang.officer")
    console.open("/households/new")
    assert console.find("#community_code").get_attribute("value") == COMMUNITY
    console.fill("#address", data["address"]).fill("#phone", data["phone"])
    choose(console, "#area_type", "urban")
    for n, member in enumerate((head, child)):
        console.fill(f"#members-{n}-name", member["name"]).fill(f"#members-{n}-resident_id", member["resident_id"])
        for field in ("relation", "labour_capacity", "employment", "disability", "illness"):
            choose(console, f"#members-{n}-{field}", member[field])
    choose(console, "#incomes-0-member", "0")
    choose(console, "#incomes-0-source", "wages")
    console.fill("#incomes-0-monthly_amount", "300.00")
    choose(console, "#assets-0-kind", "savings")
    console.fill("#assets-0-description", "银行存款").fill("#assets-0-value", "4968.00")
    console.fill("#members-2-name", "无证号")           # a row with a name but no ID number: refused, kept
    console.screenshot("household_register")
    console.submit("#save-household")
    assert "members-2-resident_id" in console.find("#error-members-2-resident_id").get_attribute("id")
    assert console.find("#members-0-resident_id").get_attribute("value") == head["resident_id"]   # input kept
    console.fill("#members-2-name", "")
    path = submit_and_wait(console, "#save-household", lambda p: p.startswith("/households/") and "new" not in p)
    household_id = path.split("/")[2]
    assert head["resident_id"] not in console.driver.page_source          # the file page masks ID numbers
    assert head["resident_id"][:3] + "*" * 11 + head["resident_id"][-4:] in console.driver.page_source

    console.submit("#edit-link")
    console.wait_path(lambda p: p.endswith("/edit"))
    assert console.find("#members-1-resident_id").get_attribute("value") == child["resident_id"]  # the officer's own form
    console.fill("#address", "文化路200号")
    submit_and_wait(console, "#save-household", lambda p: p == f"/households/{household_id}")
    assert "文化路200号" in console.text()

    console.submit("#documents-link")
    console.wait_path(lambda p: p.endswith("/documents"))
    assert console.find("#completeness").get_attribute("data-complete") == "no"
    scan = tmp_path / "户口簿.png"
    scan.write_bytes(png())
    not_a_scan = tmp_path / "note.png"
    not_a_scan.write_bytes(b"<script>alert(1)</script>")
    choose(console, "#kind", "household_register")
    console.fill("#title", "户口簿复印件")
    console.find("#scan").send_keys(str(not_a_scan))            # named .png, is not one: the scan is refused
    console.submit("#file-document")
    assert "扫描件未能保存" in console.text("#refusal")
    console.find("form.inline-upload input[type=file]").send_keys(str(scan))
    console.submit("form.inline-upload button")
    console.wait_path(lambda p: p.endswith("/documents?filed=1"))
    choose(console, "#kind", "id_copies")
    console.fill("#title", "身份证复印件")
    console.find("#scan").send_keys(str(scan))
    submit_and_wait(console, "#file-document", lambda p: p.endswith("?filed=1"))
    assert "身份证复印件" in console.text("#documents")
    assert console.find('#completeness li[data-kind="household_register"]').get_attribute("class") == "ok"
    links = [a.get_attribute("href") for a in console.all("a.scan")]
    assert len(links) == 2
    console.screenshot("household_file")
    cookie = {c["name"]: c["value"] for c in console.driver.get_cookies() if c["name"] == "dibao_session"}
    download = requests.get(links[0], cookies=cookie, timeout=20)
    assert download.status_code == 200 and download.content == png()
    assert download.headers["Content-Disposition"].startswith("attachment")
    sealed = list((Path(config["DATA_DIR"]) / "scans").rglob("*.sealed"))
    assert len(sealed) == 2 and all(b"PNG" not in p.read_bytes() for p in sealed)   # encrypted at rest
    assert requests.get(links[0], allow_redirects=False, timeout=20).status_code == 303   # no login: no scan

    console.open(f"/households/{household_id}")
    console.submit("#accept-link")
    console.wait_path(lambda p: p.endswith("/application"))
    path = submit_and_wait(console, "#accept", lambda p: p.startswith("/applications/"))
    application_id = path.split("/")[2]
    at_step(console, application_id, status="awaiting_investigation")

    # the home investigation, on a phone
    console.driver.set_window_size(*PHONE)
    console.open(f"/applications/{application_id}/investigation")
    assert console.driver.execute_script("return document.documentElement.scrollWidth") <= PHONE[0]
    tick(console, "#investigator-zhang\\.officer")
    tick(console, f'input[name="family_signature"][value="{_member_id(config, household_id, 0)}"]')
    choose(console, "#verified_incomes-0-member_id", _member_id(config, household_id, 0))
    choose(console, "#verified_incomes-0-source", "wages")
    console.fill("#verified_incomes-0-monthly_amount", "300.00")
    choose(console, "#verified_assets-0-kind", "savings")
    console.fill("#verified_assets-0-description", "银行存款").fill("#verified_assets-0-value", "4968.00")
    console.fill("#findings", "住房简陋，户主部分丧失劳动能力")
    console.screenshot("investigation")
    console.driver.set_window_size(*PHONE)
    submit_and_wait(console, "#save-investigation", lambda p: p == f"/applications/{application_id}")
    console.driver.set_window_size(*DESKTOP)
    console.logout()

    phase("officer done")
    # --- the evaluation panel ----------------------------------------------------------------
    console = login("liu.panel")
    at_step(console, application_id, step="community_evaluation")
    console.find(f'#actions a[href="/applications/{application_id}/evaluation"]').click()
    console.wait_path(lambda p: p.endswith("/evaluation"))
    for n, (name, role) in enumerate([("张代表", "representative"), ("李代表", "representative"),
                                      ("王代表", "representative"), ("刘评议", "officer")]):
        console.fill(f"#participants-{n}-name", name)
        choose(console, f"#participants-{n}-role", role)
        tick(console, f"#participants-{n}-signed", n != 2)          # one left unsigned: refused, named
    console.fill("#votes_for", "4").fill("#votes_against", "0").fill("#abstentions", "0")
    tick(console, "#passed-yes")
    console.fill("#remarks", "经评议符合条件")
    console.submit("#save-evaluation")
    assert console.all("#error-participants-2-signed"), console.text()
    tick(console, "#participants-2-signed")
    console.screenshot("evaluation")
    submit_and_wait(console, "#save-evaluation", lambda p: p == f"/applications/{application_id}")
    at_step(console, application_id, step="community_notice")
    wait_for(lambda: console.open(f"/applications/{application_id}/notice").all("#notice-status"), timeout=30,
             interval=0.3, message="the notice on the page")
    assert console.find("#notice-status").get_attribute("data-status") == "posted"
    assert head["resident_id"] not in console.driver.page_source
    console.screenshot("notice")
    console.logout()
    pass_notice(config, application_id, "community_notice")

    phase("panel done")
    # --- the township committee ----------------------------------------------------------------
    console = login("chen.committee")
    at_step(console, application_id, step="township_review")
    console.open(f"/applications/{application_id}/committee")
    for n, (name, department) in enumerate([("陈委员", "civil_affairs"), ("刘科长", "finance"),
                                            ("周所长", "police"), ("吴司法", "justice")]):
        console.fill(f"#members-{n}-name", name)
        choose(console, f"#members-{n}-department", department)
        choose(console, f"#members-{n}-opinion", "agree")
        tick(console, f"#members-{n}-signed")
    tick(console, "#passed-yes")
    console.screenshot("committee")
    submit_and_wait(console, "#save-committee", lambda p: p == f"/applications/{application_id}")
    at_step(console, application_id, step="township_notice")
    console.logout()
    pass_notice(config, application_id, "township_notice")

    phase("committee done")
    # --- the joint review: three seats, three logins ----------------------------------------------
    expected = URBAN_STANDARD * 2 - Decimal("300.00")
    console = login("zhou.director")
    at_step(console, application_id, step="joint_review")
    console.open(f"/applications/{application_id}/joint-review")
    assert Decimal(console.find("#benefit").get_attribute("data-amount")) == expected
    assert "820.00" in console.text("#calculation") and "1,340.00" in console.text("#gap")
    tick(console, "#seat-centre_director")
    console.fill("#benefit_override", "1500.00")                  # an override without its reason: refused
    console.submit("#sign")
    assert console.all("#error-override_reason"), console.text()
    console.fill("#benefit_override", "")
    tick(console, "#seat-centre_director")
    submit_and_wait(console, "#sign", lambda p: p.endswith("/joint-review"))
    assert "周主任 已签字" in console.text('#seats li[data-role="centre_director"]')
    tick(console, "#seat-deputy_director")                        # the same person, the second seat
    console.submit("#sign")
    assert "同一人不能担任两个会审角色" in console.text("#refusal"), console.text()
    assert console.find('#seats li[data-role="deputy_director"]').get_attribute("data-signed") == "no"
    console.screenshot("joint_review_refused")
    console.logout()

    console = login("sun.deputy")
    console.open(f"/applications/{application_id}/joint-review")
    assert "周主任 已签字" in console.text("#seats")                  # sees who has signed
    tick(console, "#seat-deputy_director")
    submit_and_wait(console, "#sign", lambda p: p.endswith("/joint-review"))
    console.screenshot("joint_review")
    console.logout()

    console = login("wang.officer")                               # who did the home investigation
    console.open(f"/applications/{application_id}/joint-review")
    assert [r.get_attribute("value") for r in console.all('input[name="role"]')] == ["investigator"]
    submit_and_wait(console, "#sign", lambda p: p == f"/applications/{application_id}")
    assert console.find("#status").get_attribute("data-status") == "approved"
    assert "1,340.00" in console.text("#review-status")
    console.screenshot("approved")

    phase("signers done")
    with rpc_as(config, Role.DISTRICT_OFFICER, DISTRICT, user="zhao.district") as rpc:
        final = rpc.review.get_application(application_id)
    assert final["status"] == "approved" and Decimal(final["case"]["monthly_benefit"]) == expected


def _member_id(config, household_id, n):
    with rpc_as(config, Role.COMMUNITY_OFFICER, COMMUNITY, user="wang.officer") as rpc:
        return rpc.intake.get_household(household_id)["members"][n]["id"]
