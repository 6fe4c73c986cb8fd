"""The console's month sheets, dynamic management and ledger pages over plain
HTTP (no browser), each person logged in with their own password and
one-time code, against the real services on RabbitMQ:

- 月度签到 / 公益劳动: the community officer's worklist shows the household not
  checked in; the stamp and an unexcused absence through the forms become
  intake's commands (``checkin_recorded``, ``labour_recorded``, recorded as
  the officer's); a form without its CSRF token changes nothing;
- 动态管理: the month-end run (a district officer) proposes cancellation; the
  township officer approves first from the case page, then is refused the
  next level (the policy's order) and refused approving their own proposal
  (maker ≠ checker) — typed messages on the page; the centre director's
  approval cancels the case; a campaign organised and a result recorded;
  another community's officer gets the 403 page for the case (the refused
  read recorded by review) and each case-page view is a ``file_viewed``;
- 保障金台账: the ledger, a case by month, the payee account changed on the
  page (a malformed number refused and never echoed, the account shown
  masked), another community's case the 403 page, recorded by payments;
- in headless Chromium at a phone's width (the one browser test here): the
  sheets and the case page without sideways scrolling, the stamp, the labour
  sheet and an approval clicked on the pages (the screenshots in
  docs/console.md).
"""
from __future__ import annotations

import re
import uuid
from datetime import date

import pytest
import requests

from shared.clock import FileClock
from shared.testing import wait_for
from tests.browser_helpers import PHONE, fresh, start_console
from tests.dynamic_helpers import approved_case, events, month_end, scalar
from tests.helpers import COMMUNITY, DISTRICT, OTHER_COMMUNITY, TOWNSHIP, register_staff
from tests.identity_helpers import add_person, bootstrap_admin, code

pytestmark = pytest.mark.integration

TIMEOUT = 20
START = date(2027, 1, 11)


def csrf_of(page: str) -> str:
    return re.search(r'name="csrf_token" value="([0-9a-f]{64})"', page).group(1)


class Browser:
    """One person's requests session, logged in through the login form."""

    def __init__(self, base: str, person):
        self.base, self.session = base, requests.Session()
        token = csrf_of(self.get("/login").text)
        answer = self.session.post(base + "/login", allow_redirects=False, timeout=TIMEOUT, data={
            "csrf_token": token, "user": person.user, "password": person.password, "otp": code(person.totp_secret)})
        assert answer.status_code == 303, answer.text[:500]

    def get(self, path: str, **kwargs):
        return self.session.get(self.base + path, timeout=TIMEOUT, **kwargs)

    def post(self, path: str, data: dict, token_from: str | None = None, **kwargs):
        """POST ``data`` with the CSRF token of the page at ``token_from`` (None: without one)."""
        if token_from is not None:
            data = dict(data, csrf_token=csrf_of(self.get(token_from).text))
        return self.session.post(self.base + path, data=data, allow_redirects=False, timeout=TIMEOUT, **kwargs)


def commands(config, service: str, method: str) -> list[dict]:
    return [e for e in events(config, "command_recorded", service) if e["payload"]["method"] == method]


def attr(page: str, element_id: str, name: str) -> str:
    return re.search(rf'id="{element_id}"[^>]*\b{name}="([^"]*)"', page).group(1)


def jiangxia_console(container_factory, sqlite_config, tmp_path):
    """identity, intake, review and the gateway under jiangxia on a clock the test moves; the
    staff registry's people (tests/helpers.py) and the security administrator."""
    clock = FileClock(tmp_path / "clock")
    clock.set(START)
    config, base = start_console(container_factory, dict(sqlite_config, POLICY="jiangxia",
                                                         CLOCK=f"file:{clock.path}"))
    register_staff(config)
    return config, base, clock, bootstrap_admin(config)


def test_month_sheets_and_dynamic_management_each_person_from_their_own_login(
        container_factory, sqlite_config, tmp_path):
    config, base, clock, admin = jiangxia_console(container_factory, sqlite_config, tmp_path)
    people = {user: add_person(config, admin, user, [role], unit=unit, name=name) for user, role, unit, name in (
        ("wang.officer", "community_officer", COMMUNITY, "王专干"),
        ("chen.officer", "community_officer", OTHER_COMMUNITY, "陈专干"),
        ("li.township", "township_officer", TOWNSHIP, "李办事员"),
        ("zhou.director", "centre_director", DISTRICT, "周主任"),
        ("zhao.district", "district_officer", DISTRICT, "赵专干"))}
    case = approved_case(config, clock, seed=81)
    household_id, member_id = case["household_id"], case["member_ids"][0]
    clock.set(date(2027, 2, 15))                       # the case is paid from February

    # --- 月度签到: the worklist shows the household waiting, the form stamps it -------------
    officer = Browser(base, people["wang.officer"])
    worklist = officer.get("/").text
    assert "2027-02 未续保登记的家庭" in worklist and f"#household-{household_id}" in worklist
    sheet = officer.get("/community/checkins")
    assert sheet.status_code == 200 and attr(sheet.text, f"household-{household_id}", "data-checked-in") == "no"
    stamp = {"household_id": household_id, "month": "2027-02", "checked_in_on": "2027-02-15"}
    assert officer.post("/community/checkins", stamp).status_code == 403          # no CSRF token: refused
    assert commands(config, "intake", "record_checkin") == []                      # … before intake was asked
    done = officer.post("/community/checkins", stamp, token_from="/community/checkins")
    assert done.status_code == 303 and done.headers["Location"].endswith("/community/checkins?month=2027-02&done=1")
    assert attr(officer.get("/community/checkins?month=2027-02").text, f"household-{household_id}",
                "data-checked-in") == "yes"
    again = officer.post("/community/checkins", stamp, token_from="/community/checkins")
    assert again.status_code == 409 and "无法办理" in again.text                    # the same month twice
    [recorded] = [e for e in commands(config, "intake", "record_checkin") if e["payload"]["outcome"] == "ok"]
    assert recorded["actor"]["user"] == "wang.officer" and recorded["subject"]["household_id"] == household_id

    # --- 公益劳动: an unexcused absence on the sheet --------------------------------------------
    labour = officer.get("/community/labour")
    assert labour.status_code == 200 and f'name="attendance-{member_id}"' in labour.text
    absence = {"labour_date": "2027-02-15", "activity": "清扫街道", f"household-{member_id}": household_id,
               f"attendance-{member_id}": "unexcused"}
    assert officer.post("/community/labour", absence).status_code == 403
    blank = officer.post("/community/labour", dict(absence, activity=""), token_from="/community/labour")
    assert blank.status_code == 400 and 'id="error-activity"' in blank.text        # the field named on the page
    done = officer.post("/community/labour", absence, token_from="/community/labour")
    assert done.status_code == 303, done.text[:400]
    assert 'data-attendance="unexcused"' in officer.get("/community/labour?month=2027-02").text
    wait_for(lambda: scalar(config, "SELECT count(*) FROM labour_fact") == 1, timeout=20, message="review's labour fact")

    # the same sheet over the API, as the officer's bearer token; a role without it gets the 403 page
    api = requests.get(base + "/api/community/sheet", params={"unit_code": COMMUNITY, "month": "2027-02"},
                       headers={"Authorization": f"Bearer {people['wang.officer'].token}"}, timeout=TIMEOUT)
    assert api.status_code == 200 and [h["checked_in_on"] for h in api.json()["households"]] == ["2027-02-15"]
    assert Browser(base, admin).get("/dynamic").status_code == 403                  # the security administrator

    # --- another community's officer: the case is not theirs (403 page, the read recorded) ----
    outsider = Browser(base, people["chen.officer"])
    refused = outsider.get(f"/dynamic/cases/{case['id']}")
    assert refused.status_code == 403 and "无权查看" in refused.text and case["household"]["members"][0]["name"] not in refused.text
    assert [e["payload"]["outcome"] for e in commands(config, "review", "get_case")
            if e["actor"]["user"] == "chen.officer"] == ["not_found"]
    assert household_id not in outsider.get("/community/checkins").text             # not on their sheet
    foreign = outsider.post("/community/checkins", dict(stamp, month="2027-01", checked_in_on="2027-01-20"),
                            token_from="/community/checkins")
    assert foreign.status_code == 403 and "无权查看" in foreign.text                  # nor theirs to stamp
    assert [e["payload"]["outcome"] for e in commands(config, "intake", "record_checkin")
            if e["actor"]["user"] == "chen.officer"] == ["not_found"]
    api = requests.get(base + "/api/community/sheet", params={"unit_code": COMMUNITY, "month": "2027-02"},
                       headers={"Authorization": f"Bearer {people['chen.officer'].token}"}, timeout=TIMEOUT)
    assert api.status_code == 403 and api.json()["code"] == "forbidden"            # another community's sheet

    # --- 月末核查 by the district officer: the absence proposes cancellation ------------------
    district = Browser(base, people["zhao.district"])
    run = district.post("/dynamic/month-end", {"as_of": ""}, token_from="/dynamic")
    assert run.status_code == 200 and "新增建议 1 条" in run.text

    township = Browser(base, people["li.township"])
    worklist = township.get("/").text
    assert "待审批的调整、停保建议" in worklist and f"/dynamic/cases/{case['id']}#proposal-" in worklist
    page = township.get(f"/dynamic/cases/{case['id']}").text
    [proposal_id] = re.findall(r'id="approve-(\d+)"', page)
    assert attr(page, f"proposal-{proposal_id}", "data-waiting-for") == "township_officer"
    approve = {"case_id": case["id"], "remarks": "情况属实"}
    assert township.post(f"/dynamic/proposals/{proposal_id}/approval", approve).status_code == 403   # no token
    case_page = f"/dynamic/cases/{case['id']}"
    assert township.post(f"/dynamic/proposals/{proposal_id}/approval", approve, token_from=case_page).status_code == 303
    second = township.post(f"/dynamic/proposals/{proposal_id}/approval", approve, token_from=case_page)
    assert second.status_code == 403 and "须由低保中心主任审批" in second.text        # the policy's order

    # the township officer's own proposal: another person approves it (maker ≠ checker)
    made = township.post(f"{case_page}/proposals", {"action": "adjust", "reason": "子女务工收入增加",
                                                     "verified_income": "300.00"}, token_from=case_page)
    assert made.status_code == 303, made.text[:400]
    own = max(int(p) for p in re.findall(r'id="approve-(\d+)"', township.get(case_page).text))
    mine = township.post(f"/dynamic/proposals/{own}/approval", approve, token_from=case_page)
    assert mine.status_code == 409 and "提出与审批分离" in mine.text

    # --- 入户清查: organised by the township, a result recorded by the community officer -------
    created = township.post("/dynamic/campaigns", {"unit_code": TOWNSHIP, "name": "2027年春季入户清查",
                                                   "starts_on": "2027-02-15", "ends_on": "2027-03-31",
                                                   "teams": "第一清查组\n第二清查组"}, token_from="/dynamic/campaigns")
    assert created.status_code == 303, created.text[:400]
    campaign_path = created.headers["Location"].replace(base, "")
    assert attr(township.get(campaign_path).text, "progress", "data-cases") == "1"
    kept = officer.post(f"{campaign_path}/inspections", {"case_id": case["id"], "result": "kept"},
                        token_from=campaign_path)
    assert kept.status_code == 303
    progress = township.get(campaign_path).text
    assert attr(progress, "progress", "data-inspected") == "1" and "2027年春季入户清查" in township.get("/dynamic").text

    # --- the centre director's approval, the last in the order, cancels the case -------------
    director = Browser(base, people["zhou.director"])
    unreasoned = director.post(f"/dynamic/proposals/{own}/rejection", {"case_id": case["id"], "reason": ""},
                               token_from=case_page)
    assert unreasoned.status_code == 400 and f'id="error-reason-{own}"' in unreasoned.text
    rejected = director.post(f"/dynamic/proposals/{own}/rejection", {"case_id": case["id"], "reason": "收入未核实"},
                             token_from=case_page)
    assert rejected.status_code == 303 and attr(director.get(case_page).text, f"proposal-{own}",
                                                "data-status") == "rejected"
    rereviewed = officer.post(f"{case_page}/rereview", {"reviewed_on": "2027-02-15", "remarks": "入户核实，情况未变"},
                              token_from=case_page)
    assert rereviewed.status_code == 303, rereviewed.text[:400]
    assert "上次 2027-02-15" in officer.get(case_page).text
    final = director.post(f"/dynamic/proposals/{proposal_id}/approval", approve, token_from=case_page)
    assert final.status_code == 303, final.text[:400]
    assert attr(director.get(case_page).text, "case", "data-status") == "cancelled"
    viewers = {e["actor"]["user"] for e in events(config, "file_viewed", "intake")
               if e["subject"]["household_id"] == household_id}
    assert {"li.township", "zhou.director"} <= viewers and "chen.officer" not in viewers   # each view recorded


def test_the_ledger_a_case_by_month_and_its_payee_account(container_factory, sqlite_config):
    from services.payments.service import PaymentsService
    from tests.payments_helpers import VILLAGE, approve_cases, case_approved, month

    config, base = start_console(container_factory, dict(sqlite_config, POLICY="national2021"),
                                 extra=(PaymentsService,))
    admin = bootstrap_admin(config)
    officer = Browser(base, add_person(config, admin, "wang.officer", ["community_officer"], unit=COMMUNITY,
                                       name="王专干"))
    ours, theirs = str(uuid.uuid4()), str(uuid.uuid4())
    approve_cases(config, [case_approved(ours, month(-2), "812.50", household_id=str(uuid.uuid4())),
                           case_approved(theirs, month(-2), "333.33", community=VILLAGE,
                                         household_id=str(uuid.uuid4()))], payee=False)

    ledger = officer.get("/payments/ledger")
    assert ledger.status_code == 200 and f'data-case="{ours}"' in ledger.text and theirs not in ledger.text
    page = officer.get(f"/payments/cases/{ours}")
    assert page.status_code == 200 and "812.50" in page.text and "未登记" in page.text

    account = "6222020000000012345"
    payee = {"payee_name": "张三丰", "account_number": account, "bank_name": "工商银行"}
    assert officer.post(f"/payments/cases/{ours}/payee", payee).status_code == 403       # no CSRF token
    bad = officer.post(f"/payments/cases/{ours}/payee", dict(payee, account_number="6222-0200-12345999"),
                       token_from=f"/payments/cases/{ours}")
    assert bad.status_code == 400 and 'id="error-account_number"' in bad.text and "12345999" not in bad.text
    done = officer.post(f"/payments/cases/{ours}/payee", payee, token_from=f"/payments/cases/{ours}")
    assert done.status_code == 303
    shown = officer.get(done.headers["Location"].replace(base, "")).text
    assert "收款账户已更新" in shown and account not in shown and "*" * 15 + account[-4:] in shown   # masked
    [set_payee] = commands(config, "payments", "set_payee")[-1:]
    assert set_payee["payload"]["outcome"] == "ok" and set_payee["actor"]["user"] == "wang.officer"

    refused = officer.get(f"/payments/cases/{theirs}")                                # another community's
    assert refused.status_code == 403 and "无权查看" in refused.text
    assert officer.post(f"/payments/cases/{theirs}/payee", payee,
                        token_from=f"/payments/cases/{ours}").status_code == 403
    outcomes = [e["payload"]["outcome"] for e in commands(config, "payments", "case_statement")]
    assert outcomes == ["not_found"]                                                  # the refused read recorded


def fits_a_phone(console) -> bool:
    console.driver.set_window_size(*PHONE)
    return console.driver.execute_script("return document.documentElement.scrollWidth") <= PHONE[0]


def test_the_sheets_and_an_approval_in_a_browser_at_a_phones_width(container_factory, sqlite_config, tmp_path,
                                                                  browser):
    from selenium.webdriver.support.ui import Select

    config, base, clock, admin = jiangxia_console(container_factory, sqlite_config, tmp_path)
    officer = add_person(config, admin, "wang.officer", ["community_officer"], unit=COMMUNITY, name="王专干")
    township = add_person(config, admin, "li.township", ["township_officer"], unit=TOWNSHIP, name="李办事员")
    case = approved_case(config, clock, seed=83)
    household_id, member_id = case["household_id"], case["member_ids"][0]
    clock.set(date(2027, 2, 15))

    console = fresh(browser, base)
    console.login("wang.officer", officer.password, code(officer.totp_secret))
    console.open("/community/checkins")
    assert fits_a_phone(console)
    console.screenshot("checkins")
    console.submit(f"#checkin-{household_id} button")
    console.wait_path(lambda p: "done=1" in p)
    assert console.find(f"#household-{household_id}").get_attribute("data-checked-in") == "yes"

    console.open("/community/labour")
    assert fits_a_phone(console)
    console.fill("#activity", "清扫街道")
    Select(console.find(f"#attendance-{member_id}")).select_by_value("unexcused")
    console.screenshot("labour")
    console.submit("#record-labour")
    console.wait_path(lambda p: "done=1" in p)
    assert console.all('.labour[data-attendance="unexcused"]')
    wait_for(lambda: scalar(config, "SELECT count(*) FROM labour_fact") == 1, timeout=20, message="review's labour fact")
    console.logout()

    assert sum(month_end(config, date(2027, 2, 15))["proposals"].values()) == 1   # (its page: the HTTP test)
    console.login("li.township", township.password, code(township.totp_secret))
    assert "待审批的调整、停保建议" in console.text()
    console.open("/dynamic")
    console.screenshot("dynamic")
    console.open(f"/dynamic/cases/{case['id']}")
    assert fits_a_phone(console)
    console.screenshot("dynamic-case")
    console.submit("form[id^=approve-] button")
    console.wait_path(lambda p: p.endswith("done=approved"))
    assert console.find("[data-waiting-for]").get_attribute("data-waiting-for") == "centre_director"
    console.screenshot("dynamic-approved")
