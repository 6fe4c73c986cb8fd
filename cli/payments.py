"""``dibao payments``: standards, payment runs, bank files, reconciliation.

- ``dibao payments standard set DIVISION AREA AMOUNT --from DATE [--to DATE]``
  (提标/降标: recalculates every case under it) and ``standard list``;
- ``dibao payments run create PERIOD AREA [--division CODE]``, ``run approve
  RUN_ID`` (by someone else: maker ≠ checker), ``run export RUN_ID --format
  csv|fixed --out DIR`` (bank file + 汇总表 with the 大写 total), ``run list``,
  ``run show RUN_ID``;
- ``dibao payments import-return RUN_ID FILE --format csv|fixed`` (对账).

Each asks the payments service as the logged-in person (``dibao login``):
a finance officer prepares, the centre director approves and sets standards. Long calls show a progress
bar. :func:`demo_payments` is the payments part of ``dibao demo``.
"""
from __future__ import annotations

import base64
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Optional

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from cli.common import cli_command, console, get_config, home_district, rpc_session

app = typer.Typer(help="Payments (低保金发放): standards, payment runs, bank files, reconciliation.",
                  no_args_is_help=True, rich_markup_mode="rich")
standard_app = typer.Typer(help="Guarantee standards (低保标准) and their changes (提标/降标).", no_args_is_help=True)
run_app = typer.Typer(help="Payment runs: create, approve, export, list, show.", no_args_is_help=True)
app.add_typer(standard_app, name="standard")
app.add_typer(run_app, name="run")

STATUS_STYLE = {"prepared": "yellow", "approved": "cyan", "exported": "blue", "reconciled": "green",
                "paid": "green", "failed": "red", "pending": "yellow"}
REASON_LABEL = {"no_payee_account": "无代发账户", "no_checkin": "未续保登记", "zero_benefit": "补差为零",
                "benefit_basis_missing": "无补差依据(待复核)"}


def working(description: str):
    """A progress bar for a call whose length we do not know in advance."""
    return Progress(SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(), TimeElapsedColumn(),
                    console=console, transient=True)


def call(config, description: str, method: str, *args):
    with rpc_session(config) as rpc, working(description) as progress:
        progress.add_task(description, total=None)
        return getattr(rpc.payments, method)(*args)


def styled(status: str) -> str:
    style = STATUS_STYLE.get(status)
    return f"[{style}]{escape(status)}[/{style}]" if style else escape(status)


def runs_table(runs: list[dict], title: str = "payment runs") -> Table:
    table = Table(title=title, box=box.SIMPLE_HEAVY)
    for col in ("run", "period", "area", "status", "lines", "held", "carried", "total", "maker/checker"):
        table.add_column(col, justify="right" if col in ("lines", "held", "carried", "total") else "left",
                         overflow="fold")
    for r in runs:
        table.add_row(r["id"][:8], r["period"], f"{r['division_code']} {r['area_type']}", styled(r["status"]),
                      str(r["lines"]), str(r["held"]), str(r["carried"]), r["total"],
                      f"{r['prepared_by']}/{r['approved_by'] or '—'}")
    return table


# --- standards -----------------------------------------------------------------

@standard_app.command("set")
@cli_command
def standard_set(ctx: typer.Context, division: str = typer.Argument(..., help="division code (prefix)"),
                 area: str = typer.Argument(..., help="urban | rural"),
                 amount: str = typer.Argument(..., help="yuan per person per month, e.g. 870.00"),
                 effective_from: str = typer.Option(..., "--from", help="first day in force (YYYY-MM-DD)"),
                 effective_to: Optional[str] = typer.Option(None, "--to", help="last day (for a past period)")) -> None:
    """Set a standard; the open-ended one recalculates every case under it."""
    config = get_config(ctx)
    out = call(config, "recalculating the cases under the standard", "set_standard",
               {"division_code": division, "area_type": area, "effective_from": effective_from,
                "effective_to": effective_to, "monthly_amount": amount})
    s, change = out["standard"], out["change"]
    console.print(f"standard {s['division_code']} {s['area_type']} [bold]{s['monthly_amount']}[/bold] from "
                  f"{s['effective_from']}" + (f" to {s['effective_to']}" if s["effective_to"] else ""))
    if change:
        console.print(f"  was {change['old_amount'] or '—'}: {change['cases_raised']} cases raised, "
                      f"{change['cases_lowered']} lowered, {change['cases_unchanged']} unchanged, "
                      f"{change['cases_held']} held back (no basis to recalculate)")


@standard_app.command("list")
@cli_command
def standard_list(ctx: typer.Context, division: Optional[str] = typer.Option(None, "--division"),
                  area: Optional[str] = typer.Option(None, "--area"),
                  on: Optional[str] = typer.Option(None, "--on", help="only those in force on this day")) -> None:
    """The standards with their effective periods."""
    config = get_config(ctx)
    rows = call(config, "reading standards", "list_standards",
                {"division_code": division, "area_type": area, "on": on})
    table = Table(title="guarantee standards (低保标准)", box=box.SIMPLE_HEAVY)
    for col in ("division", "area", "from", "to", "yuan/person/month", "set by"):
        table.add_column(col)
    for s in rows:
        table.add_row(s["division_code"], s["area_type"], s["effective_from"], s["effective_to"] or "—",
                      s["monthly_amount"], s["set_by"])
    console.print(table)


# --- runs ------------------------------------------------------------------------

@run_app.command("create")
@cli_command
def run_create(ctx: typer.Context, period: str = typer.Argument(..., help="YYYY-MM, or YYYY-Qn (quarterly rural)"),
               area: str = typer.Argument(..., help="urban | rural"),
               division: Optional[str] = typer.Option(None, "--division", help="area code (default: the district)")) -> None:
    """Prepare the run for a period and an area (again, before approval: the same run prepared afresh)."""
    config = get_config(ctx)
    division = division or home_district(config)
    run = call(config, f"preparing the {period} {area} run", "create_run",
               {"period": period, "area_type": area, "division_code": division})
    console.print(runs_table([run], "prepared"))


@run_app.command("approve")
@cli_command
def run_approve(ctx: typer.Context, run_id: str) -> None:
    """Approve (and so freeze) a run prepared by someone else."""
    config = get_config(ctx)
    console.print(runs_table([call(config, "approving", "approve_run", run_id)], "approved"))


@run_app.command("export")
@cli_command
def run_export(ctx: typer.Context, run_id: str,
               fmt: Optional[str] = typer.Option(None, "--format", help="bank format (entry points "
                                                 "dibao.bank_formats; default: config PAYMENTS_BANK_FORMAT)"),
               out: Path = typer.Option(Path("."), "--out", help="directory for the bank file and summary")) -> None:
    """Write the bank file and the summary sheet (汇总表, total in 大写)."""
    config = get_config(ctx)
    fmt = fmt or config.get("PAYMENTS_BANK_FORMAT") or "csv"
    result = call(config, "exporting the bank file", "export_run", run_id, fmt)
    from cli.files import plain_name, write_in

    name = plain_name(result["filename"], "filename")   # the server names the file; it stays inside --out
    bank_file = write_in(out, name, "--out", base64.b64decode(result["content"]))
    summary = write_in(out, Path(name).with_suffix(".summary.txt").name, "--out", result["summary"])
    console.print(f"{result['lines']} lines, total {result['total']} → {bank_file} ({result['encoding']}), {summary}")


@run_app.command("list")
@cli_command
def run_list(ctx: typer.Context, period: Optional[str] = typer.Option(None, "--period"),
             division: Optional[str] = typer.Option(None, "--division")) -> None:
    """The runs of an area."""
    config = get_config(ctx)
    console.print(runs_table(call(config, "reading runs", "list_runs",
                                  {"period": period, "division_code": division})))


@run_app.command("show")
@cli_command
def run_show(ctx: typer.Context, run_id: str, limit: int = typer.Option(50, "--lines", help="lines to show")) -> None:
    """One run: its lines (masked payees), what is held back and why."""
    config = get_config(ctx)
    run = call(config, "reading the run", "get_run", run_id, limit)
    console.print(runs_table([run], f"run {run['id']}"))
    lines = Table(title=f"lines ({', '.join(f'{k}: {v}' for k, v in sorted(run['line_status'].items()))})",
                  box=box.SIMPLE)
    for col in ("line", "case", "period", "amount", "payee", "account", "status"):
        lines.add_column(col, overflow="fold")
    for ln in run["lines_shown"]:
        status = styled(ln["status"]) + (f" ({escape(ln['failure_reason'])})" if ln["failure_reason"] else "") \
            + (f" ← line {ln['carried_from']}" if ln["carried_from"] else "")
        lines.add_row(str(ln["id"]), ln["case_id"][:8], f"{ln['period']}×{ln['months']}", ln["amount"],
                      ln["payee_name_masked"] or "—", ln["account_masked"] or "—", status)
    console.print(lines)
    if run["held_back"]:
        held = Table(title="held back (暂停发放)", box=box.SIMPLE)
        for col in ("case", "community", "reason"):
            held.add_column(col)
        for h in run["held_back"]:
            held.add_row(h["case_id"][:8], h["community_code"],
                         f"{h['reason']} ({REASON_LABEL.get(h['reason'], '')})")
        console.print(held)


@app.command("import-return")
@cli_command
def import_return(ctx: typer.Context, run_id: str, path: Path = typer.Argument(..., exists=True, dir_okay=False),
                  fmt: str = typer.Option("csv", "--format")) -> None:
    """对账: the bank's return file marks lines paid or failed (failed lines go into the next run)."""
    config = get_config(ctx)
    result = call(config, "reconciling", "import_return",
                  {"run_id": run_id, "format": fmt, "content": base64.b64encode(path.read_bytes()).decode()})
    console.print(f"run {result['run_id'][:8]}: [green]{result['paid']} paid[/green] ({result['paid_total']}), "
                  f"[red]{result['failed']} failed[/red] (carried into the next run), {result['pending']} pending "
                  f"— {styled(result['status'])}")



# --- the demo's payments part ----------------------------------------------------------

SURNAMES = "张王李赵刘陈杨黄周吴"


def _next_month(month: str) -> str:
    year, mon = int(month[:4]), int(month[5:7])
    return f"{year + mon // 12}-{mon % 12 + 1:02d}"


def _quarter_of(month: str) -> tuple[str, list[str]]:
    year, q = int(month[:4]), (int(month[5:7]) - 1) // 3 + 1
    return f"{year}-Q{q}", [f"{year}-{3 * (q - 1) + k:02d}" for k in (1, 2, 3)]


def demo_payments(config: dict, district: str | None = None, out: Console | None = None,
                  timeout: float = 60.0, accounts=None) -> dict:
    """Pay the approved households of the district (payments' ledger) for two
    urban months and one rural quarter, with one failed line carried forward.

    The finance side: payees for cases without one; for each period a run
    prepared (by the finance officer; by the system administrator, who may
    prepare it as of the period's first day when it still lies ahead — the
    demo's clock), approved by the
    centre director, exported as a CSV bank file; the bank's return file
    pays every line but the first of the first month ("账号有误"), whose
    household then gives a corrected account — the next run carries it.
    Under a policy whose payment waits for the monthly check-in, the
    check-ins are recorded through intake (months that have begun only:
    intake refuses future ones, and those households are shown held back).
    The people are the demo's accounts at identity (``accounts``, a
    demo.accounts.DemoAccounts; by default the district's, made or logged in
    here and written to <DATA_DIR>/demo/accounts.json).
    Returns the runs and the carried line."""
    from demo.accounts import DemoAccounts
    from demo.people import Person
    from shared.errors import Conflict
    from shared.identity import Role
    from shared.policy import policy_from_config
    from shared.testing import wait_for
    from shared.bank_formats import ReturnLine, capital_amount, load_format

    out = out or console
    district = district or home_district(config)
    policy = policy_from_config(config)
    fmt = load_format("csv")
    today = date.today()
    summary = {"runs": [], "carried": None}
    accounts = accounts or DemoAccounts(config, district)
    finance = Person("qian.finance", "钱会计", Role.FINANCE_OFFICER.value, district)
    sysadmin = Person(f"sysadmin-{district}", "系统管理员", Role.SYSTEM_ADMIN.value, district)
    centre_director = Person("zhou.director", "周主任", Role.CENTRE_DIRECTOR.value, district)
    accounts.ensure([finance, sysadmin, centre_director])
    with accounts.rpc(finance) as admin, accounts.rpc(sysadmin) as clock, accounts.rpc(centre_director) as director:
        cases = wait_for(lambda: admin.payments.list_cases({"division_code": district}), timeout=timeout,
                         message="approved cases in the payments ledger")
        missing = [c for c in cases if not c["account_masked"]]
        if missing:
            admin.payments.set_payees([{"case_id": c["case_id"], "payee_name": f"{SURNAMES[n % 10]}户主{n + 1}",
                                        "account_number": f"62220242{n + 1:010d}", "bank_name": "农村商业银行"}
                                       for n, c in enumerate(missing)])
        first = min(c["start_month"] for c in cases)
        months = [first, _next_month(first)]
        quarter, quarter_months = _quarter_of(first)
        periods = [(m, "urban") for m in months]
        periods += ([(quarter, "rural")] if policy.payout_months("rural") == 3
                    else [(m, "rural") for m in quarter_months])
        if policy.checkin_required_for_payment:
            _record_checkins(accounts, cases, months, quarter_months, today, out)
        failed_line = None
        for n, (period, area) in enumerate(periods):
            first_day = date.fromisoformat(f"{quarter_months[0] if period == quarter else period}-01")
            as_of = first_day.isoformat() if first_day > today else None
            # a period still ahead: the system administrator prepares it as of its first day (the demo's clock)
            run = (clock if as_of else admin).payments.create_run({"period": period, "area_type": area,
                                                                    "division_code": district, "as_of": as_of})
            if run["status"] == "prepared":
                run = director.payments.approve_run(run["id"])
            exported = admin.payments.export_run(run["id"], "csv")
            lines = [r for r in _csv_rows(base64.b64decode(exported["content"])) if r["line_id"] != "TOTAL"]
            paid_on = max(today, first_day)
            results = []
            for k, ln in enumerate(lines):
                fails = failed_line is None and n == 0 and k == 0
                results.append(ReturnLine(int(ln["line_id"]), Decimal(ln["amount"]), not fails,
                                          "账号有误 wrong account number" if fails else None,
                                          None if fails else paid_on))
                if fails:
                    failed_line = ln
            try:
                reconciled = admin.payments.import_return({"run_id": run["id"], "format": "csv", "content":
                                                           base64.b64encode(fmt.write_return(results)).decode()})
            except Conflict:          # already reconciled (the demo ran before)
                reconciled = {"paid": 0, "failed": 0}
            if failed_line is not None and n == 0:
                admin.payments.set_payee({"case_id": failed_line["case_id"], "payee_name": failed_line["payee_name"],
                                          "account_number": "6222024299990001", "bank_name": "农村商业银行"})
            detail = admin.payments.get_run(run["id"], 0)
            summary["runs"].append({**run, "paid": reconciled["paid"], "failed": reconciled["failed"],
                                    "held_reasons": sorted({h["reason"] for h in detail["held_back"]}),
                                    "capital": capital_amount(Decimal(run["total"]))})
        summary["carried"] = failed_line and failed_line["case_id"]
    table = runs_table(summary["runs"], f"payments — policy {policy.name}: two months and one rural quarter")
    out.print(table)
    for r in summary["runs"]:
        out.print(f"  {r['period']} {r['area_type']}: ¥{r['total']} 人民币{r['capital']}; {r['paid']} paid, "
                  f"{r['failed']} failed" + (f"; held back: {', '.join(r['held_reasons'])}" if r["held_reasons"] else "")
                  + (f"; {r['carried']} carried forward" if r["carried"] else ""))
    return summary


def _csv_rows(content: bytes) -> list[dict]:
    import csv
    import io
    return list(csv.DictReader(io.StringIO(content.decode("utf-8"))))


def _record_checkins(accounts, cases, months, quarter_months, today, out) -> None:
    """续保登记 through intake, as each community's officer (the demo's accounts), for the months paid."""
    from demo.people import Person
    from shared.errors import Conflict
    from shared.identity import Role
    from shared.testing import wait_for

    this_month = today.strftime("%Y-%m")
    wanted = {}
    for c in cases:
        for m in (months if c["area_type"] == "urban" else quarter_months):
            if c["start_month"] <= m <= this_month:
                wanted.setdefault(c["community_code"], set()).add((c["household_id"], m))
    recorded = 0
    officers = {community: Person(f"officer-{community}", f"officer-{community}", Role.COMMUNITY_OFFICER.value,
                                  community) for community in wanted}
    accounts.ensure(officers.values())
    for community, pairs in wanted.items():
        with accounts.rpc(officers[community]) as rpc:
            for household_id, m in sorted(pairs):
                try:
                    rpc.intake.record_checkin({"household_id": household_id, "month": m,
                                               "checked_in_on": min(today, date.fromisoformat(f"{m}-28")).isoformat()})
                    recorded += 1
                except Conflict:
                    pass              # already stamped
    needed = {m: sum(1 for pairs in wanted.values() for _h, mm in pairs if mm == m)
              for m in sorted({m for pairs in wanted.values() for _h, m in pairs})}
    if needed:
        with accounts.rpc(Person("qian.finance", "钱会计", Role.FINANCE_OFFICER.value,
                                 cases[0]["community_code"][:6])) as admin:
            wait_for(lambda: all(v >= needed[m] for m, v in admin.payments.checkins(list(needed)).items()),
                     timeout=60, message="check-ins in payments")
    future = [m for m in sorted(set(months) | set(quarter_months)) if m > this_month]
    if future:
        out.print(f"  check-ins: intake records none for months not yet begun ({', '.join(future)}); "
                  "under this policy those payments are held back")
    out.print(f"  check-ins recorded through intake: {recorded}")
