"""``dibao payments …`` through typer's CliRunner, and the demo's payments
part (``demo_payments``) against the real intake and payments services."""
from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from rich.console import Console
from typer.testing import CliRunner

from services.identity.service import IdentityService
from services.intake.service import IntakeService
from shared.bank_formats import ReturnLine, load_format
from services.payments.service import PaymentsService
from cli.payments import demo_payments
from cli.root import app
from shared.identity import Role
from shared.testing import session_env
from tests.helpers import household, officer
from tests.payments_helpers import (DISTRICT, approve_cases, case_approved, month, publish, query, quarter)

pytestmark = pytest.mark.integration
runner = CliRunner()


PEOPLE = {"qian.finance": (Role.FINANCE_OFFICER, "钱会计"), "zhou.director": (Role.CENTRE_DIRECTOR, "周主任")}


def dibao(config_file: str, *args: str, user: str = "zhou.director"):
    """As the logged-in ``user`` (the centre director unless said otherwise)."""
    role, name = PEOPLE[user]
    env = session_env(Path(config_file).parent, role, DISTRICT, user, name)
    return runner.invoke(app, ["--config", config_file, *args], catch_exceptions=False, env={"COLUMNS": "200", **env})


def write_config(path: Path, config: dict) -> str:
    path.write_text(yaml.safe_dump(json.loads(json.dumps(config)), allow_unicode=True), encoding="utf-8")
    return str(path)


def test_operator_commands_standard_run_export_return(container_factory, sqlite_config, tmp_path):
    config = dict(sqlite_config, POLICY="national2021")
    container_factory(PaymentsService, config).start()
    approve_cases(config, [case_approved("x1", month(-1), "812.50"), case_approved("x2", month(-1), "120.05")])
    cfg = write_config(tmp_path / "dibao.yml", config)

    result = dibao(cfg, "payments", "standard", "set", DISTRICT, "urban", "0", "--from", f"{month(0)}-01")
    assert result.exit_code != 0 and "monthly_amount" in result.output
    result = dibao(cfg, "payments", "standard", "list", "--division", DISTRICT)
    assert result.exit_code == 0 and "820.00" in result.output and "620.00" in result.output

    result = dibao(cfg, "payments", "run", "create", month(-1), "urban", user="qian.finance")
    assert result.exit_code == 0, result.output
    run_id = query(config, "SELECT id FROM payment_run")[0][0]
    result = dibao(cfg, "payments", "run", "approve", run_id, user="qian.finance")
    assert result.exit_code != 0 and "maker" in result.output                 # maker ≠ checker, one red line
    assert dibao(cfg, "payments", "run", "approve", run_id, user="zhou.director").exit_code == 0
    result = dibao(cfg, "payments", "run", "export", run_id, "--format", "fixed", "--out", str(tmp_path / "bank"),
                   user="qian.finance")
    assert result.exit_code == 0, result.output
    (bank_file,) = [p for p in (tmp_path / "bank").iterdir() if not p.name.endswith(".summary.txt")]
    summary = bank_file.with_suffix(".summary.txt").read_text(encoding="utf-8")
    assert "玖佰叁拾贰元伍角伍分" in summary and "932.55" in summary
    assert "张三丰".encode("gbk") in bank_file.read_bytes()

    fmt = load_format("fixed")
    ids = [r[0] for r in query(config, "SELECT id FROM payment_line ORDER BY id")]
    returned = tmp_path / "return.txt"
    returned.write_bytes(fmt.write_return([ReturnLine(ids[0], Decimal("812.50"), True),
                                           ReturnLine(ids[1], Decimal("120.05"), False, "户名不符")]))
    result = dibao(cfg, "payments", "import-return", run_id, str(returned), "--format", "fixed", user="qian.finance")
    assert result.exit_code == 0 and "1 paid" in result.output and "1 failed" in result.output
    result = dibao(cfg, "payments", "run", "show", run_id, user="qian.finance")
    assert result.exit_code == 0 and "failed (户名不符)" in result.output and "张*丰" in result.output
    assert "************0000" in result.output
    assert "6222020000000000" not in result.output                             # accounts only masked
    result = dibao(cfg, "payments", "run", "list", user="qian.finance")
    assert result.exit_code == 0 and "reconciled" in result.output


@pytest.mark.parametrize(("policy", "ahead"), [("jiangxia", False), ("national2021", False), ("national2021", True)])
def test_demo_pays_two_months_and_a_rural_quarter_with_a_failed_line_carried(container_factory, sqlite_config,
                                                                             policy, ahead):
    """``ahead``: as in ``dibao demo``, the cases were approved today and start next month — the
    administrator prepares the runs as of each period's first day (the demo's clock)."""
    config = dict(sqlite_config, POLICY=policy)
    container_factory(IntakeService, config).start()
    container_factory(PaymentsService, config).start()
    container_factory(IdentityService, config).start()        # the demo's people are accounts there
    period, months = quarter(-1)
    if ahead:
        months = [month(1), month(2)]
        period = quarter(0, date.fromisoformat(f"{month(1)}-01"))[0]
    cases = []                                       # real households in intake (check-ins go through intake)
    for n, community in enumerate(["420115001001", "420115001001", "420115002001", "420115002001"]):
        with officer(config, unit=community, user=f"officer-{community}") as rpc:
            cases.append((rpc.intake.register_household(household(seed=300 + n, community=community))["household_id"],
                          community))
    area = {"420115001001": "urban", "420115002001": "rural"}
    for n, (hid, community) in enumerate(cases):
        publish(config, case_approved(f"demo{n}", months[0], f"{300 + n}.50", area_type=area[community],
                                      community=community, household_id=hid))
    out = Console(record=True, width=160)
    summary = demo_payments(config, DISTRICT, out=out)
    runs = {(r["period"], r["area_type"]): r for r in summary["runs"]}
    quarter_months = quarter(0, date.fromisoformat(f"{months[0]}-01"))[1]
    rural = [(period, "rural")] if policy == "jiangxia" else [(m, "rural") for m in quarter_months]
    assert set(runs) == {(months[0], "urban"), (months[1], "urban"), *rural}
    if policy == "national2021":                    # monthly rural: both rural cases from their first month
        assert [runs[(m, "rural")]["lines"] for m in quarter_months] == [2 if m >= months[0] else 0
                                                                          for m in quarter_months]
    first, second = runs[(months[0], "urban")], runs[(months[1], "urban")]
    assert (first["lines"], first["paid"], first["failed"]) == (2, 1, 1)
    assert (second["lines"], second["carried"], second["paid"]) == (3, 1, 3)      # two + the carried line
    if policy == "jiangxia":
        assert runs[(period, "rural")]["lines"] == 2 and runs[(period, "rural")]["total"] == "1818.00"
    assert summary["carried"] in {"demo0", "demo1"}
    assert query(config, "SELECT count(*) FROM payment_line WHERE status = 'paid'")[0][0] == sum(
        r["paid"] for r in summary["runs"])
    assert "人民币" in out.export_text()
