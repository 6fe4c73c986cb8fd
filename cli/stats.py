"""``dibao stats --date D [--xlsx FILE] [--scorecard]``: the bureau's
headline statistics for any date, as the seed's paragraph and a table, from
the audit record (a projection of the recorded events); ``--xlsx`` writes
them (and the supervision scorecard) to a workbook.

Asked of the audit service as the logged-in person (an auditor, a director;
a partner bureau may ask too: the figures carry no personal data); the query
is recorded.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from cli.audit import parse_date
from cli.common import cli_command, console, get_config, rpc_session

SCORE_COLUMNS = (("township_code", "乡镇街"), ("community_code", "社区/村"), ("overdue_steps", "超期环节"),
                 ("missed_rereviews", "漏复核"), ("checkin_gaps", "未签到"), ("wrongly_included", "错保"))


def register(app: typer.Typer) -> None:
    app.command("stats")(stats)


def write_xlsx(path: Path, figures: dict, board: list[dict]) -> None:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.title = "统计"
    sheet.append(["项目", "数值"])
    for label, value in figures["table"]:
        sheet.append([label, value])
    sheet.append([])
    sheet.append([figures["paragraph"]])
    score = book.create_sheet("考评")
    score.append([label for _, label in SCORE_COLUMNS])
    for row in board:
        score.append([row[key] for key, _ in SCORE_COLUMNS])
    from cli.files import export_to

    with export_to(path, "--xlsx") as fh:   # never through a symbolic link
        book.save(fh)


VERIFICATION_COLUMNS = (("bureau", "部门"), ("requests", "核对请求"), ("answered", "已答复"), ("overdue", "超期未复"),
                        ("reminders", "催办"), ("refused", "拒收"))


def verification_table(rows: list[dict]) -> Table:
    """核对: per partner bureau, requests, answers, overdue (the audit's projection of verification's events)."""
    from contracts.verification_bureau import BUREAU_TITLES

    table = Table(title="家庭经济状况核对 (per partner bureau)", box=box.SIMPLE_HEAVY)
    for key, label in VERIFICATION_COLUMNS:
        table.add_column(label, justify="left" if key == "bureau" else "right")
    for row in rows:
        name = row["bureau"]
        table.add_row(escape(f"{BUREAU_TITLES.get(name, name)} ({name})"),
                      *(str(row[key]) for key, _ in VERIFICATION_COLUMNS[1:]))
    return table


APPEAL_COLUMNS = (("kind", "复核对象"), ("filed", "申请"), ("upheld", "成立(撤销原决定)"), ("dismissed", "不成立(维持原决定)"),
                  ("overdue", "超期未决"), ("decided_late", "超期决定"))
APPEAL_KIND_TITLES = {"rejection": "不予纳入", "cancellation": "停保", "benefit_change": "保障金变更"}


def appeals_table(figures: dict) -> Table:
    """复核: appeals filed, upheld, dismissed and overdue over the year, per kind of decision appealed."""
    table = Table(title="复核 (appeals, this year)", box=box.SIMPLE_HEAVY)
    for key, label in APPEAL_COLUMNS:
        table.add_column(label, justify="left" if key == "kind" else "right")
    for row in figures["by_kind"] + [dict(figures, kind="合计")]:
        table.add_row(escape(APPEAL_KIND_TITLES.get(row["kind"], row["kind"])),
                      *(str(row[key]) for key, _ in APPEAL_COLUMNS[1:]))
    return table


@cli_command
def stats(
    ctx: typer.Context,
    day: str = typer.Option(..., "--date", help="the date the figures are for (YYYY-MM-DD)"),
    xlsx: Optional[Path] = typer.Option(None, "--xlsx", help="also write the figures and the scorecard here"),
    scorecard: bool = typer.Option(False, "--scorecard", help="print the supervision scorecard too"),
) -> None:
    """The seed's headline statistics for any date (and the 考评 scorecard)."""
    config = get_config(ctx)
    when = parse_date(day, "--date")
    with rpc_session(config) as rpc:
        figures = rpc.audit.statistics(when.isoformat())
        board = rpc.audit.scorecard(when.isoformat()) if (scorecard or xlsx) else []
    console.print(escape(figures["paragraph"]))
    table = Table(box=box.SIMPLE_HEAVY)
    table.add_column("项目")
    table.add_column("数值", justify="right")
    for label, value in figures["table"]:
        table.add_row(escape(label), escape(str(value)))
    console.print(table)
    if figures.get("verification"):
        console.print(verification_table(figures["verification"]))
    if figures.get("appeals", {}).get("filed") or figures.get("appeals", {}).get("overdue"):
        console.print(appeals_table(figures["appeals"]))
    if scorecard:
        score = Table(title="考评 (supervision scorecard)", box=box.SIMPLE_HEAVY)
        for _, label in SCORE_COLUMNS:
            score.add_column(label)
        for row in board:
            score.add_row(*(str(row[key]) for key, _ in SCORE_COLUMNS))
        console.print(score)
    if xlsx:
        write_xlsx(xlsx, figures, board)
        console.print(f"written to {xlsx}")
