"""Appeals (复核, issue 15 item 8), over real RabbitMQ, both policies:

- a cancellation appealed through the community officer (SQLite and
  PostgreSQL, with payments and the audit running): filed outside the
  policy's period → refused naming the rule, nothing recorded; a second
  appeal of the same decision refused; on the deciding unit's list with its
  deadline, overdue marked once past it; everyone who took part in the
  cancellation (proposer, approvers) and holds a deciding role → refused
  naming the rule; no reason → refused; someone uninvolved upholds it → the
  case is active again and payments pays it again; the audit has the events
  and the statistics count them. A benefit change appealed: dismissed leaves
  it; a later one upheld reverts it (payments sees the amount back);
- a rejection at the joint review appealed online on the public page (a
  wrong ID ending answers as a number never issued, records nothing; the
  attempts are rate-limited): the joint review's signer, who rejected it, an
  evaluator and a committee member named in the record → refused; someone
  uninvolved upholds it in the console → it reopens at the policy's step;
- the console's form through which an officer files for the household (HTTP):
  without the CSRF token (none, made up, another person's) refused; another
  community's officer: no such application, the 403 page for the appeal; the
  appeal on the deciding unit's worklist block.
"""
from __future__ import annotations

import re
import uuid
from datetime import date, timedelta

import pytest
import requests

from services.audit.service import AuditService
from services.payments.service import PaymentsService
from shared.errors import Conflict, Forbidden, NotFound, ValidationFailed
from shared.identity import Role
from shared.policy import load_policy
from shared.testing import rpc_as, rpc_with_token, service_token_for, wait_for
from tests.audit_helpers import auditor
from tests.browser_helpers import start_console
from tests.dynamic_helpers import (START, approve_fully, approved_case, district_officer, events, scalar, start,
                                   through_the_review)
from tests.helpers import COMMUNITY, DISTRICT, OTHER_COMMUNITY, officer, register_staff
from tests.identity_helpers import add_person, bootstrap_admin
from tests.review_helpers import COMMITTEE, community, deputy, director, review_state, township

pytestmark = pytest.mark.integration

RULE_UNINVOLVED = "decided_by_someone_uninvolved"
#: a deputy director who took no part in anything (registered per test)
UNINVOLVED = {"user": "wu.deputy", "name": "吴局长", "role": "deputy_director", "unit": DISTRICT}


def uninvolved(config):
    return rpc_as(config, Role.DEPUTY_DIRECTOR, DISTRICT, user=UNINVOLVED["user"], name=UNINVOLVED["name"])


PEOPLE = {"li.township": township, "zhou.director": director, "zhao.district": district_officer,
          "sun.deputy": deputy}
ROLE_OF = {"li.township": "township_officer", "zhou.director": "centre_director",
           "zhao.district": "district_officer", "sun.deputy": "deputy_director"}


def proposer_for(policy) -> str:
    """A case manager who is not one of the policy's approvers (no one approves their own proposal)."""
    return "zhou.director" if "district_officer" in policy.proposal_approvals else "zhao.district"


def propose_and_approve(config, case_id: str, action: str, **more) -> dict:
    policy = load_policy(config["POLICY"])
    with PEOPLE[proposer_for(policy)](config) as rpc:
        proposal = rpc.review.propose({"case_id": case_id, "action": action, "reason": "入户核查", **more})
    return approve_fully(config, proposal["id"])


def wait_ledger(config, case_id: str, status: str, benefit=None) -> dict:
    """payments' ledger case once it shows ``status`` (and ``benefit``)."""
    def seen():
        with district_officer(config) as rpc:
            try:
                found = rpc.payments.get_case(case_id)
            except NotFound:
                return None
        ok = found["status"] == status and (benefit is None or found["monthly_benefit"] == benefit)
        return found if ok else None
    return wait_for(seen, timeout=20, message=f"payments sees the case {status} ({benefit})")


def refused_as_participants(config, appeal: dict, policy) -> list[str]:
    """Every participant holding a role that decides under the policy tries to decide: refused by the rule."""
    tried = []
    for person in appeal["participants"]:
        user = person.get("user")
        if user in PEOPLE and ROLE_OF[user] in policy.appeal_deciders:
            with PEOPLE[user](config) as rpc, pytest.raises(Forbidden) as refused:
                rpc.review.decide_appeal({"appeal_id": appeal["id"], "outcome": "upheld", "reason": "原决定有误"})
            assert refused.value.details["rule"] == RULE_UNINVOLVED, refused.value.details
            tried.append(person["part"])
    return tried


@pytest.mark.parametrize("policy_name", ["jiangxia", "national2021"])
def test_a_cancelled_case_is_restored_and_a_benefit_change_reverted_by_someone_uninvolved(
        container_factory, config, tmp_path, policy_name):
    config, clock = start(container_factory, config, policy_name, tmp_path)
    for service in (PaymentsService, AuditService):
        container_factory(service, config).start()
    register_staff(config, [UNINVOLVED])
    policy = load_policy(policy_name)
    case = approved_case(config, clock, seed=31)
    wait_ledger(config, case["id"], "active")
    propose_and_approve(config, case["id"], "cancel")
    wait_ledger(config, case["id"], "cancelled")

    # outside the period: refused naming the rule, nothing recorded
    clock.set(START + timedelta(days=40))
    with community(config) as rpc, pytest.raises(Conflict) as late:
        rpc.review.file_appeal({"application_id": case["application_id"], "grounds": "家庭仍然困难"})
    assert late.value.details["rule"] == "appeal_within_period"
    assert scalar(config, "SELECT count(*) FROM appeal") == 0 and not events(config, "appeal_filed")

    clock.set(START + timedelta(days=1))
    with community(config) as rpc:
        with pytest.raises(ValidationFailed):
            rpc.review.file_appeal({"application_id": case["application_id"], "grounds": " "})
        appeal = rpc.review.file_appeal({"application_id": case["application_id"], "kind": "cancellation",
                                         "grounds": "停保后家庭无收入来源"})
        with pytest.raises(Conflict) as twice:
            rpc.review.file_appeal({"application_id": case["application_id"], "grounds": "再次申请"})
    assert twice.value.details["rule"] == "one_appeal_per_decision"
    # an officer of another community: the application and the appeal do not exist for them
    with officer(config, unit=OTHER_COMMUNITY, user="qian.other") as rpc:
        with pytest.raises(NotFound):
            rpc.review.file_appeal({"application_id": case["application_id"], "grounds": "代为申请"})
        with pytest.raises(NotFound):
            rpc.review.get_appeal(appeal["id"])
        assert rpc.review.list_appeals() == []
    assert appeal["status"] == "open" and appeal["kind"] == "cancellation" and appeal["filed_via"] == "officer"
    assert {p["part"] for p in appeal["participants"]} == {"proposal", "approval"}

    # the deciding unit's list: its deadline, overdue once past it
    with uninvolved(config) as rpc:
        [item] = rpc.review.list_appeals(status="open")
        [late_item] = rpc.review.list_appeals(status="open",
                                              as_of=(START + timedelta(days=60)).isoformat())
    assert item["id"] == appeal["id"] and item["overdue"] is False and item["due_on"] > item["filed_on"]
    assert late_item["overdue"] is True

    # who proposed and approved the cancellation may not decide; a decision without a reason is refused
    assert refused_as_participants(config, appeal, policy)
    with uninvolved(config) as rpc:
        with pytest.raises(ValidationFailed) as no_reason:
            rpc.review.decide_appeal({"appeal_id": appeal["id"], "outcome": "upheld", "reason": "  "})
        assert "reason" in no_reason.value.fields
        decided = rpc.review.decide_appeal({"appeal_id": appeal["id"], "outcome": "upheld",
                                            "reason": "停保依据的核查有误"})
    assert decided["status"] == "upheld" and decided["reopened_at"] == "restored"
    assert decided["decided_by"] == UNINVOLVED["user"]
    with township(config) as rpc:
        restored = rpc.review.get_case(case["id"])
    assert restored["status"] == "active" and restored["end_month"] is None
    assert wait_ledger(config, case["id"], "active")["stop_month"] is None        # payments pays it again, no stop month

    # a benefit change: dismissed leaves it; a later one upheld reverts it (payments sees it back)
    before = restored["monthly_benefit"]
    changed = propose_and_approve(config, case["id"], "adjust", verified_income="500.00")
    with township(config) as rpc:
        lowered = rpc.review.get_case(case["id"])["monthly_benefit"]
    assert changed["status"] == "approved" and lowered != before
    with community(config) as rpc:
        first = rpc.review.file_appeal({"application_id": case["application_id"], "grounds": "收入核定过高"})
    assert first["kind"] == "benefit_change"
    with uninvolved(config) as rpc:
        dismissed = rpc.review.decide_appeal({"appeal_id": first["id"], "outcome": "dismissed",
                                              "reason": "收入核定无误"})
    assert dismissed["status"] == "dismissed" and dismissed["reopened_at"] is None
    with township(config) as rpc:
        assert rpc.review.get_case(case["id"])["monthly_benefit"] == lowered
    propose_and_approve(config, case["id"], "adjust", verified_income="600.00")
    with township(config) as rpc:
        lowest = rpc.review.get_case(case["id"])["monthly_benefit"]
    with community(config) as rpc:
        second = rpc.review.file_appeal({"application_id": case["application_id"], "kind": "benefit_change",
                                         "grounds": "新增收入为临时收入"})
    with uninvolved(config) as rpc:
        reverted = rpc.review.decide_appeal({"appeal_id": second["id"], "outcome": "upheld",
                                             "reason": "临时收入不计入"})
    assert reverted["reopened_at"] == "reverted"
    with township(config) as rpc:
        assert rpc.review.get_case(case["id"])["monthly_benefit"] == lowered != lowest
    wait_ledger(config, case["id"], "active", benefit=lowered)

    # the audit has every step; the statistics count them and keep the restored case active
    wanted = {"appeal_filed": 3, "appeal_decided": 3, "case_restored": 1}

    def recorded():
        counts = {kind: scalar(config, f"SELECT count(*) FROM audit_records WHERE source = 'review' "
                                       f"AND type = '{kind}'", "audit") for kind in wanted}
        return counts if counts == wanted else None
    wait_for(recorded, timeout=30, message="the appeals in the audit record")
    with auditor(config) as rpc:
        figures = rpc.audit.statistics(clock.today().isoformat())
    counted = figures["appeals"]
    assert (counted["filed"], counted["upheld"], counted["dismissed"], counted["overdue"]) == (3, 2, 1, 0)
    assert {k["kind"]: k["filed"] for k in counted["by_kind"]} == {"cancellation": 1, "benefit_change": 2}
    assert figures["urban_households"] + figures["rural_households"] == 1


CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def rejected_at_the_joint_review(config, seed: int) -> tuple[dict, str]:
    """A household through every step to the joint review, where the deputy signs and the director rejects."""
    data, _, app_id = through_the_review(config, date.today(), seed, until="joint_review")
    with deputy(config) as rpc:
        rpc.review.sign_joint_review({"application_id": app_id, "role": "deputy_director"})
    with director(config) as rpc:
        rpc.review.reject_application({"application_id": app_id, "reason": "家庭人均收入高于标准"})
    return data, app_id


@pytest.mark.parametrize("policy_name", ["jiangxia", "national2021"])
def test_a_rejection_appealed_online_reopens_at_the_policys_step(container_factory, sqlite_config, policy_name):
    config, base = start_console(container_factory, dict(sqlite_config, POLICY=policy_name,
                                                         PUBLIC_APPEAL_LIMIT="3/3600"))
    namesake = {"user": "ma.deputy", "name": COMMITTEE[0]["name"], "role": "deputy_director", "unit": DISTRICT}
    register_staff(config)
    register_staff(config, [UNINVOLVED, namesake])
    policy = load_policy(policy_name)
    data, app_id = rejected_at_the_joint_review(config, seed=57)
    last4 = data["members"][0]["resident_id"][-4:]
    wrong = "0000" if last4 != "0000" else "1111"

    browser = requests.Session()
    token = CSRF.search(browser.get(base + "/appeal", timeout=20).text).group(1)

    def appeal_online(number, ending):
        return browser.post(base + "/appeal", data={"csrf_token": token, "number": number, "last4": ending,
                                                     "grounds": "收入计算有误"}, timeout=20)
    wrong_pair = appeal_online(app_id, wrong)
    never_issued = str(uuid.uuid4())
    unknown = appeal_online(never_issued, last4)
    assert wrong_pair.status_code == unknown.status_code == 404
    assert wrong_pair.text.replace(app_id, "N") == unknown.text.replace(never_issued, "N")
    assert scalar(config, "SELECT count(*) FROM appeal") == 0
    filed = appeal_online(app_id, last4)
    assert filed.status_code == 200 and 'data-kind="rejection"' in filed.text, filed.text
    assert data["members"][0]["name"] not in filed.text
    assert appeal_online(app_id, last4).status_code == 429                # the 4th attempt of this address
    # the online filing is the gateway's alone: not a person's, not another service's (no ID check)
    with community(config) as rpc, pytest.raises(Forbidden):
        rpc.review.file_public_appeal({"application_id": app_id, "grounds": "x"})
    with rpc_with_token(config, service_token_for("notify")) as rpc, pytest.raises(Forbidden):
        rpc.review.file_public_appeal({"application_id": app_id, "grounds": "x"})
    with uninvolved(config) as rpc:
        [appeal] = rpc.review.list_appeals(status="open")
    assert appeal["filed_via"] == "online" and appeal["filed_by"] == "public" and appeal["kind"] == "rejection"
    parts = {p["part"] for p in appeal["participants"]}
    assert {"investigation", "evaluation", "township_review", "joint_review", "rejection"} <= parts

    # the joint review's signer, who rejected, an evaluator (by name), a committee member's namesake: refused
    tried = refused_as_participants(config, appeal, policy)
    assert {"joint_review", "rejection"} <= set(tried)
    namesake_rpc = rpc_as(config, Role.DEPUTY_DIRECTOR, DISTRICT, user=namesake["user"], name=namesake["name"])
    with namesake_rpc as rpc, pytest.raises(Forbidden) as by_name:
        rpc.review.decide_appeal({"appeal_id": appeal["id"], "outcome": "upheld", "reason": "x"})
    assert by_name.value.details == {"rule": RULE_UNINVOLVED, "part": "township_review"}

    # someone uninvolved decides in the console: the worklist links it, the form upholds it
    admin = bootstrap_admin(config)
    person = add_person(config, admin, UNINVOLVED["user"], ["deputy_director"], unit=DISTRICT,
                        name=UNINVOLVED["name"])
    console = requests.Session()
    console.cookies.set("dibao_session", person.token)
    worklist = console.get(base + "/", timeout=20)
    assert f'href="/appeals/{appeal["id"]}"' in worklist.text and "复核待决定" in worklist.text
    listed = console.get(base + "/appeals?status=open", timeout=20)
    assert f'data-appeal="{appeal["id"]}"' in listed.text and "网上申请" in listed.text
    page = console.get(base + f"/appeals/{appeal['id']}", timeout=20)
    assert page.status_code == 200 and 'id="decide-appeal"' in page.text
    csrf = CSRF.search(page.text).group(1)
    no_reason = console.post(base + f"/appeals/{appeal['id']}",
                             data={"csrf_token": csrf, "outcome": "upheld", "reason": ""}, timeout=20)
    assert no_reason.status_code == 400 and 'id="error-reason"' in no_reason.text
    done = console.post(base + f"/appeals/{appeal['id']}",
                        data={"csrf_token": csrf, "outcome": "upheld", "reason": "收入计算有误，重新审核"}, timeout=20)
    assert done.status_code == 200 and 'data-status="upheld"' in done.text, done.text[:2000]

    reopened_at = policy.appeal_reopens_at
    if reopened_at is None:
        f = review_state(config, app_id, status="awaiting_reinvestigation")
    else:
        f = review_state(config, app_id, step=reopened_at)
        assert f["status"] == "in_review"
    assert f["rejection_reason"] is None and f["decided_on"] is None
    assert scalar(config, f"SELECT count(*) FROM joint_review_signature WHERE application_id = '{app_id}'") == 0
    [reopened] = events(config, "application_reopened")
    assert reopened["payload"]["step"] == (reopened_at or "reinvestigation")


def test_an_officer_files_an_appeal_for_the_household_on_the_console_form(container_factory, sqlite_config):
    """The console's /appeals form (HTTP, each person's own session): without the CSRF token refused
    and nothing recorded; another community's officer is told the application does not exist and
    gets the 403 page for the appeal; no grounds named on the page; the household's own officer
    files it, it is on the deciding unit's worklist (复核待决定), a second filing is refused."""
    config, base = start_console(container_factory, dict(sqlite_config, POLICY="jiangxia"))
    register_staff(config)
    data = household_at_the_evaluation(config, seed=59)
    with community(config) as rpc:                       # the community rejects it at its first step
        rpc.review.reject_application({"application_id": data["application_id"], "reason": "家庭收入超标"})
    admin = bootstrap_admin(config)
    people = {user: add_person(config, admin, user, [role], unit=unit, name=name) for user, role, unit, name in (
        ("wang.officer", "community_officer", COMMUNITY, "王专干"),
        ("qian.other", "community_officer", OTHER_COMMUNITY, "钱专干"),
        (UNINVOLVED["user"], "deputy_director", DISTRICT, UNINVOLVED["name"]))}

    def logged_in(user):
        session = requests.Session()
        session.cookies.set("dibao_session", people[user].token)
        return session

    def token(session):
        return CSRF.search(session.get(base + "/appeals", timeout=20).text).group(1)

    officer, other, decider = logged_in("wang.officer"), logged_in("qian.other"), logged_in(UNINVOLVED["user"])
    form = {"application_id": data["application_id"], "kind": "rejection", "grounds": "家庭收入计算有误"}
    page = officer.get(base + "/appeals", timeout=20)
    assert page.status_code == 200 and 'id="file-appeal"' in page.text
    for forged in ({}, {"csrf_token": "0" * 64}, {"csrf_token": token(other)}):   # none, made up, another's
        refused = officer.post(base + "/appeals", data={**form, **forged}, allow_redirects=False, timeout=20)
        assert refused.status_code == 403, refused.text[:300]
    assert scalar(config, "SELECT count(*) FROM appeal") == 0
    outsider = other.post(base + "/appeals", data={**form, "csrf_token": token(other)}, timeout=20)
    assert outsider.status_code == 404 and "未找到该申请" in outsider.text
    no_grounds = officer.post(base + "/appeals", data={**form, "grounds": " ", "csrf_token": token(officer)},
                              timeout=20)
    assert no_grounds.status_code == 400 and 'id="error-grounds"' in no_grounds.text
    assert scalar(config, "SELECT count(*) FROM appeal") == 0

    filed = officer.post(base + "/appeals", data={**form, "csrf_token": token(officer)}, allow_redirects=False,
                         timeout=20)
    assert filed.status_code == 303, filed.text[:500]
    appeal_id = filed.headers["Location"].rsplit("/", 1)[1]
    with uninvolved(config) as rpc:
        appeal = rpc.review.get_appeal(appeal_id)
    assert (appeal["kind"], appeal["filed_via"], appeal["filed_by"], appeal["status"]) == (
        "rejection", "officer", "wang.officer", "open")
    worklist = decider.get(base + "/", timeout=20).text
    assert "复核待决定" in worklist and f'data-appeal="{appeal_id}"' in worklist
    assert 'id="decide-appeal"' in decider.get(base + f"/appeals/{appeal_id}", timeout=20).text
    foreign = other.get(base + f"/appeals/{appeal_id}", timeout=20)
    assert foreign.status_code == 403 and "无权查看" in foreign.text and "家庭收入计算有误" not in foreign.text
    assert appeal_id not in other.get(base + "/appeals", timeout=20).text
    again = officer.post(base + "/appeals", data={**form, "csrf_token": token(officer)}, timeout=20)
    assert again.status_code == 409 and "该决定已经申请过复核" in again.text
    assert scalar(config, "SELECT count(*) FROM appeal") == 1


def household_at_the_evaluation(config, seed: int) -> dict:
    """A household registered, applied and investigated: the review waits at its first step."""
    data, created, app_id = through_the_review(config, date.today(), seed, until="evaluation")
    return {"household": data, "household_id": created["household_id"], "application_id": app_id}
