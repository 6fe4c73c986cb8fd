"""``dibao verify``: verification with the partner bureaus (核对), as an officer sees it.

- ``dibao verify request HOUSEHOLD_ID [--application ID]``: ask every configured bureau now;
- ``dibao verify report HOUSEHOLD_ID`` (or ``--round ID``): the report (核对报告) — what was
  declared beside what each bureau found, and the discrepancies;
- ``dibao verify resolve DISCREPANCY_ID explained|reinvestigated|grounds_for_rejection --reason ...``;
- ``dibao verify overdue UNIT_CODE [--as-of DATE]``: requests past their deadline (working days);
- ``dibao verify remind``: re-send the overdue requests now;
- ``dibao verify monitor [--as-of DATE]``: re-verify the active cases that are due (动态监测);
- ``dibao verify stats UNIT_CODE``: requests, answers and overdue per bureau.

Each asks the verification service as the logged-in person (``dibao login``).
"""
from __future__ import annotations

from typing import Optional

import typer
from rich.markup import escape
from rich.table import Table

from cli.common import cli_command, console, fail, get_config, rpc_session

app = typer.Typer(help="Verification with the partner bureaus (核对): requests, reports, discrepancies, "
                       "overdue answers, monitoring.", no_args_is_help=True)

OUTCOME = {"found": "有记录", "no_record": "无记录", "cannot_answer": "无法核对"}
RULE = {"undeclared_vehicle": "未申报车辆", "property_beyond_family_home": "家庭自住房以外的房产",
        "deposits_above_standard": "存款超过规定", "income_above_declared": "收入高于申报"}
RESOLUTION = {"explained": "已说明", "reinvestigated": "已重新调查", "grounds_for_rejection": "作为不予批准的理由"}


def print_report(report: dict) -> None:
    titles = report.get("titles") or {}
    state = "完整" if report["complete"] else "待答复"
    console.print(f"[bold]核对报告[/bold] household {report['household_id']} · round {report['round_id']} · "
                  f"{report['purpose']} · {state}{' · 已归档' if report['filed'] else ''}")
    bureaus = Table(title="部门答复 (bureaus)")
    for column in ("bureau", "status", "answer by", "answered", "reminders"):
        bureaus.add_column(column)
    for b in report["bureaus"]:
        status = b["status"] + (" [red]overdue[/red]" if b["overdue"] else "")
        bureaus.add_row(f"{b['bureau']} {titles.get(b['bureau'], '')}", status, str(b["answer_by"]),
                        f"{b['members_answered']}/{b['members']}", str(b["reminders"]))
    console.print(bureaus)
    declared = Table(title="申报 (declared)")
    for column in ("what", "member", "amount / value"):
        declared.add_column(column)
    for i in report["declared"].get("incomes", []):
        declared.add_row(f"income: {i['source']}", str(i.get("member_id") or "—")[:8], f"{i['monthly_amount']}/月")
    for a in report["declared"].get("assets", []):
        declared.add_row(f"asset: {a['kind']} {escape(a.get('description') or '')}", "—", a["value"])
    console.print(declared)
    found = Table(title="核对结果 (found)")
    for column in ("bureau", "member", "outcome", "finding", "amount", "as of"):
        found.add_column(column)
    for f in report["findings"]:
        finding = f"{f['kind']}: {escape(f['description'] or '')}" if f["kind"] else escape(f.get("reason") or "")
        found.add_row(f["bureau"], escape(f["member_name"]), OUTCOME.get(f["outcome"], f["outcome"])
                      + (" (pushed)" if f["pushed"] else ""), finding, f["amount"] or "", str(f["as_of"] or ""))
    console.print(found)
    if not report["discrepancies"]:
        console.print("[green]no discrepancy[/green]")
    for d in report["discrepancies"]:
        style = "red" if d["status"] == "open" else "green"
        how = f" — {RESOLUTION.get(d['resolution'], d['resolution'])}: {escape(d['resolution_reason'] or '')}" \
            if d["status"] == "resolved" else " — blocks approval until resolved"
        console.print(f"[{style}]discrepancy {d['id']} {d['rule']} ({RULE.get(d['rule'], '')})[/{style}]: "
                      f"{escape(d['description'])}{how}")


@app.command("request")
@cli_command
def request(ctx: typer.Context, household_id: str = typer.Argument(...),
            application: Optional[str] = typer.Option(None, "--application", help="the application it is for")) -> None:
    """Ask every configured bureau about a household (its authorization 授权书 must be on file)."""
    with rpc_session(get_config(ctx)) as rpc:
        print_report(rpc.verification.request_verification({"household_id": household_id,
                                                            "application_id": application}))


@app.command("report")
@cli_command
def report(ctx: typer.Context, household_id: Optional[str] = typer.Argument(None),
           round_id: Optional[str] = typer.Option(None, "--round")) -> None:
    """The verification report (核对报告) of a household's latest round, or of one round."""
    if not household_id and not round_id:
        fail("give a HOUSEHOLD_ID or --round ID")
    with rpc_session(get_config(ctx)) as rpc:
        print_report(rpc.verification.report({"household_id": household_id, "round_id": round_id}))


@app.command("resolve")
@cli_command
def resolve(ctx: typer.Context, discrepancy_id: int = typer.Argument(...),
            resolution: str = typer.Argument(..., help="explained | reinvestigated | grounds_for_rejection"),
            reason: str = typer.Option(..., "--reason")) -> None:
    """Record how a discrepancy was resolved, with the reason (approval waits for it)."""
    with rpc_session(get_config(ctx)) as rpc:
        d = rpc.verification.resolve_discrepancy({"discrepancy_id": discrepancy_id, "resolution": resolution,
                                                  "reason": reason})
    console.print(f"discrepancy {d['id']} ({d['rule']}) resolved: {RESOLUTION.get(d['resolution'])}")


@app.command("overdue")
@cli_command
def overdue(ctx: typer.Context, unit_code: str = typer.Argument(...),
            as_of: Optional[str] = typer.Option(None, "--as-of", metavar="DATE")) -> None:
    """Requests past their answer deadline (working days), oldest first."""
    with rpc_session(get_config(ctx)) as rpc:
        rows = rpc.verification.overdue(unit_code, as_of)
    if not rows:
        console.print(f"no request within {unit_code} is overdue")
        return
    table = Table(title=f"{len(rows)} overdue verification request(s) within {unit_code}")
    for column in ("bureau", "household", "community", "sent", "answer by", "missing", "reminders"):
        table.add_column(column)
    for r in rows:
        table.add_row(r["bureau"], r["household_id"], r["community_code"], str(r["sent_on"]), str(r["answer_by"]),
                      str(r["members_missing"]), str(r["reminders"]))
    console.print(table)


@app.command("remind")
@cli_command
def remind(ctx: typer.Context) -> None:
    """Re-send every overdue request now (once a day at most)."""
    with rpc_session(get_config(ctx)) as rpc:
        console.print(f"{rpc.verification.send_reminders()['reminded']} reminder(s) sent")


@app.command("monitor")
@cli_command
def monitor(ctx: typer.Context, as_of: Optional[str] = typer.Option(None, "--as-of", metavar="DATE")) -> None:
    """Re-verify the active cases that are due (低收入人口动态监测)."""
    with rpc_session(get_config(ctx)) as rpc:
        done = rpc.verification.run_monitoring({"as_of": as_of} if as_of else {})
    console.print(f"{done['rounds']} household(s) re-verified, {done['requests']} request(s) sent, "
                  f"{done['without_consent']} without a valid authorization")


@app.command("stats")
@cli_command
def stats(ctx: typer.Context, unit_code: str = typer.Argument(...)) -> None:
    """Requests, answers and overdue per bureau."""
    with rpc_session(get_config(ctx)) as rpc:
        print_stats(rpc.verification.stats(unit_code))


def print_stats(rows: list[dict]) -> None:
    table = Table(title="核对 per bureau")
    for column in ("bureau", "requests", "answered", "open", "overdue", "reminders", "answers", "refused"):
        table.add_column(column, justify="right" if column != "bureau" else "left")
    for r in rows:
        table.add_row(r["bureau"], *(str(r[k]) for k in ("requests", "answered", "open", "overdue", "reminders",
                                                         "answers", "refused")))
    console.print(table)
