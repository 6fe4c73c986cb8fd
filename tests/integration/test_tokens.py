"""Issue #12 over real RabbitMQ, tried as an insider would: tokens not signed
by identity, stale or revoked tokens, a service's own identity used for
what it was not given, and the separation of duties checked against the
staff registry. Each refusal is a Forbidden (or Conflict) with a reason,
writes nothing but its record, and is recorded."""
from __future__ import annotations

import json
import time

import eventlet
import jwt
import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.intake.service import IntakeService
from services.payments.service import PaymentsService
from services.review.service import ReviewService
from shared.db import make_engine
from shared.errors import Conflict, Forbidden
from shared.identity import Role
from shared.testing import repository_token_key
from shared.testing import (person_token, publish_identity_event, rpc_as, rpc_with_token, service_token_for,
                            wait_for)
from tests.helpers import COMMUNITY, DISTRICT, household, register_staff
from tests.integration.test_review_workflow import investigated
from tests.review_helpers import close_notice, committee, community, deputy, director, evaluation, review_state, \
    township

pytestmark = pytest.mark.integration


def rows(config, service: str, sql: str) -> list:
    engine = make_engine(config["DB_URIS"][service])
    with engine.connect() as conn:
        found = list(conn.execute(sa.text(sql)))
    engine.dispose()
    return found


def records(config, service: str) -> list[dict]:
    """The service's command records (outbox), oldest first."""
    return [json.loads(r[0]) for r in rows(config, service,
                                           "SELECT body FROM outbox WHERE routing_key = 'command_recorded' ORDER BY id")]


def officer_token(**claims) -> str:
    return person_token("wang.officer", "王专干", COMMUNITY, [Role.COMMUNITY_OFFICER], **claims)


def refused_reason(call) -> str:
    with pytest.raises(Forbidden) as err:
        call()
    return err.value.details.get("reason")


def test_tokens_identity_did_not_sign_or_that_no_longer_count_are_refused_recorded_and_write_nothing(
        container_factory, sqlite_config):
    config = sqlite_config
    container_factory(IntakeService, config).start()
    now = int(time.time())
    b64 = lambda d: jwt.utils.base64url_encode(json.dumps(d).encode()).decode()  # noqa: E731
    tokens = {
        "bad_signature": officer_token(key=Ed25519PrivateKey.generate()),
        "algorithm_refused": jwt.encode({"sub": "admin", "role": "admin", "unit": "", "exp": now + 3600},
                                        repository_token_key(), algorithm="HS256"),   # the old default key, as admin
        "expired": officer_token(iat=now - 3600, exp=now - 1),
        "wrong_audience": officer_token(aud="another-system"),
    }
    none_token = f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(jwt.decode(officer_token(), options={'verify_signature': False}))}."
    tokens["algorithm_refused:none"] = none_token
    for expected, token in tokens.items():
        with rpc_with_token(config, token) as rpc:
            assert refused_reason(lambda: rpc.intake.register_household(household(seed=5))) == \
                expected.split(":")[0], expected
    assert rows(config, "intake", "SELECT count(*) FROM household")[0][0] == 0        # nothing written
    recorded = records(config, "intake")
    assert [(r["payload"]["method"], r["payload"]["outcome"], r["payload"]["reason"]) for r in recorded] == [
        ("register_household", "forbidden", expected.split(":")[0]) for expected in tokens]
    assert all(r["actor"] is None for r in recorded)                 # a refused token names nobody
    kinds = {r[0] for r in rows(config, "intake", "SELECT routing_key FROM outbox")}
    assert kinds == {"command_recorded"}


def test_a_revoked_session_or_a_disabled_account_stops_working_everywhere_within_5_seconds(
        container_factory, sqlite_config):
    config = sqlite_config
    container_factory(IntakeService, config).start()
    container_factory(ReviewService, config).start()
    register_staff(config)
    session = officer_token(session_id="session-to-revoke")
    other_session = officer_token()
    district = person_token("zhao.district", "赵专干", DISTRICT, [Role.DISTRICT_OFFICER])
    with rpc_with_token(config, session) as rpc:
        rpc.intake.list_staff(COMMUNITY)
        rpc.review.overdue(COMMUNITY)
    publish_identity_event(config, "session_revoked", {"session_id": "session-to-revoke", "user": "wang.officer"})
    started = time.monotonic()

    def refused_in(service):
        with rpc_with_token(config, session) as rpc:
            try:
                getattr(rpc, service).list_staff(COMMUNITY)
            except Forbidden as exc:
                return exc.details["reason"] == "revoked"
        return False

    wait_for(lambda: refused_in("intake") and refused_in("review"), timeout=5, message="the revocation")
    assert time.monotonic() - started < 5
    with rpc_with_token(config, other_session) as rpc:                # the person's other session still works
        rpc.intake.list_staff(COMMUNITY)

    publish_identity_event(config, "account_disabled", {"user": "wang.officer"})

    def disabled(service):
        with rpc_with_token(config, other_session) as rpc:
            try:
                getattr(rpc, service).list_staff(COMMUNITY)
            except Forbidden as exc:
                return exc.details["reason"] == "account_disabled"
        return False

    wait_for(lambda: disabled("intake") and disabled("review"), timeout=5, message="the disabled account")
    with rpc_with_token(config, district) as rpc:                    # nobody else is affected
        staff = {(s["user"], s["role"]) for s in rpc.review.list_staff(DISTRICT)}
    assert ("wang.officer", "community_officer") not in staff           # the registry closed its rows
    assert ("zhao.district", "district_officer") in staff
    assert [r["payload"]["reason"] for r in records(config, "intake")
            if r["payload"]["outcome"] == "forbidden"][-1] == "account_disabled"


def test_a_service_identity_may_call_only_what_its_table_names(container_factory, sqlite_config):
    config = sqlite_config
    container_factory(IntakeService, config).start()
    container_factory(ReviewService, config).start()
    container_factory(PaymentsService, config).start()
    register_staff(config)
    with rpc_as(config, Role.COMMUNITY_OFFICER, COMMUNITY, user="wang.officer") as rpc:
        household_id = rpc.intake.register_household(household(seed=7))["household_id"]
    with rpc_with_token(config, service_token_for("review")) as rpc:
        assert rpc.intake.get_household(household_id)["id"] == household_id     # named in its table
        assert refused_reason(lambda: rpc.intake.register_household(household(seed=8))) == "service_not_permitted"
        assert refused_reason(lambda: rpc.intake.list_applications()) == "service_not_permitted"
        assert refused_reason(lambda: rpc.review.sign_joint_review(
            {"application_id": "0" * 36, "role": "deputy_director"})) == "service_not_permitted"
        assert refused_reason(lambda: rpc.payments.approve_run("0" * 36)) == "service_not_permitted"
    with rpc_with_token(config, service_token_for("notify")) as rpc:       # another service's table
        assert refused_reason(lambda: rpc.review.run_month_end()) == "service_not_permitted"
    assert rows(config, "intake", "SELECT count(*) FROM household")[0][0] == 1
    refused = [r["payload"] for r in records(config, "intake") if r["payload"]["outcome"] == "forbidden"]
    assert [(r["method"], r["reason"]) for r in refused] == [("register_household", "service_not_permitted"),
                                                            ("list_applications", "service_not_permitted")]
    assert [(r["payload"]["method"], r["payload"]["reason"]) for r in records(config, "payments")] == [
        ("approve_run", "service_not_permitted")]


def at_joint_review(container_factory, config, seed):
    container_factory(IntakeService, config).start()
    container_factory(ReviewService, config).start()
    register_staff(config)
    app_id, _ = investigated(config, seed=seed)
    review_state(config, app_id, step="community_evaluation")
    with community(config) as rpc:
        rpc.review.record_evaluation(evaluation(app_id))
    close_notice(config, review_state(config, app_id, step="community_notice"))
    review_state(config, app_id, step="township_review")
    with township(config) as rpc:
        rpc.review.record_township_review(committee(app_id))
    close_notice(config, review_state(config, app_id, step="township_notice"))
    review_state(config, app_id, step="joint_review")
    return app_id


def signatures(config, app_id) -> list:
    return rows(config, "review", f"SELECT role, \"user\" FROM joint_review_signature "
                                  f"WHERE application_id = '{app_id}' ORDER BY id")


def test_the_joint_review_is_signed_by_registered_people_in_their_roles_for_one_amount(container_factory,
                                                                                       sqlite_config):
    config = sqlite_config
    app_id = at_joint_review(container_factory, config, seed=41)
    sign = {"application_id": app_id}
    # a token claiming the deputy director's role for someone the registry does not know
    with rpc_as(config, Role.DEPUTY_DIRECTOR, DISTRICT, user="mallory", name="冒名") as rpc:
        with pytest.raises(Forbidden) as err:
            rpc.review.sign_joint_review(dict(sign, role="deputy_director"))
        assert err.value.details["reason"] == "not_in_registry"
    # the registered centre director's account, claiming the deputy's role too
    with rpc_as(config, [Role.CENTRE_DIRECTOR, Role.DEPUTY_DIRECTOR], DISTRICT, user="zhou.director") as rpc:
        with pytest.raises(Forbidden) as err:
            rpc.review.sign_joint_review(dict(sign, role="deputy_director"))
        assert err.value.details["reason"] == "not_in_registry"
    # the investigator seat: someone registered who did not investigate, and an investigator no longer staff
    with rpc_as(config, Role.DISTRICT_OFFICER, DISTRICT, user="zhao.district") as rpc:
        with pytest.raises(Forbidden):
            rpc.review.sign_joint_review(dict(sign, role="investigator"))
    with rpc_as(config, Role.SERVICE, "", user="service:review") as rpc:   # not even a valid token shape
        with pytest.raises(Forbidden):
            rpc.review.sign_joint_review(dict(sign, role="deputy_director"))
    with rpc_with_token(config, service_token_for("review")) as rpc:
        with pytest.raises(Forbidden):
            rpc.review.sign_joint_review(dict(sign, role="deputy_director"))
    assert signatures(config, app_id) == []

    with deputy(config) as rpc:
        rpc.review.sign_joint_review(dict(sign, role="deputy_director", benefit_override="500.00",
                                          override_reason="残疾人重病，按实际困难核定"))
    with director(config) as rpc:                      # the director signs for another amount
        with pytest.raises(Conflict) as err:
            rpc.review.sign_joint_review(dict(sign, role="centre_director"))
        assert err.value.details["differs"] == ["benefit_override", "override_reason"]
        assert err.value.details["signed"]["benefit_override"] == "500.00"
        with pytest.raises(Conflict) as err:
            rpc.review.sign_joint_review(dict(sign, role="centre_director", benefit_override="600.00",
                                              override_reason="残疾人重病，按实际困难核定"))
        assert err.value.details["differs"] == ["benefit_override"]
        rpc.review.sign_joint_review(dict(sign, role="centre_director", benefit_override="500.00",
                                          override_reason="残疾人重病，按实际困难核定"))
    publish_identity_event(config, "role_revoked", {"user": "wang.officer", "unit": COMMUNITY,
                                                    "role": "community_officer"})
    with rpc_as(config, Role.DISTRICT_OFFICER, DISTRICT, user="zhao.district") as rpc:
        wait_for(lambda: ("wang.officer", "community_officer") not in
                 {(s["user"], s["role"]) for s in rpc.review.list_staff(DISTRICT)}, message="the role revoked")
    eventlet.sleep(1.1)      # a token issued in the second of a revocation counts as issued before it
    with community(config) as rpc:                     # a fresh token still claims the role: the registry decides
        with pytest.raises(Forbidden) as err:
            rpc.review.sign_joint_review(dict(sign, role="investigator", benefit_override="500.00",
                                              override_reason="残疾人重病，按实际困难核定"))
        assert err.value.details["reason"] == "not_in_registry"
    assert signatures(config, app_id) == [("deputy_director", "sun.deputy"), ("centre_director", "zhou.director")]
    publish_identity_event(config, "role_granted", {"user": "wang.officer", "unit": COMMUNITY,
                                                    "role": "community_officer"})
    with rpc_as(config, Role.DISTRICT_OFFICER, DISTRICT, user="zhao.district") as rpc:
        wait_for(lambda: ("wang.officer", "community_officer") in
                 {(s["user"], s["role"]) for s in rpc.review.list_staff(DISTRICT)}, message="the role granted")
    eventlet.sleep(1.1)
    with community(config) as rpc:
        done = rpc.review.sign_joint_review(dict(sign, role="investigator", benefit_override="500.00",
                                                 override_reason="残疾人重病，按实际困难核定"))
    assert done["status"] == "approved" and done["case"]["monthly_benefit"] == "500.00"
    signed = [r["payload"] for r in records(config, "review") if r["payload"]["method"] == "sign_joint_review"]
    assert [(r["outcome"], r["reason"]) for r in signed] == [
        ("forbidden", "not_in_registry"), ("forbidden", "not_in_registry"), ("forbidden", ""),
        ("forbidden", "malformed"), ("forbidden", "service_not_permitted"),
        ("ok", ""), ("conflict", ""), ("conflict", ""), ("ok", ""), ("forbidden", "not_in_registry"), ("ok", "")]


def test_run_maker_and_checker_are_two_accounts_whatever_their_names(container_factory, sqlite_config):
    from tests.payments_helpers import approve_cases, case_approved, month

    config = sqlite_config
    container_factory(PaymentsService, config).start()
    approve_cases(config, [case_approved("m1", month(-2), "400.00")])
    with rpc_as(config, Role.FINANCE_OFFICER, DISTRICT, user="qian.finance", name="钱会计") as rpc:
        run = rpc.payments.create_run({"period": month(-1), "area_type": "urban", "division_code": DISTRICT})
    # the same account under another name and with a checker's role
    with rpc_as(config, [Role.FINANCE_OFFICER, Role.CENTRE_DIRECTOR], DISTRICT, user="qian.finance",
                name="周主任") as rpc:
        with pytest.raises(Forbidden):
            rpc.payments.approve_run(run["id"])
    # another account with the maker's name is another person
    with rpc_as(config, Role.CENTRE_DIRECTOR, DISTRICT, user="zhou.director", name="钱会计") as rpc:
        assert rpc.payments.approve_run(run["id"])["approved_by"] == "zhou.director"


def test_a_proposals_approvers_are_distinct_accounts_the_registry_shows_in_the_policys_roles(
        container_factory, sqlite_config, tmp_path):
    from tests.dynamic_helpers import approved_case, proposals, start

    config, clock = start(container_factory, sqlite_config, "jiangxia", tmp_path)     # township → centre director
    case = approved_case(config, clock, seed=61)
    with township(config) as rpc:                                    # li.township proposes
        proposal = rpc.review.propose({"case_id": case["id"], "action": "cancel", "reason": "家庭收入超标"})
    approve = {"proposal_id": proposal["id"], "remarks": "同意"}
    with township(config) as rpc:
        with pytest.raises(Conflict):                                # the proposer does not approve
            rpc.review.approve_proposal(approve)
    with rpc_as(config, Role.TOWNSHIP_OFFICER, "420115001", user="impostor", name="冒名") as rpc:
        with pytest.raises(Forbidden) as err:                        # a token with the role, no registry entry
            rpc.review.approve_proposal(approve)
        assert err.value.details["reason"] == "not_in_registry"
    with rpc_with_token(config, service_token_for("review")) as rpc:
        with pytest.raises(Forbidden) as err:
            rpc.review.approve_proposal(approve)
        assert err.value.details["reason"] == "service_not_permitted"
    with rpc_as(config, Role.TOWNSHIP_OFFICER, "420115001", user="zhou.township", name="周办事员") as rpc:
        rpc.review.approve_proposal(approve)
    with rpc_as(config, [Role.TOWNSHIP_OFFICER, Role.CENTRE_DIRECTOR], DISTRICT, user="zhou.township") as rpc:
        with pytest.raises(Forbidden) as err:                        # the same account claiming the next role
            rpc.review.approve_proposal(approve)
        assert err.value.details["reason"] == "not_in_registry"
    [pending] = proposals(config, case["id"])
    assert pending["status"] == "pending" and [a["user"] for a in pending["approvals"]] == ["zhou.township"]
    with director(config) as rpc:
        done = rpc.review.approve_proposal(approve)
    assert done["status"] == "approved" and [a["user"] for a in done["approvals"]] == ["zhou.township",
                                                                                       "zhou.director"]
