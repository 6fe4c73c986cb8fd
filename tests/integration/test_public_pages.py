"""The public pages, without a login (issue 14 item 4), over real RabbitMQ
with identity, intake, review, notify and the gateway running:

- in headless Chromium, nobody logged in: the community's notice board
  shows the notice masked exactly as its printed sheet (the PDFs served are
  notify's files); an online objection, anonymous, sends the application
  back to a home investigation, recorded as notify records one given at
  the office; the status page answers the step and its dates;
- over HTTP: a wrong ID ending answers exactly as a number that does not
  exist and neither reveals anything; the objections and the lookups are
  rate-limited per client address; the gateway's own identity may make the
  public calls and nothing more, and nobody else may make them.
"""
from __future__ import annotations

import io
import re
import uuid
from datetime import date

import pytest
import requests
from pypdf import PdfReader

from services.notify.service import NotifyService
from shared.errors import Forbidden
from shared.identity import Role
from shared.masking import mask_resident_id
from shared.testing import rpc_as, rpc_with_token, service_token_for, wait_for
from tests.browser_helpers import fresh, start_console
from tests.helpers import COMMUNITY, DISTRICT, household, investigation, officer, register_staff
from tests.review_helpers import community, evaluation, review_state

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def deployment(container_factory, sqlite_config, **limits):
    config = dict(sqlite_config, POLICY="jiangxia", **limits)
    return start_console(container_factory, config, extra=(NotifyService,))


def on_the_board(config, seed: int):
    """A household whose application passed the community evaluation: its
    community notice is up. (household data, application id, notice)"""
    register_staff(config)
    data = household(seed=seed)
    with officer(config) as rpc:
        created = rpc.intake.register_household(data)
        app = rpc.intake.submit_application({"household_id": created["household_id"],
                                             "accepted_on": date.today().isoformat()})
        rpc.intake.record_investigation(investigation(app["id"], created["member_ids"]))
    review_state(config, app["id"], step="community_evaluation")
    with community(config) as rpc:
        rpc.review.record_evaluation(evaluation(app["id"]))

    def posted():
        with officer(config) as rpc:
            return [n for n in rpc.notify.list_notices(COMMUNITY) if n["application_id"] == app["id"]]
    [notice] = wait_for(posted, timeout=20, message="the community notice posted")
    return data, app["id"], notice


def appears(console, css: str, timeout: float = 20.0):
    """The element, once the page the last click opened shows it (a form's answer keeps the path)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(console.driver, timeout).until(
        expected_conditions.presence_of_element_located((By.CSS_SELECTOR, css)))


def pdf_text(content: bytes) -> str:
    return "".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)


def test_the_public_board_an_online_objection_and_the_status_in_a_browser(container_factory, sqlite_config,
                                                                          browser):
    config, base = deployment(container_factory, sqlite_config)
    data, app_id, notice = on_the_board(config, seed=41)
    head = data["members"][0]
    masked = mask_resident_id(head["resident_id"])

    console = fresh(browser, base)
    console.open(f"/board/{COMMUNITY}")
    assert console.path == f"/board/{COMMUNITY}"                    # no login asked
    row = console.find(f'tr[data-notice="{notice["id"]}"]')
    assert head["name"] in row.text and masked in row.text and "低保社区公示" in row.text
    source = console.driver.page_source
    for member in data["members"]:
        assert member["resident_id"] not in source                  # masked IDs only
    assert "东城社区" in console.text("#board")
    console.screenshot("board")

    # the sheets linked are notify's files: the same masked cells
    sheet = requests.get(base + f"/board/{COMMUNITY}/notices/{notice['id']}/sheet.pdf", timeout=30)
    whole = requests.get(base + f"/board/{COMMUNITY}/sheet.pdf", timeout=30)
    for answer in (sheet, whole):
        assert answer.status_code == 200 and answer.headers["Content-Type"] == "application/pdf"
        text = pdf_text(answer.content)
        assert head["name"] in text and masked in text and head["resident_id"] not in text
    boards = config["DATA_DIR"] + "/notices"
    with open(f"{boards}/{COMMUNITY}/{notice['id']}.pdf", "rb") as written:
        assert written.read() == sheet.content
    with open(f"{boards}/{COMMUNITY}.pdf", "rb") as written:
        assert written.read() == whole.content

    # an online objection, anonymous: recorded and routed as one given at the office
    console.find(f'tr[data-notice="{notice["id"]}"] a.object').click()
    console.wait_path(lambda p: p.endswith("/objection"))
    assert appears(console, "#anonymous").is_selected()                 # anonymous unless one says otherwise
    console.fill("#text", "该户家中有小汽车一辆，子女在外务工收入较高。")
    console.screenshot("objection_form")
    console.submit("#submit-objection")
    appears(console, "#objection-filed")
    console.screenshot("objection")
    back = review_state(config, app_id, status="awaiting_reinvestigation")
    assert back["objections"] == 1
    with officer(config) as rpc:
        [objection] = rpc.notify.list_objections(notice["id"])
    assert objection["anonymous"] is True and objection["contact_name"] is None
    assert objection["filed_by"] == "service:gateway" and objection["text"].startswith("该户家中有小汽车")

    # the status: the step and its dates only
    console.open("/status")
    console.fill("#number", app_id).fill("#last4", head["resident_id"][-4:]).submit("#lookup")
    answer = appears(console, "#status-answer")
    assert console.find("#status").get_attribute("data-status") == "awaiting_reinvestigation"
    assert date.today().isoformat() in answer.text
    assert head["name"] not in console.driver.page_source and masked not in console.driver.page_source
    console.screenshot("status")


def test_a_wrong_pair_reveals_nothing_and_the_public_forms_are_rate_limited(container_factory, sqlite_config):
    config, base = deployment(container_factory, sqlite_config, PUBLIC_OBJECTION_LIMIT="2/3600",
                              PUBLIC_STATUS_LIMIT="4/600")
    data, app_id, notice = on_the_board(config, seed=42)
    head = data["members"][0]
    last4 = head["resident_id"][-4:]
    wrong = "0000" if last4 != "0000" else "1111"
    browser = requests.Session()
    token = CSRF.search(browser.get(base + "/status", timeout=20).text).group(1)

    def lookup(number, ending):
        return browser.post(base + "/status", data={"csrf_token": token, "number": number, "last4": ending},
                            timeout=20)

    right = lookup(app_id, last4)
    assert right.status_code == 200 and 'data-status="in_review"' in right.text and "社区公示" in right.text
    wrong_pair = lookup(app_id, wrong)
    never_issued = str(uuid.uuid4())
    unknown = lookup(never_issued, last4)
    assert wrong_pair.status_code == unknown.status_code == 404
    # the same page word for word (but the number typed, shown back in the form)
    assert wrong_pair.text.replace(app_id, "N") == unknown.text.replace(never_issued, "N")
    for text in (right.text, wrong_pair.text):
        assert head["name"] not in text and mask_resident_id(head["resident_id"]) not in text
        assert last4 not in text.replace(app_id, "")                # the ending typed is not echoed
        assert "东城社区" not in text                                # not even the community
    limited = lookup(app_id, last4)                                  # the 4th lookup passes, the 5th does not
    assert limited.status_code == 200
    refused = lookup(app_id, last4)
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0 and "status-answer" not in refused.text

    # objections: 2 per address, a third is refused and not recorded
    form = browser.get(base + f"/board/{COMMUNITY}/notices/{notice['id']}/objection", timeout=20)
    token = CSRF.search(form.text).group(1)
    objection = {"csrf_token": token, "text": "收入不实", "anonymous": "yes"}
    url = base + f"/board/{COMMUNITY}/notices/{notice['id']}/objection"
    named = dict(objection, anonymous="", contact_name="李四", contact_phone="13800001111")
    assert browser.post(url, data=objection, timeout=20).status_code == 200
    assert browser.post(url, data=named, timeout=20).status_code == 200
    third = browser.post(url, data=objection, timeout=20)
    assert third.status_code == 429 and "rate-limited" in third.text
    with officer(config) as rpc:
        filed = rpc.notify.list_objections(notice["id"])
    assert len(filed) == 2 and {o["anonymous"] for o in filed} == {True, False}
    assert {o["contact_name"] for o in filed} == {None, "李四"}
    # no CSRF token: refused before anything is recorded
    assert requests.post(url, data={"text": "x", "anonymous": "yes"}, timeout=20).status_code == 403
    # a notice not on that board, a board that does not exist
    assert browser.get(base + f"/board/420115002001/notices/{notice['id']}/objection", timeout=20).status_code == 404
    assert browser.get(base + "/board/420115999999", timeout=20).status_code == 404

    # the gateway's identity: the public calls and nothing more; nobody else makes them
    with rpc_with_token(config, service_token_for("gateway")) as gateway:
        assert gateway.notify.public_board(COMMUNITY)["notices"]
        for call in (lambda: gateway.notify.list_objections(notice["id"]),
                     lambda: gateway.notify.list_notices(COMMUNITY),
                     lambda: gateway.intake.get_application(app_id),
                     lambda: gateway.review.get_application(app_id)):
            with pytest.raises(Forbidden):
                call()
    with rpc_with_token(config, service_token_for("notify")) as other_service:
        with pytest.raises(Forbidden):
            other_service.notify.public_board(COMMUNITY)
    with rpc_as(config, Role.DISTRICT_OFFICER, DISTRICT, user="zhao.district") as person:
        for call in (lambda: person.notify.public_board(COMMUNITY),
                     lambda: person.intake.public_application_check({"application_id": app_id, "id_last4": last4}),
                     lambda: person.review.public_status(app_id)):
            with pytest.raises(Forbidden):
                call()
