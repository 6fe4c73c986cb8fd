"""Bank file formats (entry-point group ``dibao.bank_formats``).

A format writes a run's payment file for the bank (代发文件) and reads the
bank's return file (回盘文件); it also writes a return file, which is what
the bank does — used by the demo and the tests as the bank's side. Dibao
ships ``csv`` (UTF-8) and ``fixed`` (fixed-width records in GBK, as Chinese
banks' batch-payment systems take them); a bank's own layout is a package
with an entry point in the same group; the interface (lines, base class,
loading by name, the summary sheet) is the platform's :mod:`shared.bank_formats`.

Amounts are Decimal yuan in Python; the fixed-width layout carries integer
fen. The summary sheet (汇总表) gives the total in Chinese capital numerals
(大写金额, cn2an), e.g. 壹仟贰佰叁拾元伍角整.
"""
from __future__ import annotations

import csv
import io
from datetime import date, datetime
from decimal import Decimal

from shared.bank_formats import BankFormat, ReturnFile, ReturnFileError, ReturnLine
from shared.money import to_money


def _money(text: str, what: str) -> Decimal:
    try:
        return to_money(text)
    except (TypeError, ValueError) as exc:
        raise ReturnFileError(f"{what}: {exc}") from None


def _int(text: str, what: str) -> int:
    text = text.strip()
    if not text.isdigit():
        raise ReturnFileError(f"{what}: not a number: {text!r}")
    return int(text)


def _date(text: str, what: str, fmt: str) -> date | None:
    text = text.strip()
    if not text:
        return None
    try:
        return datetime.strptime(text, fmt).date()
    except ValueError:
        raise ReturnFileError(f"{what}: not a date: {text!r}") from None


class CsvFormat(BankFormat):
    """CSV, UTF-8 with a header row and a 合计 (total) row at the end."""

    name = "csv"
    extension = "csv"
    encoding = "utf-8"
    EXPORT_HEADER = ["line_id", "payee_name", "account_number", "amount", "period", "community_code", "case_id"]
    RETURN_HEADER = ["line_id", "amount", "result", "reason", "value_date"]

    def export(self, run, lines):
        out = io.StringIO()
        w = csv.writer(out, lineterminator="\r\n")
        w.writerow(self.EXPORT_HEADER)
        count, total = 0, Decimal("0.00")
        for ln in lines:
            w.writerow([ln.line_id, ln.payee_name, ln.account_number, f"{ln.amount:.2f}", ln.period,
                        ln.community_code, ln.case_id])
            count, total = count + 1, total + ln.amount
        w.writerow(["TOTAL", count, f"{total:.2f}", "", "", "", ""])
        return out.getvalue().encode(self.encoding)

    def write_return(self, lines):
        out = io.StringIO()
        w = csv.writer(out, lineterminator="\r\n")
        w.writerow(self.RETURN_HEADER)
        for ln in lines:
            w.writerow([ln.line_id, f"{ln.amount:.2f}", "paid" if ln.paid else "failed", ln.reason or "",
                        ln.paid_on.isoformat() if ln.paid_on else ""])
        w.writerow(["TOTAL", len(lines), f"{sum((ln.amount for ln in lines), Decimal('0.00')):.2f}", "", ""])
        return out.getvalue().encode(self.encoding)

    def parse_return(self, data):
        try:
            rows = list(csv.reader(io.StringIO(data.decode(self.encoding).lstrip("\ufeff"))))
        except (UnicodeDecodeError, csv.Error) as exc:
            raise ReturnFileError(f"not a {self.encoding} CSV file: {exc}") from None
        if not rows or [c.strip() for c in rows[0]] != self.RETURN_HEADER:
            raise ReturnFileError(f"the first row must be the header {','.join(self.RETURN_HEADER)}")
        if len(rows) < 2 or rows[-1][:1] != ["TOTAL"] or len(rows[-1]) < 3:
            raise ReturnFileError("the last row must be TOTAL,<count>,<total>")
        lines = []
        for n, row in enumerate(rows[1:-1], start=2):
            if len(row) != 5:
                raise ReturnFileError(f"row {n}: expected 5 columns, got {len(row)}")
            result = row[2].strip()
            if result not in ("paid", "failed"):
                raise ReturnFileError(f"row {n}: result must be paid or failed, not {result!r}")
            lines.append(ReturnLine(_int(row[0], f"row {n} line_id"), _money(row[1], f"row {n} amount"),
                                    result == "paid", row[3].strip() or None,
                                    _date(row[4], f"row {n} value_date", "%Y-%m-%d")))
        trailer = rows[-1]
        return ReturnFile(lines, _int(trailer[1], "TOTAL count"), _money(trailer[2], "TOTAL total"))


def _fixed(text: str, width: int, encoding: str) -> bytes:
    """``text`` in ``width`` bytes of ``encoding``, space-padded, never splitting a character."""
    out = b""
    for ch in text:
        b = ch.encode(encoding, errors="replace")
        if len(out) + len(b) > width:
            break
        out += b
    return out.ljust(width, b" ")


class FixedWidthGbkFormat(BankFormat):
    """Fixed-width records in GBK (定长 GBK 代发格式), CRLF-terminated.

    Payment file: ``H`` run id(36) period(7) count(8) total fen(15);
    ``D`` line id(10) account(30) name(40 bytes) amount fen(15) period(7);
    ``T`` count(8) total fen(15).
    Return file: ``D`` line id(10) amount fen(15) result(1: S paid / F failed)
    value date(8, YYYYMMDD or blank) reason(40 bytes); ``T`` count(8) total fen(15).
    """

    name = "fixed"
    extension = "txt"
    encoding = "gbk"
    DETAIL = 1 + 10 + 15 + 1 + 8 + 40
    TRAILER = 1 + 8 + 15

    def export(self, run, lines):
        body, count, total = [], 0, 0
        for ln in lines:
            fen = int(ln.amount * 100)
            body.append(b"D" + f"{ln.line_id:010d}".encode() + _fixed(ln.account_number, 30, self.encoding)
                        + _fixed(ln.payee_name, 40, self.encoding) + f"{fen:015d}".encode()
                        + ln.period.encode().ljust(7))
            count, total = count + 1, total + fen
        head = b"H" + run["id"].encode().ljust(36) + run["period"].encode().ljust(7) + f"{count:08d}{total:015d}".encode()
        return b"\r\n".join([head, *body, f"T{count:08d}{total:015d}".encode()]) + b"\r\n"

    def write_return(self, lines):
        out = []
        for ln in lines:
            out.append(b"D" + f"{ln.line_id:010d}{int(ln.amount * 100):015d}".encode() + (b"S" if ln.paid else b"F")
                       + (ln.paid_on.strftime("%Y%m%d").encode() if ln.paid_on else b" " * 8)
                       + _fixed(ln.reason or "", 40, self.encoding))
        total = sum(int(ln.amount * 100) for ln in lines)
        out.append(f"T{len(lines):08d}{total:015d}".encode())
        return b"\r\n".join(out) + b"\r\n"

    def parse_return(self, data):
        records = [r for r in data.split(b"\r\n") if r]
        if not records or not records[-1].startswith(b"T") or len(records[-1]) != self.TRAILER:
            raise ReturnFileError("the last record must be the trailer T + count(8) + total fen(15)")
        lines = []
        for n, rec in enumerate(records[:-1], start=1):
            if not rec.startswith(b"D") or len(rec) != self.DETAIL:
                raise ReturnFileError(f"record {n}: expected a D record of {self.DETAIL} bytes, got {len(rec)}")
            result = rec[26:27]
            if result not in (b"S", b"F"):
                raise ReturnFileError(f"record {n}: result must be S or F, not {result!r}")
            try:
                reason = rec[35:].decode(self.encoding).strip() or None
            except UnicodeDecodeError:
                raise ReturnFileError(f"record {n}: the reason is not {self.encoding} text") from None
            lines.append(ReturnLine(_int(rec[1:11].decode("ascii", "replace"), f"record {n} line id"),
                                    _fen(rec[11:26], f"record {n} amount"), result == b"S", reason,
                                    _date(rec[27:35].decode("ascii", "replace"), f"record {n} value date", "%Y%m%d")))
        trailer = records[-1].decode("ascii", "replace")
        return ReturnFile(lines, _int(trailer[1:9], "trailer count"), _fen(records[-1][9:24], "trailer total"))


def _fen(raw: bytes, what: str) -> Decimal:
    """Integer fen in the file → Decimal yuan exact to the fen."""
    return (Decimal(_int(raw.decode("ascii", "replace"), what)) / 100).quantize(Decimal("0.01"))
