"""Verification with partner bureaus (核对, issue 15) over real RabbitMQ with broker users:
the bureaus' reference responders run as separate nameko services on their own partner
URIs. Each bad answer is refused with nothing applied; a bureau cannot read another's
requests nor answer for them; no request goes out without the household's authorization."""
from __future__ import annotations

import json
import re

import pytest
from amqp.exceptions import AccessRefused, NotAllowed
from kombu import Connection

from cli.responder import SEEN
from services.intake.service import IntakeService
from services.verification.service import VerificationService
from shared.broker import partner_user, service_config, uri_for, with_credentials
from shared.deadletter import list_parked
from shared.errors import Conflict, NotFound
from shared.testing import remove_broker_users, wait_for, with_broker_users
from shared.testing import test_config as deployment_config
from tests.verification_helpers import (BUREAUS, VEHICLE, add_bureaus, answer, answered, ask, publish_answer,
                                        registered, report, seen_clear, start_responders, verification_rows,
                                        write_data)

pytestmark = pytest.mark.integration
ID_NUMBER = re.compile(r"\d{17}[\dXx]")


@pytest.fixture
def backend(request):
    """SQLite unless a test asks for both (indirect parametrization)."""
    return getattr(request, "param", "sqlite")


@pytest.fixture
def deployment(amqp_uri, db_uris, tmp_path):
    """Broker users, two verification bureaus (partner spaces), intake and verification."""
    config = with_broker_users(deployment_config(amqp_uri, db_uris, tmp_path / "data",
                                           VERIFICATION_BUREAUS=",".join(BUREAUS)))
    yield config
    remove_broker_users(config)


@pytest.fixture
def running(deployment, container_factory):
    for cls in (IntakeService, VerificationService):
        container_factory(cls, service_config(deployment, cls.name)).start()
    return deployment


def test_no_request_without_the_households_authorization(running):
    h = registered(running, authorize=False)
    with pytest.raises(Conflict) as refused:
        ask(running, h)
    assert refused.value.details["rule"] == "authorization_required"
    assert verification_rows(running, "SELECT count(*) FROM bureau_request")[0][0] == 0


@pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)
def test_a_bureau_answers_on_its_own_channel_and_the_report_flags_an_undeclared_vehicle(
        running, container_factory, tmp_path, backend):
    seen_clear()
    h = registered(running)
    head = h["members"][0]
    uris = add_bureaus(running)
    data = write_data(tmp_path, {"public_security": [(head["resident_id"], "vehicle", VEHICLE, "120000.00",
                                                      "2026-12-01")]})
    start_responders(container_factory, uris, data)
    asked = ask(running, h)
    assert {b["bureau"] for b in asked["bureaus"]} == set(BUREAUS)
    done = answered(running, h["id"])
    # each responder saw its own request only, with names and ID numbers and nothing else of the household
    by_bureau = {r["bureau"]: r for r in SEEN["requests"]}
    assert set(by_bureau) == set(BUREAUS) and len(SEEN["requests"]) == 2
    assert {m["resident_id"] for m in by_bureau["bank"]["members"]} == {m["resident_id"] for m in h["members"]}
    assert set(by_bureau["bank"]["members"][0]) == {"member_ref", "name", "resident_id"}
    [vehicle] = [d for d in done["discrepancies"] if d["rule"] == "undeclared_vehicle"]
    assert vehicle["status"] == "open" and vehicle["found"] == "120000.00"
    assert {f["outcome"] for f in done["findings"] if f["bureau"] == "bank"} == {"no_record"}
    # stored encrypted: no ID number nor what was found in the database's text
    dump = " ".join(str(row) for table in ("request_member", "bureau_answer", "discrepancy", "verification_round")
                    for row in verification_rows(running, f"SELECT * FROM {table}"))
    assert not ID_NUMBER.search(dump) and "帕萨特" not in dump and "120000" not in dump
    # the audit's record (request_sent) names the bureau and who asked, never an ID number
    sent = verification_rows(running, "SELECT body FROM outbox WHERE routing_key = 'request_sent'")
    assert len(sent) == 2 and not any(ID_NUMBER.search(row[0]) for row in sent)
    assert all('"wang.officer"' in row[0] for row in sent)


def test_bad_answers_are_refused_with_a_reason_and_change_nothing(running, container_factory, tmp_path):
    seen_clear()
    h = registered(running, seed=5)
    uris = add_bureaus(running)
    asked = ask(running, h)
    requests = {b["bureau"]: b["request_id"] for b in asked["bureaus"]}
    refs = [m["id"] for m in h["members"]]

    def refused_with(reason, count):
        return wait_for(lambda: [r for r in verification_rows(running, "SELECT reason FROM bureau_message "
                                                                       "WHERE accepted = false") if r[0] == reason]
                        if len(verification_rows(running, "SELECT 1 FROM bureau_message WHERE accepted = false"))
                        >= count else None, timeout=30, message=f"a refusal: {reason}")

    bank = uris["bank"]
    bank_user = partner_user(running, "bank")
    # the bank answers the request sent to public security (as itself, in its own space)
    publish_answer(bank, answer(requests["public_security"], "bank", refs), user_id=bank_user)
    refused_with("not_asked", 1)
    # ... or claims to be public security: its connection's user is checked by RabbitMQ
    with pytest.raises(Exception):
        publish_answer(bank, answer(requests["public_security"], "public_security", refs),
                       user_id=partner_user(running, "public_security"))
    publish_answer(bank, answer(requests["public_security"], "public_security", refs), user_id=bank_user)
    refused_with("not_asked", 2)
    # a forged answer without the bureau's user_id, put straight into the core by the administrator
    publish_answer(running["AMQP_URI"], answer(requests["bank"], "bank", refs))
    refused_with("not_authenticated", 3)
    # malformed; a member not in the request
    publish_answer(bank, b"{not json", user_id=bank_user)
    refused_with("malformed", 4)
    publish_answer(bank, answer(requests["bank"], "bank", ["not-a-member"]), user_id=bank_user)
    refused_with("member_not_in_request", 5)
    assert verification_rows(running, "SELECT count(*) FROM bureau_answer")[0][0] == 0
    assert not report(running, h["id"])["findings"]
    # a genuine answer closes the bank's request; one more for it is refused, nothing added
    good = answer(requests["bank"], "bank", refs)
    publish_answer(bank, good, user_id=bank_user)
    publish_answer(bank, good, user_id=bank_user)                     # sent twice: applied once
    wait_for(lambda: report(running, h["id"])["findings"], timeout=30, message="the bank's answer")
    publish_answer(bank, answer(requests["bank"], "bank", refs), user_id=bank_user)
    refused_with("request_closed", 6)
    assert verification_rows(running, "SELECT count(*) FROM bureau_answer")[0][0] == len(refs)
    # the bureau was told each time, on its own channel, with the typed reason
    def refusals():
        with Connection(bank) as conn:
            channel = conn.channel()
            while True:
                msg = channel.basic_get("verification.requests", no_ack=True)
                if msg is None:
                    break
                body = json.loads(msg.body)
                if body["type"] == "answer_refused":
                    reasons.append(body["reason"])
        return len(reasons) >= 5

    reasons = []
    wait_for(refusals, timeout=20, message="the bank told of each refusal")
    assert sorted(reasons) == sorted(["not_asked", "not_asked", "malformed", "member_not_in_request",
                                      "request_closed"])
    parked = wait_for(lambda: [p for p in list_parked(running) if p.handler == "verification.on_bureau_message"]
                      if len(list_parked(running)) >= 6 else None, timeout=20, message="the refused messages parked")
    assert any("not_authenticated" in p.reason for p in parked)


def test_a_bureau_cannot_read_another_bureaus_requests(running):
    h = registered(running, seed=7)
    uris = add_bureaus(running)
    ask(running, h)
    bank = uris["bank"]
    user, password = _credentials(bank)
    public_security_space = with_credentials(bank, user, password, vhost=partner_user(running, "public_security"))
    core = with_credentials(bank, user, password, vhost=running["AMQP_URI"].rsplit("/", 1)[1])
    for uri, queue in ((public_security_space, "verification.requests"),
                       (core, "dibao.partner.public_security.verification")):
        with pytest.raises((AccessRefused, NotAllowed, ConnectionError, OSError)):
            with Connection(uri, connect_timeout=5) as conn:
                conn.ensure_connection(max_retries=1)
                conn.default_channel.basic_get(queue)
    # nor can another service's broker user
    with pytest.raises(AccessRefused):
        with Connection(uri_for(running, "review")) as conn:
            conn.default_channel.basic_get("dibao.partner.public_security.verification")


def _credentials(uri: str) -> tuple[str, str]:
    from urllib.parse import unquote, urlsplit

    parts = urlsplit(uri)
    return unquote(parts.username), unquote(parts.password)


# --- the report gates the review (review learns it from verification's events) ----------------

def test_national2021_the_township_waits_for_the_answers_and_a_discrepancy_blocks_approval(
        deployment, container_factory, tmp_path):
    from datetime import date

    from services.review.service import ReviewService
    from tests.helpers import investigation, officer
    from tests.verification_helpers import register_staff_as_identity
    from tests.review_helpers import close_notice, community, deputy, review_state, township

    config = dict(deployment, POLICY="national2021")
    for cls in (IntakeService, VerificationService, ReviewService):
        container_factory(cls, service_config(config, cls.name)).start()
    register_staff_as_identity(config)
    seen_clear()
    h = registered(config, seed=11)
    head = h["members"][0]
    uris = add_bureaus(config)
    with officer(config) as rpc:     # national2021: the requests go out on acceptance
        app = rpc.intake.submit_application({"household_id": h["id"], "accepted_on": date.today().isoformat()})
        rpc.intake.record_investigation(investigation(app["id"], [m["id"] for m in h["members"]],
                                                      family_signatures=[{"member_id": head["id"]}]))
    def round_started():
        try:
            return report(config, h["id"])["bureaus"]
        except NotFound:
            return None
    wait_for(round_started, timeout=30, message="the automatic round")
    review_state(config, app["id"], step="community_evaluation")
    with community(config) as rpc:
        rpc.review.skip_evaluation({"application_id": app["id"], "reason": "无异议"})
    opinion = {"application_id": app["id"], "meeting_date": date.today().isoformat(), "passed": True,
               "remarks": "初审同意"}
    with township(config) as rpc:
        with pytest.raises(Conflict) as waiting:
            rpc.review.record_township_review(opinion)
    assert waiting.value.details["rule"] == "verification_answers_missing"
    assert set(waiting.value.details["bureaus"]) == set(BUREAUS)
    data = write_data(tmp_path, {"public_security": [(head["resident_id"], "vehicle", VEHICLE, "120000.00",
                                                      "2026-12-01")]})
    start_responders(container_factory, uris, data)
    done = answered(config, h["id"])
    [vehicle] = [d for d in done["discrepancies"] if d["rule"] == "undeclared_vehicle"]

    def township_passes():
        try:
            with township(config) as rpc:
                return rpc.review.record_township_review(opinion)
        except Conflict:
            return None
    f = wait_for(township_passes, timeout=20, message="the township's opinion once the answers are in")
    close_notice(config, f)
    review_state(config, app["id"], step="joint_review")
    with deputy(config) as rpc:
        with pytest.raises(Conflict) as blocked:
            rpc.review.sign_joint_review({"application_id": app["id"], "role": "deputy_director"})
    assert blocked.value.details["rule"] == "verification_discrepancy_open"
    # the report is filed in the household file (一户一档)
    with officer(config) as rpc:
        wait_for(lambda: [d for d in rpc.intake.get_household(h["id"])["documents"]
                          if d["kind"] == "verification_report" and d["reference"] == done["round_id"]],
                 timeout=20, message="the report in the household file")
        resolved = rpc.verification.resolve_discrepancy({"discrepancy_id": vehicle["id"], "resolution": "explained",
                                                         "reason": "车辆已于申请前转让，提供转让证明"})
        assert resolved["status"] == "resolved"
        with pytest.raises(Conflict):                       # recorded once
            rpc.verification.resolve_discrepancy({"discrepancy_id": vehicle["id"], "resolution": "explained",
                                                  "reason": "again"})

    def signs():
        try:
            with deputy(config) as rpc:
                return rpc.review.sign_joint_review({"application_id": app["id"], "role": "deputy_director"})
        except Conflict:
            return None
    wait_for(signs, timeout=20, message="the signature once the discrepancy is resolved")


# --- 核对 before approval: a parameter of the policy (verification_report_before_approval) ----------

def _take(config, app_id: str, step) -> dict | None:
    """One review step before the joint review, passed (a notice: its period closed)."""
    from datetime import date

    from tests.review_helpers import close_notice, committee, community, evaluation, review_state, township

    f = review_state(config, app_id, step=step.name)
    if step.kind == "evaluation":
        with community(config) as rpc:
            rpc.review.record_evaluation(evaluation(app_id))
    elif step.kind == "notice":
        close_notice(config, f)
    elif step.kind == "committee":
        with township(config) as rpc:
            rpc.review.record_township_review(committee(app_id))
    else:
        with township(config) as rpc:
            rpc.review.record_township_review({"application_id": app_id, "passed": True, "remarks": "同意",
                                               "meeting_date": date.today().isoformat()})


@pytest.mark.parametrize("policy", ["national2021", "jiangxia"])
def test_the_policy_decides_whether_the_joint_review_approves_without_a_complete_report(
        deployment, container_factory, tmp_path, policy):
    """national2021 (Art. 13: 核对 is part of every application) refuses every joint-review signature
    while the application has no complete report — here none at all, the household had not signed its
    authorization — and nothing is recorded; once it signs and the bureaus answer, the review approves.
    jiangxia (the seed's practice) approves without one."""
    from datetime import date

    from services.review.service import ReviewService
    from shared.policy import load_policy
    from tests.helpers import investigation
    from tests.review_helpers import community, deputy, director, review_state
    from tests.verification_helpers import officer, register_staff_as_identity

    rules = load_policy(policy)
    config = dict(deployment, POLICY=policy)
    for cls in (IntakeService, VerificationService, ReviewService):
        container_factory(cls, service_config(config, cls.name)).start()
    register_staff_as_identity(config)
    seen_clear()
    h = registered(config, seed=17, authorize=False)       # no 授权书: nothing is asked, no report
    with officer(config) as rpc:
        app = rpc.intake.submit_application({"household_id": h["id"], "accepted_on": date.today().isoformat()})
        rpc.intake.record_investigation(investigation(app["id"], [m["id"] for m in h["members"]]))
    for step in rules.review_steps[:-1]:
        _take(config, app["id"], step)
    before = review_state(config, app["id"], step="joint_review")
    seats = {"deputy_director": deputy, "centre_director": director, "investigator": community}

    def sign(role):
        with seats[role](config) as rpc:
            return rpc.review.sign_joint_review({"application_id": app["id"], "role": role})

    with deputy(config) as rpc:
        sheet = rpc.review.joint_review_sheet(app["id"])
    assert sheet["verification"]["report_required"] is rules.verification_report_before_approval
    assert sheet["verification"]["has_report"] is False
    if not rules.verification_report_before_approval:
        assert sheet["verification"]["blocked_by"] is None
        for role in seats:
            done = sign(role)
        assert done["status"] == "approved" and done["case"]["monthly_benefit"]
        assert verification_rows(config, "SELECT count(*) FROM bureau_request")[0][0] == 0
        return
    assert sheet["verification"]["blocked_by"] == "verification_report_required"
    for role in seats:
        with pytest.raises(Conflict) as refused:
            sign(role)
        assert refused.value.details["rule"] == "verification_report_required"
    # nothing changed: no seat signed, the file where it was
    after = review_state(config, app["id"], step="joint_review", status="in_review")
    assert {k: after[k] for k in ("status", "step", "decided_on")} == {k: before[k] for k in ("status", "step",
                                                                                            "decided_on")}
    with deputy(config) as rpc:
        assert not any(s["signed"] for s in rpc.review.joint_review_sheet(app["id"])["seats"])
    # the household signs; the round goes out, the bureaus answer, the report is complete: approved
    uris = add_bureaus(config)
    start_responders(container_factory, uris, write_data(tmp_path, {}))
    with officer(config) as rpc:
        rpc.intake.register_document({"household_id": h["id"], "kind": "authorization",
                                      "title": "家庭经济状况核对授权书", "document_date": date.today().isoformat(),
                                      "signed_by": [m["id"] for m in h["members"]]})
    answered(config, h["id"])

    def signs():
        try:
            return sign("deputy_director")
        except Conflict:
            return None
    wait_for(signs, timeout=20, message="the signature once the report is complete")
    sign("centre_director")
    assert sign("investigator")["status"] == "approved"
