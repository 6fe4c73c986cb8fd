"""``dibao calendar``: the working-day calendar's official schedules.

- ``dibao calendar show YEAR``: the year's days off and make-up working days
  (调休), where each comes from — the library (chinesecalendar), the
  ``holidays`` package, the bureau's table (an imported official schedule)
  or the local override table — and whether the year is confirmed or
  provisional.
- ``dibao calendar import FILE``: load an official schedule (CSV
  ``date,workday,note``) into the review service, which owns it; every
  running service uses it from then on (docs/calendar.md).

Both ask the review service as the logged-in person (``dibao login``).
"""
from __future__ import annotations

from pathlib import Path

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from cli.common import cli_command, console, fail, get_config, rpc_session

app = typer.Typer(help="The working-day calendar (工作日): show a year, import the official schedule (放假安排).",
                  no_args_is_help=True, rich_markup_mode="rich")

SOURCE_LABEL = {
    "override": "local override table (本地调整)",
    "bureau": "the bureau's table (official schedule loaded)",
    "library": "library (chinesecalendar)",
    "holidays": "holidays package (statutory days, 法定节假日)",
    "weekday": "ordinary week",
}


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="calendar")


@app.command("show")
@cli_command
def show(
    ctx: typer.Context,
    year: int = typer.Argument(..., help="the year, e.g. 2027"),
) -> None:
    """A year's days off and make-up working days, each with its source; confirmed or provisional."""
    from shared.workdays import FIRST_YEAR, LAST_YEAR

    if not FIRST_YEAR <= year <= LAST_YEAR:
        fail(f"{year} is outside {FIRST_YEAR}–{LAST_YEAR}: nothing is known of it")
    config = get_config(ctx)
    with rpc_session(config) as rpc:
        view = rpc.review.calendar_year(year)
    status = view["status"]
    if status == "provisional":
        console.print(f"[bold]{year}[/bold]: [yellow]provisional[/yellow] (暂定) — its statutory holidays come from "
                      f"the holidays package; the make-up working days (调休) are unknown until the official "
                      f"schedule is loaded (`dibao calendar import FILE`). Deadlines across it are marked provisional.")
    else:
        console.print(f"[bold]{year}[/bold]: [green]confirmed[/green] — {escape(SOURCE_LABEL[view['source']])}")
    days = view["days"]
    if not days:
        console.print(f"nothing is known of {year} beyond the ordinary week: no day off, no make-up working day")
        return
    table = Table(box=box.SIMPLE_HEAD, padding=(0, 1))
    table.add_column("date", no_wrap=True, min_width=10)
    table.add_column("", no_wrap=True, min_width=3)
    table.add_column("kind", overflow="fold")
    table.add_column("note", overflow="fold")
    table.add_column("source", overflow="fold")
    weekdays = "一二三四五六日"
    from datetime import date as _date
    for d in days:
        day = _date.fromisoformat(d["date"])
        kind = d["kind"]
        style = "green" if d["workday"] else "red"
        table.add_row(d["date"], f"周{weekdays[day.weekday()]}", f"[{style}]{escape(kind)}[/{style}]",
                      escape(d["note"] or ""), escape(SOURCE_LABEL.get(d["source"], d["source"])))
    console.print(table)
    off = sum(1 for d in days if not d["workday"])
    console.print(f"{off} day{'s' if off != 1 else ''} off, {len(days) - off} working day"
                  f"{'s' if len(days) - off != 1 else ''} listed")


@app.command("import")
@cli_command
def import_(
    ctx: typer.Context,
    file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True,
                                help="CSV with the header date,workday,note (workday 1 or 0)"),
) -> None:
    """Load the State Council's official schedule of a year (放假安排 with 调休) for every service."""
    from shared.workdays import ScheduleError, parse_schedule, read_schedule_csv

    try:
        rows = read_schedule_csv(file)
        parse_schedule(rows, require_days=True)   # the service checks again; this names the line early
    except ScheduleError as exc:
        fail(f"{file}: {exc} — nothing was imported")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"{file}: cannot be read ({exc})")
    config = get_config(ctx)
    with rpc_session(config) as rpc:
        answer = rpc.review.import_calendar([{"line": line, "date": d, "workday": w, "note": n}
                                             for line, d, w, n in rows])
    years = ", ".join(str(y) for y in answer["years"])
    console.print(f"[green]loaded[/green] the official schedule of {years}: {answer['days']} days; "
                  f"{answer['recomputed']} open application(s)' deadlines counted again. Every service uses it "
                  f"from now on; `dibao calendar show {answer['years'][0]}` shows it as confirmed.")
