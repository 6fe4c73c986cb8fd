"""Leaks found while trying it as an insider (#12, item 10), each tried the way
an insider would: an officer of another community probing ids and ID
numbers, registering a neighbour's resident to learn their household,
reading a refusal for division codes, running month end for the whole
district or for next year, replaying dead letters into any queue.

(The CLI's export files: tests/unit/test_cli_files.py and the CLI test here.)
"""
from __future__ import annotations

import csv
import json
import uuid
from datetime import date, timedelta

import pytest
import sqlalchemy as sa
from kombu import Connection, Producer
from typer.testing import CliRunner

from services.intake.service import IntakeService
from services.payments.service import PaymentsService
from services.review.service import ReviewService
from shared.bus import DEAD_LETTER_QUEUE, dead_letter_queue
from cli.importer import COLUMNS, sample_rows
from cli.root import app
from shared.db import make_engine
from shared.deadletter import handler_queues, list_parked
from shared.errors import Conflict, DibaoError, Forbidden, NotFound, ValidationFailed
from shared.events import encode
from shared.identity import Role
from shared.inbox import ATTEMPTS_HEADER, ReliableEventHandler
from shared.testing import rpc_as, wait_for
from tests import payments_helpers as pay
from tests.dynamic_helpers import approved_case, start
from tests.helpers import (COMMUNITY, DISTRICT, OTHER_COMMUNITY, TOWNSHIP, household, investigation, officer,
                           register_staff, yesterday)
from tests.integration.test_cli import write_config

pytestmark = pytest.mark.integration

OTHER_TOWNSHIP = "420115002"


def answer(call, *args) -> DibaoError:
    """The typed error a call answers with (it must be refused)."""
    try:
        result = call(*args)
    except DibaoError as exc:
        return exc
    raise AssertionError(f"expected a refusal, got {result!r}")


def same_answer(a: DibaoError, b: DibaoError, *ids) -> bool:
    """The same answer word for word (type, message, details), the id each caller named aside."""
    def text(exc):
        out = json.dumps(exc.to_dict(), sort_keys=True, ensure_ascii=False)
        for ident in sorted(map(str, ids), key=len, reverse=True):   # "1001" before "1"
            out = out.replace(ident, "<id>")
        return type(exc), out
    return text(a) == text(b)


def outsider(config):
    return officer(config, unit=OTHER_COMMUNITY, user="qian.other")


@pytest.fixture
def intake(container_factory, sqlite_config):
    container_factory(IntakeService, sqlite_config).start()
    register_staff(sqlite_config)
    return sqlite_config


def registered(config, seed: int) -> tuple[dict, dict, dict]:
    data = household(seed=seed)
    with officer(config) as rpc:
        created = rpc.intake.register_household(data)
        app_ = rpc.intake.submit_application({"household_id": created["household_id"], "accepted_on": yesterday()})
    return data, created, app_


# --- 1. what lies in another jurisdiction does not exist for an outsider --------------------

def test_an_outsider_cannot_tell_a_household_elsewhere_from_one_never_registered(intake):
    config = intake
    data, created, app_ = registered(config, seed=301)
    hid, mids = created["household_id"], created["member_ids"]
    ghost_hid, ghost_app = str(uuid.uuid4()), str(uuid.uuid4())
    today = date.today().isoformat()
    never_registered = household(seed=302)["members"][0]["resident_id"]
    with outsider(config) as rpc:
        i = rpc.intake
        by_household = {
            "get_household": lambda h: i.get_household(h),
            "file_report": lambda h: i.file_report(h),
            "update_household": lambda h: i.update_household(h, household(seed=303, community=OTHER_COMMUNITY)),
            "submit_application": lambda h: i.submit_application({"household_id": h, "accepted_on": yesterday()}),
            "register_document": lambda h: i.register_document({"household_id": h, "kind": "id_copies",
                                                                "title": "身份证复印件", "document_date": today}),
            "record_checkin": lambda h: i.record_checkin({"household_id": h, "month": today[:7],
                                                          "checked_in_on": today}),
            "record_labour": lambda h: i.record_labour({"household_id": h, "member_id": mids[0], "labour_date": today,
                                                        "activity": "清扫街道", "attendance": "attended"}),
            "record_death": lambda h: i.record_death({"household_id": h, "member_id": mids[-1], "died_on": today}),
        }
        for method, call in by_household.items():
            elsewhere, missing = answer(call, hid), answer(call, ghost_hid)
            assert isinstance(elsewhere, NotFound), f"{method}: {elsewhere!r}"
            assert same_answer(elsewhere, missing, hid, ghost_hid), f"{method}: {elsewhere!r} vs {missing!r}"
        for method, call in {"get_application": i.get_application,
                             "record_investigation": lambda a: i.record_investigation(investigation(a, mids))}.items():
            elsewhere, missing = answer(call, app_["id"]), answer(call, ghost_app)
            assert isinstance(elsewhere, NotFound), f"{method}: {elsewhere!r}"
            assert same_answer(elsewhere, missing, app_["id"], ghost_app), f"{method}: {elsewhere!r} vs {missing!r}"

        # the look-up by ID number: "registered in another community" and "never registered" are one answer
        elsewhere = answer(i.find_household, {"resident_id": data["members"][0]["resident_id"]})
        missing = answer(i.find_household, {"resident_id": never_registered})
        assert isinstance(elsewhere, NotFound)
        assert elsewhere.to_dict() == missing.to_dict()
        assert data["members"][0]["resident_id"] not in json.dumps(elsewhere.to_dict())

    # a role that may not read households is refused before anything is looked up: the same either way
    with rpc_as(config, Role.PARTNER_BUREAU, DISTRICT, user="partner.finance") as rpc:
        a = answer(rpc.intake.find_household, {"resident_id": data["members"][0]["resident_id"]})
        b = answer(rpc.intake.find_household, {"resident_id": never_registered})
        assert isinstance(a, Forbidden) and a.to_dict() == b.to_dict()
        assert same_answer(answer(rpc.intake.get_household, hid), answer(rpc.intake.get_household, ghost_hid),
                           hid, ghost_hid)

    # the officer who covers it still finds it; nothing the outsider tried was written
    with officer(config) as rpc:
        assert rpc.intake.find_household({"resident_id": data["members"][0]["resident_id"]})["id"] == hid
    engine = make_engine(config["DB_URIS"]["intake"])
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM application")).scalar() == 1
            assert conn.execute(sa.text("SELECT count(*) FROM checkin")).scalar() == 0
            viewed = conn.execute(sa.text("SELECT count(*) FROM outbox WHERE routing_key = 'file_viewed'")).scalar()
    finally:
        engine.dispose()
    assert viewed == 1   # only the covering officer's look-up read the file


# --- 2. a duplicate ID number names the household only inside the caller's jurisdiction ------

def test_a_duplicate_resident_id_never_names_another_jurisdictions_household(intake, tmp_path):
    config = intake
    data, created, _ = registered(config, seed=311)
    hid, rid = created["household_id"], data["members"][0]["resident_id"]
    twin = household(seed=312, community=OTHER_COMMUNITY)
    twin["members"][0]["resident_id"] = rid                      # the neighbour's head, "registered" here

    with outsider(config) as rpc:
        refused = answer(rpc.intake.register_household, twin)
        [row] = rpc.intake.import_households([twin])
    assert isinstance(refused, Conflict)
    assert refused.details == {"field": "members.0.resident_id"}
    assert row["error"] == refused.to_dict()
    for text in (json.dumps(refused.to_dict()), json.dumps(row)):
        assert hid not in text and COMMUNITY not in text and rid not in text

    # inside the jurisdiction the household may be named: the district covers both communities
    with rpc_as(config, Role.DISTRICT_OFFICER, DISTRICT, user="zhao.district") as rpc:
        named = answer(rpc.intake.register_household, twin)
    assert isinstance(named, Conflict) and named.details["household_id"] == hid

    # the bulk import's report (FILE.errors.csv) of an outsider names no household either
    rows = [r for r in sample_rows(config, 12, seed=313) if r["community_code"] == OTHER_COMMUNITY]
    ref = rows[0]["household_ref"]
    rows = [r for r in rows if r["household_ref"] == ref]
    rows[0]["resident_id"] = rid
    path = tmp_path / "households.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(COLUMNS)
        for r in rows:
            writer.writerow([r.get(c, "") for c in COLUMNS])
    config_file = write_config(tmp_path / "dibao.yml", config)
    from shared.testing import session_env
    as_other_officer = session_env(tmp_path, Role.COMMUNITY_OFFICER, OTHER_COMMUNITY, "qian.other")   # logged in
    result = CliRunner().invoke(app, ["--config", config_file, "import", "households", str(path)],
                                env=as_other_officer)
    assert result.exit_code == 3, result.output
    report = (tmp_path / "households.csv.errors.csv").read_text(encoding="utf-8-sig")
    assert "already a member of another household" in report
    assert hid not in report and hid not in result.output


# --- 3. a refusal names no division outside the caller's unit ---------------------------------

def test_a_refusal_names_only_the_callers_own_unit(intake):
    config = intake
    with outsider(config) as rpc:
        refused = answer(rpc.intake.register_household, household(seed=321))          # in COMMUNITY
        listed = answer(rpc.intake.list_applications, COMMUNITY)
    for exc in (refused, listed):
        assert isinstance(exc, Forbidden)
        assert exc.message == "outside your jurisdiction"
        assert exc.details == {"unit": OTHER_COMMUNITY}
        assert COMMUNITY not in json.dumps(exc.to_dict())


# --- 4. review and payments: the same rule, and month end within the caller's unit -------------

def test_review_hides_other_jurisdictions_and_month_end_acts_only_within_the_unit(
        container_factory, sqlite_config, tmp_path):
    config, clock = start(container_factory, sqlite_config, "jiangxia", tmp_path)
    case = approved_case(config, clock, seed=331)                  # in COMMUNITY, paid from 2027-02
    clock.set(date(2027, 5, 3))                                   # March and April missed: a rule fires
    ghost = str(uuid.uuid4())
    with rpc_as(config, Role.TOWNSHIP_OFFICER, OTHER_TOWNSHIP, user="other.township") as rpc:
        r = rpc.review
        for call, real in ((r.get_application, case["application_id"]), (r.get_case, case["id"])):
            assert same_answer(answer(call, real), answer(call, ghost), real, ghost)
        assert isinstance(answer(r.get_case, case["id"]), NotFound)

    # a district officer posted to another township runs month end: only that township's cases
    with rpc_as(config, Role.DISTRICT_OFFICER, OTHER_TOWNSHIP, user="li.district") as rpc:
        elsewhere = rpc.review.run_month_end("2027-04-30")
    assert elsewhere["unit_code"] == OTHER_TOWNSHIP
    assert sum(elsewhere["proposals"].values()) == 0 and elsewhere["review_due"] == 0
    with rpc_as(config, Role.DISTRICT_OFFICER, TOWNSHIP, user="zhao.district") as rpc:
        # a day after today is allowed on this test clock (file:), refused on the real one (below)
        here = rpc.review.run_month_end("2027-05-04")
        assert here["month"] == "2027-04" and here["proposals"]["two_missed_checkins_in_a_row"] == 1
        [proposal] = rpc.review.get_case(case["id"])["proposals"]

    # proposal ids are sequential: an outsider must not learn which exist
    with rpc_as(config, Role.TOWNSHIP_OFFICER, OTHER_TOWNSHIP, user="other.township") as rpc:
        real, unused = proposal["id"], proposal["id"] + 1000
        for method in ("approve_proposal", "reject_proposal"):
            call = getattr(rpc.review, method)
            extra = {"remarks": "同意"} if method == "approve_proposal" else {"reason": "不同意"}
            a = answer(call, {"proposal_id": real, **extra})
            b = answer(call, {"proposal_id": unused, **extra})
            assert isinstance(a, NotFound) and same_answer(a, b, real, unused), (method, a, b)


def test_month_end_refuses_a_day_after_today_on_the_real_clock(container_factory, sqlite_config):
    config = dict(sqlite_config, CLOCK="system")
    container_factory(ReviewService, config).start()
    tomorrow = date.today() + timedelta(days=1)
    with rpc_as(config, Role.DISTRICT_OFFICER, DISTRICT, user="zhao.district") as rpc:
        refused = answer(rpc.review.run_month_end, tomorrow.isoformat())
        assert isinstance(refused, ValidationFailed) and "as_of" in refused.fields
        done = rpc.review.run_month_end(date.today().isoformat())
    assert done["as_of"] == date.today().isoformat() and done["unit_code"] == DISTRICT


def test_payments_hide_runs_and_cases_of_other_jurisdictions(container_factory, sqlite_config):
    config = dict(sqlite_config, POLICY="national2021")
    container_factory(PaymentsService, config).start()
    pay.approve_cases(config, [pay.case_approved("c1", pay.month(-2), "812.50")])
    with pay.maker(config) as rpc:
        run = rpc.payments.create_run({"period": pay.month(-1), "area_type": "urban", "division_code": TOWNSHIP})
    ghost = str(uuid.uuid4())
    with rpc_as(config, Role.FINANCE_OFFICER, OTHER_TOWNSHIP, user="sun.finance") as rpc:
        p = rpc.payments
        for call, real in ((p.get_run, run["id"]), (p.approve_run, run["id"]), (p.get_case, "c1"),
                           (lambda r: p.export_run(r, "csv"), run["id"])):
            a, b = answer(call, real), answer(call, ghost)
            assert isinstance(a, NotFound) and same_answer(a, b, real, ghost), (a, b)
        a = answer(p.set_payee, {"case_id": "c1", "payee_name": "张三丰", "account_number": "6222020000000001"})
        b = answer(p.set_payee, {"case_id": "c2", "payee_name": "张三丰", "account_number": "6222020000000001"})
        assert isinstance(a, NotFound) and same_answer(a, b, "c1", "c2"), (a, b)


# --- 5. dead-letter replay: the system administrator, recorded, only to handler queues ----------

def park(config, queue: str, handler: str, body: str, message_id: str) -> None:
    with Connection(config["AMQP_URI"]) as conn:
        channel = conn.channel()
        dead_letter_queue()(channel).declare()
        Producer(channel).publish(body, exchange="", routing_key=DEAD_LETTER_QUEUE, message_id=message_id,
                                  content_type="application/json", content_encoding="utf-8", delivery_mode=2,
                                  headers={"x-dibao-queue": queue, "x-dibao-handler": handler,
                                           "x-dibao-reason": "RuntimeError: test", ATTEMPTS_HEADER: 3})


def intake_rows(config, sql: str) -> list:
    engine = make_engine(config["DB_URIS"]["intake"])
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(sql))]
    finally:
        engine.dispose()


def replay_records(config) -> list[str]:
    rows = intake_rows(config, "SELECT body FROM outbox WHERE routing_key = 'command_recorded' ORDER BY id")
    payloads = [json.loads(body)["payload"] for (body,) in rows]
    return [p["outcome"] for p in payloads if p["method"] == "replay_dead_letters"]


def test_dead_letters_are_replayed_only_by_the_administrator_recorded_and_only_to_handler_queues(
        container_factory, sqlite_config, tmp_path):
    config = sqlite_config
    container = container_factory(IntakeService, config)
    container.start()
    # the known queues come from the service's own consumers (each @consume_event method), not from a list
    own = "evt-review-case_approved--intake.on_case_approved"
    consumers = {f"evt-{ep.source_service}-{ep.event_type}--intake.{name}"
                 for name, method in vars(IntakeService).items()
                 for ep in getattr(method, "nameko_entrypoints", ()) if isinstance(ep, ReliableEventHandler)}
    assert own in consumers and handler_queues(container) == consumers

    good = pay.case_approved("case-dlq", "2027-02", "500.00")
    park(config, own, "intake.on_case_approved", encode(good), good["event_id"])
    forged = pay.case_approved("case-forged", "2027-02", "500.00")
    park(config, "rpc-intake", "intake.on_case_approved", encode(forged), "forged-rpc")     # an RPC queue
    park(config, "dibao.audit", "intake.on_case_approved", encode(forged), "forged-audit")  # not intake's

    for role, unit in ((Role.COMMUNITY_OFFICER, COMMUNITY), (Role.DISTRICT_OFFICER, DISTRICT), (Role.AUDIT_ADMIN, DISTRICT)):
        with rpc_as(config, role, unit, user=f"{role.value}-x") as rpc:
            assert isinstance(answer(rpc.intake.replay_dead_letters), Forbidden)
    assert len(list_parked(config["AMQP_URI"])) == 3               # refused: nothing moved

    with rpc_as(config, Role.SYSTEM_ADMIN, DISTRICT, user="admin") as rpc:   # system administrator
        assert rpc.intake.replay_dead_letters() == {"replayed": 1}
    wait_for(lambda: intake_rows(config, "SELECT case_id FROM case_status") == [("case-dlq",)], timeout=20,
             message="the replayed event handled")
    assert sorted(p.message_id for p in list_parked(config["AMQP_URI"])) == ["forged-audit", "forged-rpc"]

    # through the CLI: the same command, recorded too; the forged ones stay parked and are reported
    config_file = write_config(tmp_path / "dibao.yml", config)
    from shared.testing import session_env
    as_sysadmin = session_env(tmp_path, Role.SYSTEM_ADMIN, DISTRICT, "admin")   # logged in
    result = CliRunner().invoke(app, ["--config", config_file, "dlq", "replay"], env=as_sysadmin)
    assert result.exit_code == 0, result.output
    assert "replayed 0" in result.output and "2 event(s) left parked" in result.output
    assert len(list_parked(config["AMQP_URI"])) == 2
    assert replay_records(config) == ["forbidden", "forbidden", "forbidden", "ok", "ok"]


# --- 6. the CLI writes export files only inside the directory it was given -----------------------

def test_the_cli_writes_no_file_through_a_symbolic_link(sqlite_config, tmp_path):
    config_file = write_config(tmp_path / "dibao.yml", sqlite_config)
    outside = tmp_path / "elsewhere" / "precious.txt"
    outside.parent.mkdir()
    outside.write_text("keep me", encoding="utf-8")
    exports = tmp_path / "exports"
    exports.mkdir()
    (exports / "sample.csv").symlink_to(outside)                  # planted in a shared export folder
    result = CliRunner().invoke(app, ["--config", config_file, "import", "sample", str(exports / "sample.csv"),
                                      "-n", "2"])
    assert result.exit_code == 1 and "symbolic link" in result.output and "Traceback" not in result.output
    assert outside.read_text(encoding="utf-8") == "keep me"
    ok = CliRunner().invoke(app, ["--config", config_file, "import", "sample", str(exports / "fresh.csv"), "-n", "2"])
    assert ok.exit_code == 0, ok.output
    assert (exports / "fresh.csv").read_text(encoding="utf-8").startswith("household_ref")


def test_the_replay_command_is_part_of_each_service_not_a_service_of_its_own():
    """`nameko run services.<svc>.service` runs every top-level class with entrypoints."""
    from nameko.cli.run import import_service

    for name in ("intake", "review", "payments", "audit", "notify"):
        [cls] = import_service(f"services.{name}.service")
        assert cls.name == name and hasattr(cls, "replay_dead_letters")
