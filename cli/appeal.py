"""``dibao appeal``: appeals (复核) of a rejection, a cancellation or a benefit change.

- ``dibao appeal file APPLICATION_ID --grounds TEXT [--kind rejection|cancellation|benefit_change]``:
  file one for the household (its officer), within the policy's period of the decision;
- ``dibao appeal decide APPEAL_ID upheld|dismissed --reason TEXT``: decide it (the deciding unit,
  someone who took no part in the decision under appeal; upheld reopens, restores or reverts);
- ``dibao appeal list [--unit CODE] [--status open|upheld|dismissed] [--as-of DATE]``: the earliest due
  first, late ones marked overdue;
- ``dibao appeal show APPEAL_ID``: the decision under appeal, who took part in it, the decision.

Each asks the review service as the logged-in person (``dibao login``).
"""
from __future__ import annotations

from typing import Optional

import typer
from rich.markup import escape
from rich.table import Table

from cli.common import cli_command, console, get_config, rpc_session

app = typer.Typer(help="Appeals (复核): file, decide, list, show.", no_args_is_help=True)

KINDS = {"rejection": "不予纳入", "cancellation": "停保", "benefit_change": "保障金变更"}
STATUSES = {"open": "待决定", "upheld": "复核成立", "dismissed": "复核不成立"}


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="appeal")


def print_appeal(a: dict) -> None:
    console.print(f"[bold]appeal {a['id']}[/bold] · {a['kind']} ({KINDS.get(a['kind'], '')}) · "
                  f"{a['status']} ({STATUSES.get(a['status'], '')})")
    console.print(f"application {a['application_id']}" + (f" · case {a['case_id']}" if a.get("case_id") else "")
                  + (f" · proposal {a['proposal_id']}" if a.get("proposal_id") else ""))
    console.print(f"decision under appeal: {a['decided_on_original']} — {escape(a.get('original_reason') or '')}")
    console.print(f"filed {a['filed_on']} ({a['filed_via']}, {a['filed_by']}): {escape(a['grounds'])}")
    console.print(f"to be decided by {a['due_on']}{' (provisional)' if a['due_provisional'] else ''} "
                  f"at {a['deciding_unit']}")
    took_part = ", ".join(f"{p['part']}: {p.get('name') or p.get('user')}" for p in a["participants"])
    console.print(f"took part (may not decide): {escape(took_part) or '—'}")
    if a["decided_on"]:
        console.print(f"decided {a['decided_on']} by {a['decided_by']}: {escape(a['decision_reason'] or '')}"
                      + (f" → {a['reopened_at']}" if a.get("reopened_at") else ""))


@app.command("file")
@cli_command
def file(ctx: typer.Context, application_id: str = typer.Argument(...),
         grounds: str = typer.Option(..., "--grounds", help="why the household asks for a review"),
         kind: Optional[str] = typer.Option(None, "--kind", help="rejection | cancellation | benefit_change")) -> None:
    """File an appeal for the household (the application's latest appealable decision)."""
    with rpc_session(get_config(ctx)) as rpc:
        print_appeal(rpc.review.file_appeal({"application_id": application_id, "kind": kind, "grounds": grounds}))


@app.command("decide")
@cli_command
def decide(ctx: typer.Context, appeal_id: str = typer.Argument(...),
           outcome: str = typer.Argument(..., help="upheld | dismissed"),
           reason: str = typer.Option("", "--reason", help="why (required)")) -> None:
    """Decide an appeal, with the reason."""
    with rpc_session(get_config(ctx)) as rpc:
        print_appeal(rpc.review.decide_appeal({"appeal_id": appeal_id, "outcome": outcome, "reason": reason}))


@app.command("list")
@cli_command
def list_(ctx: typer.Context, unit: Optional[str] = typer.Option(None, "--unit", metavar="CODE"),
          status: Optional[str] = typer.Option(None, "--status", help="open | upheld | dismissed"),
          as_of: Optional[str] = typer.Option(None, "--as-of", metavar="DATE")) -> None:
    """The appeals within your unit (or UNIT), the earliest due first."""
    with rpc_session(get_config(ctx)) as rpc:
        rows = rpc.review.list_appeals(unit, status, as_of)
    if not rows:
        console.print("no appeal")
        return
    table = Table(title=f"{len(rows)} appeal(s)")
    for column in ("appeal", "kind", "community", "filed", "via", "due", "status"):
        table.add_column(column)
    for a in rows:
        due = str(a["due_on"]) + (" [red]overdue[/red]" if a["overdue"] else "") + (" (provisional)" if a["due_provisional"] else "")
        table.add_row(a["id"], a["kind"], a["community_code"], str(a["filed_on"]), a["filed_via"], due, a["status"])
    console.print(table)


@app.command("show")
@cli_command
def show(ctx: typer.Context, appeal_id: str = typer.Argument(...)) -> None:
    """One appeal."""
    with rpc_session(get_config(ctx)) as rpc:
        print_appeal(rpc.review.get_appeal(appeal_id))
