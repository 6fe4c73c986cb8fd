"""``dibao audit``: the accountability record (责任追究).

- ``dibao audit trace --household ID | --application ID | --case ID |
  --operator USER [--from D --to D] | --unit CODE [--from D --to D]``:
  who (name, role, unit), what, when and the outcome, in order;
  ``--who-let-them-in CASE_ID``: everyone who took part in a case's entry;
  ``--readers HOUSEHOLD_ID``: who read the household's file.
  Asked of the audit service as the logged-in person (an auditor, a
  director, the audit administrator); the query is recorded.
- ``dibao audit verify [--checkpoint FILE ...] [--public-key FILE]``: walks
  the whole hash chain in the audit database, checks it against the
  checkpoints the database keeps and those given (kept by a holder), and
  names the first record altered, removed, inserted, rewritten (and
  rehashed) or missing;
  ``--bundle FILE --checkpoint FILE --public-key FILE``: the same for an
  exported bundle, offline — no database, no service code
  (:mod:`contracts.audit_bundle`).
- ``dibao audit checkpoint [--out FILE] [--seq N | --all]``: the last
  checkpoint the audit service signed (every AUDIT_CHECKPOINT_EVERY_RECORDS
  records or AUDIT_CHECKPOINT_EVERY_SECONDS; published as
  ``audit.checkpoint_signed``), for a holder to keep.
- ``dibao audit export --out FILE``: the bundle (records, checkpoints, public keys).
- ``dibao audit public-key``: the key that verifies the checkpoints.
"""
from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import List, Optional

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from cli.common import cli_command, console, fail, get_config, one_line, rpc_session

app = typer.Typer(help="The audit record: traces, who let them in, verify the chain, checkpoints.",
                  no_args_is_help=True, rich_markup_mode="rich")

OUTCOME_STYLE = {"ok": "green", "forbidden": "red", "validation_failed": "yellow", "conflict": "yellow",
                 "not_found": "yellow", "internal_error": "red"}


def _database(config: dict):
    """The audit database, read through the chain's contract (no audit code imported)."""
    import sqlalchemy as sa

    from cli.common import SERVICES_DIR
    from contracts.audit_chain import audit_record_table
    from contracts.audit_checkpoints import audit_checkpoint_table
    from shared.db import ServiceDatabase, platform_tables

    metadata = sa.MetaData()
    platform_tables(metadata)
    audit_record_table(metadata)
    audit_checkpoint_table(metadata)
    db = ServiceDatabase("audit", config["DB_URIS"]["audit"], metadata, SERVICES_DIR / "audit" / "migrations")
    db.migrate()
    return db


def trace_table(title: str, lines: list[dict]) -> Table:
    table = Table(title=title, box=box.SIMPLE_HEAVY)
    for column in ("#", "when (UTC)", "who", "role", "unit", "what", "outcome"):
        table.add_column(column, no_wrap=column in ("when (UTC)", "what"))
    for line in lines:
        style = OUTCOME_STYLE.get(line["outcome"])
        outcome = escape(str(line["outcome"]))
        table.add_row(str(line["seq"]), line["when"][:19].replace("T", " "), escape(line["name"] or "(system)"),
                      escape(line["role"] or ""), line["unit"] or "", escape(line["what"]),
                      f"[{style}]{outcome}[/{style}]" if style else outcome)
    return table


def people_table(answer: dict) -> Table:
    flag = "[red]found wrongly included[/red]" if answer["wrongly_included"] else "not found wrongly included"
    table = Table(title=f"who let them in — case {answer['case_id']} ({flag})", box=box.SIMPLE_HEAVY)
    for column in ("part", "name", "role / department", "unit", "when (UTC)"):
        table.add_column(column)
    for p in answer["people"]:
        table.add_row(escape(p["part"]), escape(p["name"] or ""), escape(p["role"] or ""), p["unit"] or "",
                      (p["when"] or "")[:19].replace("T", " "))
    return table


@app.command("trace")
@cli_command
def trace(
    ctx: typer.Context,
    household: Optional[str] = typer.Option(None, "--household", help="household id"),
    application: Optional[str] = typer.Option(None, "--application", help="application id"),
    case: Optional[str] = typer.Option(None, "--case", help="case id"),
    operator: Optional[str] = typer.Option(None, "--operator", help="operator user id"),
    unit: Optional[str] = typer.Option(None, "--unit", help="unit (division code): its activity"),
    start: Optional[str] = typer.Option(None, "--from", help="from date (YYYY-MM-DD)"),
    end: Optional[str] = typer.Option(None, "--to", help="to date (YYYY-MM-DD)"),
    who_let_them_in: Optional[str] = typer.Option(None, "--who-let-them-in", metavar="CASE_ID",
                                                  help="everyone who took part in the case's entry"),
    readers: Optional[str] = typer.Option(None, "--readers", metavar="HOUSEHOLD_ID",
                                          help="who read the household's file"),
    limit: int = typer.Option(1000, "--limit"),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """Who did what, when, with what outcome (责任追究)."""
    config = get_config(ctx)
    asked = {"household_id": household, "application_id": application, "case_id": case, "operator": operator,
             "unit_code": unit}
    asked = {k: v for k, v in asked.items() if v}
    if sum(bool(x) for x in (asked, who_let_them_in, readers)) != 1 or len(asked) > 1:
        fail("give one of --household, --application, --case, --operator, --unit, --who-let-them-in, --readers")
    with rpc_session(config) as rpc:
        if who_let_them_in:
            answer = rpc.audit.who_let_them_in(who_let_them_in)
            console.print_json(data=answer) if as_json else console.print(people_table(answer))
            return
        if readers:
            lines, title = rpc.audit.file_readers(readers), f"who read household {readers}'s file"
        else:
            query = dict(asked, limit=limit, **{k: v for k, v in (("from", start), ("to", end)) if v})
            lines = rpc.audit.trace(query)
            title = "trace of " + ", ".join(f"{k} {v}" for k, v in asked.items())
    if as_json:
        console.print_json(data=lines)
    else:
        console.print(trace_table(title, lines))
        console.print(f"{len(lines)} record(s)")


def _kept(files: list[Path] | None) -> list[dict]:
    from contracts.audit_checkpoints import load_kept

    kept = []
    for path in files or []:
        try:
            kept += load_kept(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            fail(f"--checkpoint {path}: {one_line(exc)}")
    return kept


def _keys(given: str | None, config: dict | None) -> dict[str, str] | None:
    """The public keys checkpoints must be signed with: ``--public-key`` (a file,
    or the key itself), else the deployment's own (when this host holds it)."""
    from contracts import audit_checkpoints as signed

    if given:
        path = Path(given)
        try:
            text = path.read_text(encoding="utf-8") if path.is_file() else given
            return signed.public_keys(text)
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            fail(f"--public-key {given}: {one_line(exc)}")
    if config is None:
        return None
    try:
        public = signed.public_key_text(signed.signing_key(config))
    except Exception:  # noqa: BLE001 - not on the audit host: the caller says what to give
        return None
    return {signed.key_id(public): public}


@app.command("verify")
@cli_command
def verify_command(
    ctx: typer.Context,
    bundle: Optional[Path] = typer.Option(None, "--bundle", help="verify this exported bundle, offline (no database)"),
    checkpoint: Optional[List[Path]] = typer.Option(
        None, "--checkpoint", help="checkpoints you kept (a file of one, a JSON list or JSON lines of them or of "
                                   "their audit.checkpoint_signed events; repeatable)"),
    public_key: Optional[str] = typer.Option(
        None, "--public-key", metavar="FILE|KEY",
        help="the key checkpoints must be signed with: a file of base64 keys, one a line, or a key itself "
             "(default, on the audit host: the deployment's own; with --bundle: required)"),
) -> None:
    """Walk the whole chain and check it against the signed checkpoints; name the
    first record altered, removed, inserted, rewritten or missing."""
    from contracts import audit_checkpoints as signed

    kept = _kept(checkpoint)
    if bundle:
        from contracts.audit_bundle import BundleError, verify_bundle

        if not public_key:
            fail("--bundle needs --public-key: the deployment's key as you got it (`dibao audit public-key`), "
                 "never the bundle's own")
        keys = _keys(public_key, None)
        try:
            report = verify_bundle(bundle, kept, keys)
        except BundleError as exc:
            fail(f"verify FAILED: {exc}", code=2)
        except OSError as exc:
            fail(f"--bundle {bundle}: {one_line(exc)}")
    else:
        config = get_config(ctx)
        keys = _keys(public_key, config)
        db = _database(config)
        try:
            if keys is None and (kept or signed.stored(db.engine)):
                fail("this host does not hold the audit's signing key: give --public-key "
                     "(`dibao audit public-key` on the audit host)")
            report = signed.verify_database(db.engine, kept, keys)
        finally:
            db.dispose()
    result = report.verification
    if not report.ok:
        for finding in report.findings[1:]:
            console.print(f"  also: {escape(str(finding))}", soft_wrap=True)
        fail(f"verify FAILED: {report.first}", code=2)
    console.print(f"[green]chain verifies[/green]: {result.records} records, head {result.head_seq} "
                  f"hash {result.head_hash[:16]}…; {len(report.held)} signed checkpoint(s) hold", soft_wrap=True)
    for cp in kept:
        console.print(f"[green]checkpoint holds[/green]: record {cp['seq']} still has hash {cp['head_hash'][:16]}… "
                      f"(signed {cp['signed_at']}); the log only grew since", soft_wrap=True)


@app.command("checkpoint")
@cli_command
def checkpoint_command(
    ctx: typer.Context,
    out: Optional[Path] = typer.Option(None, "--out", help="write it here (default: print it)"),
    seq: Optional[int] = typer.Option(None, "--seq", help="the checkpoint of this record (default: the last)"),
    every: bool = typer.Option(False, "--all", help="every checkpoint, as JSON lines"),
) -> None:
    """The last checkpoint the audit service signed (or --seq N's, or --all), to keep."""
    from contracts import audit_checkpoints as signed

    config = get_config(ctx)
    db = _database(config)
    try:
        checkpoints = signed.stored(db.engine)
    finally:
        db.dispose()
    if seq is not None:
        checkpoints = [cp for cp in checkpoints if cp["seq"] == seq]
    if not checkpoints:
        fail(f"no checkpoint {'of record ' + str(seq) if seq is not None else 'signed yet'}: the audit service "
             f"signs one every {config.get('AUDIT_CHECKPOINT_EVERY_RECORDS')} records or "
             f"{config.get('AUDIT_CHECKPOINT_EVERY_SECONDS')} s", code=2)
    if every:
        text = "".join(json.dumps(cp, sort_keys=True) + "\n" for cp in checkpoints)
    else:
        text = json.dumps(checkpoints[-1], indent=2, sort_keys=True) + "\n"
    if out:
        from cli.files import export_to

        with export_to(out, "--out", binary=False) as fh:   # never through a symbolic link
            fh.write(text)
        console.print(f"{len(checkpoints) if every else 1} checkpoint(s) written to {out} "
                      f"(the last: record {checkpoints[-1]['seq']})")
    else:
        console.print(text, end="", soft_wrap=True, markup=False, highlight=False)


@app.command("export")
@cli_command
def export_command(
    ctx: typer.Context,
    out: Path = typer.Option(..., "--out", help="the bundle file to write (zip)"),
) -> None:
    """The audit bundle: every record, every checkpoint and the public keys, for offline verification."""
    from cli.files import export_to
    from contracts.audit_bundle import write_bundle

    config = get_config(ctx)
    db = _database(config)
    try:
        with export_to(out, "--out") as fh:     # never through a symbolic link
            manifest = write_bundle(db.engine, fh)
    finally:
        db.dispose()
    console.print(f"bundle written to {out}: {manifest['records']} records (head {manifest['head_seq']}), "
                  f"{manifest['checkpoints']} checkpoint(s). Verify it offline: `dibao audit verify --bundle "
                  f"{out} --checkpoint KEPT.json --public-key KEY.txt`", soft_wrap=True)


@app.command("public-key")
@cli_command
def public_key_command(ctx: typer.Context) -> None:
    """The public key (base64; Ed25519, or SM2 under CRYPTO_PROFILE gm) that verifies this deployment's checkpoints."""
    from contracts import audit_checkpoints as signed

    console.print(signed.public_key_text(signed.signing_key(get_config(ctx))), soft_wrap=True)


def parse_date(value: str, option: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        fail(f"{option} must be a date YYYY-MM-DD, not {value!r}")


def demo_section(config: dict, district: str, runs: list, accounts) -> None:
    """The demo's last part: the audit trace of one approved household
    (every step of its entry, with names and roles), the chain verified,
    and the statistics paragraph — when the audit service runs; read as the
    demo's auditor (``accounts``: the demo's accounts, demo.accounts)."""
    import time

    from cli.common import ping
    from demo.people import Person

    approved = [r for r in runs if r.review and r.review.get("status") == "approved"]
    try:
        ping(config, "audit", 2.0)
    except Exception:  # noqa: BLE001 - no audit service: nothing to show
        console.print("(the audit service is not running: no audit trace)")
        return
    if not approved:
        return
    run = approved[0]
    console.print("[bold]audit: the accountability record (责任追究)[/bold] — "
                  f"`dibao audit trace --household {run.household_id}`")
    with accounts.rpc(Person(f"auditor-{district}", "审计员", "auditor", district)) as rpc:
        deadline = time.monotonic() + 30
        while True:   # the record follows the bus: wait for the approval to be in it
            lines = rpc.audit.trace({"household_id": run.household_id})
            if any(line["what"] == "review.case_approved" for line in lines) or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        people = [line for line in lines if line["role"] not in (None, "system")]
        console.print(trace_table(f"trace of household {run.household_id}: what people did "
                                  f"({len(lines) - len(people)} records by the services themselves not shown)",
                                  people))
        from shared.clock import clock_from_config

        today = clock_from_config(config).today()     # the services' day (the demo's clock when it moves one)
        console.print(escape(rpc.audit.statistics(today.isoformat())["paragraph"]))
    db = _database(config)
    try:
        from contracts import audit_chain as chain

        result, _ = chain.verify(db.engine)
    finally:
        db.dispose()
    console.print(f"chain: {'[green]verifies[/green]' if result.ok else f'[red]{result.finding}[/red]'} "
                  f"({result.records} records) — `dibao audit verify`")
