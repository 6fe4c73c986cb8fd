"""``dibao docs events``: docs/events.md from the event catalogue."""
from __future__ import annotations

import difflib
from pathlib import Path
from typing import Optional

import typer

from cli.common import SERVICES_DIR, cli_command, console, fail

app = typer.Typer(help="Generate documentation from the code.", no_args_is_help=True)

EVENTS_DOC = SERVICES_DIR.parent / "docs" / "events.md"


def load_catalogue() -> list[str]:
    """Import every module of the ``contracts`` package; the names imported."""
    import contracts

    return contracts.load_all()


def render_events() -> str:
    """The markdown, from the project's own event types only (a test that
    registers a throwaway type in the same process does not leak in)."""
    from shared import events

    load_catalogue()
    full = events.CATALOGUE
    own = {key: spec for key, spec in full.items()
           if spec.schema.__module__.split(".")[0] in ("contracts", "shared")}
    events.CATALOGUE = own
    try:
        return events.render_markdown()
    finally:
        events.CATALOGUE = full


@app.command("events")
@cli_command
def events_doc(
    check: bool = typer.Option(False, "--check", help="exit 1 if the file differs from the code, write nothing"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", metavar="PATH",
                                          help="file to write or check (default: docs/events.md)"),
) -> None:
    """Write docs/events.md from shared/events.py and the contracts package."""
    path = output or EVENTS_DOC
    text = render_events()
    current = path.read_text(encoding="utf-8") if path.is_file() else None
    if check:
        if current == text:
            console.print(f"{path}: up to date")
            return
        if current is None:
            fail(f"{path} does not exist; run `dibao docs events`")
        diff = list(difflib.unified_diff(current.splitlines(), text.splitlines(), "committed", "generated",
                                         lineterm="", n=0))
        changed = sum(1 for line in diff if line[:1] in "+-" and line[:3] not in ("+++", "---"))
        fail(f"{path} is out of date ({changed} line(s) differ); run `dibao docs events` and commit it")
    if current == text:
        console.print(f"{path}: unchanged")
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    console.print(f"wrote {path}")
