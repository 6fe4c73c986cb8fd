"""The entry part of ``dibao demo``: a realistic sample district driven through every step that
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

The posting periods are moved past with notify's
``close_due_notices(as_of=today + days)``, as the system administrator (only
the timer and the system administrator may close notices as of a future day).
The demo's people are accounts at the identity service, each logged in to
act (:mod:`demo.accounts`); their passwords and TOTP secrets are written to
``<DATA_DIR>/demo/accounts.json`` (0600) so that anyone can ``dibao login``
as any of them.
"""
from __future__ import annotations

import random
from contextlib import ExitStack
from datetime import date, timedelta
from decimal import Decimal

from rich.markup import escape

from cli.common import console, describe_dibao_error, fail, home_district
from cli.review import KIND_LABEL, STEP_LABEL
from demo.people import (COMMITTEE_DEPARTMENTS, FINDINGS, OBJECTION_TEXT, REASONS, HouseholdRun, Person, Waits,
                         pick_communities, workdays_before)
from demo.report import Report


class Demo(Waits, Report):
    """The entry part (进口): staff, households, applications, investigations, the review to approval."""

    def __init__(self, config: dict, households: int, seed: int, accounts_file=None):
        from demo.accounts import DemoAccounts
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
        #: the demo's people as identity's accounts, one session each (``accounts_file``: where
        #: accounts.json goes, by default <DATA_DIR>/demo/accounts.json)
        self.accounts = DemoAccounts(config, self.district, accounts_file)
        self.sysadmin = Person(f"sysadmin-{self.district}", "系统管理员", Role.SYSTEM_ADMIN.value, self.district)
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
        #: 核对 with the partner bureaus, when the verification service runs (demo.verification)
        from demo.verification import DemoVerification

        self.verification = DemoVerification(config, self.accounts.path.parent)   # <DATA_DIR>/demo
        #: one household rejected on its report's undeclared car (off when a year follows: its plan
        #: is drawn from the entry's cases, demo.year)
        self.reject_on_report = True
        #: one cancelled household appeals and is restored (demo.appeal; off when a year follows)
        self.appeal_demo = True

    @property
    def verifying(self) -> bool:
        """核对 in the entry part, when the verification service answers (the year's intake goes without)."""
        return self.with_exceptions and self.verification.active

    # --- proxies -----------------------------------------------------------------

    def proxy(self, stack: ExitStack, person: Person):
        """A proxy acting as ``person``: their account's session (made and logged in at first use)."""
        return stack.enter_context(self.accounts.rpc(person))

    # --- the steps -----------------------------------------------------------------

    def run(self) -> None:
        policy = self.ref.policy
        console.rule(f"[bold]Dibao demo[/bold] — district {self.district}, policy {policy.name}")
        with ExitStack() as stack:
            self.register_staff()
            admin = self.proxy(stack, self.sysadmin)
            district = self.proxy(stack, self.district_officers[0])
            self.seed = self.free_seed(district)
            officers = {code: self.proxy(stack, person) for code, person in self.community_officer.items()}
            self.check_policy(district)
            self.register_households(officers)
            self.show_refusals(officers, district)
            try:
                self.review_all(stack, admin, district, officers)
            finally:
                self.verification.stop()
            self.render_boards(district)
            self.print_tables(district)
            if self.appeal_demo:
                from demo.appeal import appeal_one

                appeal_one(self, stack)
        from cli.audit import demo_section
        demo_section(self.config, self.district, self.runs, self.accounts)

    def register_staff(self) -> None:
        """Each person an account at identity (with TOTP), logged in; the staff registries fill."""
        people = (list(self.community_officer.values()) + list(self.township_officer.values())
                  + self.district_officers + list(self.signers.values()))
        self.accounts.ensure([self.sysadmin, *people])
        self.counts["staff"] = len(people)
        console.print(f"[bold]1. staff[/bold] (accounts at identity, each logged in with a password and a "
                      f"one-time code — {self.accounts.path}): {len(self.community_officer)} community officers "
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
            if self.verifying:      # 授权书: every member signs that the bureaus may be asked (核对)
                rpc.intake.register_document({"household_id": hid, "kind": "authorization",
                                              "title": "家庭经济状况核对授权书", "document_date": on_file.isoformat(),
                                              "signed_by": list(member_ids)})
                run.documents.append("authorization")
                self.counts["documents"] += 1
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
        if self.verifying:
            exceptions = (self.rejection_target, self.objection_target)
            # the household with the undeclared car: an urban one (the rural ones are few, and the year pays them)
            candidates = sorted((r for r in runs if r not in exceptions),
                                key=lambda r: (r.community.area_type != "urban", -r.size))
            self.verification.start(runs, candidates[0] if candidates and self.reject_on_report else None)
            self.verification.settle(officers, runs)
            self.verification.print(district, self.district)
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

    # --- the tables ---------------------------------------------------------------------
