"""The working-day calendar past chinesecalendar's years, in the running
services over real RabbitMQ: a deadline counted across 2027 is provisional
until the bureau loads the official schedule (``review.import_calendar``,
``dibao calendar import``); then intake and review — also one that was down
during the import — count on it, without a restart.

The schedule in tests/data/schedule_2027_sample.csv is test data (it makes
Saturday 2027-02-13 a working day), not the State Council's.
"""
from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from typer.testing import CliRunner

from services.intake.service import IntakeService
from services.review.service import ReviewService
from cli.root import app
from shared.db import make_engine
from shared.errors import Forbidden, ValidationFailed
from shared.identity import Role
from shared.testing import rpc_as, session_env, wait_for
from shared.workdays import WorkdayCalendar, parse_schedule, read_schedule_csv
from tests.helpers import DISTRICT, household, officer, register_staff

pytestmark = pytest.mark.integration

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "schedule_2027_sample.csv"
ACCEPTED = "2027-02-04"
runner = CliRunner()


def district_officer(config):
    """A district officer: reads the review, loads the official schedule."""
    return rpc_as(config, Role.DISTRICT_OFFICER, DISTRICT, user="zhao.district", name="赵专干")


def dibao(tmp_path, config, *args):
    """As a logged-in district officer (the session file; the harness plays identity)."""
    path = tmp_path / "dibao.yml"
    path.write_text(yaml.safe_dump(json.loads(json.dumps(config)), allow_unicode=True), encoding="utf-8")
    return runner.invoke(app, ["--config", str(path), *args],
                         env=session_env(tmp_path, Role.DISTRICT_OFFICER, DISTRICT, "zhao.district"))


def rows(path=SAMPLE):
    return [{"line": line, "date": d, "workday": w, "note": n} for line, d, w, n in read_schedule_csv(path)]


def submit(config, seed):
    with officer(config) as rpc:
        created = rpc.intake.register_household(household(seed=seed))
        return rpc.intake.submit_application({"household_id": created["household_id"], "accepted_on": ACCEPTED})


def review_file(config, application_id):
    def found():
        with district_officer(config) as rpc:
            try:
                return rpc.review.get_application(application_id)
            except Exception:  # noqa: BLE001 - not consumed yet
                return None
    return wait_for(found, timeout=20, message="review has the application")


def review_outbox(config) -> list[str]:
    engine = make_engine(config["DB_URIS"]["review"])
    try:
        with engine.connect() as conn:
            return [r[0] for r in conn.execute(sa.text("SELECT body FROM outbox ORDER BY id"))]
    finally:
        engine.dispose()


def test_a_deadline_across_2027_is_provisional_until_the_official_schedule_is_loaded(
        container_factory, config, tmp_path):
    config = dict(config, POLICY="national2021", CLOCK="fixed:2027-02-20")
    intake = container_factory(IntakeService, config)
    intake.start()
    container_factory(ReviewService, config).start()
    register_staff(config)
    guessed = WorkdayCalendar()
    official = WorkdayCalendar(schedule={2027: parse_schedule(
        (r["line"], r["date"], r["workday"], r["note"]) for r in rows())})

    # before: 3 working days after Thu 2027-02-04 is Mon 2027-02-15, marked provisional, in intake and review
    first = submit(config, seed=71)
    assert first["investigation_deadline"] == "2027-02-15" and first["provisional"] is True
    assert first["investigation_deadline_provisional"] is True
    f = review_file(config, first["id"])
    assert f["process_due_on"] == guessed.add_workdays(date(2027, 2, 4), 30).isoformat()
    assert f["process_due_provisional"] is True and f["provisional"] is True
    with district_officer(config) as rpc:
        view = rpc.review.calendar_year(2027)
    assert view["status"] == "provisional"
    assert {"date": "2027-02-08", "workday": False, "source": "holidays", "note": "春节",
            "kind": "day off"} in view["days"]
    shown = dibao(tmp_path, config, "calendar", "show", "2027")
    assert shown.exit_code == 0, shown.output
    assert "provisional" in shown.output and "2027-02-08" in shown.output
    status = dibao(tmp_path, config, "review", "status", first["id"])
    assert status.exit_code == 0, status.output
    assert "* provisional" in status.output and "暂定" in status.output

    # bad input: typed, naming the line, nothing changed
    bad = [dict(r) for r in rows()]
    bad[2]["date"] = "2027-02-30"
    twice = rows() + [{"line": 11, "date": "2027-02-13", "workday": "0", "note": "又一次"}]
    with district_officer(config) as rpc:
        for broken, where in ((bad, "line 4"), (twice, "line 11"),
                              ([{"line": 2, "date": "1989-10-01", "workday": "0", "note": ""}], "line 2"),
                              ([{"line": 2, "date": "2028-01-29", "workday": "1", "note": "调休"}], "line 2"),
                              ([], "rows")):
            with pytest.raises(ValidationFailed) as refused:
                rpc.review.import_calendar(broken)
            assert where in refused.value.details["fields"], (where, refused.value.details)
        with pytest.raises(ValidationFailed):
            rpc.review.calendar_year(2101)
        assert rpc.review.calendar_year(2027)["status"] == "provisional"
    with officer(config) as rpc:
        with pytest.raises(Forbidden):
            rpc.review.import_calendar(rows())
    assert "calendar_schedule_loaded" not in "".join(review_outbox(config))

    # intake is down while the bureau imports: its durable queue keeps the event
    intake.stop()
    imported = dibao(tmp_path, config, "calendar", "import", str(SAMPLE))
    assert imported.exit_code == 0, imported.output
    assert "loaded" in imported.output and "2027" in imported.output
    with district_officer(config) as rpc:
        view = rpc.review.calendar_year(2027)
    assert view["status"] == "confirmed"
    assert {"date": "2027-02-13", "workday": True, "source": "bureau", "note": "春节调休上班",
            "kind": "make-up working day"} in view["days"]
    # recorded as a command in the audit trail (shared.rpc), and announced
    bodies = [json.loads(b) for b in review_outbox(config)]
    [loaded] = [b for b in bodies if b["type"] == "calendar_schedule_loaded"]
    assert loaded["payload"]["years"] == [2027] and {"date": "2027-02-13", "workday": True,
                                                     "note": "春节调休上班"} in loaded["payload"]["days"]
    assert any(b["type"] == "command_recorded" and "import_calendar" in json.dumps(b["payload"]) for b in bodies)

    # review counts on it at once; its open application's deadline is counted again
    f = review_file(config, first["id"])
    assert f["process_due_on"] == official.add_workdays(date(2027, 2, 4), 30).isoformat()
    assert f["provisional"] is False

    # intake comes back, takes the event from its queue: the open deadline and a new one are 2027-02-13
    container_factory(IntakeService, config).start()

    def recounted():
        with officer(config) as rpc:
            a = rpc.intake.get_application(first["id"])
        return a if a["investigation_deadline"] == "2027-02-13" else None

    again = wait_for(recounted, timeout=20, message="intake recounted the deadline")
    assert again["provisional"] is False
    second = submit(config, seed=72)
    assert second["investigation_deadline"] == "2027-02-13" and second["provisional"] is False
    f2 = review_file(config, second["id"])
    assert f2["process_due_on"] == official.add_workdays(date(2027, 2, 4), 30).isoformat()
    assert f2["provisional"] is False

    shown = dibao(tmp_path, config, "calendar", "show", "2027")
    assert shown.exit_code == 0 and "confirmed" in shown.output and "2027-02-13" in shown.output
    status = dibao(tmp_path, config, "review", "status", first["id"])
    assert status.exit_code == 0 and "provisional" not in status.output, status.output
    with district_officer(config) as rpc:
        assert rpc.review.calendar_schedules()["years"] == [2027]


def test_calendar_import_names_the_bad_line_and_changes_nothing(container_factory, sqlite_config, tmp_path):
    container_factory(ReviewService, sqlite_config).start()
    bad = tmp_path / "bad.csv"
    bad.write_text("date,workday,note\n2027-02-08,0,春节\n2027-02-08,1,调休\n", encoding="utf-8")
    result = dibao(tmp_path, sqlite_config, "calendar", "import", str(bad))
    assert result.exit_code != 0 and "line 3" in result.output and "nothing was imported" in result.output
    with district_officer(sqlite_config) as rpc:
        assert rpc.review.calendar_year(2027)["status"] == "provisional"
    assert dibao(tmp_path, sqlite_config, "calendar", "show", "1989").exit_code != 0
