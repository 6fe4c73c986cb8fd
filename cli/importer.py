"""``dibao import``: bulk registration of households from CSV or XLSX.

The file format is documented in docs/import-format.md: one row per member,
rows sharing a ``household_ref`` form one household. The file is read twice,
streaming (a first pass counts households and finds the refs whose rows are
not adjacent; the second builds households and sends them in chunks to
``intake.import_households``), so a file of 10,000 households never sits in
memory whole. Each household is written alone by the service; a bad one is
reported (``FILE.errors.csv``) and never half-written.
"""
from __future__ import annotations

import csv
import json
import re
from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Iterator, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cli.common import cli_command, console, fail, get_config, hide_password, home_district, one_line, ping

app = typer.Typer(help="Bulk import (CSV or XLSX); write sample files.", no_args_is_help=True)

#: Columns of the import format, in the order the sample writer uses.
COLUMNS = (
    "household_ref", "community_code", "address", "phone", "area_type",
    "name", "resident_id", "relation", "labour_capacity", "disability", "illness", "employment",
    "income_source", "monthly_income", "asset_kind", "asset_value", "asset_description",
)
REQUIRED_COLUMNS = ("household_ref", "community_code", "address", "name", "resident_id", "relation",
                    "labour_capacity", "employment")
HOUSEHOLD_FIELDS = ("community_code", "address", "phone", "area_type")
MEMBER_FIELDS = ("name", "resident_id", "relation", "labour_capacity", "disability", "illness", "employment")
#: Chinese headers accepted for each column (docs/import-format.md).
ALIASES = {
    "户编号": "household_ref", "户号": "household_ref", "社区代码": "community_code", "社区(村)代码": "community_code",
    "住址": "address", "家庭住址": "address", "联系电话": "phone", "电话": "phone", "城乡类别": "area_type",
    "姓名": "name", "身份证号": "resident_id", "身份证号码": "resident_id", "与户主关系": "relation",
    "劳动能力": "labour_capacity", "残疾等级": "disability", "患病情况": "illness", "就业状况": "employment",
    "收入来源": "income_source", "月收入": "monthly_income", "资产类型": "asset_kind", "资产价值": "asset_value",
    "资产说明": "asset_description",
}
#: Where a field of the RPC's input came from in the file.
INCOME_COLUMNS = {"source": "income_source", "monthly_amount": "monthly_income", "member": "name"}
ASSET_COLUMNS = {"kind": "asset_kind", "value": "asset_value", "description": "asset_description"}
XLSX_SUFFIXES = (".xlsx", ".xlsm")
REPORT_HEADER = ("line", "household_ref", "field", "message")


# --- reading -------------------------------------------------------------------

@dataclass(frozen=True)
class RowError:
    line: int
    household_ref: str
    field: str
    message: str


def column_of(header: Any) -> str | None:
    """The format's column for a header cell: ``name``, ``姓名``, ``name 姓名``, ``Name (姓名)``."""
    text = "" if header is None else str(header).strip()
    if not text:
        return None
    if text in ALIASES:
        return ALIASES[text]
    first = re.split(r"[\s(（/]", text, maxsplit=1)[0].strip().lower()
    if first in COLUMNS:
        return first
    if first in ALIASES:
        return ALIASES[first]
    return None


def _header_map(cells: list[Any], path: Path) -> dict[int, str]:
    mapping: dict[int, str] = {}
    for i, cell in enumerate(cells):
        column = column_of(cell)
        if column is None:
            continue
        if column in mapping.values():
            fail(f"{path}: column {column} appears twice in the header")
        mapping[i] = column
    missing = [c for c in REQUIRED_COLUMNS if c not in mapping.values()]
    if missing:
        fail(f"{path}: the header lacks column(s) {', '.join(missing)} (see docs/import-format.md)")
    return mapping


def read_rows(path: Path, encoding: str = "utf-8-sig") -> Iterator[tuple[int, dict[str, Any]]]:
    """(source line, {column: cell}) for each non-blank row, streaming.

    The line is the file's line number (CSV, the record's first line) or the
    sheet's row number (XLSX, first sheet); the header is line 1."""
    if path.suffix.lower() in XLSX_SUFFIXES:
        yield from _read_xlsx(path)
    else:
        yield from _read_csv(path, encoding)


def _read_csv(path: Path, encoding: str) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        with open(path, newline="", encoding=encoding) as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None:
                fail(f"{path} is empty")
            mapping = _header_map(header, path)
            previous_end = reader.line_num
            for cells in reader:
                start, previous_end = previous_end + 1, reader.line_num
                if not any(c.strip() for c in cells):
                    continue
                yield start, {col: cells[i] if i < len(cells) else "" for i, col in mapping.items()}
    except UnicodeDecodeError:
        fail(f"{path} is not {encoding} text; save it as UTF-8 or pass --encoding gb18030")


def _read_xlsx(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 - a corrupt or non-xlsx file
        fail(f"{path}: not a readable XLSX workbook ({one_line(exc)})")
    try:
        sheet = workbook.worksheets[0]
        rows = sheet.iter_rows(values_only=True)
        mapping = None
        for number, cells in enumerate(rows, start=1):
            if not any(c is not None and str(c).strip() for c in cells):
                continue
            if mapping is None:
                mapping = _header_map(list(cells), path)
                continue
            yield number, {col: cells[i] if i < len(cells) else None for i, col in mapping.items()}
        if mapping is None:
            fail(f"{path} is empty")
    finally:
        workbook.close()


def text(value: Any) -> str:
    """A cell as text: numbers from spreadsheets without a spurious ``.0``."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


class RowSource:
    """The rows of a file, read twice. A CSV is simply read again; an XLSX
    (slow to parse) is parsed once, its rows kept in a temporary JSON-lines
    file for the second pass."""

    def __init__(self, path: Path, encoding: str = "utf-8-sig"):
        self.path = path
        self.encoding = encoding
        self.is_xlsx = path.suffix.lower() in XLSX_SUFFIXES
        self._cache = None

    def first_pass(self) -> Iterator[tuple[int, dict[str, Any]]]:
        if not self.is_xlsx:
            yield from read_rows(self.path, self.encoding)
            return
        import tempfile

        self.close()
        self._cache = tempfile.TemporaryFile("w+", encoding="utf-8")
        for line, row in read_rows(self.path, self.encoding):
            self._cache.write(json.dumps([line, row], ensure_ascii=False, default=str) + "\n")
            yield line, row

    def second_pass(self) -> Iterator[tuple[int, dict[str, Any]]]:
        if self._cache is None:
            yield from read_rows(self.path, self.encoding)
            return
        self._cache.seek(0)
        for text_line in self._cache:
            line, row = json.loads(text_line)
            yield line, row

    def close(self) -> None:
        if self._cache is not None:
            self._cache.close()
            self._cache = None


def scan(rows: Iterator[tuple[int, dict]]) -> tuple[int, set[str]]:
    """First pass: the number of households, and the refs whose rows are not adjacent."""
    seen: set[str] = set()
    scattered: set[str] = set()
    current = None
    for _line, row in rows:
        ref = text(row.get("household_ref"))
        if not ref or ref == current:
            continue
        if ref in seen:
            scattered.add(ref)
        seen.add(ref)
        current = ref
    return len(seen), scattered


def groups(source: Iterator[tuple[int, dict]], scattered: set[str]) -> Iterator[tuple[str, list[tuple[int, dict]]]]:
    """Second pass: (household_ref, rows) per household, in file order; refs
    whose rows are scattered come last (their rows are held until the end).
    A row without a ref comes as ("", [row])."""
    held: dict[str, list] = {}
    current, rows = None, []
    for line, row in source:
        ref = text(row.get("household_ref"))
        if not ref:
            yield "", [(line, row)]
            continue
        if ref in scattered:
            held.setdefault(ref, []).append((line, row))
            continue
        if ref != current:
            if rows:
                yield current, rows
            current, rows = ref, []
        rows.append((line, row))
    if rows:
        yield current, rows
    yield from held.items()


# --- building households -----------------------------------------------------------

@dataclass
class Household:
    """One household as the RPC takes it, and where each part came from."""

    ref: str
    lines: list[int]
    data: dict = field(default_factory=dict)
    member_lines: list[int] = field(default_factory=list)
    income_lines: list[int] = field(default_factory=list)
    asset_lines: list[int] = field(default_factory=list)

    @property
    def first_line(self) -> int:
        return self.lines[0]


def parse_amount(value: Any) -> str:
    """An amount as the exact decimal text the service expects; ValueError if not a number."""
    if isinstance(value, bool):
        raise ValueError(f"not a number: {value!r}")
    if isinstance(value, (int, float)):
        value = repr(value) if isinstance(value, float) else str(value)
    raw = str(value).strip().replace(",", "")
    try:
        number = Decimal(raw)
    except InvalidOperation:
        raise ValueError(f"not a number: {str(value).strip()!r}") from None
    if not number.is_finite():
        raise ValueError(f"not a number: {str(value).strip()!r}")
    return format(number, "f")


def build_household(ref: str, rows: list[tuple[int, dict]]) -> tuple[Household | None, list[RowError]]:
    """The RPC input for one household's rows, or the errors that keep it from being sent."""
    errors: list[RowError] = []
    hh = Household(ref=ref, lines=[line for line, _ in rows])
    first_line, first = rows[0]
    base = {f: text(first.get(f)) for f in HOUSEHOLD_FIELDS}
    data: dict[str, Any] = {"community_code": base["community_code"], "address": base["address"],
                            "members": [], "incomes": [], "assets": []}
    if base["phone"]:
        data["phone"] = base["phone"]
    if base["area_type"]:
        data["area_type"] = base["area_type"]

    for line, row in rows:
        def error(column: str, message: str) -> None:
            errors.append(RowError(line, ref, column, message))

        if line != first_line:
            for f in HOUSEHOLD_FIELDS:
                value = text(row.get(f))
                if value and value != base[f]:
                    error(f, f"differs from the household's first row (line {first_line}): {base[f]!r}")
        member_index = None
        if any(text(row.get(f)) for f in MEMBER_FIELDS):
            member = {}
            for f in MEMBER_FIELDS:
                value = row.get(f)
                if f == "resident_id" and isinstance(value, (int, float)) and not isinstance(value, bool):
                    error(f, "stored as a number in the spreadsheet (digits are lost): format the column as text")
                    continue
                value = text(value)
                if value:
                    member[f] = value
            member_index = len(data["members"])
            data["members"].append(member)
            hh.member_lines.append(line)

        source, amount = text(row.get("income_source")), row.get("monthly_income")
        if source or text(amount):
            if not text(amount):
                error("monthly_income", "required when income_source is given")
            elif not source:
                error("income_source", "required when monthly_income is given")
            else:
                try:
                    data["incomes"].append({"member": member_index, "source": source,
                                            "monthly_amount": parse_amount(amount)})
                    hh.income_lines.append(line)
                except ValueError as exc:
                    error("monthly_income", str(exc))

        kind, value = text(row.get("asset_kind")), row.get("asset_value")
        if kind or text(value):
            if not text(value):
                error("asset_value", "required when asset_kind is given")
            elif not kind:
                error("asset_kind", "required when asset_value is given")
            else:
                try:
                    asset = {"kind": kind, "value": parse_amount(value)}
                    description = text(row.get("asset_description"))
                    if description:
                        asset["description"] = description
                    data["assets"].append(asset)
                    hh.asset_lines.append(line)
                except ValueError as exc:
                    error("asset_value", str(exc))

    if not data["members"] and not errors:
        errors.append(RowError(first_line, ref, "name", "a household needs at least one member row"))
    if errors:
        return None, errors
    hh.data = data
    return hh, []


_PATH = re.compile(r"^(members|incomes|assets)\.(\d+)(?:\.(\w+))?")


def map_error(hh: Household, error: dict) -> list[RowError]:
    """A service error for a household → rows and columns of the source file."""
    message = error.get("message", "rejected")
    details = error.get("details") or {}
    fields = details.get("fields") or {}
    if not fields and details.get("field"):
        fields = {details["field"]: [message]}
    if not fields:
        column = "community_code" if error.get("code") == "forbidden" else ""
        return [RowError(hh.first_line, hh.ref, column, f"{error.get('code', 'error')}: {message}")]
    out = []
    for path, problems in fields.items():
        text_ = "; ".join(map(str, problems)) if isinstance(problems, (list, tuple)) else str(problems)
        line, column = hh.first_line, path
        match = _PATH.match(path)
        if match:
            part, index, name = match.group(1), int(match.group(2)), match.group(3) or ""
            lines = {"members": hh.member_lines, "incomes": hh.income_lines, "assets": hh.asset_lines}[part]
            if index < len(lines):
                line = lines[index]
            column = {"members": {}, "incomes": INCOME_COLUMNS, "assets": ASSET_COLUMNS}[part].get(name, name)
            if not column:
                column = {"members": "name", "incomes": "income_source", "assets": "asset_kind"}[part]
        elif path == "_schema":
            column = ""
        if error.get("code") == "conflict" and text_ == message:
            text_ = f"{message}" + (f" (household {details['household_id']})" if details.get("household_id") else "")
        out.append(RowError(line, hh.ref, column, text_))
    return out


def report_path(path: Path) -> Path:
    return path.with_name(path.name + ".errors.csv")


def write_report(path: Path, errors: list[RowError]) -> None:
    from cli.files import export_to

    with export_to(path, "FILE", binary=False, encoding="utf-8-sig", newline="") as fh:   # beside the input
        writer = csv.writer(fh)
        writer.writerow(REPORT_HEADER)
        for e in sorted(errors, key=lambda e: (e.line, e.field)):
            writer.writerow((e.line, e.household_ref, e.field, e.message))


# --- commands ------------------------------------------------------------------------

@app.command("households")
@cli_command
def households(
    ctx: typer.Context,
    file: Path = typer.Argument(..., metavar="FILE", help="CSV (UTF-8) or XLSX, one row per member"),
    chunk: int = typer.Option(200, "--chunk", min=1, max=1000, help="households per RPC call"),
    parallel: int = typer.Option(2, "--parallel", min=1, max=16, help="chunks in flight at once"),
    encoding: str = typer.Option("utf-8-sig", "--encoding", help="CSV text encoding, e.g. gb18030"),
) -> None:
    """Register the households of a CSV/XLSX file; bad rows go to FILE.errors.csv.

    Exit 0 when every household was imported, 3 when some were rejected, 1 on failure."""
    from cli.common import broker_problem, cli_context, tools_uri
    from shared.client import rpc_with

    if not file.is_file():
        fail(f"no such file: {file}")
    config = get_config(ctx)
    context = cli_context(config)     # as the logged-in person (a caseworker)
    problem = broker_problem(tools_uri(config), config=config)
    if problem is not None:
        fail(f"cannot reach RabbitMQ at {hide_password(tools_uri(config))}: {one_line(problem)}")
    try:
        ping(config, "intake", 5)
    except Exception as exc:  # noqa: BLE001 - say so before reading 10,000 households
        fail(f"the intake service does not answer on {hide_password(config['AMQP_URI'])} "
             f"({type(exc).__name__}); start it: `dibao up`")

    source = RowSource(file, encoding)
    with console.status(f"reading {file.name}…"):
        total, scattered = scan(source.first_pass())
    errors: list[RowError] = []
    counts = {"imported": 0, "members": 0, "rejected": 0, "orphans": 0}
    report = report_path(file)
    pending: deque = deque()

    progress = Progress(TextColumn("[bold]importing[/bold]"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("households"), TimeElapsedColumn(), console=console)

    def collect(batch: list[Household], reply) -> None:
        for result in reply.result():
            hh = batch[result["row"]]
            if "household_id" in result:
                counts["imported"] += 1
                counts["members"] += len(hh.data["members"])
            else:
                counts["rejected"] += 1
                errors.extend(map_error(hh, result.get("error") or {}))
        progress.advance(task, len(batch))

    try:
        with rpc_with(config, context) as rpc, progress:
            task = progress.add_task("import", total=total)

            def send(batch: list[Household]) -> None:
                reply = rpc.intake.import_households.call_async([hh.data for hh in batch])
                pending.append((batch, reply))
                while len(pending) >= parallel:
                    collect(*pending.popleft())

            batch: list[Household] = []
            for ref, rows in groups(source.second_pass(), scattered):
                if not ref:
                    counts["orphans"] += 1
                    errors.append(RowError(rows[0][0], "", "household_ref", "required: the row belongs to no household"))
                    continue
                hh, problems = build_household(ref, rows)
                if problems:
                    counts["rejected"] += 1
                    errors.extend(problems)
                    progress.advance(task)
                    continue
                batch.append(hh)
                if len(batch) >= chunk:
                    send(batch)
                    batch = []
            if batch:
                send(batch)
            while pending:
                collect(*pending.popleft())
    except BaseException:
        source.close()
        write_report(report, errors)
        console.print(f"[yellow]stopped after {counts['imported']} imported household(s); rows found bad so far "
                      f"are in {report}; re-running the file is safe (imported households come back as "
                      f"conflicts, never twice)[/yellow]")
        raise
    source.close()
    write_report(report, errors)

    summary = Table(title=f"import of {file.name}", show_header=False)
    summary.add_column(style="bold")
    summary.add_column(justify="right")
    summary.add_row("households imported", f"[green]{counts['imported']}[/green]")
    summary.add_row("members imported", str(counts["members"]))
    summary.add_row("households rejected", f"[red]{counts['rejected']}[/red]" if counts["rejected"] else "0")
    if counts["orphans"]:
        summary.add_row("rows without household_ref", f"[red]{counts['orphans']}[/red]")
    summary.add_row("error rows", str(len(errors)))
    console.print(summary)
    console.print(f"error report: {report}")
    if counts["rejected"] or counts["orphans"]:
        raise typer.Exit(3)


@app.command("sample")
@cli_command
def sample(
    ctx: typer.Context,
    file: Path = typer.Argument(..., metavar="FILE", help="where to write (.csv, or .xlsx for a workbook)"),
    households: int = typer.Option(100, "--households", "-n", min=1, help="number of households"),
    seed: int = typer.Option(2024, "--seed", help="random seed (same seed, same file)"),
    district: Optional[str] = typer.Option(None, "--district", help="district code (default: the deployment's)"),
) -> None:
    """Write a valid sample import file (made-up residents of the sample district)."""
    from cli.files import export_to

    config = get_config(ctx)
    rows = sample_rows(config, households, seed, district)
    if file.suffix.lower() in XLSX_SUFFIXES:
        from openpyxl import Workbook

        workbook = Workbook(write_only=True)
        sheet = workbook.create_sheet("households")
        sheet.append(list(COLUMNS))
        count = 0
        for row in rows:
            sheet.append([row.get(c, "") for c in COLUMNS])
            count += 1
        with export_to(file, "FILE") as fh:
            workbook.save(fh)
    else:
        with export_to(file, "FILE", binary=False, newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(COLUMNS)
            count = 0
            for row in rows:
                writer.writerow([row.get(c, "") for c in COLUMNS])
                count += 1
    console.print(f"wrote {file}: {households} households, {count} rows (seed {seed})")


def sample_rows(config: dict, households: int, seed: int, district: str | None = None,
                today=None) -> Iterator[dict]:
    """Rows of the import format for ``households`` sample households.

    Households go round-robin over the district's communities (urban and
    rural). Resident ID numbers are unique within the file."""
    from shared.config import repo_path
    from shared.divisions import DivisionRegistry
    from shared.resident_id import birth_date_of
    from shared.sample import SampleDistrict, make_resident_id

    registry = DivisionRegistry.load(repo_path(config.get("DIVISIONS_FILE")))
    district = district or home_district(config)
    communities = registry.communities(within=district)
    if not communities:
        fail(f"no community within {district} in DIVISIONS_FILE")
    gen = SampleDistrict(seed=seed, today=today)
    used: set[str] = set()
    for n in range(households):
        community = communities[n % len(communities)]
        hh = gen.household(community.code, community.area_type or "urban")
        ref = f"H{n + 1:05d}"
        base = {"household_ref": ref, "community_code": hh["community_code"], "address": hh["address"],
                "phone": hh["phone"], "area_type": hh["area_type"]}
        rows = []
        for member in hh["members"]:
            rid = original = member["resident_id"]
            bump = 0
            while rid in used:  # the sample's sequence repeats every 1000 people
                bump += 1
                rid = make_resident_id(birth_date_of(original), int(original[14:17]) + bump, original[:6])
            used.add(rid)
            rows.append({**base, **{f: member[f] for f in MEMBER_FIELDS}, "resident_id": rid})
        extra = []
        for income in hh["incomes"]:
            target = rows[income["member"]] if income["member"] is not None else None
            if target is None or "income_source" in target:
                target = dict(base)
                extra.append(target)
            target["income_source"] = income["source"]
            target["monthly_income"] = income["monthly_amount"]
        for k, asset in enumerate(hh["assets"]):
            if k < len(rows):
                target = rows[k]
            else:
                target = dict(base)
                extra.append(target)
            target.update(asset_kind=asset["kind"], asset_value=asset["value"],
                          asset_description=asset.get("description", ""))
        yield from rows
        yield from extra
