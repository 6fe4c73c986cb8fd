"""The ``dibao`` command, through typer's CliRunner, against real intake,
review and notify containers on RabbitMQ (a fresh vhost and fresh SQLite
files per test)."""
from __future__ import annotations

import csv
import json
import re
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from typer.testing import CliRunner

from services.identity.service import IdentityService
from services.intake.service import IntakeService
from services.notify.service import NotifyService
from services.review.service import ReviewService
from cli import app, main
from cli.importer import RowSource, build_household, groups, read_rows, scan
from shared.config import load_config
from shared.db import make_engine
from shared.errors import NotFound
from shared.identity import Role
from shared.testing import amqp_uri_for, person_token, rpc_as, write_session
from tests.helpers import household, investigation, officer, register_staff, yesterday
from tests.review_helpers import (close_notice, committee, community, deputy, director, evaluation, review_state,
                                  township)

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
RESIDENT_ID = re.compile(r"\d{17}[\dX]")
runner = CliRunner()


def write_config(path: Path, config: dict) -> str:
    plain = json.loads(json.dumps(config))  # plain dicts for YAML (the fixtures' mappings may be subclasses)
    path.write_text(yaml.safe_dump(plain, allow_unicode=True), encoding="utf-8")
    return str(path)


def dibao(config_file: str, *args: str, as_: tuple | None = None):
    """``dibao --config FILE args…`` as the logged-in person: a district officer
    of the district unless ``as_=(role, unit, user)`` (the session file
    ``dibao login`` would have stored; the harness plays identity)."""
    role, unit, user = as_ or (Role.DISTRICT_OFFICER, "420115", "zhao.district")
    session = Path(config_file).with_name(f"session-{user}.json")
    write_session(session, person_token(user, user, unit, [role]))
    return runner.invoke(app, ["--config", config_file, *args], env={"DIBAO_SESSION_FILE": str(session)})


def households_in_db(config: dict) -> int:
    engine = make_engine(config["DB_URIS"]["intake"])
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text("SELECT count(*) FROM household")).scalar()
    finally:
        engine.dispose()


@pytest.fixture
def config_file(tmp_path, sqlite_config) -> str:
    return write_config(tmp_path / "dibao.yml", sqlite_config)


@pytest.fixture
def intake(container_factory, sqlite_config):
    container = container_factory(IntakeService, sqlite_config)
    container.start()
    return container


# --- docs ----------------------------------------------------------------------

def test_committed_events_doc_matches_the_code():
    result = runner.invoke(app, ["docs", "events", "--check"])
    assert result.exit_code == 0, (f"docs/events.md is out of date: run `dibao docs events` and commit it\n"
                                   f"{result.output}")


def test_events_doc_check_fails_on_a_stale_file(tmp_path):
    stale = tmp_path / "events.md"
    stale.write_text((ROOT / "docs" / "events.md").read_text(encoding="utf-8").replace("version 1", "version 0"),
                     encoding="utf-8")
    result = runner.invoke(app, ["docs", "events", "--check", "--output", str(stale)])
    assert result.exit_code == 1
    assert "out of date" in result.output and "Traceback" not in result.output
    assert runner.invoke(app, ["docs", "events", "--output", str(stale)]).exit_code == 0
    assert runner.invoke(app, ["docs", "events", "--check", "--output", str(stale)]).exit_code == 0


# --- who asks: the logged-in person ----------------------------------------------------

def test_nothing_in_the_cli_makes_a_token_or_chooses_who_you_are(config_file, tmp_path):
    gone = dibao(config_file, "token", "--user", "x", "--name", "x", "--role", "centre_director", "--unit", "420115")
    assert gone.exit_code == 2 and "No such command 'token'" in gone.output
    chosen = dibao(config_file, "review", "overdue", "420115", "--role", "centre_director")
    assert chosen.exit_code == 2 and "No such option" in chosen.output
    nobody = runner.invoke(app, ["--config", config_file, "review", "overdue", "420115"],
                           env={"DIBAO_SESSION_FILE": str(tmp_path / "none.json")})
    assert nobody.exit_code == 1 and "not logged in" in nobody.output and "dibao login" in nobody.output
    assert len(nobody.output.strip().splitlines()) == 1 and "Traceback" not in nobody.output


def test_main_entry_point_patches_idempotently(config_file, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["dibao", "--config", config_file, "docs", "events", "--check"])
    with pytest.raises(SystemExit) as exit_:
        main()  # eventlet is already patched by the root conftest: no second patch
    assert exit_.value.code in (0, None)


# --- health, migrate, dlq ---------------------------------------------------------------

def test_health_is_zero_when_intake_answers(intake, config_file):
    result = dibao(config_file, "health", "intake")
    assert result.exit_code == 0, result.output
    assert "intake: ok" in result.output


def test_health_is_non_zero_when_nothing_runs(tmp_path, sqlite_config, vhosts):
    empty = write_config(tmp_path / "empty.yml", dict(sqlite_config, AMQP_URI=amqp_uri_for(vhosts())))
    started = time.monotonic()
    result = dibao(empty, "health", "intake", "--timeout", "1")
    assert result.exit_code != 0
    assert time.monotonic() - started < 10
    assert "error" in result.output and "Traceback" not in result.output

    unknown = dibao(empty, "health", "nosuch")
    assert unknown.exit_code == 1 and "unknown service 'nosuch'" in unknown.output


def test_migrate_creates_the_schema(config_file, sqlite_config):
    result = dibao(config_file, "migrate", "intake")
    assert result.exit_code == 0, result.output
    assert "revision" in result.output
    engine = make_engine(sqlite_config["DB_URIS"]["intake"])
    try:
        assert {"household", "member", "application", "outbox"} <= set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert dibao(config_file, "migrate", "intake").exit_code == 0  # idempotent


def test_dlq_list_and_replay_on_an_empty_queue(config_file):
    listed = dibao(config_file, "dlq", "list")
    assert listed.exit_code == 0, listed.output
    assert "empty" in listed.output
    replayed = dibao(config_file, "dlq", "replay")
    assert replayed.exit_code == 0 and "replayed 0" in replayed.output
    missing = dibao(config_file, "dlq", "replay", "--message-id", "no-such-id")
    assert missing.exit_code == 1 and "no parked event" in missing.output


# --- import ------------------------------------------------------------------------

def _break_check_digit(rid: str) -> str:
    return rid[:-1] + ("0" if rid[-1] != "0" else "1")


def test_import_imports_exactly_the_good_households(intake, config_file, sqlite_config, tmp_path):
    sample = tmp_path / "households.csv"
    made = dibao(config_file, "import", "sample", str(sample), "--households", "30", "--seed", "11")
    assert made.exit_code == 0, made.output
    with open(sample, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    col = {name: i for i, name in enumerate(rows[0])}

    def lines_of(ref):  # (line number, row); the header is line 1
        return [(n + 1, row) for n, row in enumerate(rows) if n and row[col["household_ref"]] == ref]

    bad_id_line, bad_id_row = next((n, r) for n, r in lines_of("H00004") if r[col["resident_id"]])
    bad_id_row[col["resident_id"]] = _break_check_digit(bad_id_row[col["resident_id"]])
    refs = sorted({r[col["household_ref"]] for r in rows[1:]})
    bad_income_line, bad_income_row = next((n, r) for ref in refs[10:] for n, r in lines_of(ref)
                                           if r[col["monthly_income"]] and r[col["resident_id"]])
    bad_income_row[col["monthly_income"]] = "-5.00"
    bad_refs = {"H00004", bad_income_row[col["household_ref"]]}
    with open(sample, "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(rows)

    result = dibao(config_file, "import", "households", str(sample), "--chunk", "7")
    assert result.exit_code == 3, result.output
    assert "Traceback" not in result.output

    with open(f"{sample}.errors.csv", newline="", encoding="utf-8-sig") as fh:
        report = list(csv.DictReader(fh))
    assert {(int(e["line"]), e["household_ref"], e["field"]) for e in report} == {
        (bad_id_line, "H00004", "resident_id"),
        (bad_income_line, bad_income_row[col["household_ref"]], "monthly_income")}
    assert all(e["message"] for e in report)

    assert households_in_db(sqlite_config) == 28
    heads = {r[col["household_ref"]]: r[col["resident_id"]] for r in rows[1:] if r[col["relation"]] == "head"}
    others = {r[col["household_ref"]]: r[col["resident_id"]] for r in rows[1:]
              if r[col["resident_id"]] and r[col["resident_id"]] != bad_id_row[col["resident_id"]]}
    with rpc_as(sqlite_config, Role.DISTRICT_OFFICER, "420115") as rpc:
        for ref, rid in heads.items():
            if ref in bad_refs:
                if ref not in others:
                    continue
                with pytest.raises(NotFound):  # not even partly written
                    rpc.intake.find_household({"resident_id": others[ref]})
            else:
                assert rpc.intake.find_household({"resident_id": rid})["head_name"]


def test_import_xlsx_reports_unparsable_rows_without_sending_them(intake, config_file, sqlite_config, tmp_path):
    from openpyxl import load_workbook

    book = tmp_path / "households.xlsx"
    assert dibao(config_file, "import", "sample", str(book), "--households", "4", "--seed", "5").exit_code == 0
    workbook = load_workbook(book)
    sheet = workbook.active
    header = [c.value for c in sheet[1]]
    income = header.index("monthly_income") + 1
    bad_row = next(r for r in range(2, sheet.max_row + 1)
                   if sheet.cell(r, income).value and sheet.cell(r, 1).value == "H00002")
    sheet.cell(bad_row, income).value = "abc"
    sheet.append([None] * 5 + ["孤儿行"])  # a row with no household_ref
    orphan_row = sheet.max_row
    workbook.save(book)

    result = dibao(config_file, "import", "households", str(book))
    assert result.exit_code == 3, result.output
    with open(f"{book}.errors.csv", newline="", encoding="utf-8-sig") as fh:
        report = {(int(e["line"]), e["household_ref"], e["field"]): e["message"] for e in csv.DictReader(fh)}
    assert report.keys() == {(bad_row, "H00002", "monthly_income"), (orphan_row, "", "household_ref")}
    assert "not a number" in report[(bad_row, "H00002", "monthly_income")]
    assert households_in_db(sqlite_config) == 3


def test_the_documented_example_parses(tmp_path):
    doc = (ROOT / "docs" / "import-format.md").read_text(encoding="utf-8")
    example = re.search(r"```csv\n(.*?)```", doc, re.S).group(1)
    path = tmp_path / "example.csv"
    path.write_text(example, encoding="utf-8")
    rows = list(read_rows(path))
    household, errors = build_household("H00001", rows)
    assert errors == []
    assert len(household.data["members"]) == 2
    assert household.data["incomes"] == [{"member": 1, "source": "pension", "monthly_amount": "214.00"}]
    assert [a["kind"] for a in household.data["assets"]] == ["house", "savings"]


def test_scattered_households_are_gathered_and_inconsistent_rows_reported(tmp_path):
    head = "household_ref,community_code,address,name,resident_id,relation,labour_capacity,employment,monthly_income"
    path = tmp_path / "scattered.csv"
    path.write_text("\n".join([
        head,
        "A,420115001001,文化路1号,甲,X1,head,none,retired,",
        "B,420115001001,文化路2号,乙,X2,head,none,retired,",
        "A,420115001001,文化路1号,丙,X3,spouse,none,retired,",   # A again: gathered at the end
        ",420115001001,文化路3号,丁,X4,head,none,retired,",      # no household_ref
        "C,420115001001,文化路4号,戊,X5,head,none,retired,",
        "C,420115001001,文化路9号,己,X6,child,none,student,",    # differs from C's first row
    ]) + "\n", encoding="utf-8")
    source = RowSource(path)
    total, scattered = scan(source.first_pass())
    assert (total, scattered) == (3, {"A"})
    grouped = [(ref, [line for line, _ in rows]) for ref, rows in groups(source.second_pass(), scattered)]
    assert grouped == [("", [5]), ("B", [3]), ("C", [6, 7]), ("A", [2, 4])]  # a ref-less row does not split B
    rows_of = dict((ref, rows) for ref, rows in groups(source.second_pass(), scattered) if ref)
    household, errors = build_household("A", rows_of["A"])
    assert not errors and [m["name"] for m in household.data["members"]] == ["甲", "丙"]
    household, errors = build_household("C", rows_of["C"])
    assert household is None and [(e.line, e.field) for e in errors] == [(7, "address")]


# --- review ----------------------------------------------------------------------------

def start_review(container_factory, config: dict, policy: str, tmp_path: Path, notify: bool = False,
                 identity: bool = False):
    """intake and review (and notify, and identity: what the demo drives) containers under
    ``policy``; the config file for the CLI."""
    config = dict(config, POLICY=policy)
    container_factory(IntakeService, config).start()
    container_factory(ReviewService, config).start()
    if notify:
        container_factory(NotifyService, config).start()
    if identity:
        container_factory(IdentityService, config).start()
    register_staff(config)
    return config, write_config(tmp_path / f"dibao-{policy}.yml", config)


def investigated_application(config: dict, seed: int) -> tuple[str, dict]:
    data = household(seed=seed)
    with officer(config) as rpc:
        created = rpc.intake.register_household(data)
        app = rpc.intake.submit_application({"household_id": created["household_id"], "accepted_on": yesterday()})
        rpc.intake.record_investigation(investigation(app["id"], created["member_ids"]))
    return app["id"], data


def test_review_status_follows_an_application_to_its_case(container_factory, sqlite_config, tmp_path):
    config, config_file = start_review(container_factory, sqlite_config, "jiangxia", tmp_path)
    app_id, data = investigated_application(config, seed=41)
    review_state(config, app_id, step="community_evaluation")

    result = dibao(config_file, "review", "status", app_id)
    assert result.exit_code == 0, result.output
    out = result.output
    assert app_id in out and "in_review" in out and "审核中" in out
    assert "community_evaluation" in out and "社区民主评议" in out and "at the community level" in out
    assert "no deadline" in out                          # jiangxia sets no statutory clock
    assert "王专干" in out                                # the investigators, by name
    assert "420***********" in out and not RESIDENT_ID.search(out)   # the head, masked
    assert "case (低保对象)" not in out

    # through every step (notify's side published by hand, as in test_review_workflow)
    with community(config) as rpc:
        rpc.review.record_evaluation(evaluation(app_id))
    close_notice(config, review_state(config, app_id, step="community_notice"))
    review_state(config, app_id, step="township_review")
    with township(config) as rpc:
        rpc.review.record_township_review(committee(app_id))
    close_notice(config, review_state(config, app_id, step="township_notice"))
    review_state(config, app_id, step="joint_review")
    with deputy(config) as rpc:
        rpc.review.sign_joint_review({"application_id": app_id, "role": "deputy_director"})
    with director(config) as rpc:
        rpc.review.sign_joint_review({"application_id": app_id, "role": "centre_director"})
    with community(config) as rpc:
        case = rpc.review.sign_joint_review({"application_id": app_id, "role": "investigator"})["case"]

    result = dibao(config_file, "review", "status", app_id)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "approved" in out and "已批准" in out and "case (低保对象)" in out
    assert case["monthly_benefit"] in out and case["start_month"] in out and case["category"] in out
    assert re.search(r"✓ +joint_review", out)            # every step of the policy done


def test_review_status_shows_a_rejection_and_refuses_in_one_line(container_factory, sqlite_config, tmp_path):
    config, config_file = start_review(container_factory, sqlite_config, "jiangxia", tmp_path)
    app_id, _ = investigated_application(config, seed=42)
    review_state(config, app_id, step="community_evaluation")
    with community(config) as rpc:
        rpc.review.record_evaluation(evaluation(app_id, passed=False))

    result = dibao(config_file, "review", "status", app_id)
    assert result.exit_code == 0, result.output
    assert "rejected" in result.output and "家庭收入超标" in result.output      # with its reason

    unknown = dibao(config_file, "review", "status", "no-such-application")
    assert unknown.exit_code == 1 and "not_found" in unknown.output and "Traceback" not in unknown.output
    assert len(unknown.output.strip().splitlines()) == 1
    elsewhere = dibao(config_file, "review", "status", app_id,
                      as_=(Role.TOWNSHIP_OFFICER, "420115002", "other.township"))
    # another township's application does not exist for its officer (shared/jurisdiction.py)
    assert elsewhere.exit_code == 1 and "not_found" in elsewhere.output and "Traceback" not in elsewhere.output
    assert len(elsewhere.output.strip().splitlines()) == 1


def test_review_overdue_lists_what_the_statutory_clock_has_passed(container_factory, sqlite_config, tmp_path):
    config, config_file = start_review(container_factory, sqlite_config, "national2021", tmp_path)
    app_id, _ = investigated_application(config, seed=43)
    f = review_state(config, app_id, step="community_evaluation")
    assert f["process_due_on"]                          # national2021: 30 working days from acceptance

    today = dibao(config_file, "review", "overdue", "420115")
    assert today.exit_code == 0, today.output
    assert "no application" in today.output and app_id not in today.output

    later = (date.fromisoformat(f["process_due_on"]) + timedelta(days=10)).isoformat()
    result = dibao(config_file, "review", "overdue", "420115", "--as-of", later)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "1 application past a deadline" in out and later in out
    assert "纸坊街道 › 东城社区 420115001001" in out        # a table per township and community
    assert app_id in out and "community_evaluation" in out and f["process_due_on"] in out
    assert f"process {f['process_due_on']}" in out and "in_review" in out, out
    # the township's own list has it too; another township's does not
    assert app_id in dibao(config_file, "review", "overdue", "420115001", "--as-of", later).output
    other = dibao(config_file, "review", "overdue", "420115002", "--as-of", later)
    assert other.exit_code == 0 and "no application" in other.output

    bad_date = dibao(config_file, "review", "overdue", "420115", "--as-of", "next week")
    assert bad_date.exit_code == 1 and "--as-of must be a date" in bad_date.output
    outside = dibao(config_file, "review", "overdue", "420115001",
                    as_=(Role.COMMUNITY_OFFICER, "420115002001", "qian.other"))
    assert outside.exit_code == 1 and "forbidden" in outside.output and "Traceback" not in outside.output


# --- demo ----------------------------------------------------------------------------

def review_rows(config: dict) -> list[tuple]:
    engine = make_engine(config["DB_URIS"]["review"])
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(
                "SELECT application_id, status, objections, rejection_reason FROM review_file"))]
    finally:
        engine.dispose()


def investigations_of(config: dict, application_id: str) -> int:
    engine = make_engine(config["DB_URIS"]["intake"])
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text("SELECT count(*) FROM home_investigation WHERE application_id = :a"),
                                {"a": application_id}).scalar()
    finally:
        engine.dispose()


def assert_full_path(out: str, config: dict) -> None:
    """At least one approved case with a benefit, one rejection with its
    reason, one objection that led to a re-investigation; IDs masked."""
    assert not RESIDENT_ID.search(out), "a full resident ID number was printed"
    assert "420***********" in out                      # masked ones are
    assert re.search(r"已批准\s+\d+\.\d\d\s", out), "no approved case with its benefit in the tables"
    assert "rejected (未通过)" in out and "reason" in out
    assert "objection from the public" in out and "re-investigation" in out and "重新调查" in out
    assert "notice boards" in out and ".pdf" in out
    rows = review_rows(config)
    approved = [r for r in rows if r[1] == "approved"]
    rejected = [r for r in rows if r[1] == "rejected"]
    objected = [r for r in rows if r[2]]
    assert approved and rejected and len(objected) == 1
    assert all(r[3] for r in rejected)                   # every rejection has its reason
    assert "家庭人均月收入" in out                      # the reason the demo gave
    assert objected[0][1] == "approved"                  # re-investigated, then taken through to approval
    assert investigations_of(config, objected[0][0]) == 2


def test_demo_takes_households_through_to_approval(container_factory, sqlite_config, tmp_path):
    config, config_file = start_review(container_factory, sqlite_config, "jiangxia", tmp_path, notify=True,
                                       identity=True)
    started = time.monotonic()
    result = dibao(config_file, "demo", "--households", "12")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "services answer" in out                      # the fast path: no services of its own
    assert "applications" in out and "home investigations" in out
    assert "一户一档" in out and "ValidationFailed" in out
    assert "community_notice" in out and "passed by the committee" in out and "3 signatures" in out
    assert_full_path(out, config)
    assert households_in_db(config) == 12
    assert time.monotonic() - started < 60


@pytest.fixture
def logger_levels():
    """The demo quietens these loggers when it runs its own services: put them back."""
    import logging

    names = ("nameko", "shared", "services")
    levels = {name: logging.getLogger(name).level for name in names}
    yield
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def test_demo_starts_its_own_services_under_national2021(tmp_path, sqlite_config, logger_levels):
    """Only RabbitMQ (an empty vhost): the demo runs intake, review and notify itself."""
    config = dict(sqlite_config, POLICY="national2021", DATA_DIR=str(tmp_path / "var"),
                  VERIFICATION_BUREAUS=load_config()["VERIFICATION_BUREAUS"])    # the shipped seven
    config_file = write_config(tmp_path / "national.yml", config)
    result = dibao(config_file, "demo", "--households", "10", "--seed", "7")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "starting" in out and "intake" in out and "review" in out and "notify" in out
    assert "policy national2021" in out
    assert "skipped (the policy allows it" in out and "initial opinion" in out
    demo_dir = tmp_path / "var" / "demo"
    assert_full_path(out, dict(config, DB_URIS={n: f"sqlite:///{demo_dir / (n + '.db')}"
                                                for n in ("intake", "review")}))
    boards = list((demo_dir / "notices").glob("*.pdf"))
    assert boards and (demo_dir / "messages" / "outbox.jsonl").is_file()
    # 核对 (issue 15): the bureaus answered through their reference responders; one household's
    # report showed a car it had not declared, and it was rejected with that reason
    assert "核对报告" in out and "undeclared_vehicle" in out and "未申报的机动车" in out
    assert "公安局 (public_security)" in out and "银行 (bank)" in out
    assert "starting" in out and "verification" in out
    # 复核 (issue 15 item 8): a cancelled household appeals; one who approved the cancellation is
    # refused; someone who took no part upholds it and the case is active again
    words = " ".join(out.split())     # the console wraps long lines
    assert "9. appeal" in words and "refused (decided_by_someone_uninvolved)" in words, words[-3000:]
    assert "upheld" in words and "the case is active again" in words


def test_demo_finishes_without_the_notice_font(tmp_path, sqlite_config, logger_levels):
    """A machine without the CJK font (NOTICE_FONT points at nothing): the demo
    goes through to the end, the boards' pages are written, and it says what
    is missing instead of an InternalError."""
    config = dict(sqlite_config, DATA_DIR=str(tmp_path / "var"), NOTICE_FONT=str(tmp_path / "no-font.ttc"))
    result = dibao(write_config(tmp_path / "nofont.yml", config), "demo", "--households", "6", "--seed", "5")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "InternalError" not in out and "internal error" not in out
    assert "notice boards" in out and "not made yet" in out and "fonts-wqy-zenhei" in out
    demo_dir = tmp_path / "var" / "demo"
    assert list((demo_dir / "notices").glob("*.html")) and not list((demo_dir / "notices").glob("*.pdf"))


def test_demo_refuses_to_mix_with_part_of_the_services(intake, config_file):
    result = dibao(config_file, "demo", "--households", "2")
    assert result.exit_code == 1
    assert "review, notify" in result.output and "dibao up" in result.output and "Traceback" not in result.output
