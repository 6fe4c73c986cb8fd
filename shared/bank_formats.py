"""The bank file format plugin interface (entry-point group ``dibao.bank_formats``).

A format writes a run's payment file for the bank (代发文件) and reads the
bank's return file (回盘文件); it also writes a return file, which is what
the bank does — used by the demo and the tests as the bank's side. The
formats Dibao ships (``csv``, ``fixed`` GBK) are payments' own
(``services/payments/bank_formats.py``); a bank's own layout is a package
with an entry point in the same group. This module is the platform's part:
the lines a format reads and writes, the base class, loading a format by
name (through the entry points, never by module), and the summary sheet
(汇总表) with the total in Chinese capital numerals (大写金额, cn2an).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from importlib.metadata import entry_points
from typing import Iterable

from shared.errors import ValidationFailed
from shared.money import to_money

GROUP = "dibao.bank_formats"


@dataclass(frozen=True)
class ExportLine:
    line_id: int
    case_id: str
    payee_name: str
    account_number: str
    amount: Decimal
    period: str
    community_code: str


@dataclass(frozen=True)
class ReturnLine:
    line_id: int
    amount: Decimal
    paid: bool
    reason: str | None = None
    paid_on: date | None = None


@dataclass(frozen=True)
class ReturnFile:
    lines: list[ReturnLine]
    count: int
    total: Decimal


class ReturnFileError(ValueError):
    """The return file cannot be read (layout, not content)."""


class BankFormat:
    name = ""
    extension = ""
    encoding = "utf-8"

    def export(self, run: dict, lines: Iterable[ExportLine]) -> bytes:  # pragma: no cover - interface
        raise NotImplementedError

    def parse_return(self, data: bytes) -> ReturnFile:  # pragma: no cover - interface
        raise NotImplementedError

    def write_return(self, lines: list[ReturnLine]) -> bytes:  # pragma: no cover - interface
        raise NotImplementedError


def available() -> list[str]:
    return sorted(ep.name for ep in entry_points(group=GROUP))


@lru_cache(maxsize=None)
def load_format(name: str) -> BankFormat:
    """The installed format ``name``, or ValidationFailed naming ``format``."""
    matches = [ep for ep in entry_points(group=GROUP) if ep.name == name]
    if not matches:
        raise ValidationFailed.field("format", f"unknown bank format {name!r}; installed: {', '.join(available())}")
    return matches[0].load()()


def capital_amount(amount: Decimal) -> str:
    """大写金额: ``Decimal("1230.50")`` → 壹仟贰佰叁拾元伍角整 (整 when no fen)."""
    import cn2an

    amount = to_money(amount)
    if amount < 0:
        raise ValueError("a negative total has no 大写 form here")
    if amount == 0:
        return "零元整"
    text = cn2an.an2cn(f"{amount:.2f}", "rmb")
    return text if text.endswith(("整", "分")) else text + "整"


def summary_sheet(run: dict, fmt: BankFormat, count: int, total: Decimal, generated: datetime) -> str:
    """汇总表: one page the bureau signs and sends with the bank file."""
    return "\n".join([
        "低保金代发汇总表 (payment run summary)",
        f"批次 run:            {run['id']}",
        f"期间 period:         {run['period']}",
        f"地区 area:           {run['division_code']} {run['area_type']}",
        f"笔数 lines:          {count}",
        f"合计 total (小写):   ¥{total:,.2f}",
        f"合计 total (大写):   人民币{capital_amount(total)}",
        f"文件格式 format:     {fmt.name} ({fmt.encoding})",
        f"制单 prepared by:    {run['prepared_by']}",
        f"审核 approved by:    {run['approved_by']}",
        f"生成 generated:      {generated.isoformat(timespec='seconds')}",
        "",
        "经办人签字:              审核人签字:              单位盖章:",
        "",
    ])
