"""``dibao demo --months N``: a year in the life of the district (一年的动态管理).

After the demo's entry part (registration → review → approval), the driver
moves every service's clock (config ``CLOCK: file:PATH``, ``FileClock.set``)
through N months. Each month, on its third working day:

- new applications carried through the whole entry review (the entry
  part's own steps, ``Demo.register_households`` and ``Demo.review_all``);
- the monthly renewal check-ins (续保登记) of the active cases, some missed
  (from ``--seed``; never two in a row, except one household the driver
  picks to miss two, which the month end then proposes to cancel) — only
  where the policy has the check-in rule;
- public-welfare labour (公益劳动): as many unexcused absences as the policy's
  rule counts, or as many refusals of suitable work;
- the re-reviews (复核) that fall due — the first finds the income changed;
- a standard raise (提标, payments' ``set_standard``) part-way through;
- a re-inspection campaign (入户清查) over a township, one case found
  wrongly included; "who let them in" from audit once it is cancelled;
- the payment runs of the month (urban monthly; rural every
  ``policy.payout_months("rural")`` months) prepared by the finance officer,
  approved by the centre director, exported as a CSV bank file and
  reconciled with the bank's return file — the first run's first line fails
  and is carried into the next run;

and on its last day the month-end rules (``review.run_month_end``), then
each pending proposal decided by the people the policy names
(``policy.proposal_approvals``, in order, distinct people).

The driver keeps a log of what it did (cases approved with their sizes,
cancellations and adjustments it approved, amounts the bank paid, failed
lines) and writes it, with audit's statistics for the last day simulated,
to ``<DATA_DIR>/year.json`` — the year-demo test counts from that log by
hand and compares with audit's figures.
"""
from __future__ import annotations

import json
import random
import time
from contextlib import ExitStack
from dataclasses import asdict
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from rich import box
from rich.markup import escape
from rich.table import Table

from cli.common import console, fail
from demo.year_log import YEAR_WAIT, CaseTrack, YearLog, first_day, last_day, working_day
from demo.year_payments import YearPayments
from shared.months import add_months


#: what the first re-review finds (yuan per month, earned by the head)
NEW_WAGE = Decimal("300.00")
MISS_RATE = 0.08


class Year(YearPayments):
    def __init__(self, demo, months: int, clock, seed: int):
        self.demo = demo
        self.config = demo.config
        self.policy = demo.policy
        self.district = demo.district
        self.months = months
        self.clock = clock
        self.rng = random.Random(seed * 7919 + months)
        self.calendar = demo.ref.calendar
        self.start = demo.today.strftime("%Y-%m")
        self.demo_seed = demo.seed
        self.cases: dict[str, CaseTrack] = {}
        self.log = YearLog(self.policy.name, self.district)
        self.per_month = max(1, demo.households // 6)
        # the schedule, relative to N: what happens in which month (index)
        self.raise_at = max(1, months // 2)
        self.campaign_at = max(1, months - 2)
        self.labour_at = 1
        self.reserved: set[str] = set()           # cases a scripted event is about
        self.miss_twice: CaseTrack | None = None
        self.income_changed: CaseTrack | None = None
        self.failed_once = False
        self.rows: list[dict] = []
        self.who_let_them_in: dict | None = None
        self.has_checkins = bool(self.policy.checkin_missed_in_a_row or self.policy.checkin_missed_per_year
                                 or self.policy.checkin_required_for_payment)

    # --- people ----------------------------------------------------------------------

    def setup_people(self, stack: ExitStack) -> None:
        from demo.people import Person
        from shared.identity import Role

        d = self.demo
        self.stack = stack
        self.admin = d.proxy(stack, d.sysadmin)
        self.finance = Person(f"finance-{self.district}", "钱会计", Role.FINANCE_OFFICER.value, self.district)
        self.auditor = Person(f"auditor-{self.district}", "审计员", Role.AUDITOR.value, self.district)
        director = d.signers.get(Role.CENTRE_DIRECTOR.value) or Person(
            f"centre-director-{self.district}", "周主任", Role.CENTRE_DIRECTOR.value, self.district)
        self.director = director
        new = [p for p in (self.finance, self.director, self.auditor) if p not in d.signers.values()]
        d.accounts.ensure(new)         # their accounts at identity, logged in; the registries show them
        self.proxies: dict[str, object] = {}
        self.officers = {code: self.rpc(p) for code, p in d.community_officer.items()}
        self.district_rpc = self.rpc(d.district_officers[0])

    def rpc(self, person):
        if person.user not in self.proxies:
            self.proxies[person.user] = self.demo.proxy(self.stack, person)
        return self.proxies[person.user]

    def approver(self, role: str, case: CaseTrack):
        """Who decides for ``role`` (one of the policy's proposal approvals) on this case."""
        d = self.demo
        if role == "township_officer":
            return d.township_officer[case.township_code]
        if role == "district_officer":
            return d.district_officers[0]
        if role == self.director.role:
            return self.director
        person = d.signers.get(role)
        if person is None:
            fail(f"the demo has nobody in the role {role} that policy {self.policy.name} asks to approve")
        return person

    # --- the year ----------------------------------------------------------------------

    def run(self) -> YearLog:
        d = self.demo
        entry = (d.runs, dict(d.counts), d.seed, d.households)    # the entry part's, for its summary line
        with ExitStack() as stack:
            self.setup_people(stack)
            self.track(self.demo.runs, 0)
            console.rule(f"[bold]a year in the life[/bold] — {self.months} months from {self.start}, "
                         f"policy {self.policy.name}")
            for i in range(self.months):
                month = add_months(self.start, i)
                self.month(i, month)
            self.finish()
        d.runs, d.counts, d.seed, d.households = entry
        return self.log

    def month(self, i: int, month: str) -> None:
        self.log.months.append(month)
        day = working_day(self.calendar, month) if i else self.demo.today
        self.clock.set(day)
        console.print(f"[bold]{month}[/bold] (clock {day})")
        row = {"month": month, "new": 0, "cancelled": 0, "raised": 0, "lowered": 0, "paid": Decimal("0.00"),
               "failed": 0}
        if i:
            row["new"] = self.admit(i, day)
        else:
            row["new"] = sum(1 for c in self.cases.values() if c.approved_on[:7] == month)
        if self.has_checkins:
            self.checkins(i, month, day)
        if i == self.labour_at:
            self.labour(month, day)
        self.rereviews(month, day)
        if i == self.raise_at:
            self.raise_standard(month, day)
        if i == self.campaign_at:
            self.campaign(month, day)
        self.pay(month, day, row)
        end = last_day(month)
        self.clock.set(end)
        self.month_end(month, end)
        for entry in self.log.cancelled:
            row["cancelled"] += entry["decided_on"][:7] == month
        for entry in self.log.changed:
            if entry["decided_on"][:7] == month:
                row[entry["direction"]] += 1
        row["active"] = sum(1 for c in self.cases.values()
                            if c.approved_on <= end.isoformat() and (c.end_month is None or c.end_month > month))
        self.rows.append(row)
        if i == self.campaign_at and self.log.campaign:
            self.show_who_let_them_in()

    # --- new cases -----------------------------------------------------------------------

    def track(self, runs, index: int) -> int:
        added = 0
        for r in runs:
            case = r.case
            if not case or case["id"] in self.cases:
                continue
            c = CaseTrack(case["id"], r.household_id, r.community.code, r.community.parent, case["area_type"],
                          int(case["household_size"]), case["monthly_benefit"], case["approved_on"],
                          case["start_month"], case.get("next_rereview_on"), run=r)
            self.cases[c.case_id] = c
            self.log.approved.append({"case_id": c.case_id, "area_type": c.area_type, "size": c.size,
                                      "approved_on": c.approved_on, "benefit": c.benefit,
                                      "start_month": c.start_month})
            added += 1
        return added

    def admit(self, i: int, day: date) -> int:
        """This month's applications, through the whole entry review (the entry part's steps)."""
        d = self.demo
        d.today = day
        d.households = self.per_month
        d.with_exceptions = False
        d.seed = self.demo_seed + 101 * i
        d.runs = []
        with console.capture():
            d.seed = d.free_seed(self.district_rpc)
            d.register_households(self.officers)
            d.review_all(self.stack, self.admin, self.district_rpc, self.officers)
        added = self.track(d.runs, i)
        console.print(f"   new applications: {len(d.runs)} households registered, "
                      f"{sum(1 for r in d.runs if r.application_id)} applied, "
                      f"[green]{added} approved[/green] through {len(self.policy.review_steps)} review steps")
        return added

    # --- facts: check-ins, labour, re-reviews ---------------------------------------------------

    def active(self, month: str) -> list[CaseTrack]:
        """Cases paid for ``month``: started, not ended."""
        return [c for c in self.cases.values()
                if c.start_month <= month and (c.end_month is None or c.end_month > month)]

    def pick(self, candidates: list[CaseTrack], what: str) -> CaseTrack | None:
        free = [c for c in candidates if c.case_id not in self.reserved]
        if not free:
            console.print(f"   (no case left for {what})")
            return None
        chosen = self.rng.choice(free)
        self.reserved.add(chosen.case_id)
        return chosen

    def checkins(self, i: int, month: str, day: date) -> None:
        """续保登记 for the month; some missed (never two in a row but for one household)."""
        from shared.errors import Conflict

        due = self.active(month)
        if i == 1 and self.months >= 3 and self.policy.checkin_missed_in_a_row:
            self.miss_twice = self.pick([c for c in due if c.start_month == month], "two missed check-ins")
        recorded, missed = 0, []
        for c in due:
            planned = c is self.miss_twice and len(c.missed) < self.policy.checkin_missed_in_a_row
            by_chance = (c is not self.miss_twice and not c.missed and c.case_id not in self.reserved
                         and self.rng.random() < MISS_RATE)
            if planned or by_chance:
                c.missed.append(month)
                missed.append(c)
                continue
            try:
                self.officers[c.community_code].intake.record_checkin(
                    {"household_id": c.household_id, "month": month, "checked_in_on": day.isoformat()})
                recorded += 1
            except Conflict:
                pass               # already stamped (the entry part) — or the case is over
        self.log.checkins[month] = recorded
        self.log.missed_checkins[month] = len(missed)
        console.print(f"   check-ins (续保登记): {recorded} stamped, {len(missed)} missed"
                      + (" (one household for the second month in a row)"
                         if self.miss_twice in missed and len(self.miss_twice.missed) > 1 else ""))

    def labour(self, month: str, day: date) -> None:
        """公益劳动: one member absent without excuse as often as the policy's rule counts, or
        refusing suitable work as often as its rule counts; others attend."""
        counted = ((self.policy.labour_unexcused_absences_to_cancel, "unexcused", "无故缺勤")
                   if self.policy.labour_unexcused_absences_to_cancel
                   else (self.policy.work_refusals_to_stop_share, "refused", "拒绝适当工作")
                   if self.policy.work_refusals_to_stop_share else (None, None, None))
        times, attendance, label = counted
        due = self.active(month)
        target = (self.pick([c for c in due if c.size >= 2 and c.run and c.run.member_ids], "the labour rule")
                  if times else None)
        others = [c for c in due if c is not target and c.run and c.run.member_ids][:4]
        records = []
        for k, c in enumerate(others):
            records.append((c, "attended", day - timedelta(days=1 + k)))
        if target is not None:
            records += [(target, attendance, day - timedelta(days=k)) for k in range(times)]
        for c, how, on in records:
            on = max(on, first_day(month))
            self.officers[c.community_code].intake.record_labour({
                "household_id": c.household_id, "member_id": c.run.member_ids[-1] if how != "attended"
                else c.run.member_ids[0], "labour_date": on.isoformat(), "activity": "社区清扫",
                "attendance": how})
        console.print(f"   public-welfare labour (公益劳动): {len(others)} attended"
                      + (f", one member {label} ×{times}" if target is not None else
                         " (the policy has no labour rule)"))

    def rereviews(self, month: str, day: date) -> None:
        """复核 of the cases whose date falls this month; the first finds the income changed."""
        end = last_day(month).isoformat()
        due = [c for c in self.active(month) + [c for c in self.cases.values() if c.start_month > month]
               if c.next_rereview_on and c.next_rereview_on <= end and (c.end_month is None or c.end_month > month)]
        if not due:
            return
        changed = None
        if self.income_changed is None:
            # not the household whose objection added an income the household record does not list
            # (its record and the verified income differ already)
            objected = (self.demo.objection or {}).get("run")
            changed = self.pick([c for c in due if c.run and c.run.data and c.run is not objected],
                                "an income change")
            if changed is not None:
                self.income_changed = changed
                data = dict(changed.run.data)
                data["incomes"] = list(data["incomes"]) + [
                    {"member": 0, "source": "wages", "monthly_amount": f"{NEW_WAGE:.2f}"}]
                self.officers[changed.community_code].intake.update_household(changed.household_id, data)
                changed.run.data = data
        for c in due:
            out = self.officers[c.community_code].review.record_rereview(
                {"case_id": c.case_id, "reviewed_on": day.isoformat(), "remarks": "年度复核"})
            c.next_rereview_on = out["case"]["next_rereview_on"]
        if changed is not None:          # review proposes on intake's household_updated, or on the re-review
            self.demo.wait(lambda: (any(p["status"] == "pending" for p in
                                        self.district_rpc.review.get_case(changed.case_id)["proposals"]),
                                    "no proposal yet"), "review to propose the income change", YEAR_WAIT)
        console.print(f"   re-reviews (复核): {len(due)} recorded"
                      + (f"; one finds a new wage of {NEW_WAGE} yuan/month → adjustment proposed" if changed else ""))

    # --- standards, campaigns ---------------------------------------------------------------------

    def raise_standard(self, month: str, day: date) -> None:
        """提标 from the month's first day: payments recalculates every urban case under it."""
        standard = self.demo.ref.standards.standard_for(self.district, "urban", day)
        if standard is None:
            console.print("   (no urban standard to raise)")
            return
        current = self.rpc(self.director).payments.list_standards(
            {"division_code": self.district, "area_type": "urban", "on": day.isoformat()})
        old = Decimal(current[0]["monthly_amount"]) if current else standard.monthly_amount
        new = old + Decimal("50.00")
        in_scope = [c for c in self.cases.values() if c.area_type == "urban"
                    and (c.end_month is None or c.end_month > month)]
        out = self.rpc(self.director).payments.set_standard({
            "division_code": self.district, "area_type": "urban", "effective_from": first_day(month).isoformat(),
            "effective_to": None, "monthly_amount": f"{new:.2f}"})
        change = out["change"] or {}
        for c in in_scope:
            self.log.changed.append({"case_id": c.case_id, "area_type": c.area_type, "size": c.size,
                                     "direction": "raised", "decided_on": day.isoformat(),
                                     "effective_month": max(month, c.start_month), "source": "standard",
                                     "rule": "standard_raise"})
        self.log.standard_raise = {"month": month, "old": f"{old:.2f}", "new": f"{new:.2f}",
                                   "cases_in_scope": len(in_scope), "cases_raised": change.get("cases_raised"),
                                   "cases_held": change.get("cases_held")}
        console.print(f"   standard raise (提标): urban {old:.2f} → [bold]{new:.2f}[/bold] yuan/person/month from "
                      f"{first_day(month)}: payments raised {change.get('cases_raised')} cases, "
                      f"{change.get('cases_held')} held back")

    def campaign(self, month: str, day: date) -> None:
        """入户清查 over the township with most cases; one found wrongly included."""
        live = [c for c in self.cases.values() if c.end_month is None]
        if not live:
            return
        townships: dict[str, list[CaseTrack]] = {}
        for c in live:
            townships.setdefault(c.township_code, []).append(c)
        township, cases = max(sorted(townships.items()), key=lambda kv: len(kv[1]))
        organiser = self.rpc(self.demo.township_officer[township])
        campaign = organiser.review.create_campaign({
            "unit_code": township, "name": f"{month[:4]}年入户清查", "starts_on": day.isoformat(),
            "ends_on": (day + timedelta(days=20)).isoformat(), "teams": ["第一清查组", "第二清查组"]})
        # (an urban one where there is one: the year's paragraph counts urban cancellations)
        wrong = self.pick([c for c in cases if c.area_type == "urban"] or cases, "a wrongly included finding")
        results: dict[str, int] = {}
        for c in cases:
            result = "wrongly_included" if c is wrong else "kept"
            # the teams' findings, recorded by the community's officer (the township, which
            # organised the campaign, then decides on what they propose: proposer ≠ approver)
            self.officers[c.community_code].review.record_inspection({
                "campaign_id": campaign["id"], "case_id": c.case_id, "result": result,
                "remarks": "入户核查发现该户隐瞒经营收入，不符合条件" if c is wrong else "情况属实"})
            results[result] = results.get(result, 0) + 1
        progress = organiser.review.campaign_progress(campaign["id"])
        self.log.campaign = {"id": campaign["id"], "township": township, "month": month, "results": results,
                             "wrongly_included": wrong.case_id if wrong else None}
        console.print(f"   re-inspection campaign (入户清查) over township {township}: {len(cases)} cases to "
                      f"{len(campaign['teams'])} teams; " + ", ".join(f"{n} {r}" for r, n in sorted(results.items()))
                      + f" (progress: {escape(json.dumps(progress, ensure_ascii=False))[:160]})")

    def show_who_let_them_in(self) -> None:
        from cli.audit import people_table
        from cli.common import ping

        case_id = self.log.campaign["wrongly_included"]
        if not case_id:
            return
        try:
            ping(self.config, "audit", 2.0)
        except Exception:  # noqa: BLE001 - no audit service
            console.print("   (the audit service is not running: no 'who let them in')")
            return
        auditor = self.rpc(self.auditor)

        def traced():
            lines = auditor.audit.trace({"case_id": case_id})
            return any(line["what"] == "review.case_cancelled" for line in lines), "case_cancelled not recorded"
        self.demo.wait(traced, "audit to record the cancellation", YEAR_WAIT)
        answer = auditor.audit.who_let_them_in(case_id)
        self.who_let_them_in = answer
        console.print(f"   wrongly included → cancelled; `dibao audit trace --who-let-them-in {case_id}`:")
        console.print(people_table(answer))

    # --- payments ---------------------------------------------------------------------------------

    # --- month end -------------------------------------------------------------------------------

    def month_end(self, month: str, end: date) -> None:
        """The month's rules (review.run_month_end), then every pending proposal decided by the
        people the policy names, in order; an unexcused labour absence only "may" cancel: the
        township weighs it and keeps the case, with its reason."""
        from contracts.review import RULE_UNEXCUSED_LABOUR

        result = self.district_rpc.review.run_month_end(end.isoformat())
        made = {rule: n for rule, n in result["proposals"].items() if n}
        pending = self.district_rpc.review.list_proposals(self.district, "pending")
        decided = []
        for p in sorted(pending, key=lambda p: p["id"]):
            c = self.cases.get(p["case_id"])
            if c is None:
                continue
            if p["rule"] == RULE_UNEXCUSED_LABOUR:
                person = self.approver(self.policy.proposal_approvals[0], c)
                self.rpc(person).review.reject_proposal({"proposal_id": p["id"],
                                                         "reason": "因病请假，已补交医院证明，保留低保"})
                self.log.rejected_proposals.append({"case_id": c.case_id, "rule": p["rule"],
                                                    "decided_on": end.isoformat()})
                decided.append(f"{p['rule']} → kept (rejected by the {person.role.replace('_', ' ')})")
                continue
            for role in self.policy.proposal_approvals:
                self.rpc(self.approver(role, c)).review.approve_proposal(
                    {"proposal_id": p["id"], "remarks": "同意"})
            decided.append(f"{p['rule']} → {self.record_decision(c, p, end)}")
        console.print(f"   month end {result['month']}: "
                      + (", ".join(f"{n} {rule}" for rule, n in made.items()) or "no rule proposes anything")
                      + (f"; {result['review_due']} re-review reminders" if result.get("review_due") else "")
                      + ("; decided by " + " → ".join(self.policy.proposal_approvals) + ": " + "; ".join(decided)
                         if decided else ""))

    def record_decision(self, c: CaseTrack, proposal: dict, end: date) -> str:
        """What the approval did to the case (review's answer), into the log."""
        case = self.district_rpc.review.get_case(c.case_id)
        effective = add_months(end.strftime("%Y-%m"), 1)        # "from the next month"
        old = Decimal(proposal["monthly_benefit"])
        entry = {"case_id": c.case_id, "household_id": c.household_id, "area_type": c.area_type,
                 "decided_on": end.isoformat(),
                 "effective_month": effective, "rule": proposal["rule"]}
        if case["status"] == "cancelled":
            c.end_month = case["end_month"]
            self.log.cancelled.append(dict(entry, size=c.size, wrongly_included=proposal["wrongly_included"],
                                           end_month=case["end_month"]))
            return "[red]cancelled[/red], the household told"
        new = Decimal(case["monthly_benefit"])
        c.size, c.benefit = int(case["household_size"]), case["monthly_benefit"]
        if new == old:
            return "benefit unchanged"
        direction = "raised" if new > old else "lowered"
        self.log.changed.append(dict(entry, size=c.size, direction=direction, old=f"{old:.2f}", new=f"{new:.2f}",
                                     source="review"))
        return f"{direction} {old:.2f} → {new:.2f} from {effective}"

    # --- the end -----------------------------------------------------------------------------------

    def finish(self) -> None:
        """Audit's statistics for the last day simulated, and the month-by-month table."""
        from cli.common import ping

        last = last_day(self.log.months[-1])
        self.log.last_day = last.isoformat()
        self.print_table()
        try:
            ping(self.config, "audit", 2.0)
        except Exception:  # noqa: BLE001 - no audit service: no statistics
            console.print("(the audit service is not running: no statistics)")
            return
        auditor = self.rpc(self.auditor)
        self.settle(auditor)
        figures = auditor.audit.statistics(last.isoformat())
        self.log.statistics = figures
        console.print(f"[bold]statistics for {last}[/bold] (`dibao stats --date {last}`, from the audit record):")
        console.print(escape(figures["paragraph"]))

    def settle(self, auditor, timeout: float = 60.0) -> None:
        """Until the audit record stops growing with nothing left in its queue (every
        service's outbox relayed — it polls every OUTBOX_POLL_SECONDS — every event taken in)."""
        import eventlet
        from shared.broker import connection
        from shared.bus import AUDIT_QUEUE

        quiet = 2 * float(self.config.get("OUTBOX_POLL_SECONDS", 1.0)) + 0.5
        deadline = time.monotonic() + timeout
        last, since = -1, time.monotonic()
        with connection(self.config, who="cli") as conn:     # a passive declare: the tools' user may
            channel = conn.channel()
            while time.monotonic() < deadline:
                recorded = auditor.audit.ping()["recorded"]
                waiting = channel.queue_declare(queue=AUDIT_QUEUE, passive=True).message_count
                if recorded != last or waiting:
                    last, since = recorded, time.monotonic()
                elif time.monotonic() - since >= quiet:
                    return
                eventlet.sleep(0.3)
        fail(f"the audit record did not settle within {timeout:.0f} s ({last} records, {waiting} waiting in "
             f"{AUDIT_QUEUE}): the statistics would miss events")

    def print_table(self) -> None:
        table = Table(title=f"month by month (policy {self.policy.name})", box=box.SIMPLE_HEAVY)
        for col in ("month", "active", "new", "cancelled", "raised", "lowered", "paid (yuan)", "failed lines"):
            table.add_column(col, justify="left" if col == "month" else "right")
        for r in self.rows:
            table.add_row(r["month"], str(r["active"]), str(r["new"]), str(r["cancelled"]), str(r["raised"]),
                          str(r["lowered"]), f"{r['paid']:.2f}", str(r["failed"]))
        console.print(table)


def run_year(demo, months: int, clock, seed: int) -> YearLog:
    """Drive the demo's district through ``months`` months; write the log next to the demo's data."""
    year = Year(demo, months, clock, seed)
    log = year.run()
    out = Path(demo.config.get("DATA_DIR") or ".") / "year.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(asdict(log), ensure_ascii=False, indent=1, default=str), encoding="utf-8")
    console.print(f"the year's log (what the demo did) and the statistics: {out}")
    return log
