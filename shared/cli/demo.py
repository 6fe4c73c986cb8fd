"""``dibao demo``: a realistic sample district driven through every step that
exists today — staff, households, the household file (一户一档), applications,
home investigations (入户调查), monthly check-ins (续保登记) — then shown in
tables with names and ID numbers masked (脱敏).

When no service answers ``intake.ping`` within 2 s, the demo runs the
services itself, in this process, on fresh SQLite files in
``<DATA_DIR>/demo``, and stops them at the end.
"""
from __future__ import annotations

import math
import random
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import typer
from rich import box
from rich.table import Table

from shared.cli.common import (cli_command, configure_logging, console, describe_dibao_error, discover_services,
                               ensure_broker, fail, get_config, hide_password, home_district, ping, start_runner)

REASONS = ["因病致贫", "因残致贫", "失业无收入", "年老无依", "单亲抚养子女", "家庭成员重病"]
FINDINGS = ["家中无贵重物品，住房简陋", "户主长期患病，医疗支出大", "无固定收入，靠亲属接济",
            "住房老旧，家电简单", "子女就学，收入微薄"]
AREA = {"urban": "城镇", "rural": "农村"}
STAGE_LABEL = {"registered": "登记", "applied": "申请", "investigated": "调查"}
STATUS_LABEL = {"submitted": "已受理", "investigated": "已调查"}


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)


@dataclass
class Person:
    user: str
    name: str
    role: str
    unit: str


@dataclass
class HouseholdRun:
    """What the demo did for one household (for the tables)."""

    community: object
    household_id: str
    head_name: str
    head_id: str
    size: int
    application_id: str | None = None
    checked_in: bool = False
    documents: list[str] = field(default_factory=list)


def workdays_before(calendar, day: date, n: int) -> date:
    current = day
    while n > 0:
        current -= timedelta(days=1)
        if calendar.is_workday(current):
            n -= 1
    return current


def pick_communities(divisions, district: str, households: int) -> list:
    """Several communities, urban and rural alternating (≈ 4 households each)."""
    communities = divisions.communities(within=district)
    urban = [c for c in communities if c.area_type == "urban"]
    rural = [c for c in communities if c.area_type != "urban"]
    mixed = []
    for i in range(max(len(urban), len(rural))):
        mixed += [c for c in (urban[i:i + 1] + rural[i:i + 1])]
    count = min(len(mixed), max(2, math.ceil(households / 4)))
    return mixed[:count]


class Demo:
    def __init__(self, config: dict, households: int, seed: int):
        from shared.identity import Role
        from shared.reference import ReferenceData
        from shared.sample import SampleDistrict

        self.config = config
        self.households = households
        self.seed = seed
        self.ref = ReferenceData.from_config(config)
        self.today = self.ref.today()
        self.district = home_district(config)
        self.communities = pick_communities(self.ref.divisions, self.district, households)
        if not self.communities:
            fail(f"DIVISIONS_FILE has no community within {self.district}")
        self.rng = random.Random(seed)
        names = SampleDistrict(seed=seed + 1000)
        self.community_officer = {
            c.code: Person(f"officer-{c.code}", names.name(), Role.COMMUNITY_OFFICER.value, c.code)
            for c in self.communities}
        townships = sorted({c.parent for c in self.communities})
        self.township_officer = {
            t: Person(f"township-{t}", names.name(), Role.TOWNSHIP_OFFICER.value, t) for t in townships}
        self.district_officers = [
            Person(f"district-{self.district}-{i}", names.name(), Role.DISTRICT_OFFICER.value, self.district)
            for i in (1, 2)]
        self.runs: list[HouseholdRun] = []
        self.counts = {"staff": 0, "households": 0, "skipped": 0, "applications": 0, "investigations": 0,
                       "late": 0, "checkins": 0, "documents": 0}

    # --- proxies -----------------------------------------------------------------

    def proxy(self, stack: ExitStack, person: Person):
        from shared.client import rpc_as

        return stack.enter_context(rpc_as(self.config, person.role, person.unit, user=person.user, name=person.name))

    # --- the steps -----------------------------------------------------------------

    def run(self) -> None:
        from shared.client import rpc_as
        from shared.identity import Role

        policy = self.ref.policy
        console.rule(f"[bold]Dibao demo[/bold] — district {self.district}, policy {policy.name}")
        with ExitStack() as stack:
            admin = stack.enter_context(rpc_as(self.config, Role.ADMIN, self.district, user="admin",
                                               name="系统管理员"))
            self.register_staff(admin)
            district = self.proxy(stack, self.district_officers[0])
            self.seed = self.free_seed(district)
            officers = {code: self.proxy(stack, person) for code, person in self.community_officer.items()}
            self.register_households(officers)
            self.show_refusals(officers, district)
            self.print_tables(district)

    def register_staff(self, admin) -> None:
        people = (list(self.community_officer.values()) + list(self.township_officer.values())
                  + self.district_officers)
        for person in people:
            admin.intake.register_staff({"user": person.user, "name": person.name, "role": person.role,
                                         "unit": person.unit})
        self.counts["staff"] = len(people)
        console.print(f"[bold]1. staff[/bold] (as admin): {len(self.community_officer)} community officers "
                      f"(社区低保专干), {len(self.township_officer)} township officers (乡镇街低保办), "
                      f"{len(self.district_officers)} district officers (区低保中心)")

    def free_seed(self, district) -> int:
        """A seed whose households this district does not hold yet (a second
        demo against the same services would otherwise clash on ID numbers)."""
        from shared.errors import NotFound
        from shared.sample import SampleDistrict

        seed = self.seed
        for _ in range(50):
            c = self.communities[0]
            first = SampleDistrict(seed=seed).household(c.code, c.area_type or "urban")
            try:
                district.intake.find_household({"resident_id": first["members"][0]["resident_id"]})
            except NotFound:
                if seed != self.seed:
                    console.print(f"   (seed {self.seed} was used here before: using seed {seed})")
                return seed
            seed += 1
        fail("the demo's sample households are all registered already; pass another --seed")

    def register_households(self, officers: dict) -> None:
        from shared.errors import Conflict
        from shared.sample import SampleDistrict

        gen = SampleDistrict(seed=self.seed)
        calendar = self.ref.calendar
        month = self.today.strftime("%Y-%m")
        for i in range(self.households):
            c = self.communities[i % len(self.communities)]
            rpc = officers[c.code]
            data = gen.household(c.code, c.area_type or "urban")
            try:
                created = rpc.intake.register_household(data)
            except Conflict:
                self.counts["skipped"] += 1
                continue
            head = data["members"][0]
            run = HouseholdRun(c, created["household_id"], head["name"], head["resident_id"], len(data["members"]))
            self.runs.append(run)
            self.counts["households"] += 1
            hid, member_ids = created["household_id"], created["member_ids"]
            on_file = self.today - timedelta(days=self.rng.randint(10, 40))
            self.document(rpc, run, "household_register", "户口簿复印件", on_file)
            if self.rng.random() > 0.12:
                self.document(rpc, run, "id_copies", "家庭成员身份证复印件", on_file)
            if i > 0 and self.rng.random() > 0.85:
                continue  # registered only: no application yet
            late = self.rng.random() < 0.12  # the visit will start after the statutory deadline, if any
            accepted_on = workdays_before(calendar, self.today, 5 if late else self.rng.randint(1, 4))
            application = rpc.intake.submit_application({
                "household_id": hid, "accepted_on": accepted_on.isoformat(),
                "reason": self.rng.choice(REASONS)})
            run.application_id = application["id"]
            self.counts["applications"] += 1
            self.document(rpc, run, "application_form", "低保申请书", accepted_on)
            if self.rng.random() > 0.15:
                self.document(rpc, run, "income_proof", "收入证明", accepted_on)
            if i > 0 and self.rng.random() > 0.8:
                continue  # accepted, investigation still to come
            investigated_on = min(self.today, calendar.add_workdays(accepted_on, 4 if late else self.rng.randint(0, 2)))
            township = self.township_officer[c.parent]
            investigation = rpc.intake.record_investigation({
                "application_id": application["id"],
                "investigated_on": investigated_on.isoformat(),
                "investigators": [{"user": self.community_officer[c.code].user, "signed": True},
                                  {"user": township.user, "signed": True}],
                "family_signatures": [{"member_id": member_ids[0]}],
                "verified_incomes": [{"member_id": member_ids[inc["member"]] if inc["member"] is not None else None,
                                      "source": inc["source"], "monthly_amount": inc["monthly_amount"]}
                                     for inc in data["incomes"]],
                "verified_assets": data["assets"],
                "findings": self.rng.choice(FINDINGS),
            })
            self.counts["investigations"] += 1
            self.counts["late"] += bool(investigation["started_late"])
            self.document(rpc, run, "investigation_record", "入户调查表", investigated_on)
            if self.rng.random() < 0.35:
                rpc.intake.record_checkin({"household_id": hid, "month": month,
                                           "checked_in_on": self.today.isoformat()})
                run.checked_in = True
                self.counts["checkins"] += 1
        c = self.counts
        console.print(f"[bold]2. households[/bold] (as each community's officer): {c['households']} registered "
                      f"in {len(self.communities)} communities"
                      + (f" ({c['skipped']} skipped: already registered)" if c["skipped"] else ""))
        console.print(f"[bold]3. applications[/bold]: {c['applications']} accepted; "
                      f"[bold]home investigations[/bold]: {c['investigations']} recorded by 2 signing "
                      f"investigators each ({c['late']} started late); "
                      f"[bold]check-ins[/bold] for {month}: {c['checkins']}; "
                      f"[bold]documents[/bold] filed: {c['documents']}")

    def document(self, rpc, run: HouseholdRun, kind: str, title: str, on: date) -> None:
        rpc.intake.register_document({"household_id": run.household_id, "kind": kind, "title": title,
                                      "document_date": on.isoformat()})
        run.documents.append(kind)
        self.counts["documents"] += 1

    def show_refusals(self, officers: dict, district) -> None:
        """The rules at work: typed errors, and nothing written."""
        from shared.errors import DibaoError

        console.print("[bold]4. the rules refuse[/bold]:")
        target = next((r for r in self.runs if r.application_id), None)
        if target is not None:
            rpc = officers[target.community.code]
            try:
                rpc.intake.record_investigation({
                    "application_id": target.application_id, "investigated_on": self.today.isoformat(),
                    "investigators": [{"user": self.community_officer[target.community.code].user, "signed": True}],
                    "family_signatures": [], "verified_incomes": [], "verified_assets": []})
                console.print("   [red]a single investigator was accepted — that should not happen[/red]")
            except DibaoError as exc:
                console.print(f"   a home investigation by a single investigator → [yellow]{type(exc).__name__}[/yellow]: "
                              f"{describe_dibao_error(exc)}")
        others = [r for r in self.runs if r.community.code != self.communities[0].code]
        if others:
            outsider = officers[self.communities[0].code]
            try:
                outsider.intake.file_report(others[0].household_id)
                console.print("   [red]an officer read another community's file — that should not happen[/red]")
            except DibaoError as exc:
                console.print(f"   a community officer reading another community's file → "
                              f"[yellow]{type(exc).__name__}[/yellow]: {describe_dibao_error(exc)}")

    # --- the tables ---------------------------------------------------------------------

    def print_tables(self, district) -> None:
        from shared.masking import mask_name, mask_resident_id

        ours = {r.application_id: r for r in self.runs if r.application_id}
        applications: dict[str, dict] = {}
        for c in self.communities:
            for app in district.intake.list_applications(community_code=c.code, limit=1000):
                if app["id"] in ours:
                    applications[app["id"]] = app
        investigations: dict[str, dict] = {}
        for app_id, app in applications.items():
            if app["status"] != "submitted":
                detail = district.intake.get_application(app_id)
                if detail["investigations"]:
                    investigations[app_id] = detail["investigations"][-1]
        files = {r.household_id: district.intake.file_report(r.household_id) for r in self.runs}

        console.print("[bold]5. per community: applications and home investigations[/bold] "
                      "(申请与入户调查; names and ID numbers masked 脱敏)")
        for c in self.communities:
            rows = [r for r in self.runs if r.community.code == c.code]
            table = Table(title=f"{c.name} {c.code} ({AREA.get(c.area_type, '')})", box=box.SIMPLE_HEAD,
                          title_justify="left", title_style="bold", padding=(0, 1))
            for name, kw in (("head", {}), ("ID", {"no_wrap": True}), ("size", {"justify": "right"}),
                             ("accepted", {}), ("status", {}), ("visited", {}), ("investigators", {})):
                table.add_column(name, **kw)
            for r in rows:
                app = applications.get(r.application_id) if r.application_id else None
                inv = investigations.get(r.application_id) if r.application_id else None
                table.add_row(
                    mask_name(r.head_name), mask_resident_id(r.head_id), str(r.size),
                    short_date(app["accepted_on"]) if app else "—",
                    STATUS_LABEL.get(app["status"], app["status"]) if app else "仅登记",
                    (short_date(inv["investigated_on"]) + ("[bold red]![/bold red]" if inv["started_late"] else ""))
                    if inv else "—",
                    "、".join(i["name"] for i in inv["investigators"]) if inv else "—")
            console.print(table)
        if any(i["started_late"] for i in investigations.values()):
            console.print("[bold red]![/bold red] the home visit started after the policy's deadline "
                          f"({self.ref.policy.investigation_start_workdays} working days after acceptance)")

        summary = Table(title="Per community (社区/村)", box=box.SIMPLE_HEAD, padding=(0, 1))
        for name in ("community", "type", "hh", "applied", "investigated", "late", "check-ins", "files ok"):
            summary.add_column(name, justify="left" if name in ("community", "type") else "right")
        for c in self.communities:
            rows = [r for r in self.runs if r.community.code == c.code]
            apps = [applications[r.application_id] for r in rows if r.application_id in applications]
            invs = [investigations[r.application_id] for r in rows if r.application_id in investigations]
            summary.add_row(c.name, AREA.get(c.area_type, ""), str(len(rows)), str(len(apps)),
                            str(len(invs)), str(sum(1 for i in invs if i["started_late"])),
                            str(sum(1 for r in rows if r.checked_in)),
                            f"{sum(1 for r in rows if files[r.household_id]['complete'])}/{len(rows)}")
        console.print(summary)

        file_table = Table(title="One household, one file (一户一档): completeness", box=box.SIMPLE_HEAD,
                           padding=(0, 1))
        for name in ("community", "household", "stage", "docs", "missing", "complete"):
            file_table.add_column(name, justify="right" if name == "docs" else "left")
        for c in self.communities:
            for r in (r for r in self.runs if r.community.code == c.code):
                report = files[r.household_id]
                file_table.add_row(
                    c.name, mask_name(r.head_name),
                    "→".join(STAGE_LABEL.get(s, s) for s in report["stages"]),
                    str(report["documents"]),
                    ", ".join(report["missing"]) or "—",
                    "[green]✓[/green]" if report["complete"] else "[red]✗ incomplete[/red]")
        console.print(file_table)


def short_date(iso: str) -> str:
    """``2026-11-25`` → ``11-25`` (the demo's dates are all recent)."""
    return iso[5:] if iso else "—"


def start_demo_services(config: dict):
    """Every existing service in this process, on fresh SQLite files in <DATA_DIR>/demo."""
    import eventlet

    from shared.config import SERVICES, data_dir

    demo_dir = (data_dir(config) / "demo").resolve()
    demo_dir.mkdir(parents=True, exist_ok=True)
    services = discover_services()
    if "intake" not in services:
        fail("the demo needs the intake service (services/intake/service.py)")
    names = sorted(set(SERVICES) | set(services) | set(config.get("DB_URIS", {})))
    for name in names:
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(demo_dir, f"{name}.db{suffix}").unlink(missing_ok=True)
    demo_config = dict(config, DATA_DIR=str(demo_dir),
                       DB_URIS={name: f"sqlite:///{demo_dir / (name + '.db')}" for name in names})
    configure_logging(demo_config, quiet=True)
    console.print(f"no service answers intake.ping on {hide_password(config['AMQP_URI'])} within 2 s: "
                  f"starting {', '.join(services)} in this process (fresh SQLite files in {demo_dir})")
    runner = start_runner(demo_config, list(services.values()))
    deadline = time.monotonic() + 30
    while True:
        try:
            ping(demo_config, "intake", 5)
            return runner, demo_config
        except Exception:  # noqa: BLE001 - not ready yet
            if time.monotonic() > deadline:
                runner.kill()
                raise
            eventlet.sleep(0.2)


@cli_command
def demo(
    ctx: typer.Context,
    households: int = typer.Option(36, "--households", "-n", min=1, max=2000, help="households to register"),
    seed: int = typer.Option(2024, "--seed", help="random seed of the sample district"),
) -> None:
    """Drive a sample district through every step that exists; show the result."""
    started = time.monotonic()
    config = get_config(ctx)
    ensure_broker(config)
    runner = None
    try:
        answer = ping(config, "intake", 2)
        console.print(f"services answer on {hide_password(config['AMQP_URI'])} "
                      f"(intake, policy {answer.get('policy')}): using them")
    except Exception:  # noqa: BLE001 - not running (unknown service, timeout…)
        runner, config = start_demo_services(config)
    try:
        run = Demo(config, households, seed)
        run.run()
    finally:
        if runner is not None:
            with console.status("stopping the demo's services…"):
                runner.stop()
    c = run.counts
    console.print(f"[green]demo finished[/green] in {time.monotonic() - started:.1f} s: {c['households']} households, "
                  f"{c['applications']} applications, {c['investigations']} investigations, "
                  f"{c['checkins']} check-ins, {c['documents']} documents (seed {run.seed})")
