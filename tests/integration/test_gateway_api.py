"""The HTTP JSON API over real RabbitMQ: calls made as the logged-in person,
typed errors mapped to HTTP with one body — and the OpenAPI document tested
against the gateway itself.

The document test is generated from ``/api/openapi.json``: for every
operation, a call without a login answers 401 ``unauthenticated``; with a
login, a malformed request (hypothesis draws it from the operation's own
schema: not an object, required fields missing, a field of the wrong type,
an unknown field; a bad query value or path id where there is no body)
answers 400 ``validation_failed`` naming the fields. The gateway checks each
request with the route's schema before it calls: payments and audit do not
even run in this deployment, and their operations answer the same 400s.
"""
from __future__ import annotations

import json
import logging
import uuid
from datetime import date, timedelta

import pytest
import requests
from hypothesis import HealthCheck, Phase, given, settings, strategies as st

from tests.browser_helpers import start_console
from tests.helpers import COMMUNITY, DISTRICT, household
from tests.identity_helpers import add_person, bootstrap_admin

pytestmark = pytest.mark.integration

TIMEOUT = 20


@pytest.fixture
def api(container_factory, sqlite_config):
    """identity, intake, review and the gateway; an officer and a finance officer logged in."""
    config, base = start_console(container_factory, sqlite_config)
    admin = bootstrap_admin(config)
    officer = add_person(config, admin, "wang.officer", ["community_officer"], unit=COMMUNITY, name="王专干")
    finance = add_person(config, admin, "qian.finance", ["finance_officer"], unit=DISTRICT, name="钱会计",
                         password="Finance-Pass-2026")
    return Api(base, config, officer.token, finance.token, admin.token)


class Api:
    def __init__(self, base: str, config: dict, token: str, other_token: str, admin_token: str = ""):
        self.base, self.config, self.token, self.other_token = base, config, token, other_token
        self.admin_token = admin_token

    def call(self, method: str, path: str, token: str | None = "", **kwargs):
        token = self.token if token == "" else token
        headers = dict(kwargs.pop("headers", {}))
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return requests.request(method, self.base + "/api" + path, headers=headers, timeout=TIMEOUT, **kwargs)


def fields_of(answer) -> dict:
    body = answer.json()
    assert answer.status_code == 400 and body["code"] == "validation_failed", (answer.status_code, body)
    assert set(body) == {"code", "message", "details"}
    return body["details"]["fields"]


def names(fields: dict, name: str) -> bool:
    return any(key == name or key.startswith(f"{name}.") for key in fields)


# --- the document, and every operation in it ---------------------------------------------


def operations(document: dict):
    for path, ops in document["paths"].items():
        for method, op in ops.items():
            yield method.upper(), path, op


def resolve(document: dict, schema: dict) -> dict:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def concrete(path: str, op: dict, bad: str | None = None) -> str:
    """The path with a fresh uuid for each id (``bad``: that one malformed)."""
    for param in op.get("parameters", []):
        if param["in"] == "path":
            value = "not-an-id" if param["name"] == bad else str(uuid.uuid4())
            path = path.replace("{" + param["name"] + "}", value)
    return path


WRONG = {"string": [12345, {"x": 1}, ["x"]], "integer": ["twelve", {}, [3]], "number": ["many", {}],
         "boolean": ["maybe", 7], "array": ["not a list", {"a": 1}], "object": ["not an object", [1, 2]]}


def wrong_value(prop: dict):
    kind = prop.get("type", "string" if "$ref" in prop else None)
    if prop.get("format") in ("date", "uuid", "date-time"):
        return st.sampled_from(["not-a-" + prop["format"], 12345])
    if "enum" in prop:
        return st.sampled_from(["no-such-choice", 12345])
    if "pattern" in prop and kind == "string":
        return st.sampled_from(["!!", {"x": 1}])       # (an amount also takes a whole number)
    return st.sampled_from(WRONG.get(kind, [{"x": []}]))


def malformed_body(document: dict, op: dict):
    """(a strategy for a malformed body, what it must name) of the operation's request schema."""
    schema = resolve(document, op["requestBody"]["content"]["application/json"]["schema"])
    props, required = schema.get("properties", {}), schema.get("required", [])
    cases = [st.tuples(st.one_of(st.lists(st.integers(), max_size=3), st.integers(), st.text(max_size=5),
                                 st.booleans()), st.just(("_schema",)))]
    if required:
        cases.append(st.just(({}, tuple(required))))
    if props:
        def wrong(name):
            return wrong_value(resolve(document, props[name]) if "$ref" in props[name] else props[name]).map(
                lambda value: ({name: value}, (name,)))
        cases.append(st.sampled_from(sorted(props)).flatmap(wrong))
    cases.append(st.just(({"zz_not_a_field": 1}, ("zz_not_a_field",))))
    return st.one_of(cases)


def malformed_request(document: dict, method: str, path: str, op: dict):
    """A strategy of (method, path, requests kwargs, the fields the 400 must name)."""
    if "requestBody" in op:
        return malformed_body(document, op).map(
            lambda case: (method, concrete(path, op), {"data": json.dumps(case[0]),
                                                      "headers": {"Content-Type": "application/json"}}, case[1]))
    query = [p for p in op.get("parameters", []) if p["in"] == "query"]
    in_path = [p["name"] for p in op.get("parameters", []) if p["in"] == "path"]
    cases = [st.just((method, concrete(path, op), {"params": {"zz_not_a_field": "1"}}, ("zz_not_a_field",)))]
    typed = [p for p in query if p["schema"].get("type") in ("integer", "boolean")
             or p["schema"].get("format") in ("date", "uuid")]
    if typed:
        cases.append(st.sampled_from(typed).map(
            lambda p: (method, concrete(path, op), {"params": {p["name"]: "not-valid"}}, (p["name"],))))
    if in_path:
        cases.append(st.sampled_from(in_path).map(lambda name: (method, concrete(path, op, bad=name), {}, (name,))))
    return st.one_of(cases)


def test_the_document_is_openapi_3_with_the_operator_paths_and_security(api):
    document = requests.get(api.base + "/api/openapi.json", timeout=TIMEOUT).json()
    assert document["openapi"].startswith("3.")
    assert {"bearerAuth", "cookieAuth"} <= set(document["components"]["securitySchemes"])
    assert document["security"] == [{"bearerAuth": []}, {"cookieAuth": []}]
    for path in ("/households", "/applications", "/investigations", "/applications/{application_id}/review",
                 "/review/worklist", "/review/evaluations", "/payments/runs", "/audit/trace", "/identity/whoami",
                 "/identity/password", "/identity/accounts", "/identity/role-grants", "/identity/unlocks",
                 "/identity/credential-resets", "/identity/disablements", "/notify/notices",
                 "/notify/notices/{notice_id}", "/notify/objections", "/notify/board-renderings"):
        assert path in document["paths"], path
    ops = list(operations(document))
    assert len(ops) >= 35 and len({op["operationId"] for _, _, op in ops}) == len(ops)
    docs = requests.get(api.base + "/api/docs", timeout=TIMEOUT)
    assert docs.status_code == 200 and "<script>" not in docs.text          # no inline script
    assert "cdn" not in docs.text.lower() and "/api/docs/assets/swagger-ui-bundle.js" in docs.text
    bundle = requests.get(api.base + "/api/docs/assets/swagger-ui-bundle.js", timeout=TIMEOUT)
    assert bundle.status_code == 200 and len(bundle.content) > 100_000


def test_every_operation_refuses_a_caller_without_a_login(api):
    document = requests.get(api.base + "/api/openapi.json", timeout=TIMEOUT).json()
    for method, path, op in operations(document):
        body = {"data": "{}", "headers": {"Content-Type": "application/json"}} if "requestBody" in op else {}
        for token in (None, "not-a-token", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."):
            answer = api.call(method, concrete(path, op), token=token, **body)
            assert answer.status_code == 401, (method, path, token, answer.status_code, answer.text)
            assert answer.json()["code"] == "unauthenticated" and answer.headers["WWW-Authenticate"].startswith("Bearer")


@settings(max_examples=4, deadline=None, database=None, phases=(Phase.explicit, Phase.generate),
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_every_operation_answers_a_malformed_request_with_a_typed_400_naming_the_fields(api, data):
    document = requests.get(api.base + "/api/openapi.json", timeout=TIMEOUT).json()
    for method, path, op in operations(document):
        method, concrete_path, kwargs, expected = data.draw(malformed_request(document, method, path, op),
                                                            label=op["operationId"])
        fields = fields_of(api.call(method, concrete_path, **kwargs))
        for name in expected:
            assert names(fields, name), (op["operationId"], kwargs, expected, fields)


# --- the calls themselves, as the person -------------------------------------------------


def test_calls_are_made_as_the_person_and_errors_map_to_http(api, caplog):
    registered = api.call("POST", "/households", json=household(seed=21))
    assert registered.status_code == 201, registered.text
    household_id = registered.json()["household_id"]
    read = api.call("GET", f"/households/{household_id}")
    assert read.status_code == 200 and read.json()["community_code"] == COMMUNITY
    accepted = api.call("POST", "/applications", json={"household_id": household_id,
                                                       "accepted_on": date.today().isoformat()})
    assert accepted.status_code == 201 and accepted.json()["accepted_by"] == "wang.officer"   # as the person

    again = api.call("POST", "/applications", json={"household_id": household_id,
                                                    "accepted_on": date.today().isoformat()})
    assert again.status_code == 409 and again.json()["code"] == "conflict"
    future = api.call("POST", "/applications", json={"household_id": household_id,
                                                     "accepted_on": (date.today() + timedelta(days=9)).isoformat()})
    assert names(fields_of(future), "accepted_on")                       # the service's own check, mapped
    missing = api.call("GET", f"/households/{uuid.uuid4()}")
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"
    refused = api.call("POST", "/households", token=api.other_token, json=household(seed=22))
    assert refused.status_code == 403 and refused.json()["code"] == "forbidden"   # a finance officer's role
    worklist = api.call("GET", "/review/worklist")
    assert worklist.status_code == 200 and isinstance(worklist.json(), list)

    # validly signed, but no session identity knows (or a service's own token): no login here
    from shared.testing import person_token, service_token_for

    unknown = api.call("GET", "/review/worklist", token=person_token("wang.officer", unit=COMMUNITY,
                                                                     roles=["community_officer"]))
    assert unknown.status_code == 401 and unknown.json()["details"]["reason"] == "unknown_session"
    service = api.call("GET", "/review/worklist", token=service_token_for("gateway"))
    assert service.status_code == 401 and service.json()["details"]["reason"] == "not_a_person"

    # payments is not running here: the call times out or finds no service — 503, never a hang or a 500
    unavailable = api.call("GET", "/payments/runs", token=api.other_token)
    assert unavailable.status_code == 503 and unavailable.json()["code"] == "service_unavailable"

    assert api.call("DELETE", "/households").status_code == 405
    assert api.call("GET", "/no/such/path").json()["code"] == "not_found"
    too_big = api.call("POST", "/households", data=b"x" * (2 * 1024 * 1024 + 10),
                       headers={"Content-Type": "application/json"})
    assert too_big.status_code == 413 and too_big.json()["code"] == "payload_too_large"


def test_an_internal_error_answers_a_reference_and_nothing_else(api, monkeypatch, caplog):
    from services.gateway import api as gateway_api

    def broken(*args, **kwargs):
        raise RuntimeError("420115199001011234 leaked from deep inside")   # what must never reach a caller

    monkeypatch.setattr(gateway_api, "arguments", broken)
    with caplog.at_level(logging.ERROR, logger="services.gateway.exceptions"):
        answer = api.call("GET", "/review/worklist")
    body = answer.json()
    assert answer.status_code == 500 and body["code"] == "internal_error"
    assert set(body) == {"code", "message", "details"} and set(body["details"]) == {"reference"}
    assert "420115199001011234" not in answer.text and "RuntimeError" not in answer.text
    assert any(body["details"]["reference"] in r.getMessage() for r in caplog.records)   # found in the log


def test_a_cookie_session_needs_the_csrf_token_to_change_anything(api):
    cookies = {"dibao_session": api.token}
    refused = requests.post(api.base + "/api/households", json=household(seed=23), cookies=cookies, timeout=TIMEOUT)
    assert refused.status_code == 403 and refused.json()["details"]["reason"] == "csrf"
    reads = requests.get(api.base + "/api/review/worklist", cookies=cookies, timeout=TIMEOUT)
    assert reads.status_code == 200          # a read needs no token
    page = requests.get(api.base + "/", cookies=cookies, timeout=TIMEOUT).text
    token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    made = requests.post(api.base + "/api/households", json=household(seed=23), cookies=cookies,
                         headers={"X-CSRF-Token": token}, timeout=TIMEOUT)
    assert made.status_code == 201, made.text


# --- identity over the API: the security administrator's calls, and no one else's ----------------

#: a valid body for each security-administrator operation, aimed at someone else's account —
#: or, for a grant, at the caller's own (raising oneself to a joint-review seat)
ADMIN_BODIES = {
    "identity.add_account": {"user": "sock.puppet", "name": "傀儡", "unit": COMMUNITY, "roles": ["centre_director"]},
    "identity.grant_role": {"user": "wang.officer", "role": "centre_director"},
    "identity.revoke_role": {"user": "qian.finance", "role": "finance_officer"},
    "identity.unlock_account": {"user": "qian.finance"},
    "identity.disable_account": {"user": "qian.finance"},
    "identity.enable_account": {"user": "qian.finance"},
    "identity.reset_credentials": {"user": "qian.finance", "what": "password"},
}


def admin_operations(document: dict):
    return [(m, p, op) for m, p, op in operations(document) if "security administrator" in op["tags"][0]]


def test_the_security_administrators_calls_refuse_everyone_else(api):
    document = requests.get(api.base + "/api/openapi.json", timeout=TIMEOUT).json()
    ops = admin_operations(document)
    assert {op["operationId"] for _, _, op in ops} == set(ADMIN_BODIES) | {"identity.list_accounts"}
    for token in (api.token, api.other_token):          # a community officer, a finance officer
        for method, path, op in ops:
            body = {"json": ADMIN_BODIES[op["operationId"]]} if method == "POST" else {}
            answer = api.call(method, path, token=token, **body)
            assert answer.status_code == 403, (op["operationId"], answer.status_code, answer.text)
            assert answer.json()["code"] == "forbidden"
    # nothing changed: the finance officer still logs in to the same session with the same role
    me = api.call("GET", "/identity/whoami", token=api.other_token)
    assert me.status_code == 200 and me.json()["roles"] == ["finance_officer"], me.text
    assert api.call("GET", "/identity/whoami").json()["roles"] == ["community_officer"]
    accounts = api.call("GET", "/identity/accounts", token=api.admin_token)
    assert accounts.status_code == 200, accounts.text
    by_user = {a["user"]: a for a in accounts.json()}
    assert "sock.puppet" not in by_user and by_user["qian.finance"]["status"] == "active"
    assert by_user["wang.officer"]["roles"] == ["community_officer"]


def test_the_security_administrator_cannot_take_a_joint_review_seat_through_the_api(api):
    admin = api.admin_token
    me = api.call("GET", "/identity/whoami", token=admin).json()
    assert me["roles"] == ["security_admin"]
    for seat in ("centre_director", "deputy_director", "district_officer"):
        own = api.call("POST", "/identity/role-grants", token=admin, json={"user": me["user"], "role": seat})
        assert own.status_code == 403 and own.json()["details"]["reason"] == "own_account", own.text
    # nor by the back door of 三员分立's other half: an account of theirs cannot be re-enabled or reset by themselves
    for path, body in (("/identity/credential-resets", {"user": me["user"], "what": "totp"}),
                       ("/identity/unlocks", {"user": me["user"]})):
        answer = api.call("POST", path, token=admin, json=body)
        assert answer.status_code == 403 and answer.json()["details"]["reason"] == "own_account", answer.text
    assert api.call("GET", "/identity/whoami", token=admin).json()["roles"] == ["security_admin"]

    # what the administrator may do, answered with identity's own shapes and typed errors
    granted = api.call("POST", "/identity/role-grants", token=admin,
                       json={"user": "wang.officer", "role": "community_panel"})
    assert granted.status_code == 201 and granted.json()["roles"] == ["community_officer", "community_panel"]
    unknown = api.call("POST", "/identity/role-grants", token=admin, json={"user": "wang.officer", "role": "king"})
    assert names(fields_of(unknown), "role")
    missing = api.call("POST", "/identity/unlocks", token=admin, json={"user": "no.such.person"})
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"
    duplicate = api.call("POST", "/identity/accounts", token=admin,
                         json={"user": "qian.finance", "name": "钱", "unit": DISTRICT, "roles": []})
    assert duplicate.status_code == 409 and duplicate.json()["code"] == "conflict"
    reset = api.call("POST", "/identity/credential-resets", token=admin, json={"user": "qian.finance"})
    assert reset.status_code == 201 and reset.json()["one_time_password"], reset.text
    assert reset.headers["Cache-Control"] == "no-store"
    # the reset ended the finance officer's sessions: the old token is no login any more
    gone = api.call("GET", "/identity/whoami", token=api.other_token)
    assert gone.status_code == 401 and gone.json()["code"] == "unauthenticated", gone.text


def test_a_person_changes_their_password_and_logs_out_through_the_api(api):
    wrong = api.call("POST", "/identity/password", json={"old_password": "Officer-Pass-2026",
                                                         "new_password": "short"})
    assert names(fields_of(wrong), "new_password")
    changed = api.call("POST", "/identity/password", json={"old_password": "Officer-Pass-2026",
                                                           "new_password": "Officer-Newer-2027"})
    assert changed.status_code == 200 and changed.json()["must_change_password"] is False, changed.text
    old = api.call("GET", "/identity/whoami")
    assert old.status_code == 401, old.text                     # every earlier session ended, at once
    new = changed.json()["token"]
    assert api.call("GET", "/identity/whoami", token=new).json()["user"] == "wang.officer"
    assert api.call("POST", "/identity/logout", token=new).status_code == 200
    after = api.call("GET", "/review/worklist", token=new)
    assert after.status_code == 401 and after.json()["code"] == "unauthenticated"
