"""``dibao review``: the entry review (进口) as an operator sees it.

- ``dibao review status APPLICATION_ID``: where one application stands —
  status, the open step and its deadline, the whole process's deadline,
  objections, flags, the decision, and the case when it was approved.
- ``dibao review overdue UNIT_CODE [--as-of DATE]``: the statutory clock —
  per township and community, the open applications past a step's or the
  whole process's deadline (working days, computed from stored dates).

Dynamic management (动态管理, the exit 出口):

- ``dibao review month-end [--as-of DATE]``: run the month-end rules now;
- ``dibao review rereviews UNIT_CODE [--as-of DATE]``: cases past their
  re-review date, per township and community;
- ``dibao review proposals UNIT_CODE [--status pending]``, ``dibao review
  approve PROPOSAL_ID``, ``dibao review reject PROPOSAL_ID --reason ...``;
- ``dibao review category CASE_ID CATEGORY --reason ...``;
- ``dibao review campaign-create UNIT_CODE --from DATE --to DATE --team A
  --team B``, ``dibao review inspect CAMPAIGN_ID CASE_ID RESULT``,
  ``dibao review campaign-progress CAMPAIGN_ID``.

All ask the review service (``review.get_application``, ``review.overdue``)
as the logged-in person (``dibao login``). Names and ID numbers are shown
masked (脱敏).
"""
from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import Optional

import typer
from rich import box
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from cli.common import cli_command, console, fail, get_config, home_district, rpc_session

app = typer.Typer(
    help="The entry review (进口) and dynamic management (出口): status, overdue lists, month end, "
         "proposals, categories, re-inspection campaigns.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)

#: what the steps of the shipped policies are called on paper
STEP_LABEL = {
    "community_evaluation": "社区民主评议",
    "community_notice": "社区公示",
    "township_review": "乡镇（街道）评审",
    "township_opinion": "乡镇（街道）初审",
    "township_notice": "乡镇（街道）公示",
    "joint_review": "区低保中心会审",
}
KIND_LABEL = {"evaluation": "民主评议", "notice": "张榜公示", "committee": "评审委员会", "initial_opinion": "初审意见",
              "joint_review": "会审", "result_notice": "张榜公布"}
STATUS_LABEL = {
    "awaiting_investigation": "待入户调查",
    "in_review": "审核中",
    "awaiting_reinvestigation": "异议待重新调查",
    "approved": "已批准",
    "rejected": "未通过",
}
STATUS_STYLE = {"approved": "green", "rejected": "red", "awaiting_reinvestigation": "yellow"}
CATEGORY_LABEL = {"long_term": "长期", "stable": "稳定", "unstable": "不稳定", "able_to_work": "有劳动能力"}
ROLE_LABEL = {"deputy_director": "分管局长", "centre_director": "低保中心主任", "investigator": "调查专干"}
OPEN = ("awaiting_investigation", "in_review", "awaiting_reinvestigation")


def step_label(step: str | None) -> str:
    return STEP_LABEL.get(step, step or "—") if step else "—"


def status_text(status: str) -> str:
    label = f"{status} ({STATUS_LABEL[status]})" if status in STATUS_LABEL else status
    style = STATUS_STYLE.get(status)
    return f"[{style}]{escape(label)}[/{style}]" if style else escape(label)


def category_text(category: str | None) -> str:
    if not category:
        return "—"
    return f"{category} ({CATEGORY_LABEL[category]})" if category in CATEGORY_LABEL else category


def as_date(value) -> date | None:
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def division_name(divisions, code: str | None) -> str:
    if not code:
        return "—"
    try:
        return divisions.get(code).name
    except KeyError:
        return code


# --- status --------------------------------------------------------------------

#: how a deadline counted across a year without its official schedule is marked, and why
PROVISIONAL_NOTE = ("[yellow]*[/yellow] provisional (暂定): counted across a year whose official working-day "
                    "schedule (调休) is not loaded yet — it may move; `dibao calendar import FILE` loads it.")


def provisional_mark(provisional) -> str:
    return " [yellow]* provisional[/yellow]" if provisional else ""


def use_loaded_schedules(rpc, calendar) -> None:
    """Count "working days late" on the official schedules review has loaded."""
    from shared.workday_schedule import years_of_payload

    calendar.replace_schedule(years_of_payload(rpc.review.calendar_schedules()))


def late_by(calendar, due, as_of: date) -> str:
    """``3 working days`` past ``due`` as of ``as_of``, or ``""`` when not late."""
    due = as_date(due)
    if due is None or due >= as_of:
        return ""
    days = calendar.workdays_between(due, as_of)
    return f"{days} working day{'s' if days != 1 else ''} late" if days else "late (non-working days)"


def steps_table(policy, f: dict) -> Table:
    """The policy's steps, one a line, with this application's place among them."""
    names = [s.name for s in policy.review_steps]
    current = names.index(f["step"]) if f.get("step") in names else None
    grid = Table.grid(padding=(0, 1))
    grid.add_column(no_wrap=True)
    grid.add_column(no_wrap=True)
    grid.add_column()
    for n, step in enumerate(policy.review_steps):
        label = escape(STEP_LABEL.get(step.name) or KIND_LABEL.get(step.kind, ""))
        if f["status"] == "approved" or (current is not None and n < current):
            grid.add_row("  [green]✓[/green]", escape(step.name), label)
        elif current is not None and n == current and f["status"] == "rejected":
            grid.add_row("  [red]✗[/red]", f"[red]{escape(step.name)}[/red]", label + "  [red]rejected here[/red]")
        elif current is not None and n == current:
            grid.add_row("  [bold]▶[/bold]", f"[bold]{escape(step.name)}[/bold]", label + "  [dim](open)[/dim]")
        else:
            grid.add_row("   ", f"[dim]{escape(step.name)}[/dim]", f"[dim]{label}[/dim]")
    return grid


def household_line(rpc, household_id: str) -> str | None:
    """``张*明 (420***********1234), 3 persons`` from intake, or None when intake cannot say."""
    from shared.masking import mask_name, mask_resident_id

    try:
        household = rpc.intake.get_household(household_id)
    except Exception:  # noqa: BLE001 - intake down or not allowed: the review's own state still shows
        return None
    head = next((m for m in household.get("members", []) if m.get("relation") == "head"), None)
    name = mask_name(household.get("head_name") or (head or {}).get("name"))
    rid = mask_resident_id(head.get("resident_id")) if head else ""
    size = len(household.get("members", []))
    return f"{name}{f' ({rid})' if rid else ''}, {size} person{'s' if size != 1 else ''}"


@app.command("status")
@cli_command
def status(
    ctx: typer.Context,
    application_id: str = typer.Argument(..., help="the application's id (from intake)"),
) -> None:
    """An application's review: status, current step, deadlines, objections, flags, the case."""
    from shared.policy import load_policy
    from shared.reference import ReferenceData

    config = get_config(ctx)
    ref = ReferenceData.from_config(config)
    today = ref.today()
    with rpc_session(config) as rpc:
        use_loaded_schedules(rpc, ref.calendar)
        f = rpc.review.get_application(application_id)
        household = household_line(rpc, f["household_id"])
    try:
        policy = load_policy(f["policy"])
    except LookupError:
        policy = None
    divisions = ref.divisions

    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")   # Chinese text has no spaces to wrap at
    grid.add_row("application", escape(f["application_id"]))
    grid.add_row("household", escape(household or f["household_id"]))
    grid.add_row("community", escape(f"{division_name(divisions, f['community_code'])} {f['community_code']}"))
    grid.add_row("township", escape(f"{division_name(divisions, f['township_code'])} {f['township_code']}"))
    grid.add_row("policy", escape(f"{f['policy']}" + (f" — {policy.title}" if policy else "")))
    grid.add_row("status", status_text(f["status"]))
    if f.get("step"):
        step = policy.step(f["step"]) if policy else None
        open_ = f["status"] in OPEN
        grid.add_row("current step" if open_ else "last step", escape(f"{f['step']} ({step_label(f['step'])})"))
        if step is not None:
            grid.add_row("kind", escape(f"{step.kind} ({KIND_LABEL.get(step.kind, step.kind)}), "
                                        f"at the {step.level} level"))
        grid.add_row("step opened", escape(str(f.get("step_opened_on") or "—")))
        if open_:
            late = late_by(ref.calendar, f.get("step_due_on"), today)
            grid.add_row("step due", escape(str(f.get("step_due_on") or "no deadline"))
                         + provisional_mark(f.get("step_due_provisional"))
                         + (f"  [bold red]{escape(late)}[/bold red]" if late else ""))
    grid.add_row("accepted", escape(str(f.get("accepted_on") or "—")))
    late = late_by(ref.calendar, f.get("process_due_on"), today) if f["status"] in OPEN else ""
    grid.add_row("process due", escape(str(f.get("process_due_on") or "no deadline"))
                 + provisional_mark(f.get("process_due_provisional"))
                 + (f"  [bold red]{escape(late)}[/bold red]" if late else ""))
    grid.add_row("objections", str(f.get("objections", 0))
                 + ("  (the evaluation must be held; re-investigated)" if f.get("objections") else ""))
    investigators = "、".join(i.get("name") or i.get("user", "?") for i in f.get("investigators") or [])
    grid.add_row("investigators", escape(investigators or "—"))
    flags = f.get("flags") or []
    grid.add_row("flags", "[yellow]" + escape("; ".join(flag_text(x) for x in flags)) + "[/yellow]" if flags else "—")
    if f.get("decided_on"):
        grid.add_row("decided", escape(str(f["decided_on"])))
    if f.get("rejection_reason"):
        grid.add_row("reason", f"[red]{escape(f['rejection_reason'])}[/red]")
    console.print(Panel(grid, title=f"review of application {escape(f['application_id'][:8])}…",
                        expand=False))
    if f.get("provisional"):
        console.print(PROVISIONAL_NOTE)
    if policy is not None:
        console.print(f"the steps of policy {escape(policy.name)}:")
        console.print(steps_table(policy, f))

    case = f.get("case")
    if case:
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold", no_wrap=True)
        grid.add_column()
        grid.add_row("case", escape(case["id"]))
        grid.add_row("monthly benefit", f"[bold]{escape(case['monthly_benefit'])}[/bold] yuan"
                     + (f" (overridden: {escape(case['benefit_override_reason'])})"
                        if case.get("benefit_override_reason") else ""))
        grid.add_row("standard", f"{escape(case['standard'])} yuan per person, {case['household_size']} "
                                 f"person{'s' if case['household_size'] != 1 else ''}")
        grid.add_row("category", escape(category_text(case["category"])))
        grid.add_row("paid from", escape(case["start_month"]))
        grid.add_row("next re-review", escape(str(case["next_rereview_on"])))
        grid.add_row("approved", escape(str(case["approved_on"])))
        console.print(Panel(grid, title="case (低保对象)", expand=False))


def flag_text(flag: dict) -> str:
    if flag.get("flag") == "related_evaluator":
        return (f"related evaluator ({'、'.join(flag.get('names', []))}, {flag.get('on', '')}): "
                f"the district visits")
    return ", ".join(f"{k}={v}" for k, v in flag.items())


# --- overdue -------------------------------------------------------------------

def parse_as_of(value: Optional[str]) -> str | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError:
        fail(f"--as-of must be a date YYYY-MM-DD, not {value!r}")


@app.command("overdue")
@cli_command
def overdue(
    ctx: typer.Context,
    unit_code: str = typer.Argument(..., help="district, township or community code"),
    as_of: Optional[str] = typer.Option(None, "--as-of", metavar="DATE",
                                        help="the day to judge by, YYYY-MM-DD (default: today)"),
) -> None:
    """The statutory clock: applications past a step's or the whole process's deadline."""
    from shared.reference import ReferenceData

    config = get_config(ctx)
    day = parse_as_of(as_of)
    ref = ReferenceData.from_config(config)
    judged = as_date(day) if day else ref.today()
    with rpc_session(config) as rpc:
        use_loaded_schedules(rpc, ref.calendar)
        files = rpc.review.overdue(unit_code, day)
    divisions = ref.divisions
    where = f"{division_name(divisions, unit_code)} {unit_code}"
    if not files:
        console.print(f"no application within {escape(where)} is past a deadline as of {judged.isoformat()} "
                      f"(policy clock: working days)")
        return

    by_unit: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for f in files:
        by_unit[(f["township_code"], f["community_code"])].append(f)
    console.print(f"[bold]{len(files)} application{'s' if len(files) != 1 else ''} past a deadline[/bold] within "
                  f"{escape(where)} as of {judged.isoformat()} ([red]step[/red]: the open step's deadline, "
                  f"[red]process[/red]: the whole process's; counted in Chinese working days):")
    for (township, community), rows in sorted(by_unit.items()):
        title = (f"{division_name(divisions, township)} › {division_name(divisions, community)} {community} "
                 f"— {len(rows)}")
        table = Table(title=escape(title), box=box.SIMPLE_HEAD, title_justify="left", title_style="bold",
                      padding=(0, 1))
        table.add_column("application · status · open step", no_wrap=True)
        table.add_column("deadline passed", no_wrap=True)
        table.add_column("working days late", justify="right")
        table.add_column("objections", justify="right")
        for f in rows:
            deadlines, late = [], []
            for which, due in (("step", f.get("step_due_on")), ("process", f.get("process_due_on"))):
                due = as_date(due)
                if due is not None and due < judged:
                    deadlines.append(f"{which} {due.isoformat()}" + (" *" if f.get(f"{which}_due_provisional")
                                                                       else ""))
                    late.append(str(ref.calendar.workdays_between(due, judged)))
            step = f"{f['step']} {step_label(f['step'])}" if f.get("step") else "no step open"
            table.add_row(f"{escape(f['application_id'])}\n{status_text(f['status'])}\n{escape(step)}",
                          "[red]" + "\n".join(deadlines) + "[/red]", "\n".join(late), str(f.get("objections", 0)))
        console.print(table)
    if any(f.get("provisional") for f in files):
        console.print(PROVISIONAL_NOTE)


# --- dynamic management (动态管理, the exit 出口) ------------------------------------

RESULT_LABEL = {"kept": "维持", "raised": "提高", "lowered": "降低", "cancelled": "停保", "wrongly_included": "错保"}
RULE_LABEL = {
    "two_missed_checkins_in_a_row": "连续两月未续保登记", "three_missed_checkins_in_a_year": "一年累计三次未续保登记",
    "unexcused_labour_absence": "无故不参加公益劳动", "refused_suitable_work": "三次拒绝适当工作",
    "income_above_standard": "收入超过标准", "income_changed": "收入或人口变化", "member_death_review": "成员死亡提前复核",
    "campaign_inspection": "入户清查", "manual": "人工提出",
}


def rule_text(rule: str) -> str:
    return f"{rule} ({RULE_LABEL[rule]})" if rule in RULE_LABEL else rule


def _rpc(ctx):
    config = get_config(ctx)
    return config, rpc_session(config)


@app.command("month-end")
@cli_command
def month_end_command(
    ctx: typer.Context,
    as_of: Optional[str] = typer.Option(None, "--as-of", metavar="DATE", help="judge the month ended by this day"),
) -> None:
    """Run the month-end rules (check-ins, labour) and re-review reminders now; a second run adds nothing."""
    _, client = _rpc(ctx)
    with client as rpc:
        result = rpc.review.run_month_end(parse_as_of(as_of))
    console.print(f"month end of [bold]{escape(result['month'])}[/bold] (as of {escape(result['as_of'])}):")
    for rule, count in result["proposals"].items():
        console.print(f"  {count:>6} proposal{'s' if count != 1 else ''}  {escape(rule_text(rule))}")
    due = result["review_due"]
    console.print(f"  {due:>6} re-review reminder{'s' if due != 1 else ''} (review_due)")


@app.command("rereviews")
@cli_command
def rereviews(
    ctx: typer.Context,
    unit_code: str = typer.Argument(..., help="district, township or community code"),
    as_of: Optional[str] = typer.Option(None, "--as-of", metavar="DATE", help="the day to judge by"),
) -> None:
    """Cases past their re-review date (复核逾期), per township and community."""
    from shared.reference import ReferenceData

    config, client = _rpc(ctx)
    with client as rpc:
        cases = rpc.review.overdue_rereviews(unit_code, parse_as_of(as_of))
    divisions = ReferenceData.from_config(config).divisions
    if not cases:
        console.print(f"no case within {escape(unit_code)} is past its re-review date")
        return
    by_unit: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for case in cases:
        by_unit[(case["township_code"], case["community_code"])].append(case)
    console.print(f"[bold]{len(cases)} case{'s' if len(cases) != 1 else ''} past the re-review date[/bold]:")
    for (township, community), rows in sorted(by_unit.items()):
        table = Table(title=escape(f"{division_name(divisions, township)} › {division_name(divisions, community)} "
                                   f"{community} — {len(rows)}"), box=box.SIMPLE_HEAD, title_justify="left")
        table.add_column("case")
        table.add_column("category")
        table.add_column("re-review due", no_wrap=True)
        table.add_column("monthly benefit", justify="right")
        for case in rows:
            table.add_row(escape(case["id"]), escape(category_text(case["category"])),
                          f"[red]{escape(str(case['next_rereview_on']))}[/red]", escape(case["monthly_benefit"]))
        console.print(table)


@app.command("proposals")
@cli_command
def list_proposals(
    ctx: typer.Context,
    unit_code: str = typer.Argument(..., help="district, township or community code"),
    status: Optional[str] = typer.Option("pending", "--status",
                                         help="pending | approved | rejected | applied | withdrawn | all"),
) -> None:
    """Proposals to adjust or cancel cases: rule, fact, reason, approvals so far."""
    _, client = _rpc(ctx)
    with client as rpc:
        rows = rpc.review.list_proposals(unit_code, None if status == "all" else status)
    if not rows:
        console.print(f"no {escape(status or '')} proposal within {escape(unit_code)}")
        return
    console.print(f"[bold]{len(rows)} proposal{'s' if len(rows) != 1 else ''}[/bold] within {escape(unit_code)}:")
    for p in rows:   # one block each: ids and Chinese reasons do not fit table cells on a terminal
        approvals = ", ".join(f"{a['role']} {a['user']}" for a in p["approvals"]) or "none yet"
        console.print(f"[bold]#{p['id']}[/bold] {escape(p['status'])}  {escape(rule_text(p['rule']))}  "
                      f"→ {escape(p['action'] + (' (错保 wrongly included)' if p['wrongly_included'] else ''))}",
                      soft_wrap=True)
        console.print(f"    case {escape(p['case_id'])} ({escape(p['community_code'])}), fact {escape(p['fact'])}",
                      soft_wrap=True)
        console.print(f"    reason: {escape(p['reason'])}", soft_wrap=True)
        console.print(f"    approvals: {escape(approvals)}", soft_wrap=True)


@app.command("approve")
@cli_command
def approve(
    ctx: typer.Context,
    proposal_id: int = typer.Argument(...),
    remarks: str = typer.Option("", "--remarks"),
) -> None:
    """Approve a proposal in your role (the policy says who, in order); the last approval applies it."""
    _, client = _rpc(ctx)
    with client as rpc:
        p = rpc.review.approve_proposal({"proposal_id": proposal_id, "remarks": remarks})
    console.print(f"proposal {p['id']} ({escape(rule_text(p['rule']))}): [bold]{escape(p['status'])}[/bold] — "
                  f"approvals: {escape(', '.join(a['role'] for a in p['approvals']))}")


@app.command("reject")
@cli_command
def reject(
    ctx: typer.Context,
    proposal_id: int = typer.Argument(...),
    reason: str = typer.Option(..., "--reason", help="why (required)"),
) -> None:
    """Reject a proposal, with the reason; the case stays as it is."""
    _, client = _rpc(ctx)
    with client as rpc:
        p = rpc.review.reject_proposal({"proposal_id": proposal_id, "reason": reason})
    console.print(f"proposal {p['id']}: [bold]{escape(p['status'])}[/bold] ({escape(p['decision_reason'] or '')})")


@app.command("category")
@cli_command
def category(
    ctx: typer.Context,
    case_id: str = typer.Argument(...),
    new_category: str = typer.Argument(..., metavar="CATEGORY"),
    reason: str = typer.Option("", "--reason", help="why (required by the service)"),
) -> None:
    """Change a case's category (and so its re-review cadence), with the reason."""
    _, client = _rpc(ctx)
    with client as rpc:
        case = rpc.review.change_category({"case_id": case_id, "category": new_category, "reason": reason})
    console.print(f"case {escape(case['id'])}: {escape(category_text(case['category']))}, next re-review "
                  f"{escape(str(case['next_rereview_on']))}")


@app.command("campaign-create")
@cli_command
def campaign_create(
    ctx: typer.Context,
    unit_code: str = typer.Argument(..., help="the unit whose active cases are inspected"),
    starts_on: str = typer.Option(..., "--from", metavar="DATE"),
    ends_on: str = typer.Option(..., "--to", metavar="DATE"),
    teams: list[str] = typer.Option(..., "--team", help="an inspection team (repeat)"),
    name: str = typer.Option("", "--name"),
) -> None:
    """入户清查: every active case of the unit, assigned round-robin to the teams."""
    _, client = _rpc(ctx)
    with client as rpc:
        campaign = rpc.review.create_campaign({"unit_code": unit_code, "name": name, "starts_on": starts_on,
                                               "ends_on": ends_on, "teams": teams})
        progress = rpc.review.campaign_progress(campaign["id"])
    console.print(f"campaign [bold]{escape(campaign['id'])}[/bold] {escape(campaign['name'])}: "
                  f"{progress['cases']} cases over {len(teams)} team{'s' if len(teams) != 1 else ''}")


@app.command("inspect")
@cli_command
def inspect(
    ctx: typer.Context,
    campaign_id: str = typer.Argument(...),
    case_id: str = typer.Argument(...),
    result: str = typer.Argument(..., help="kept | raised | lowered | cancelled | wrongly_included"),
    verified_income: Optional[str] = typer.Option(None, "--income", help="verified monthly income (raised/lowered)"),
    remarks: str = typer.Option("", "--remarks"),
) -> None:
    """Record a campaign team's result for a case; a change becomes a proposal."""
    _, client = _rpc(ctx)
    with client as rpc:
        out = rpc.review.record_inspection({"campaign_id": campaign_id, "case_id": case_id, "result": result,
                                            "verified_income": verified_income, "remarks": remarks})
    proposal = out["proposal"]
    console.print(f"{escape(case_id)}: {escape(result)} ({RESULT_LABEL.get(result, '')}) by {escape(out['team'])}"
                  + (f"; proposal {proposal['id']} awaits approval" if proposal else ""))


@app.command("campaign-progress")
@cli_command
def campaign_progress(
    ctx: typer.Context,
    campaign_id: str = typer.Argument(...),
) -> None:
    """A campaign's progress per township and community."""
    from shared.reference import ReferenceData

    config, client = _rpc(ctx)
    with client as rpc:
        progress = rpc.review.campaign_progress(campaign_id)
    divisions = ReferenceData.from_config(config).divisions
    table = Table(title=escape(f"{progress['name']} ({progress['starts_on']} – {progress['ends_on']}): "
                               f"{progress['inspected']}/{progress['cases']} inspected"),
                  box=box.SIMPLE_HEAD, title_justify="left")
    table.add_column("township › community")
    table.add_column("cases", justify="right")
    table.add_column("inspected", justify="right")
    for result in RESULT_LABEL:
        table.add_column(f"{result} {RESULT_LABEL[result]}", justify="right")
    for u in progress["units"]:
        table.add_row(escape(f"{division_name(divisions, u['township_code'])} › "
                             f"{division_name(divisions, u['community_code'])}"),
                      str(u["cases"]), str(u["inspected"]), *(str(u[r]) for r in RESULT_LABEL))
    console.print(table)
