"""The demo's 核对 (verification with the partner bureaus, docs/verification.md): each
configured bureau a partner (what ``dibao broker partner-add NAME --verification`` does),
answering through the reference responder (cli/responder.py, a plain nameko service on
that bureau's own partner URI, run in this process) from sample data written to
``<DATA_DIR>/demo/bureaus/<bureau>.csv``. Public security knows of one household's
car the household did not declare: its report flags ``undeclared_vehicle``, the
officer records the discrepancy as grounds for rejection and rejects the application
with that reason. The other households' reports come back clean.

Only when the verification service answers; the households sign their authorization
(授权书) only then (without it nothing is asked, and nothing waits)."""
from __future__ import annotations

import hashlib
import time
from decimal import Decimal
from pathlib import Path

from rich import box
from rich.markup import escape
from rich.table import Table

from cli.common import console, fail, ping
from demo.people import HouseholdRun

VEHICLE = "大众帕萨特 鄂A·8K3M2"
VEHICLE_VALUE = Decimal("150000.00")


class DemoVerification:
    """Partners and their responders for the demo's run, and the one household rejected on its report."""

    def __init__(self, config: dict, demo_dir: Path):
        from shared.broker import verification_bureaus

        from shared.broker import users_enabled, vhost_of

        #: broker users off: the partner and shovel users are this vhost's demo's only (removed at the end)
        self.own_users = not users_enabled(config)
        if self.own_users:
            tag = hashlib.sha256(vhost_of(config["AMQP_URI"]).encode()).hexdigest()[:8]
            config = dict(config, BROKER_USER_PREFIX=f"dibao-demo-{tag}-")
        self.config = config
        self.data_dir = demo_dir / "bureaus"
        self.bureaus = verification_bureaus(config)
        self.active = bool(self.bureaus) and self._answers()
        self.added: list[str] = []
        self.made_shovel = False
        self.runners: list = []
        self.target: HouseholdRun | None = None
        self.rejection: dict | None = None
        self.reports: dict[str, dict] = {}

    def _answers(self) -> bool:
        try:
            ping(self.config, "verification", 2.0)
            return True
        except Exception:  # noqa: BLE001 - not running: the demo goes on without 核对
            return False

    # --- the partners and their reference responders --------------------------------------

    def start(self, runs: list[HouseholdRun], target: HouseholdRun | None) -> None:
        """Each bureau's partner space, its sample data and its responder (in this process)."""
        from nameko.runners import ServiceRunner

        from cli.responder import responder
        from shared import rabbit_admin

        self.target = target
        self.data_dir.mkdir(parents=True, exist_ok=True)
        rows = {b: [] for b in self.bureaus}
        if target is not None and "public_security" in rows:
            rows["public_security"].append((target.head_id, "vehicle", VEHICLE, f"{VEHICLE_VALUE}", "2026-10-01"))
        elif target is not None:
            self.target = None
        if "bank" in rows:      # small savings, below the policy's threshold: no discrepancy
            rows["bank"] += [(r.head_id, "deposit", "活期存款", "1200.00", "2026-12-31") for r in runs[1:3]
                             if r is not self.target]
        rabbit_admin.setup(self.config, services=())   # the shovel user (dibao broker setup), idempotent
        self.made_shovel = self.own_users
        known = {p["name"] for p in rabbit_admin.list_partners(self.config)}
        for bureau in self.bureaus:
            path = self.data_dir / f"{bureau}.csv"
            path.write_text("resident_id,kind,description,amount,as_of\n"
                            + "".join(",".join(row) + "\n" for row in rows[bureau]), encoding="utf-8")
            uri = rabbit_admin.add_partner(self.config, bureau, {}, (), verification=True)
            if bureau not in known:
                self.added.append(bureau)
            runner = ServiceRunner({"AMQP_URI": uri, "serializer": "json"})
            runner.add_service(responder(bureau, path, uri))
            runner.start()
            self.runners.append(runner)
        console.print(f"[bold]核对[/bold] (verification with {len(self.bureaus)} partner bureaus, docs/verification.md): "
                      f"each a partner with its own channel (partner-add --verification), answering through the "
                      f"reference responder from {self.data_dir}/<bureau>.csv", soft_wrap=True)

    def stop(self) -> None:
        from shared import rabbit_admin

        for runner in self.runners:
            runner.stop()
        self.runners.clear()
        for bureau in self.added:     # the partner spaces this demo made (the others stay)
            rabbit_admin.remove_partner(self.config, bureau)
        if self.made_shovel:
            rabbit_admin.remove_users(self.config, services=())    # the demo's own shovel user
            self.made_shovel = False
        self.added.clear()

    # --- the reports, and the household rejected on its report ------------------------------

    def settle(self, officers: dict, runs: list[HouseholdRun]) -> None:
        """Wait for every investigated household's report (核对报告); reject the target on its
        undeclared car (the discrepancy recorded as grounds for rejection, with the reason)."""
        import eventlet

        from shared.errors import NotFound

        deadline = time.monotonic() + 60
        pending = list(runs)
        while pending:
            left = []
            for r in pending:
                try:
                    report = officers[r.community.code].verification.report({"household_id": r.household_id})
                except NotFound:
                    report = None
                if report is not None and report["complete"]:
                    self.reports[r.household_id] = report
                else:
                    left.append(r)
            pending = left
            if pending and time.monotonic() > deadline:
                fail(f"the partner bureaus did not answer for {len(pending)} household(s) within 60 s "
                     f"(`dibao verify overdue`)")
            if pending:
                eventlet.sleep(0.3)
        if self.target is None or self.target.household_id not in self.reports:
            return
        r = self.target
        report = self.reports[r.household_id]
        vehicle = next((d for d in report["discrepancies"] if d["rule"] == "undeclared_vehicle"), None)
        if vehicle is None:
            fail(f"the report of {r.household_id} does not flag the car public security found")
        rpc = officers[r.community.code]
        reason = (f"经家庭经济状况核对，公安局登记该户成员名下有未申报的机动车（{VEHICLE}，价值{VEHICLE_VALUE}元），"
                  f"超过规定价值，不符合低保条件")
        rpc.verification.resolve_discrepancy({"discrepancy_id": vehicle["id"], "resolution": "grounds_for_rejection",
                                              "reason": reason})
        r.review = rpc.review.reject_application({"application_id": r.application_id, "reason": reason})
        r.path.append("核对:未申报车辆→不予批准")
        self.rejection = {"run": r, "reason": reason, "found": vehicle["found"], "threshold": vehicle["threshold"]}

    # --- what the demo shows -------------------------------------------------------------------

    def print(self, district_rpc, unit: str) -> None:
        from cli.stats import verification_table
        from contracts.verification_bureau import BUREAU_TITLES

        flagged = sum(1 for rep in self.reports.values() if rep["discrepancies"])
        console.print(f"   核对报告: {len(self.reports)} households' reports complete (每户 one request per bureau), "
                      f"{flagged} with a discrepancy; each filed in the household file (一户一档)")
        if self.rejection is not None:
            r = self.rejection["run"]
            table = Table(title=f"核对报告 of {escape(r.head_name[0])}** ({r.household_id[:8]}…): declared beside found",
                          box=box.SIMPLE_HEAVY)
            for column in ("部门", "成员", "结果", "发现"):
                table.add_column(column)
            findings = self.reports[r.household_id]["findings"]
            for f in [f for f in findings if f["outcome"] != "no_record"]:
                table.add_row(escape(BUREAU_TITLES.get(f["bureau"], f["bureau"])), escape(f["member_name"][:1] + "**"),
                              f["outcome"], escape(f"{f['description']} {f['amount']}元" if f["kind"] else "—"))
            quiet = sum(1 for f in findings if f["outcome"] == "no_record")
            table.caption = f"and {quiet} member answers \"no record\" (无记录)"
            console.print(table)
            console.print(f"   → discrepancy [yellow]undeclared_vehicle[/yellow] (found {self.rejection['found']} "
                          f"above {self.rejection['threshold']}): recorded as grounds for rejection; "
                          f"[red]rejected[/red]: {escape(self.rejection['reason'])}", soft_wrap=True)
        rows = district_rpc.verification.stats(unit)
        counts = [{"bureau": s["bureau"], "requests": s["requests"], "answered": s["answered"],
                   "overdue": s["overdue"], "reminders": s["reminders"], "refused": s["refused"]} for s in rows]
        console.print(verification_table(counts))
        console.print("   (`dibao stats --date D` counts the same per bureau from the audit record)")
