"""The demo's output: the notice boards rendered, the tables of households, applications,
reviews and decisions (names and ID numbers masked, 脱敏).
"""
from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from rich import box
from rich.markup import escape
from rich.padding import Padding
from rich.table import Table

from cli.common import console
from cli.review import CATEGORY_LABEL, STEP_LABEL
from demo.people import AREA, REVIEW_LABEL, STAGE_LABEL, STATUS_LABEL


class Report:
    """The demo's tables and notice boards, mixed into :class:`demo.entry.Demo`."""

    def render_boards(self, district) -> None:
        """The community boards as they stand now (the results posted): HTML and PDF."""
        for c in self.communities:
            if any(r.community.code == c.code and r.review and r.review["status"] == "approved"
                   for r in self.runs):
                self.boards.append(district.notify.render_board(c.code))

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
            console.print("   posting periods moved past with notify's close_due_notices (as admin): "
                          + "; ".join(f"as of {c['as_of']} → {c['closed']} closed"
                                      + (f" ({c['objected']} with an objection: no effect)" if c["objected"] else "")
                                      for c in self.closings))
        if self.boards:
            folders = sorted({str(Path(b["html"]).parent) for b in self.boards if b.get("html")})
            console.print(f"[bold]8. notice boards[/bold] (张榜公布: the approved households, IDs masked), written by "
                          f"notify in {', '.join(folders)}:")
            table = Table(box=box.SIMPLE_HEAD, padding=(0, 1))
            for name in ("board", "posted", "page", "printable A4"):
                table.add_column(name, justify="right" if name == "posted" else "left")
            names = {c.code: c.name for c in self.communities}
            for b in self.boards:
                table.add_row(f"{names.get(b['unit_code'], '')} {b['unit_code']}", str(b["notices"]),
                              Path(b["html"]).name if b.get("html") else "[yellow]not written[/yellow]",
                              Path(b["pdf"]).name if b.get("pdf") else "[yellow]not made yet[/yellow]")
            console.print(table)
            problems = {p["detail"] for b in self.boards for p in b.get("problems") or []}
            for detail in sorted(problems):
                console.print(f"[yellow]{escape(detail)}[/yellow] — notify retries on its timer; "
                              f"`dibao health notify` lists what is pending")


def key_values() -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")   # Chinese text has no spaces to wrap at
    return grid


def short_date(iso: str) -> str:
    """``2026-11-25`` → ``11-25`` (the demo's dates are all recent)."""
    return iso[5:] if iso else "—"
