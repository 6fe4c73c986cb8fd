"""``dibao review``: the entry review (进口) as an operator sees it.

- ``dibao review status APPLICATION_ID``: where one application stands —
  status, the open step and its deadline, the whole process's deadline,
  objections, flags, the decision, and the case when it was approved.
- ``dibao review overdue UNIT_CODE [--as-of DATE]``: the statutory clock —
  per township and community, the open applications past a step's or the
  whole process's deadline (working days, computed from stored dates).

Both ask the review service (``review.get_application``, ``review.overdue``)
as a district officer of the deployment's district unless ``--role``,
``--unit`` or ``--user`` say otherwise, as ``dibao import`` does. Names and
ID numbers are shown masked (脱敏).
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

from shared.cli.common import cli_command, console, fail, get_config, home_district

app = typer.Typer(
    help="The entry review (进口): an application's status, the overdue list (statutory clock).",
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


# --- who asks ------------------------------------------------------------------

def actor_options(config: dict, role: str, unit: Optional[str], user: Optional[str]) -> tuple[str, str, str | None]:
    """(role, unit, user) for the RPC: a district officer of the deployment's
    district unless the options say otherwise."""
    from shared.identity import Role

    try:
        role_value = Role(role).value
    except ValueError:
        fail(f"unknown role {role!r}; roles: {', '.join(r.value for r in Role)}")
    unit = unit or home_district(config)
    if not unit.isdigit():
        fail(f"--unit must be a division code (digits), not {unit!r}")
    return role_value, unit, user


ROLE_OPTION = typer.Option("district_officer", "--role", help="acting role (default: district officer)")
UNIT_OPTION = typer.Option(None, "--unit", help="acting unit (default: the deployment's district)")
USER_OPTION = typer.Option(None, "--user", "--as-user", help="acting user id (default: <role>-<unit>)")


# --- status --------------------------------------------------------------------

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
    role: str = ROLE_OPTION,
    unit: Optional[str] = UNIT_OPTION,
    user: Optional[str] = USER_OPTION,
) -> None:
    """An application's review: status, current step, deadlines, objections, flags, the case."""
    from shared.client import rpc_as
    from shared.policy import load_policy
    from shared.reference import ReferenceData

    config = get_config(ctx)
    role, unit, user = actor_options(config, role, unit, user)
    ref = ReferenceData.from_config(config)
    today = ref.today()
    with rpc_as(config, role, unit, user=user) as rpc:
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
                         + (f"  [bold red]{escape(late)}[/bold red]" if late else ""))
    grid.add_row("accepted", escape(str(f.get("accepted_on") or "—")))
    late = late_by(ref.calendar, f.get("process_due_on"), today) if f["status"] in OPEN else ""
    grid.add_row("process due", escape(str(f.get("process_due_on") or "no deadline"))
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
    role: str = ROLE_OPTION,
    unit: Optional[str] = UNIT_OPTION,
    user: Optional[str] = USER_OPTION,
) -> None:
    """The statutory clock: applications past a step's or the whole process's deadline."""
    from shared.client import rpc_as
    from shared.reference import ReferenceData

    config = get_config(ctx)
    role, unit, user = actor_options(config, role, unit, user)
    day = parse_as_of(as_of)
    ref = ReferenceData.from_config(config)
    judged = as_date(day) if day else ref.today()
    with rpc_as(config, role, unit, user=user) as rpc:
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
                    deadlines.append(f"{which} {due.isoformat()}")
                    late.append(str(ref.calendar.workdays_between(due, judged)))
            step = f"{f['step']} {step_label(f['step'])}" if f.get("step") else "no step open"
            table.add_row(f"{escape(f['application_id'])}\n{status_text(f['status'])}\n{escape(step)}",
                          "[red]" + "\n".join(deadlines) + "[/red]", "\n".join(late), str(f.get("objections", 0)))
        console.print(table)
