"""``dibao demo --months 4``: a year in the life, shortened, on the demo's own
in-process services (real RabbitMQ, fresh SQLite files, the clock file the
demo moves). The statistics audit reports for the last day simulated must
agree with a hand count made from the demo's own log of what it did
(year.json: cases approved with their sizes, cancellations and adjustments it
approved, the standard raise, the amounts the bank paid)."""
from __future__ import annotations

import json
import time
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest

from tests.integration.test_cli import dibao, households_in_db, start_review, write_config

pytestmark = pytest.mark.integration


@pytest.fixture
def logger_levels():
    """The demo quietens these loggers when it runs its own services: put them back."""
    import logging

    names = ("nameko", "shared", "services")
    levels = {name: logging.getLogger(name).level for name in names}
    yield
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def quarter_months(day: str) -> list[str]:
    first = 3 * ((int(day[5:7]) - 1) // 3) + 1
    return [f"{day[:4]}-{m:02d}" for m in range(first, first + 3)]


def hand_count(log: dict) -> dict:
    """The paragraph's figures for the log's last day, counted from what the demo did."""
    day = log["last_day"]
    month, year_start = day[:7], day[:4] + "-01"
    stopped = {c["case_id"] for c in log["cancelled"] if c["effective_month"] <= month}
    size = {a["case_id"]: a["size"] for a in log["approved"]}
    for change in log["changed"]:               # in the order decided: the latest in force counts
        if change["effective_month"] <= month:
            size[change["case_id"]] = change["size"]
    active = [a for a in log["approved"] if a["approved_on"] <= day and a["case_id"] not in stopped]

    def households_persons(rows, sizes=None):
        return {"households": len(rows), "persons": sum(sizes[r["case_id"]] if sizes else r["size"] for r in rows)}

    def urban_in_year(rows):
        return [r for r in rows if r["area_type"] == "urban" and year_start <= r["effective_month"] <= month]

    urban = households_persons([a for a in active if a["area_type"] == "urban"], size)
    rural = households_persons([a for a in active if a["area_type"] == "rural"], size)
    expenditure = sum((Decimal(p["amount"]) for p in log["paid"]
                       if p["area_type"] == "urban" and p["period"] == month), Decimal("0.00"))
    quarter = f"{day[:4]}-Q{(int(day[5:7]) - 1) // 3 + 1}"
    rural_payout = sum((Decimal(p["amount"]) for p in log["paid"] if p["area_type"] == "rural"
                        and p["period"] in [quarter, *quarter_months(day)]), Decimal("0.00"))
    changes = urban_in_year(log["changed"])
    return {
        "urban_households": urban["households"], "urban_persons": urban["persons"],
        "monthly_expenditure": f"{expenditure:.2f}",
        "average_topup_per_person": f"{(expenditure / urban['persons']).quantize(Decimal('0.01'), ROUND_HALF_UP)}",
        "cancelled": households_persons(urban_in_year(log["cancelled"])),
        "lowered": households_persons([c for c in changes if c["direction"] == "lowered"]),
        "added": households_persons([a for a in log["approved"] if a["area_type"] == "urban"
                                     and year_start <= a["approved_on"][:7] and a["approved_on"] <= day]),
        "raised": households_persons([c for c in changes if c["direction"] == "raised"]),
        "rural_households": rural["households"], "rural_persons": rural["persons"],
        "rural_quarter": quarter, "rural_quarter_payout": f"{rural_payout:.2f}",
        "expenditure_source": "disbursed", "rural_payout_source": "disbursed",
    }


@pytest.mark.parametrize("policy", ["jiangxia", "national2021"])
def test_a_shortened_year_agrees_with_a_hand_count(tmp_path, sqlite_config, logger_levels, policy):
    config = dict(sqlite_config, POLICY=policy, DATA_DIR=str(tmp_path / "var"))
    config_file = write_config(tmp_path / "dibao.yml", config)
    started = time.monotonic()
    result = dibao(config_file, "demo", "--months", "4", "--households", "8", "--seed", "11")
    elapsed = time.monotonic() - started
    assert result.exit_code == 0, result.output
    out = result.output
    print(out)                                                 # shown when the test fails
    log = json.loads((Path(config["DATA_DIR"]) / "demo" / "year.json").read_text(encoding="utf-8"))
    assert log["policy"] == policy and len(log["months"]) == 4 and log["last_day"].endswith("-30")

    # what the short year holds, whatever the policy
    [failed] = log["failed"]                                   # one line failed at the bank …
    assert any(p["case_id"] == failed["case_id"] and p["period"] == failed["period"]
               and p["run_month"] > failed["run_month"] for p in log["paid"])   # … paid in a later run
    raised = log["standard_raise"]
    assert raised and raised["cases_raised"] == raised["cases_in_scope"] > 0
    wrong = log["campaign"]["wrongly_included"]
    assert [c["wrongly_included"] for c in log["cancelled"] if c["case_id"] == wrong] == [True]
    # every household whose case was cancelled was told (notify's file channel)
    outbox = Path(config["DATA_DIR"]) / "demo" / "messages" / "outbox.jsonl"
    told = {(m["household_id"], m["kind"]) for m in map(json.loads, outbox.read_text(encoding="utf-8").splitlines())}
    assert all((c["household_id"], "case_cancelled") in told for c in log["cancelled"])
    assert "who let them in" in out and "investigator" in out and "joint review" in out
    assert "month by month" in out and "截止" in out
    if policy == "jiangxia":                                    # checked in monthly, rural paid by the quarter
        assert any(c["rule"] == "two_missed_checkins_in_a_row" for c in log["cancelled"])
        assert any(p["area_type"] == "rural" and "-Q" in p["period"] for p in log["paid"])
        assert [r["rule"] for r in log["rejected_proposals"]] == ["unexcused_labour_absence"]
    else:                                                       # no stamp; rural paid monthly; refusals
        assert not log["checkins"] and all("-Q" not in p["period"] for p in log["paid"])
        # that person's share stopped: the benefit lowered, or the case cancelled when nothing is left
        assert any(c["rule"] == "refused_suitable_work" and c.get("direction", "lowered") == "lowered"
                   for c in log["changed"] + log["cancelled"])

    stats = log["statistics"]                                   # audit.statistics(last day), as the RPC answered
    expected = hand_count(log)
    assert {key: stats[key] for key in expected} == expected
    assert expected["cancelled"]["households"] >= 1 and expected["raised"]["households"] >= 1
    assert elapsed < 180                 # ≈ 12 s alone on the 2-core machine; slack for a loaded one


def test_months_are_refused_when_running_services_keep_their_own_clock(container_factory, sqlite_config, tmp_path):
    """Services already running on the system clock cannot be moved through the months: the demo
    says how to run them, and does nothing."""
    config, config_file = start_review(container_factory, sqlite_config, "jiangxia", tmp_path, notify=True,
                                       identity=True)
    result = dibao(config_file, "demo", "--months", "2", "--households", "2")
    assert result.exit_code == 1
    out = " ".join(result.output.split())
    assert "DIBAO_CLOCK=file:" in out and "cannot move" in out and "Traceback" not in out
    assert households_in_db(config) == 0
