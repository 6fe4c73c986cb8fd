"""``dibao demo``: a realistic sample district driven through every step that
exists today — staff, households, the household file (一户一档), applications,
home investigations (入户调查), monthly check-ins (续保登记) — and then the
entry review (进口) to approval: the community's democratic evaluation
(民主评议, or skipping it where the policy allows), the public notices
(张榜公示) and their posting period, the township review, the district's
joint review (会审) by three people, the case with its benefit, and the
result posted (张榜公布). One household is voted down at its evaluation (with
the reason); one draws an objection from the public during a notice, which
sends it back to a home investigation and a new evaluation. Everything is
shown in tables with names and ID numbers masked (脱敏).

The steps come from the active policy (config ``POLICY``): the demo asks the
policy object for its review steps and their kinds, never its name.

When no service answers ``ping`` within 2 s, the demo runs intake, review
and notify itself (every service under ``services/``, as ``dibao up``), in
this process, on fresh SQLite files in ``<DATA_DIR>/demo``, and stops them
at the end. The posting periods are moved past with notify's
``close_due_notices(as_of=today + days)``, as the system administrator (only
the timer and the system administrator may close notices as of a future day).
The demo's people act through :mod:`shared.cli.demo_identity` (TEMPORARY:
it plays identity until the identity service is on main).
"""
from __future__ import annotations

import math
import random
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import typer
from rich import box
from rich.markup import escape
from rich.padding import Padding
from rich.table import Table

from shared.cli.common import (cli_command, configure_logging, console, describe_dibao_error, discover_services,
                               ensure_broker, fail, get_config, hide_password, home_district, ping, start_runner)
from shared.cli.review import CATEGORY_LABEL, KIND_LABEL, STEP_LABEL

REASONS = ["因病致贫", "因残致贫", "失业无收入", "年老无依", "单亲抚养子女", "家庭成员重病"]
FINDINGS = ["家中无贵重物品，住房简陋", "户主长期患病，医疗支出大", "无固定收入，靠亲属接济",
            "住房老旧，家电简单", "子女就学，收入微薄"]
AREA = {"urban": "城镇", "rural": "农村"}
STAGE_LABEL = {"registered": "登记", "applied": "申请", "investigated": "调查"}
STATUS_LABEL = {"submitted": "已受理", "investigated": "已调查"}
REVIEW_LABEL = {"approved": "[green]已批准[/green]", "rejected": "[red]未通过[/red]", "in_review": "审核中",
                "awaiting_investigation": "待调查", "awaiting_reinvestigation": "[yellow]待重新调查[/yellow]"}
#: seconds the demo waits for an asynchronous step (an event crossing services)
WAIT_SECONDS = 30.0
POLL_SECONDS = 0.1
#: the township review committee (乡镇街低保评审委员会): departments besides civil affairs
COMMITTEE_DEPARTMENTS = ("finance", "justice", "police", "affairs_office")
OBJECTION_TEXT = "反映该户子女在外务工，每月寄钱回家，申请时未如实申报。"
#: what the demo drives (started together when none answers)
REQUIRED_SERVICES = ("intake", "review", "notify")


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
    #: what the officer registered (intake's household schema) and intake's member ids, for later updates
    data: dict | None = None
    member_ids: list[str] = field(default_factory=list)
    checked_in: bool = False
    documents: list[str] = field(default_factory=list)
    investigation: dict | None = None       # what the demo sent to intake.record_investigation
    investigations: int = 0
    #: the review service's latest answer (review.get_application)
    review: dict | None = None
    notice: dict | None = None               # the notice now posted for it
    seen_notices: set[str] = field(default_factory=set)
    path: list[str] = field(default_factory=list)   # what happened to it, step by step

    @property
    def investigated(self) -> bool:
        return self.investigations > 0

    @property
    def case(self) -> dict | None:
        return (self.review or {}).get("case")


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
        from shared.policy import load_policy
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
        # the review's steps come from the policy object (config POLICY), never from its name
        self.policy = load_policy(config.get("POLICY") or self.ref.policy.name)
        # the joint review's signers (会审) other than the investigating officer: 分管局长, 低保中心主任
        self.signers = {role: Person(f"{role.replace('_', '-')}-{self.district}", names.name(), Role(role).value,
                                     self.district)
                        for role in self.policy.joint_review_roles if role != "investigator"}
        self.people = SampleDistrict(seed=seed + 2000)   # evaluation panels, committees, the objector
        self.runs: list[HouseholdRun] = []
        self.counts = {"staff": 0, "households": 0, "skipped": 0, "applications": 0, "investigations": 0,
                       "late": 0, "checkins": 0, "documents": 0, "approved": 0, "rejected": 0}
        self.step_log: dict[str, dict[str, int]] = {}     # step name → what happened → how many times
        # who is voted down and who draws an objection (see plan())
        self.rejection_target: HouseholdRun | None = None
        self.rejection_reason = ""
        self.objection_target: HouseholdRun | None = None
        self.found_income = Decimal("0.00")
        self.rejection: dict | None = None
        self.objection: dict | None = None
        self.boards: list[dict] = []
        self.closings: list[dict] = []
        #: plan one rejection and one objection (the entry part); the year's monthly intake goes straight through
        self.with_exceptions = True

    # --- proxies -----------------------------------------------------------------

    def proxy(self, stack: ExitStack, person: Person):
        from shared.cli.demo_identity import demo_rpc

        return stack.enter_context(demo_rpc(self.config, person.user, person.name, person.role, person.unit))

    # --- the steps -----------------------------------------------------------------

    def run(self) -> None:
        from shared.identity import Role

        policy = self.ref.policy
        console.rule(f"[bold]Dibao demo[/bold] — district {self.district}, policy {policy.name}")
        with ExitStack() as stack:
            admin = self.proxy(stack, Person(f"sysadmin-{self.district}", "系统管理员", Role.SYSTEM_ADMIN.value,
                                             self.district))
            self.register_staff()
            district = self.proxy(stack, self.district_officers[0])
            self.seed = self.free_seed(district)
            officers = {code: self.proxy(stack, person) for code, person in self.community_officer.items()}
            self.check_policy(district)
            self.register_households(officers)
            self.show_refusals(officers, district)
            self.review_all(stack, admin, district, officers)
            self.render_boards(district)
            self.print_tables(district)
        from shared.cli.audit import demo_section
        demo_section(self.config, self.district, self.runs)

    def register_staff(self) -> None:
        from shared.cli.demo_identity import register_demo_staff

        people = (list(self.community_officer.values()) + list(self.township_officer.values())
                  + self.district_officers + list(self.signers.values()))
        register_demo_staff(self.config, people, self.district)
        self.counts["staff"] = len(people)
        console.print(f"[bold]1. staff[/bold] (accounts): {len(self.community_officer)} community officers "
                      f"(社区低保专干), {len(self.township_officer)} township officers (乡镇街低保办), "
                      f"{len(self.district_officers)} district officers (区低保中心), "
                      + ", ".join(f"the {role.replace('_', ' ')}" for role in self.signers)
                      + " (会审)")

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
            run = HouseholdRun(c, created["household_id"], head["name"], head["resident_id"], len(data["members"]),
                               data=data, member_ids=list(created["member_ids"]))
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
            run.investigation = {
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
            }
            investigation = rpc.intake.record_investigation(run.investigation)
            run.investigations += 1
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

    # --- the entry review (进口) ------------------------------------------------------

    def check_policy(self, district) -> None:
        """The review service must run the policy the demo drives."""
        running = district.review.ping().get("policy")
        if running != self.policy.name:
            fail(f"the review service runs policy {running!r} but this configuration says POLICY="
                 f"{self.policy.name!r}: run the demo with the services' configuration "
                 f"(e.g. DIBAO_POLICY={running} dibao demo)")

    def review_all(self, stack: ExitStack, admin, district, officers: dict) -> None:
        """Every investigated application through the policy's steps to a decision.

        In rounds: act on every application whose step is an act (evaluation,
        township review, joint review) until each waits at a notice; wait for
        notify to post the notices; file the objection (once); move past the
        posting period (close_due_notices as of today + days); wait for review
        to open the next step. The synchronous steps answer with the new state;
        the asynchronous ones are waited for by polling review.get_application."""
        townships = {code: self.proxy(stack, person) for code, person in self.township_officer.items()}
        signers = {role: self.proxy(stack, person) for role, person in self.signers.items()}
        runs = [r for r in self.runs if r.investigated]
        steps = " → ".join(f"{s.name} ({STEP_LABEL.get(s.name) or KIND_LABEL.get(s.kind, s.kind)})"
                           for s in self.policy.review_steps)
        console.print(f"[bold]5. entry review[/bold] (进口, policy {self.policy.name}): {steps}")
        if not runs:
            console.print("   no investigated application: nothing to review")
            return
        self.plan(runs)
        self.wait_reviews(district, runs, lambda r, f: f["status"] == "in_review",
                          "review to open each investigated application (intake's investigation_recorded)")
        active = list(runs)
        for _ in range(2 * len(self.policy.review_steps) + 2):
            for r in active:
                self.act(r, officers, townships, signers)
            active = [r for r in active if r.review["status"] == "in_review"]
            if not active:
                break
            self.wait_notices(district, active)
            target = self.objection_target
            if target is not None and target in active and self.objection is None:
                self.object(target, district, officers, townships, signers)
            self.close_notices(admin, district, active)
        else:
            fail("the review did not reach a decision for every application "
                 f"({', '.join(r.application_id for r in active)} still open)")
        self.wait_results(district, [r for r in runs if r.review["status"] == "approved"])
        self.counts["approved"] = sum(1 for r in runs if r.review["status"] == "approved")
        self.counts["rejected"] = sum(1 for r in runs if r.review["status"] == "rejected")
        for step in self.policy.review_steps:
            done = self.step_log.get(step.name, {})
            console.print(f"   {escape(step.name)} ({STEP_LABEL.get(step.name) or KIND_LABEL.get(step.kind)}): "
                          + (", ".join(f"{n} {what}" for what, n in done.items()) or "—"))
        console.print(f"   → [green]{self.counts['approved']} approved[/green] (cases with a monthly benefit), "
                      f"[red]{self.counts['rejected']} rejected[/red] with a reason; every decision is sent to "
                      f"the household (notify's channels)")

    def log(self, step: str, what: str) -> None:
        done = self.step_log.setdefault(step, {})
        done[what] = done.get(what, 0) + 1

    def plan(self, runs: list[HouseholdRun]) -> None:
        """Who is voted down (the household closest to the standard) and who
        draws an objection (the one furthest below it, in another community)."""
        if not self.with_exceptions:
            self.rejection_target = self.objection_target = None
            return
        def gap(r: HouseholdRun):
            standard = self.ref.standards.standard_for(r.community.code, r.community.area_type or "urban",
                                                       self.today)
            income = sum(Decimal(i["monthly_amount"]) for i in r.investigation["verified_incomes"])
            return (standard.monthly_amount * r.size - income) if standard else Decimal(0), income, standard

        ranked = sorted(runs, key=lambda r: gap(r)[0])
        self.rejection_target = ranked[0]
        left, income, standard = gap(ranked[0])
        per_head = (income / ranked[0].size).quantize(Decimal("0.01"))
        if left <= 0:
            reason = (f"家庭人均月收入{per_head}元，高于当地低保标准{standard.monthly_amount}元，不符合条件")
        else:
            reason = (f"家庭人均月收入{per_head}元，接近当地低保标准；评议认为有劳动能力的成员未尽力就业，"
                      f"暂不符合条件")
        self.rejection_reason = reason
        others = [r for r in reversed(ranked[1:]) if r.community.code != ranked[0].community.code] or ranked[1:][::-1]
        self.objection_target = others[0] if others else None
        if self.objection_target is not None:
            room = gap(self.objection_target)[0]
            # what the re-investigation finds: money sent home by a child working elsewhere
            self.found_income = max(Decimal("50.00"), min(Decimal("300.00"), (room / 3).quantize(Decimal("1"))))

    def act(self, r: HouseholdRun, officers: dict, townships: dict, signers: dict) -> None:
        """Take the application through the steps that are acts, up to a notice or a decision."""
        while r.review["status"] == "in_review":
            step = self.policy.step(r.review["step"])
            if step.kind == "notice":
                return
            if step.kind == "evaluation":
                r.review = self.evaluate(r, step, officers[r.community.code])
            elif step.kind in ("committee", "initial_opinion"):
                r.review = self.township_review(r, step, townships[r.community.parent])
            elif step.kind == "joint_review":
                r.review = self.joint_review(r, step, officers[r.community.code], signers)
            else:
                fail(f"the demo does not know how to act on a {step.kind} step ({step.name}) of policy "
                     f"{self.policy.name}")

    def evaluate(self, r: HouseholdRun, step, rpc) -> dict:
        """社区民主评议: signed participants, residents' representatives ≥ 2/3; or
        skipped where the policy allows it and nobody objected."""
        if r is self.rejection_target:
            panel = self.panel(r)
            out = rpc.review.record_evaluation({
                "application_id": r.application_id, "meeting_date": self.today.isoformat(),
                "participants": panel, "votes_for": 1, "votes_against": len(panel) - 2, "abstentions": 1,
                "passed": False, "remarks": self.rejection_reason})
            self.rejection = {"run": r, "step": step.name, "reason": self.rejection_reason,
                              "votes": f"1 for, {len(panel) - 2} against, 1 abstention"}
            self.log(step.name, "voted down")
            r.path.append("评议未通过")
            return out
        if step.skippable_without_objection and not r.review["objections"]:
            out = rpc.review.skip_evaluation({"application_id": r.application_id,
                                              "reason": "无异议，按规定免于民主评议"})
            self.log(step.name, "skipped (the policy allows it: no objection)")
            r.path.append("免评议")
            return out
        panel = self.panel(r)
        out = rpc.review.record_evaluation({
            "application_id": r.application_id, "meeting_date": self.today.isoformat(), "participants": panel,
            "votes_for": len(panel), "votes_against": 0, "abstentions": 0, "passed": True,
            "remarks": "经民主评议，该户符合条件" + ("（异议核查后重新评议）" if r.review["objections"] else "")})
        reps = sum(1 for p in panel if p["role"] == "representative")
        self.log(step.name, f"held ({len(panel)} signed participants, {reps} residents' representatives)")
        r.path.append(f"评议{len(panel)}/{len(panel)}")
        return out

    def panel(self, r: HouseholdRun) -> list[dict]:
        """The evaluation group, everyone signing: residents' representatives,
        the community officer and a panel member — at least 5
        representatives, more if the policy's share asks for it (5 of 7 ≥ 2/3)."""
        officer = self.community_officer[r.community.code]
        share = self.policy.evaluation_min_representative_share
        reps = 5
        while share is not None and reps < share * (reps + 2):
            reps += 1
        return ([{"name": self.people.name(), "role": "representative", "signed": True} for _ in range(reps)]
                + [{"name": officer.name, "role": "officer", "signed": True},
                   {"name": self.people.name(), "role": "panel", "signed": True}])

    def township_review(self, r: HouseholdRun, step, rpc) -> dict:
        """The township review committee, every member agreeing (评审委员会); or
        the township's initial opinion (初审意见) — as the step's kind says."""
        if step.kind == "committee":
            officer = self.township_officer[r.community.parent]
            members = ([{"name": officer.name, "department": "civil_affairs", "opinion": "agree", "signed": True}]
                       + [{"name": self.people.name(), "department": d, "opinion": "agree", "signed": True}
                          for d in COMMITTEE_DEPARTMENTS])
            out = rpc.review.record_township_review({
                "application_id": r.application_id, "meeting_date": self.today.isoformat(), "members": members,
                "passed": True, "remarks": "评审委员会一致同意"})
            self.log(step.name, f"passed by the committee ({len(members)} members, unanimous)")
            r.path.append("评审✓")
        else:
            out = rpc.review.record_township_review({
                "application_id": r.application_id, "meeting_date": self.today.isoformat(), "passed": True,
                "remarks": "初审同意，报区低保中心确认"})
            self.log(step.name, "initial opinion: agree")
            r.path.append("初审✓")
        return out

    def joint_review(self, r: HouseholdRun, step, officer_rpc, signers: dict) -> dict:
        """会审: three different people in three roles; the last signature decides."""
        officer = self.community_officer[r.community.code]
        if officer.user not in {i["user"] for i in r.review["investigators"]}:
            fail(f"the community officer {officer.user} is not among the investigators of {r.application_id}")
        out = None
        for role in self.policy.joint_review_roles:
            rpc = officer_rpc if role == "investigator" else signers[role]
            out = rpc.review.sign_joint_review({"application_id": r.application_id, "role": role})
        self.log(step.name, f"decided by {len(self.policy.joint_review_roles)} signatures")
        r.path.append("会审✓")
        return out

    # --- waiting for the asynchronous steps ----------------------------------------------

    def wait(self, check, what: str, timeout: float = WAIT_SECONDS):
        """Poll ``check()`` (short sleeps) until it returns something truthy;
        ``check`` returns (value, description of what is still missing)."""
        import eventlet

        deadline = time.monotonic() + timeout
        while True:
            value, missing = check()
            if value:
                return value
            if time.monotonic() > deadline:
                fail(f"timed out after {timeout:.0f} s waiting for {what}: {missing} — are intake, review and "
                     f"notify all running on this broker? (`dibao dlq list` shows events they refused)")
            eventlet.sleep(POLL_SECONDS)

    def wait_reviews(self, district, runs: list[HouseholdRun], ready, what: str) -> None:
        """Until ``ready(run, review.get_application(...))`` holds for every run."""
        from shared.errors import NotFound

        pending = list(runs)

        def check():
            still = []
            for r in pending:
                try:
                    f = district.review.get_application(r.application_id)
                except NotFound:
                    still.append((r, None))
                    continue
                if ready(r, f):
                    r.review = f
                else:
                    still.append((r, f))
            pending[:] = [r for r, _ in still]
            if not still:
                return True, ""
            r, f = still[0]
            state = f"{f['status']} at {f['step']}" if f else "not known to review yet"
            return False, f"{len(still)} of {len(runs)} application(s) not there yet (e.g. {r.application_id}: {state})"

        self.wait(check, what)

    def wait_notices(self, district, runs: list[HouseholdRun]) -> None:
        """Until notify has posted the notice each run's open step asked for."""
        def check():
            posted: dict[tuple, dict] = {}
            for n in district.notify.list_notices(self.district, True):
                posted[(n["application_id"], n["stage"], n["id"] in seen.get(n["application_id"], ()))] = n
            missing = []
            for r in runs:
                notice = posted.get((r.application_id, r.review["step"], False))
                if notice is None:
                    missing.append(r)
                else:
                    r.notice = notice
            if missing:
                return False, (f"{len(missing)} of {len(runs)} notice(s) not posted yet "
                               f"(e.g. {missing[0].application_id} at {missing[0].review['step']})")
            return True, ""

        seen = {r.application_id: r.seen_notices for r in runs}
        self.wait(check, "notify to post the notices review asked for (review's notice_requested)")

    def close_notices(self, admin, district, runs: list[HouseholdRun]) -> None:
        """Move past the posting period: close_due_notices(as_of=today + days)."""
        days = max(self.policy.step(r.review["step"]).notice_days or 7 for r in runs)
        as_of = self.today + timedelta(days=days)
        closed = admin.notify.close_due_notices(as_of.isoformat())
        ids = {c["notice_id"] for c in closed}
        for r in runs:
            if r.notice["id"] not in ids:
                fail(f"notice {r.notice['id']} of {r.application_id} did not close as of {as_of}")
            r.seen_notices.add(r.notice["id"])
            self.log(r.review["step"], f"posted for {days} days and closed")
            r.path.append("公示✓")
        self.closings.append({"as_of": as_of, "closed": len(closed),
                              "objected": sum(1 for c in closed if c["objections"])})
        at = {r.application_id: r.review["step"] for r in runs}
        self.wait_reviews(district, runs, lambda r, f: f["status"] != "in_review" or f["step"] != at[r.application_id],
                          "review to open the next step after the notices closed (notify's notice_closed)")

    def wait_results(self, district, approved: list[HouseholdRun]) -> None:
        """Until the approved households' results are posted (张榜公布)."""
        def check():
            posted = {n["application_id"] for n in district.notify.list_notices(self.district, True)
                      if n["stage"] == "result"}
            missing = [r for r in approved if r.application_id not in posted]
            return (not missing), (f"{len(missing)} result(s) not posted yet" if missing else "")

        if approved:
            self.wait(check, "notify to post the approved households' results (张榜公布)")

    # --- the objection ---------------------------------------------------------------

    def object(self, r: HouseholdRun, district, officers: dict, townships: dict, signers: dict) -> None:
        """群众异议 during the notice: the review goes back to a home
        investigation; the demo re-investigates, evaluates again and takes the
        household on with the others."""
        rpc = officers[r.community.code]
        objector, phone = self.people.name(), f"139{self.rng.randint(10000000, 99999999)}"
        notice, stage = r.notice, r.review["step"]
        objection = rpc.notify.file_objection({"notice_id": notice["id"], "text": OBJECTION_TEXT,
                                               "anonymous": False, "contact_name": objector,
                                               "contact_phone": phone})
        r.seen_notices.add(notice["id"])
        self.log(stage, "objection (→ home investigation again)")
        r.path.append("异议!")
        self.wait_reviews(district, [r], lambda r, f: f["status"] == "awaiting_reinvestigation",
                          "review to send the objected application back to a home investigation "
                          "(notify's objection_filed)")
        again = dict(r.investigation)
        again["investigated_on"] = self.today.isoformat()
        again["verified_incomes"] = list(again["verified_incomes"]) + [
            {"member_id": None, "source": "transfer", "monthly_amount": f"{self.found_income:.2f}"}]
        again["findings"] = (f"异议核查：子女在外务工，每月寄回{self.found_income:.2f}元，已计入家庭收入；"
                             f"其余情况属实")
        rpc.intake.record_investigation(again)
        r.investigation = again
        r.investigations += 1
        self.counts["investigations"] += 1
        r.path.append("重新调查")
        self.wait_reviews(district, [r], lambda r, f: f["status"] == "in_review",
                          "review to reopen the application after the new home investigation")
        reopened = r.review["step"]
        self.act(r, officers, townships, signers)
        self.wait_notices(district, [r])
        self.objection = {"run": r, "stage": stage, "objector": objector, "phone": phone,
                          "text": objection["text"], "filed_on": objection["filed_on"],
                          "reopened": reopened, "found": self.found_income,
                          "objections": r.review["objections"]}

    # --- the boards ------------------------------------------------------------------

    def render_boards(self, district) -> None:
        """The community boards as they stand now (the results posted): HTML and PDF."""
        for c in self.communities:
            if any(r.community.code == c.code and r.review and r.review["status"] == "approved"
                   for r in self.runs):
                self.boards.append(district.notify.render_board(c.code))

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

        console.print("[bold]6. per community: applications, home investigations and the review[/bold] "
                      "(申请、入户调查与审核审批; names and ID numbers masked 脱敏; benefit in yuan per month)")
        for c in self.communities:
            rows = [r for r in self.runs if r.community.code == c.code]
            table = Table(title=f"{c.name} {c.code} ({AREA.get(c.area_type, '')})", box=box.SIMPLE_HEAD,
                          title_justify="left", title_style="bold", padding=(0, 1))
            for name, kw in (("head", {}), ("ID", {"no_wrap": True}), ("size", {"justify": "right"}),
                             ("visited", {}), ("status", {}), ("benefit", {"justify": "right"}),
                             ("category", {})):
                table.add_column(name, **kw)
            for r in rows:
                app = applications.get(r.application_id) if r.application_id else None
                inv = investigations.get(r.application_id) if r.application_id else None
                f, case = r.review, r.case
                if f:
                    status = REVIEW_LABEL.get(f["status"], f["status"])
                elif app:
                    status = STATUS_LABEL.get(app["status"], app["status"])
                else:
                    status = "仅登记"
                table.add_row(
                    mask_name(r.head_name), mask_resident_id(r.head_id), str(r.size),
                    (short_date(inv["investigated_on"]) + ("[bold red]![/bold red]" if inv["started_late"] else ""))
                    if inv else "—",
                    status,
                    f"[bold]{case['monthly_benefit']}[/bold]" if case else "—",
                    CATEGORY_LABEL.get(case["category"], case["category"]) if case else "—")
            console.print(table)
        if any(i["started_late"] for i in investigations.values()):
            console.print("[bold red]![/bold red] the home visit started after the policy's deadline "
                          f"({self.ref.policy.investigation_start_workdays} working days after acceptance)")

        summary = Table(title="Per community (社区/村)", box=box.SIMPLE_HEAD, padding=(0, 1))
        for name in ("community", "type", "hh", "applied", "visited", "late", "check-ins", "files ok",
                     "approved", "yuan/month"):
            summary.add_column(name, justify="left" if name in ("community", "type") else "right")
        for c in self.communities:
            rows = [r for r in self.runs if r.community.code == c.code]
            apps = [applications[r.application_id] for r in rows if r.application_id in applications]
            invs = [investigations[r.application_id] for r in rows if r.application_id in investigations]
            cases = [r.case for r in rows if r.case]
            summary.add_row(c.name, AREA.get(c.area_type, ""), str(len(rows)), str(len(apps)),
                            str(len(invs)), str(sum(1 for i in invs if i["started_late"])),
                            str(sum(1 for r in rows if r.checked_in)),
                            f"{sum(1 for r in rows if files[r.household_id]['complete'])}/{len(rows)}",
                            str(len(cases)), f"{sum(Decimal(x['monthly_benefit']) for x in cases):.2f}")
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
        self.print_decisions()

    def print_decisions(self) -> None:
        """The rejection with its reason, the objection and what it caused, the boards."""
        from shared.masking import mask_name, mask_phone, mask_resident_id

        console.print("[bold]7. what did not go straight through[/bold]")
        if self.rejection:
            r = self.rejection["run"]
            grid = key_values()
            grid.add_row("household", f"{mask_name(r.head_name)} {mask_resident_id(r.head_id)}, "
                                      f"{r.community.name} {r.community.code}")
            grid.add_row("step", f"{self.rejection['step']} ({STEP_LABEL.get(self.rejection['step'], '')})")
            grid.add_row("vote", self.rejection["votes"])
            grid.add_row("reason", f"[red]{escape(r.review.get('rejection_reason') or '')}[/red]")
            grid.add_row("then", "the household is told, with the reason (notify's channels)")
            console.print("   [bold]rejected[/bold] (未通过):")
            console.print(Padding(grid, (0, 0, 0, 5)))
        if self.objection:
            o = self.objection
            r = o["run"]
            case = r.case
            grid = key_values()
            grid.add_row("household", f"{mask_name(r.head_name)} {mask_resident_id(r.head_id)}, "
                                      f"{r.community.name} {r.community.code}")
            grid.add_row("notice", f"{o['stage']} ({STEP_LABEL.get(o['stage'], '')}), filed {o['filed_on']}")
            grid.add_row("objector", f"{mask_name(o['objector'])}, {mask_phone(o['phone'])} (named, not anonymous)")
            grid.add_row("objection", escape(o["text"]))
            skippable = self.policy.step(o["reopened"]).skippable_without_objection
            grid.add_row("caused", escape(
                f"the review stopped (awaiting re-investigation); a new home investigation found "
                f"{o['found']:.2f} yuan/month sent home by a child; back to {o['reopened']}, "
                f"the evaluation held again" + (" (an objection rules out skipping it)" if skippable else "")
                + f"; objections on file: {o['objections']}"))
            grid.add_row("then", escape(" → ".join(r.path)) + (
                f" — [green]approved[/green], {case['monthly_benefit']} yuan/month" if case
                else f" — {r.review['status']}"))
            console.print("   [bold]objection from the public[/bold] (群众异议) during a notice:")
            console.print(Padding(grid, (0, 0, 0, 5)))
        if self.closings:
            console.print("   posting periods moved past with notify's close_due_notices (as the system administrator): "
                          + "; ".join(f"as of {c['as_of']} → {c['closed']} closed"
                                      + (f" ({c['objected']} with an objection: no effect)" if c["objected"] else "")
                                      for c in self.closings))
        if self.boards:
            folders = sorted({str(Path(b["html"]).parent) for b in self.boards})
            console.print(f"[bold]8. notice boards[/bold] (张榜公布: the approved households, IDs masked), written by "
                          f"notify in {', '.join(folders)}:")
            table = Table(box=box.SIMPLE_HEAD, padding=(0, 1))
            for name in ("board", "posted", "page", "printable A4"):
                table.add_column(name, justify="right" if name == "posted" else "left")
            names = {c.code: c.name for c in self.communities}
            for b in self.boards:
                table.add_row(f"{names.get(b['unit_code'], '')} {b['unit_code']}", str(b["notices"]),
                              Path(b["html"]).name, Path(b["pdf"]).name)
            console.print(table)


def key_values() -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")   # Chinese text has no spaces to wrap at
    return grid


def short_date(iso: str) -> str:
    """``2026-11-25`` → ``11-25`` (the demo's dates are all recent)."""
    return iso[5:] if iso else "—"


def demo_dir_of(config: dict) -> Path:
    from shared.config import data_dir

    return (data_dir(config) / "demo").resolve()


def start_demo_services(config: dict, movable_clock: bool = False):
    """Every existing service (as ``dibao up`` finds them: intake, review,
    notify, …) in this process, on fresh SQLite files in <DATA_DIR>/demo;
    with ``movable_clock``, on the clock of the file <DATA_DIR>/demo/clock
    (``CLOCK: file:…``) that ``dibao demo --months`` moves."""
    import eventlet

    from shared.config import SERVICES

    demo_dir = demo_dir_of(config)
    demo_dir.mkdir(parents=True, exist_ok=True)
    services = discover_services()
    missing = [name for name in REQUIRED_SERVICES if name not in services]
    if missing:
        fail(f"the demo needs the {', '.join(missing)} service(s) (services/<name>/service.py)")
    names = sorted(set(SERVICES) | set(services) | set(config.get("DB_URIS", {})))
    for name in names:
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(demo_dir, f"{name}.db{suffix}").unlink(missing_ok=True)
    # and what notify wrote last time: the boards and the messages to households
    for stale in [*demo_dir.glob("notices/*.html"), *demo_dir.glob("notices/*.pdf"),
                  demo_dir / "messages" / "outbox.jsonl"]:
        stale.unlink(missing_ok=True)
    demo_config = dict(config, DATA_DIR=str(demo_dir),
                       DB_URIS={name: f"sqlite:///{demo_dir / (name + '.db')}" for name in names})
    if movable_clock:
        (demo_dir / "clock").unlink(missing_ok=True)
        (demo_dir / "year.json").unlink(missing_ok=True)
        demo_config["CLOCK"] = f"file:{demo_dir / 'clock'}"
    configure_logging(demo_config, quiet=True)
    console.print(f"no service answers ping on {hide_password(config['AMQP_URI'])} within 2 s: "
                  f"starting {', '.join(services)} in this process (fresh SQLite files in {demo_dir})")
    if not demo_config.get("IDENTITY_PUBLIC_KEY"):
        from shared.cli.demo_identity import install_stand_in_service_tokens

        install_stand_in_service_tokens(demo_config)   # TEMPORARY: until the identity service is on main
    runner = start_runner(demo_config, list(services.values()))
    deadline = time.monotonic() + 30
    for name in REQUIRED_SERVICES:
        while True:
            try:
                ping(demo_config, name, 5)
                break
            except Exception:  # noqa: BLE001 - not ready yet
                if time.monotonic() > deadline:
                    runner.kill()
                    raise
                eventlet.sleep(0.2)
    return runner, demo_config


def movable_clock(config: dict):
    """The clock ``--months`` moves: the services' ``CLOCK: file:PATH`` (shared with this
    configuration); any other clock cannot be moved from here."""
    from shared.clock import FileClock, clock_from_config

    try:
        clock = clock_from_config(config)
    except ValueError as exc:
        fail(str(exc))
    if not isinstance(clock, FileClock):
        fail(f"--months moves the services' clock, but the services answering on "
             f"{hide_password(config['AMQP_URI'])} run on the clock {config.get('CLOCK') or 'system'!r}, which the "
             f"demo cannot move: start them with DIBAO_CLOCK=file:/path/to/clock (e.g. "
             f"`DIBAO_CLOCK=file:var/clock dibao up`) and run the demo with the same DIBAO_CLOCK — or stop them, "
             f"and the demo runs its own services on a clock of its own")
    return clock


def running_services(config: dict) -> tuple[dict, list[str]]:
    """(answers of the services that answer ping within 2 s, names of those that do not)."""
    answers, missing = {}, []
    for name in REQUIRED_SERVICES:
        try:
            answers[name] = ping(config, name, 2)
        except Exception:  # noqa: BLE001 - not running (unknown service, timeout…)
            missing.append(name)
    return answers, missing


@cli_command
def demo(
    ctx: typer.Context,
    households: int = typer.Option(36, "--households", "-n", min=1, max=2000, help="households to register"),
    seed: int = typer.Option(2024, "--seed", help="random seed of the sample district"),
    months: int = typer.Option(0, "--months", min=0, max=36,
                               help="then simulate this many months, month by month (a year in the life: "
                                    "check-ins, labour, re-reviews, a standard raise, a campaign, payment runs)"),
) -> None:
    """Drive a sample district through intake and the review to approval; show the result."""
    started = time.monotonic()
    config = get_config(ctx)
    ensure_broker(config)
    runner = None
    clock = None
    answers, missing = running_services(config)
    if not missing:
        console.print(f"services answer on {hide_password(config['AMQP_URI'])} "
                      f"({', '.join(answers)}; policy {answers['review'].get('policy')}): using them")
        if months:
            clock = movable_clock(config)
    elif len(missing) == len(REQUIRED_SERVICES):
        runner, config = start_demo_services(config, movable_clock=months > 0)
        if months:
            clock = movable_clock(config)
    else:
        fail(f"{', '.join(answers)} answer(s) on {hide_password(config['AMQP_URI'])} but {', '.join(missing)} "
             f"do(es) not: the demo needs {', '.join(REQUIRED_SERVICES)} together — start the others "
             f"(`dibao up`), or stop these so that the demo runs its own")
    try:
        if clock is not None:
            from shared.cli.year import start_day
            from shared.reference import ReferenceData

            clock.set(start_day(ReferenceData.from_config(config).calendar, date.today(), months))
        run = Demo(config, households, seed)
        run.run()
        if clock is not None:
            from shared.cli.year import run_year

            run_year(run, months, clock, seed)
    finally:
        if runner is not None:
            with console.status("stopping the demo's services…"):
                runner.stop()
    if runner is not None:
        outbox = Path(config["DATA_DIR"]) / "messages" / "outbox.jsonl"
        if outbox.is_file():
            console.print(f"messages to the households (notify's file channel): {outbox}")
    c = run.counts
    console.print(f"[green]demo finished[/green] in {time.monotonic() - started:.1f} s: {c['households']} households, "
                  f"{c['applications']} applications, {c['investigations']} investigations, "
                  f"{c['approved']} approved, {c['rejected']} rejected, "
                  f"{c['checkins']} check-ins, {c['documents']} documents (seed {run.seed}, policy {run.policy.name})")
