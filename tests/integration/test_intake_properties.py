"""Property-based tests (hypothesis) of every intake RPC, over real RabbitMQ.

Whatever a caller sends — garbage JSON, or a valid payload with one field
broken — and whoever the caller is (the household's community officer, an
officer of another community, a district officer, a partner bureau, nobody,
a forged token), every answer is a success or one of the typed errors of
:mod:`shared.errors` (or nameko's own ``IncorrectSignature`` for a wrong
number of arguments). Never an ``InternalError``/``RemoteError``; a
``ValidationFailed`` names at least one field; a refused call changes no
row of any table and emits nothing; a successful write emits its event.

One intake container per test function (hypothesis runs many examples
against it); SQLite only, as the point is the service's answers.
"""
from __future__ import annotations

import base64
import hashlib
import inspect
import json
import uuid
from collections import Counter, defaultdict
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import date, timedelta

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import event as _event
from hypothesis import note as _note
from hypothesis.control import currently_in_test_context
from hypothesis import strategies as st
from nameko.exceptions import IncorrectSignature
from nameko.rpc import Rpc
from nameko.standalone.rpc import ClusterRpcProxy

from contracts.rpc import intake as schemas
from services.intake.models import Base
from services.intake.service import IntakeService
from shared.db import make_engine
from shared.errors import Conflict, Forbidden, NotFound, ValidationFailed
from shared.identity import AUTH_TOKEN_KEY, Role
from shared.rpc import InternalError  # noqa: F401 - registered, so it arrives as itself (and fails the test)
from shared.sample import SampleDistrict
from shared.testing import rpc_as, rpc_with_token, service_token_for
from tests.helpers import COMMUNITY, DISTRICT, OTHER_COMMUNITY, TOWNSHIP, household, investigation, register_staff
from tests.strategies import NASTY, bad_resident_ids, dotted, get_path, json_values, mutation, paths, set_path

pytestmark = pytest.mark.integration

#: Typed answers. IncorrectSignature is nameko's own (wrong number of arguments).
TYPED = (ValidationFailed, NotFound, Forbidden, Conflict)
ACCEPTED = TYPED + (IncorrectSignature,)

#: The events a successful call of each RPC emits (its outbox rows, in order).
#: import_households emits one household_registered per imported row.
EMITS: dict[str, list[str]] = {
    "ping": [],
    "list_staff": [],       # the staff registry comes from identity's events (shared/staff.py)
    "register_household": ["household_registered"],
    "import_households": None,
    "update_household": ["household_updated"],
    "get_household": ["file_viewed"],
    "find_household": ["file_viewed"],
    "submit_application": ["application_submitted"],
    "get_application": [],
    "list_applications": [],
    "record_investigation": ["investigation_recorded"],
    "register_document": ["document_registered"],
    "attach_scan": ["document_scanned"],
    "get_scan": ["file_viewed"],
    "file_report": [],
    "record_checkin": ["checkin_recorded"],
    "record_labour": ["labour_recorded"],
    "community_sheet": [],   # 月度签到 / 公益劳动: a read of a unit's month (heads' and members' names only)
    "record_death": ["member_died", "household_updated"],
    "replay_dead_letters": [],   # recorded (record_reads), writes nothing here
    "public_application_check": [],   # the gateway's identity only (the public status page): refused to everyone here
    "verification_subjects": [],      # verification's identity only (核对 requests): refused to everyone here
}

#: RPCs naming a row by id: to another jurisdiction's officer the row does not
#: exist (NotFound, as for an unknown id), never Forbidden (shared/jurisdiction.py)
HIDDEN_FROM_OUTSIDERS = {"update_household", "get_household", "find_household", "submit_application",
                         "get_application", "record_investigation", "register_document", "file_report",
                         "attach_scan", "get_scan",
                         "record_checkin", "record_labour", "record_death"}

#: The RPCs that write nothing when they succeed: not recorded as commands (shared.commands).
PURE_READS = {"ping", "get_application", "list_applications", "file_report", "list_staff", "community_sheet",
              "public_application_check",
              "verification_subjects"}

ALL_FIELD_NAMES = sorted({name for schema in (
    schemas.HouseholdSchema, schemas.MemberSchema, schemas.IncomeSchema, schemas.AssetSchema, schemas.UnitSchema,
    schemas.ApplicationSchema, schemas.InvestigationSchema, schemas.InvestigatorSchema,
    schemas.FamilySignatureSchema, schemas.VerifiedIncomeSchema, schemas.DocumentSchema, schemas.CheckInSchema,
    schemas.LabourSchema, schemas.LookupSchema, schemas.ScanSchema) for name in schema().fields})

PROPERTY_SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                               HealthCheck.too_slow, HealthCheck.data_too_large],
                         print_blob=True)


def public_rpcs(service=IntakeService) -> dict[str, inspect.Signature]:
    """The service's RPC methods, found by nameko's entrypoint marker."""
    found = {}
    for name, member in inspect.getmembers(service, inspect.isfunction):
        if any(isinstance(ep, Rpc) for ep in getattr(member, "nameko_entrypoints", ())):
            found[name] = inspect.signature(member)
    return found


def test_every_public_rpc_is_covered_by_these_properties():
    """A new RPC must be added to EMITS (and so to the generated calls)."""
    assert set(public_rpcs()) == set(EMITS), (
        "intake RPCs changed: add the new ones to EMITS and give them payload strategies here")


# --- the world every example runs in --------------------------------------------

ACTORS = {
    "officer": (Role.COMMUNITY_OFFICER, COMMUNITY, "wang.officer"),          # the households' own officer
    "other_officer": (Role.COMMUNITY_OFFICER, OTHER_COMMUNITY, "qian.other"),  # another community's
    "district": (Role.DISTRICT_OFFICER, DISTRICT, "zhao.district"),          # covers the whole district
    "partner": (Role.PARTNER_BUREAU, DISTRICT, "partner.finance"),           # may read nothing here
    "anonymous": None,                                                        # no token at all
    "forged": "forged",                                                       # a token not signed by us
    "admin": (Role.SYSTEM_ADMIN, DISTRICT, "admin"),                                 # system administrator (replay)
}


@dataclass
class World:
    config: dict
    engine: sa.Engine
    proxies: dict
    households: list[str] = field(default_factory=list)      # in COMMUNITY, made at start
    members: dict[str, list[str]] = field(default_factory=dict)
    resident_ids: list[str] = field(default_factory=list)
    application: str = ""                                      # submitted, on households[0]
    outcomes: dict = field(default_factory=lambda: defaultdict(Counter))

    def snapshot(self) -> tuple[dict, int]:
        """Per table: its row count and a digest of its rows (an update in
        place shows too: encrypted columns even get a fresh nonce). The
        outbox is counted only: the relay stamps ``sent_at`` on its own."""
        outbox = Base.metadata.tables["outbox"]
        state = {}
        with self.engine.connect() as conn:
            for table in Base.metadata.sorted_tables:
                if table is outbox:   # the record of the call itself (shared.commands) is no change of state
                    state[table.name] = conn.scalar(sa.select(sa.func.count()).select_from(table)
                                                    .where(table.c.routing_key != "command_recorded"))
                else:
                    rows = sorted(repr(tuple(r)) for r in conn.execute(sa.select(table)))
                    state[table.name] = (len(rows), hashlib.sha1("\n".join(rows).encode()).hexdigest()[:12])
            last = conn.scalar(sa.select(sa.func.coalesce(sa.func.max(outbox.c.id), 0)))
        return state, last

    def new_events(self, after: int) -> list[str]:
        outbox = Base.metadata.tables["outbox"]
        with self.engine.connect() as conn:
            return list(conn.scalars(sa.select(outbox.c.routing_key).where(
                outbox.c.id > after, outbox.c.routing_key != "command_recorded").order_by(outbox.c.id)))

    def new_commands(self, after: int) -> list[str]:
        """The outcomes of the command records (shared.commands) written since ``after``."""
        outbox = Base.metadata.tables["outbox"]
        with self.engine.connect() as conn:
            bodies = conn.scalars(sa.select(outbox.c.body).where(outbox.c.id > after,
                                                                 outbox.c.routing_key == "command_recorded"))
            return [json.loads(b)["payload"]["outcome"] for b in bodies]

    def call(self, actor: str, method: str, *args, **kwargs):
        """Call one RPC and check the properties; return the result or the typed error."""
        note(f"{actor} → intake.{method}(*{_short(args)}, **{_short(kwargs)})")
        before, last = self.snapshot()
        try:
            result = getattr(self.proxies[actor].intake, method)(*args, **kwargs)
        except ACCEPTED as exc:
            # a refused call: typed, names a field if it is about input, and changed nothing
            after, _ = self.snapshot()
            self.outcomes[method][type(exc).__name__] += 1
            event(f"{method}: {type(exc).__name__}")
            if isinstance(exc, ValidationFailed):
                assert exc.fields, f"ValidationFailed names no field: {exc!r}"
            changed = {t: (before[t], after[t]) for t in before if before[t] != after[t]}
            assert not changed, f"{method} was refused ({exc!r}) yet changed rows: {changed}"
            # ...but it was recorded, with its outcome (a call nameko refused before any worker ran is not)
            expected = [] if isinstance(exc, IncorrectSignature) else [exc.code]
            assert self.new_commands(last) == expected, f"{method} refused ({exc!r}): command records"
            return exc
        # anything else (InternalError, RemoteError, RpcTimeout...) propagates: the property fails
        after, _ = self.snapshot()
        self.outcomes[method]["ok"] += 1
        event(f"{method}: ok")
        emitted = self.new_events(last)
        # a command is recorded with its outcome; a pure read (no write at all) is not
        assert self.new_commands(last) == ([] if method in PURE_READS else ["ok"]), f"{method}: command records"
        expected = EMITS[method]
        if method == "import_households":
            expected = ["household_registered"] * sum(1 for r in result if "household_id" in r)
            for row in result:
                if "error" in row:
                    assert row["error"]["code"] in {e.code for e in TYPED}, row
                    self.outcomes[method]["row:" + row["error"]["code"]] += 1
        assert emitted == expected, f"{method} succeeded and emitted {emitted}, expected {expected}"
        if not expected:
            assert after == before, f"{method} is a read, yet rows changed: {before} → {after}"
        return result


def note(text: str) -> None:
    if currently_in_test_context():
        _note(text)


def event(text: str) -> None:
    if currently_in_test_context():
        _event(text)


def _short(value, limit: int = 300) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + f"...({len(text)} chars)"


@pytest.fixture
def world(container_factory, sqlite_config):
    config = sqlite_config
    container = container_factory(IntakeService, config)
    container.start()
    register_staff(config)
    engine = make_engine(config["DB_URIS"]["intake"])
    with ExitStack() as stack:
        proxies = {}
        for name, actor in ACTORS.items():
            if actor is None:
                proxies[name] = stack.enter_context(ClusterRpcProxy(config, timeout=20))
            elif actor == "forged":
                proxies[name] = stack.enter_context(ClusterRpcProxy(
                    config, timeout=20, context_data={AUTH_TOKEN_KEY: "eyJhbGciOiJIUzI1NiJ9.e30.forged"}))
            else:
                role, unit, user = actor
                proxies[name] = stack.enter_context(rpc_as(config, role, unit, user=user, timeout=20))
        for service in ("gateway", "verification"):   # the services some RPCs answer only (shared/permissions.py)
            proxies[service] = stack.enter_context(rpc_with_token(config, service_token_for(service), timeout=20))
        w = World(config, engine, proxies)
        for seed in (1, 2, 3):
            data = household(seed=seed)
            created = proxies["officer"].intake.register_household(data)
            w.households.append(created["household_id"])
            w.members[created["household_id"]] = created["member_ids"]
            w.resident_ids += [m["resident_id"] for m in data["members"]]
        w.application = proxies["officer"].intake.submit_application(
            {"household_id": w.households[0], "accepted_on": (date.today() - timedelta(days=3)).isoformat()})["id"]
        yield w
    engine.dispose()


def actors(officer_weight: int = 3):
    return st.sampled_from(["officer"] * officer_weight + [a for a in ACTORS if a != "officer"])


def related(fields: dict, path: tuple) -> bool:
    """Whether the error names the mutated field, a part of it or what holds it."""
    p = dotted(path)
    if not p:
        return True
    return any(k == p or k.startswith(p + ".") or p.startswith(k + ".") for k in fields)


# --- 1. garbage arguments to every RPC -------------------------------------------

def garbage_args(sig: inspect.Signature):
    params = [p for p in sig.parameters.values() if p.name != "self"]
    required = sum(1 for p in params if p.default is inspect.Parameter.empty)
    right = list(range(required, len(params) + 1))
    wrong = [n for n in (required - 1, len(params) + 1) if n >= 0]
    arity = st.sampled_from(right * (12 // len(right)) + wrong)   # mostly the right number of arguments
    values = json_values(ALL_FIELD_NAMES)
    return arity.flatmap(lambda n: st.lists(values, min_size=n, max_size=n))


def test_garbage_arguments_get_a_typed_answer_and_write_nothing(world):
    rpcs = public_rpcs()

    def garbage_into(method: str):
        # each RPC its share of the examples: one run drawing the method among ~40 missed one now and then
        @settings(max_examples=max(5, 250 // len(rpcs)), **PROPERTY_SETTINGS)
        @given(data=st.data())
        def run(data):
            actor = data.draw(actors(), label="actor")
            args = data.draw(garbage_args(rpcs[method]), label="args")
            world.call(actor, method, *args)
        return run

    for method in sorted(rpcs):
        garbage_into(method)()
    assert {m for m in world.outcomes} == set(rpcs), "every RPC was called"


def test_list_applications_keyword_garbage(world):
    """list_applications takes keyword filters: garbage in each of them."""
    filters = {
        "community_code": st.sampled_from([None, COMMUNITY, TOWNSHIP, DISTRICT, OTHER_COMMUNITY, "", "%"]) | st.sampled_from(NASTY),
        "status": st.sampled_from([None, "submitted", "investigated", "nope"]) | st.sampled_from(NASTY),
        "limit": st.sampled_from([1, 200, 1000, 10**6]) | st.sampled_from(NASTY),
    }

    @settings(max_examples=100, **PROPERTY_SETTINGS)
    @given(data=st.data())
    def run(data):
        actor = data.draw(actors(), label="actor")
        kwargs = data.draw(st.fixed_dictionaries({}, optional=filters), label="kwargs")
        world.call(actor, "list_applications", **kwargs)

    run()
    assert world.outcomes["list_applications"]["ok"], "some listing succeeded"


# --- 2. one field of a valid household broken -------------------------------------

def household_targets(data: dict, world: World) -> list[tuple[tuple, object]]:
    rid0 = data["members"][0]["resident_id"]
    n = len(data["members"])
    head = dict(data["members"][0])
    targets = [(("members", 0, "resident_id"), bad) for bad in bad_resident_ids(rid0)]
    targets += [
        (("members", 0, "resident_id"), world.resident_ids[0]),          # already in another household
        (("members", 0, "birth_date"), "1990-02-30"),
        (("members", 0, "birth_date"), (date.today() + timedelta(days=30)).isoformat()),
        (("members", 0, "birth_date"), "1950-01-01"),                     # does not match the ID
        (("members", 0, "relation"), "spouse"),                           # no head
        (("members", 0, "relation"), "boss"),
        (("members", 0, "name"), ""), (("members", 0, "name"), "名" * 51),
        (("members", 0, "labour_capacity"), "some"),
        (("members",), []),
        (("members",), [head] * 31),
        (("members",), data["members"] + [dict(head)]),                  # same person twice / two heads
        (("community_code",), "420115009009"),                            # unknown community
        (("community_code",), "420115001"),                               # a township
        (("community_code",), OTHER_COMMUNITY),                           # real, another officer's
        (("community_code",), 420115001001),
        (("address",), ""), (("address",), "路" * 201),
        (("phone",), "call me"), (("area_type",), "suburb"),
        (("incomes",), [{"member": 0, "source": "wages", "monthly_amount": bad}
                        for bad in ("-5.00",)]),
        (("incomes",), [{"member": 0, "source": "wages", "monthly_amount": 320.5}]),      # a float
        (("incomes",), [{"member": 0, "source": "wages", "monthly_amount": "320.505"}]),  # 3 decimals
        (("incomes",), [{"member": 0, "source": "wages", "monthly_amount": "1000000.01"}]),
        (("incomes",), [{"member": n, "source": "wages", "monthly_amount": "1.00"}]),     # no such member
        (("incomes",), [{"member": -1, "source": "wages", "monthly_amount": "1.00"}]),
        (("incomes",), [{"member": 0, "source": "lottery", "monthly_amount": "1.00"}]),
        (("assets",), [{"kind": "house", "value": "-1"}]),
        (("assets",), [{"kind": "yacht", "value": "1"}]),
    ]
    return targets


def test_broken_households_are_refused_naming_the_field(world):
    @settings(max_examples=200, **PROPERTY_SETTINGS)
    @given(data=st.data())
    def run(data):
        valid = SampleDistrict(seed=data.draw(st.integers(10, 10**9), label="seed")).household(COMMUNITY)
        payload, path = data.draw(mutation(valid, household_targets(valid, world), ALL_FIELD_NAMES)
                                  | st.just((valid, ())), label="mutation")
        note(f"mutated {dotted(path)!r}")
        actor = data.draw(actors(), label="actor")
        how = data.draw(st.sampled_from(["register", "update", "import"]), label="how")
        if how == "register":
            answer = world.call(actor, "register_household", payload)
        elif how == "update":
            target = data.draw(st.sampled_from(world.households + [str(uuid.uuid4())]), label="household")
            answer = world.call(actor, "update_household", target, payload)
        else:
            rows = [payload, SampleDistrict(seed=data.draw(st.integers(10, 10**9))).household(COMMUNITY)]
            answer = world.call(actor, "import_households", rows)
            if isinstance(answer, list) and "error" in answer[0]:
                error = answer[0]["error"]
                assert error["code"] in {e.code for e in TYPED}
                if error["code"] == "validation_failed":
                    assert related(error["details"]["fields"], path), (path, error)
                return
        if isinstance(answer, ValidationFailed):
            assert related(answer.fields, path), f"mutated {dotted(path)} but the error names {answer.fields}"

    run()
    for method in ("register_household", "update_household", "import_households"):
        refused = world.outcomes[method]["ValidationFailed"] + world.outcomes[method]["row:validation_failed"]
        assert refused, f"{method} refused some broken household"
    assert world.outcomes["register_household"]["ok"], f"some households registered: {dict(world.outcomes)}"


# --- 3. one field of a valid workflow payload broken ------------------------------

def workflow_payloads(world: World, data) -> dict:
    """(method, valid payload, targeted mutations) for every intake RPC taking a payload."""
    hid = world.households[0]
    mids = world.members[hid]
    other_mid = world.members[world.households[1]][0]
    today = date.today()
    future = (today + timedelta(days=5)).isoformat()
    wang, li = {"user": "wang.officer", "signed": True}, {"user": "li.township", "signed": True}
    month = data.draw(st.dates(date(2015, 1, 1), today), label="month").strftime("%Y-%m")
    return {
        "record_investigation": (investigation(world.application, mids), [
            (("investigators",), []), (("investigators",), [wang]), (("investigators",), [wang, wang]),
            (("investigators",), [wang, {"user": "nobody", "signed": True}]),
            (("investigators",), [wang, {"user": "qian.other", "signed": True}]),      # outside jurisdiction
            (("investigators",), [wang, {"user": "li.township", "signed": False}]),
            (("investigators",), [wang, {"user": "li.township"}]),
            (("investigators",), [wang, {"user": "zhao.district", "signed": True}]),   # valid
            (("investigators",), "wang.officer"),
            (("application_id",), "nope"), (("application_id",), str(uuid.uuid4())), (("application_id",), hid),
            (("application_id",), None), (("application_id",), 7),
            (("investigated_on",), future), (("investigated_on",), "2000-01-01"), (("investigated_on",), "1990-02-30"),
            (("family_signatures",), []), (("family_signatures",), [{"member_id": "nope"}]),
            (("family_signatures",), [{"member_id": other_mid}]),
            (("verified_incomes", 0, "monthly_amount"), "-1.00"), (("verified_incomes", 0, "monthly_amount"), 1.5),
            (("verified_incomes", 0, "monthly_amount"), "0.001"), (("verified_incomes", 0, "member_id"), other_mid),
            (("verified_assets", 0, "value"), "-0.01"), (("findings",), "查" * 5001),
        ]),
        "submit_application": ({"household_id": data.draw(st.sampled_from(world.households)),
                                "accepted_on": today.isoformat(), "reason": "因病致贫"}, [
            (("household_id",), "nope"), (("household_id",), str(uuid.uuid4())), (("household_id",), world.application),
            (("household_id",), None), (("household_id",), ["x"]),
            (("accepted_on",), future), (("accepted_on",), "2024-02-30"), (("accepted_on",), "0001-01-01"),
            (("accepted_on",), "9999-12-31"), (("accepted_on",), 20240101), (("reason",), "因" * 2001),
        ]),
        "register_document": ({"household_id": hid, "kind": "income_proof", "title": "收入证明",
                               "document_date": today.isoformat(), "reference": None}, [
            (("household_id",), "nope"), (("kind",), "selfie"), (("title",), ""), (("title",), "证" * 201),
            (("document_date",), future), (("document_date",), "2023-02-29"), (("reference",), 12),
            (("reference",), "r" * 37),
        ]),
        "record_checkin": ({"household_id": data.draw(st.sampled_from(world.households)), "month": month,
                            "checked_in_on": today.isoformat()}, [
            (("month",), "2024-13"), (("month",), "2024-1"), (("month",), (today + timedelta(days=40)).strftime("%Y-%m")),
            (("month",), 202401), (("checked_in_on",), future), (("household_id",), str(uuid.uuid4())),
        ]),
        "record_labour": ({"household_id": hid, "member_id": data.draw(st.sampled_from(mids)),
                           "labour_date": data.draw(st.dates(date(2020, 1, 1), today)).isoformat(),
                           "activity": data.draw(st.sampled_from(["清扫街道", "绿化", "敬老院帮扶"])),
                           "attendance": "attended"}, [
            (("member_id",), other_mid), (("member_id",), "nope"), (("labour_date",), future),
            (("attendance",), "skipped"), (("activity",), ""), (("activity",), "劳" * 101),
            (("household_id",), world.households[1], ("member_id",)),   # the member is not in that one
        ]),
        "find_household": ({"resident_id": data.draw(st.sampled_from(world.resident_ids))},
                           [(("resident_id",), bad) for bad in bad_resident_ids(world.resident_ids[0])]),
    }


def test_broken_workflow_payloads_are_refused_naming_the_field(world):
    @settings(max_examples=250, **PROPERTY_SETTINGS)
    @given(data=st.data())
    def run(data):
        payloads = workflow_payloads(world, data)
        method = data.draw(st.sampled_from(sorted(payloads)), label="method")
        valid, targets = payloads[method]
        payload, path = data.draw(mutation(valid, targets, ALL_FIELD_NAMES) | st.just((valid, ())),
                                  label="payload")
        note(f"mutated {dotted(path)!r}")
        actor = data.draw(actors(), label="actor")
        answer = world.call(actor, method, payload)
        if isinstance(answer, ValidationFailed):
            assert related(answer.fields, path), f"mutated {dotted(path)} but the error names {answer.fields}"

    run()
    calls = Counter()
    for method in ("record_investigation", "submit_application", "register_document", "record_checkin",
                   "record_labour", "find_household"):
        calls.update(world.outcomes[method])
    assert calls["ok"] and sum(calls.values()) > calls["ok"], f"both successes and refusals: {dict(calls)}"


def test_every_rpc_succeeds_with_exactly_its_events_and_outsiders_are_refused(world):
    """Every RPC once with a valid payload (it emits exactly its events; a read
    writes nothing), then the same call by outsiders — another community's
    officer, a partner bureau, nobody, a forged token — and repeated where a
    repeat is a duplicate: refused, typed, nothing written, nothing emitted."""
    hid = world.households[1]
    labour_hid, labour_mids = world.households[2], world.members[world.households[2]]
    today = date.today().isoformat()
    fresh = household(seed=777)
    outsiders = ("other_officer", "partner", "anonymous", "forged")
    document = world.call("officer", "register_document", {"household_id": hid, "kind": "household_register",
                                                           "title": "户口簿", "document_date": today})
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 32).decode()
    scan = {"document_id": document["id"], "content_type": "image/png", "content": png}
    first_scan = world.call("officer", "attach_scan", scan)
    calls = [  # (actor, method, args, refused by)
        ("officer", "ping", (), ()),
        ("officer", "list_staff", (COMMUNITY,), outsiders),
        ("officer", "register_household", (fresh,), outsiders),
        ("officer", "import_households", ([household(seed=778), household(seed=779)],), outsiders),
        ("officer", "update_household", (hid, household(seed=2)), outsiders),
        ("officer", "get_household", (hid,), outsiders),
        ("officer", "find_household", ({"resident_id": fresh["members"][0]["resident_id"]},), outsiders),
        ("officer", "submit_application", ({"household_id": hid, "accepted_on": today},), outsiders),
        ("officer", "get_application", (world.application,), outsiders),
        ("officer", "list_applications", (), ("partner", "anonymous", "forged")),
        ("officer", "record_investigation", (investigation(world.application, world.members[world.households[0]]),),
         outsiders),
        ("officer", "register_document", ({"household_id": hid, "kind": "id_copies", "title": "身份证复印件",
                                           "document_date": today},), outsiders),
        ("officer", "attach_scan", (scan,), outsiders),
        ("officer", "get_scan", (first_scan["id"],), outsiders),
        ("officer", "file_report", (hid,), outsiders),
        ("officer", "record_checkin", ({"household_id": hid, "month": today[:7], "checked_in_on": today},),
         outsiders),
        ("officer", "record_labour", ({"household_id": labour_hid, "member_id": labour_mids[0], "labour_date": today,
                                       "activity": "清扫街道", "attendance": "attended"},), outsiders),
        ("officer", "community_sheet", (COMMUNITY, today[:7]), outsiders),
        ("officer", "record_death", ({"household_id": labour_hid, "member_id": labour_mids[-1],
                                      "died_on": today},), outsiders),
        ("admin", "replay_dead_letters", (), ("officer", "district") + outsiders),
        ("gateway", "public_application_check", ({"application_id": world.application,
                                                  "id_last4": world.resident_ids[0][-4:]},),
         ("officer", "district", "verification") + outsiders),
        ("verification", "verification_subjects", ([hid],), ("officer", "district", "gateway") + outsiders),
    ]
    assert {c[1] for c in calls} == set(public_rpcs()), "every RPC is called here"
    for actor, method, args, refused_by in calls:
        answer = world.call(actor, method, *args)
        assert not isinstance(answer, Exception), f"{method}: {answer!r}"
        for outsider in refused_by:
            answer = world.call(outsider, method, *args)
            if method == "import_households" and isinstance(answer, list):   # refused row by row
                assert all(row["error"]["code"] == "forbidden" for row in answer), answer
            elif outsider == "other_officer" and method in HIDDEN_FROM_OUTSIDERS:
                assert isinstance(answer, NotFound), f"{outsider} {method}: {answer!r}"
            else:
                assert isinstance(answer, Forbidden), f"{outsider} {method}: {answer!r}"
    by_method = {c[1]: c[2] for c in calls}
    for method in ("register_household", "submit_application", "record_checkin", "record_labour", "record_death"):
        answer = world.call("officer", method, *by_method[method])
        assert isinstance(answer, Conflict), f"a repeated {method} is a Conflict, not {answer!r}"


def test_update_keeps_member_ids_and_refuses_to_drop_a_member_with_labour_records(world):
    """update_household used to delete and re-create every member: with a
    labour record on one of them that was a FOREIGN KEY failure answered as
    InternalError, and every update changed every member's id."""
    hid, mids = world.households[2], world.members[world.households[2]]
    today = date.today().isoformat()
    assert not isinstance(world.call("officer", "record_labour", {
        "household_id": hid, "member_id": mids[0], "labour_date": today, "activity": "绿化",
        "attendance": "attended"}), Exception)
    same = world.call("officer", "update_household", hid, household(seed=3))
    assert same["member_ids"] == mids, "an update keeps the members' ids"

    head_only = household(seed=3)
    assert head_only["members"][0]["relation"] == "head"
    head_only["members"] = head_only["members"][:1]
    head_only["incomes"] = [i for i in head_only["incomes"] if i["member"] in (0, None)]
    assert world.call("officer", "update_household", hid, head_only)["member_ids"] == mids[:1]

    new_head = household(seed=3)
    new_head["members"] = [household(seed=9)["members"][0]]   # the member with the labour record leaves
    new_head["incomes"] = []
    answer = world.call("officer", "update_household", hid, new_head)
    assert isinstance(answer, Conflict) and answer.details["field"] == "members", answer


def test_ids_of_every_kind_to_the_id_taking_rpcs(world):
    """Known, unknown, wrong-kind and garbage ids to the RPCs that take an id."""
    @settings(max_examples=100, **PROPERTY_SETTINGS)
    @given(data=st.data())
    def run(data):
        method = data.draw(st.sampled_from(["get_household", "file_report", "get_application"]), label="method")
        known = world.households + [world.application] * 3 + [str(uuid.uuid4()), "nope"]
        ident = data.draw(st.sampled_from(known) | st.sampled_from(known) | st.sampled_from(NASTY) | json_values(),
                          label="id")
        world.call(data.draw(actors(), label="actor"), method, ident)

    run()
    seen = sum((world.outcomes[m] for m in ("get_household", "file_report", "get_application")), Counter())
    assert seen["ok"] and seen["NotFound"], dict(seen)


def test_unstorable_text_in_any_string_field_is_refused_by_name(world):
    """A NUL (PostgreSQL refuses it) or a lone surrogate (not UTF-8; SQLite and
    PostgreSQL refuse it) in any string of any payload: ValidationFailed naming
    that field, never an InternalError from the database driver."""
    hid, mids = world.households[1], world.members[world.households[1]]
    today = date.today().isoformat()
    payloads = [
        ("officer", "register_household", household(seed=31337)),
        ("officer", "record_investigation", investigation(world.application, world.members[world.households[0]])),
        ("officer", "submit_application", {"household_id": hid, "accepted_on": today, "reason": "因病致贫"}),
        ("officer", "register_document", {"household_id": hid, "kind": "other", "title": "证明",
                                          "document_date": today, "reference": "ref-1"}),
        ("officer", "record_checkin", {"household_id": hid, "month": today[:7], "checked_in_on": today}),
        ("officer", "record_labour", {"household_id": hid, "member_id": mids[0], "labour_date": today,
                                      "activity": "清扫街道", "attendance": "attended"}),
        ("officer", "find_household", {"resident_id": world.resident_ids[0]}),
    ]
    checked = 0
    for actor, method, valid in payloads:
        for path in paths(valid):
            text = get_path(valid, path) if path else None
            if not isinstance(text, str):
                continue
            for bad in (text + "\x00", text[:1] + "\ud800" + text[1:]):
                answer = world.call(actor, method, set_path(valid, path, bad))
                assert isinstance(answer, ValidationFailed) and dotted(path) in answer.fields, (
                    f"{method} {dotted(path)}={bad!r}: {answer!r}")
                checked += 1
    assert checked > 40
    # in a bulk import the bad row is reported and the good one imported, never
    # an InternalError after the good row was committed (a partial import)
    bad = household(seed=31338)
    bad["members"][0]["name"] = "王\ud800"
    rows = world.call("officer", "import_households", [household(seed=31339), bad])
    assert "household_id" in rows[0] and rows[1]["error"]["code"] == "validation_failed", rows
    assert "members.0.name" in rows[1]["error"]["details"]["fields"], rows


# --- 4. the named cases, deterministically ----------------------------------

def test_each_named_bad_input_gets_its_typed_error(world):
    """The issue's list, one by one: the error type and the field it names."""
    good = household(seed=4242)
    rid = good["members"][0]["resident_id"]

    def with_member0(**change):
        data = household(seed=4242)
        data["members"][0].update(change)
        return data

    def with_income(amount):
        data = household(seed=4242)
        data["incomes"] = [{"member": 0, "source": "wages", "monthly_amount": amount}]
        return data

    bad_ids = bad_resident_ids(rid)
    wang = {"user": "wang.officer", "signed": True}
    def inv(**change):
        return {**investigation(world.application, world.members[world.households[0]]), **change}
    cases = [
        ("officer", "register_household", (with_member0(resident_id=bad_ids[0]),), ValidationFailed, "members.0.resident_id"),
        ("officer", "register_household", (with_member0(resident_id=bad_ids[1]),), ValidationFailed, "members.0.resident_id"),
        ("officer", "register_household", (with_member0(resident_id=bad_ids[3]),), ValidationFailed, "members.0.resident_id"),
        ("officer", "register_household", (with_member0(birth_date="1990-02-30"),), ValidationFailed, "members.0.birth_date"),
        ("officer", "register_household", (with_income("-5.00"),), ValidationFailed, "incomes.0.monthly_amount"),
        ("officer", "register_household", (with_income(5.5),), ValidationFailed, "incomes.0.monthly_amount"),
        ("officer", "register_household", (with_income("5.555"),), ValidationFailed, "incomes.0.monthly_amount"),
        ("officer", "register_household", (household(seed=4242, community="420115009009"),), ValidationFailed, "community_code"),
        ("officer", "register_household", (household(seed=4242, community=OTHER_COMMUNITY),), Forbidden, None),
        ("other_officer", "register_household", (good,), Forbidden, None),
        ("partner", "register_household", (good,), Forbidden, None),
        ("anonymous", "register_household", (good,), Forbidden, None),
        ("officer", "record_investigation", (inv(investigators=[]),), ValidationFailed, "investigators"),
        ("officer", "record_investigation", (inv(investigators=[wang]),), ValidationFailed, "investigators"),
        ("officer", "record_investigation", (inv(investigators=[wang, wang]),), ValidationFailed, "investigators"),
        ("officer", "record_investigation", (inv(investigators=[wang, {"user": "ghost", "signed": True}]),),
         ValidationFailed, "investigators.1.user"),
        ("officer", "record_investigation", (inv(investigators=[wang, {"user": "qian.other", "signed": True}]),),
         ValidationFailed, "investigators.1.user"),
        ("other_officer", "record_investigation", (inv(),), NotFound, None),
        ("officer", "record_investigation", (inv(application_id=str(uuid.uuid4())),), NotFound, None),
        ("officer", "submit_application", ({"household_id": str(uuid.uuid4()), "accepted_on": "2024-01-02"},),
         NotFound, None),
        ("officer", "submit_application", ({"household_id": world.households[0], "accepted_on": "2024-01-02"},),
         Conflict, None),
        ("other_officer", "get_household", (world.households[0],), NotFound, None),
        ("partner", "file_report", (world.households[0],), Forbidden, None),
        ("officer", "get_household", (str(uuid.uuid4()),), NotFound, None),
        ("officer", "update_household", (str(uuid.uuid4()), good), NotFound, None),
    ]
    failures = []
    for actor, method, args, expected, field_name in cases:
        answer = world.call(actor, method, *args)
        if not isinstance(answer, expected):
            failures.append(f"{actor} {method}: expected {expected.__name__}, got {answer!r}")
        elif field_name and field_name not in answer.fields:
            failures.append(f"{actor} {method}: expected field {field_name}, got {answer.fields}")
    assert not failures, "\n".join(failures)
