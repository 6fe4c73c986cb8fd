"""``dibao doctor``: is everything the services need at run time on this machine?

``make run`` runs it after installing the Debian packages (``sysdeps``) and
before ``dibao up``: every file path a service reads at run time (config keys
in :data:`RUNTIME_PATHS`) must exist, each provided either by the repository
or by a Debian package of the Makefile's ``DEB_PACKAGES``, and ``DATA_DIR``
must be writable. It prints what is missing and how to install it, and exits
1 then — the services still run (a missing font only holds back the notice
PDFs, which notify makes as soon as the font is there).
"""
from __future__ import annotations

import os
from pathlib import Path

import typer
from rich.markup import escape

from cli.common import cli_command, console, get_config

#: config key → (who provides the file: "repo" or a Debian package, what needs it, optional?)
RUNTIME_PATHS: dict[str, tuple[str, str, bool]] = {
    "NOTICE_FONT": ("fonts-wqy-zenhei", "notify: the printable notice sheets (公示 PDF)", False),
    "DIVISIONS_FILE": ("repo", "every service: the administrative divisions", False),
    "STANDARDS_FILE": ("repo", "payments' first start: the guarantee standards", False),
    "WORKDAY_OVERRIDES_FILE": ("repo", "intake, review: the local working-day overrides", True),
}


def register(app: typer.Typer) -> None:
    app.command("doctor")(doctor)


def check(config: dict) -> list[dict]:
    """One row per run-time path: key, path, provider, needed_by, ok, optional."""
    from shared.config import repo_path

    rows = []
    for key, (provider, needed_by, optional) in RUNTIME_PATHS.items():
        value = config.get(key)
        path = repo_path(str(value)) if value else None
        rows.append({"key": key, "path": str(path) if path else "", "provider": provider, "needed_by": needed_by,
                     "ok": bool(path and path.is_file()), "optional": optional})
    data = Path(str(config.get("DATA_DIR") or "var"))
    try:
        data.mkdir(parents=True, exist_ok=True)
        writable = os.access(data, os.W_OK)
    except OSError:
        writable = False
    rows.append({"key": "DATA_DIR", "path": str(data), "provider": "this machine", "optional": False,
                 "needed_by": "every service: databases, notice boards, messages", "ok": writable})
    return rows


@cli_command
def doctor(ctx: typer.Context) -> None:
    """Check that every file a service needs at run time is here (run by `make run` before `dibao up`)."""
    rows = check(get_config(ctx))
    packages = sorted({r["provider"] for r in rows if not r["ok"] and r["provider"] not in ("repo", "this machine")})
    for r in rows:
        mark = "[green]ok[/green]" if r["ok"] else ("[yellow]absent (optional)[/yellow]" if r["optional"]
                                                     else "[red]MISSING[/red]")
        console.print(f"{mark:>8} {escape(r['key'])} {escape(r['path'])} — {escape(r['needed_by'])}"
                      + ("" if r["ok"] or r["optional"] else f" — from {escape(r['provider'])}"))
    if packages:
        names = " ".join(packages)
        console.print(f"install: [bold]sudo apt-get install -y --no-install-recommends {escape(names)}[/bold] "
                      f"(or `make sysdeps` as root), or point the config key at another file")
    if any(not r["ok"] and not r["optional"] for r in rows):
        raise typer.Exit(1)
