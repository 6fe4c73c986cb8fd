"""The demo year's payments: each month's runs, prepared by the finance officer, approved by the
centre director, exported as a CSV bank file and reconciled with the return file the demo writes
as the bank would (through the ``csv`` plugin of ``dibao.bank_formats``).
"""
from __future__ import annotations

import base64
import zlib
from datetime import date
from decimal import Decimal

from cli.common import console
from demo.year_log import YEAR_WAIT, payout_period


#: what the bank's return file says of the line that fails
FAILED_REASON = "账号有误 wrong account number"


class YearPayments:
    """The year's payment runs (prepared, approved, exported, reconciled with a faked bank return file),
    mixed into :class:`demo.year.Year`."""

    def pay(self, month: str, day: date, row: dict) -> None:
        """The month's runs: prepared by the finance officer, approved by the centre director,
        exported, reconciled; the first run's first line fails and is carried forward."""
        from cli.payments import _csv_rows
        from shared.bank_formats import ReturnLine, load_format

        finance, director = self.rpc(self.finance), self.rpc(self.director)
        periods = [(p, area) for area in ("urban", "rural")
                   if (p := payout_period(month, self.policy.payout_months(area)))]
        if not any(c.start_month <= month for c in self.cases.values()):
            return
        self.ledger_ready(finance)
        if self.has_checkins and self.log.checkins.get(month):
            needed = self.log.checkins[month]
            self.demo.wait(lambda: (finance.payments.checkins([month]).get(month, 0) >= needed,
                                    "check-ins not in payments yet"), "payments to take in the check-ins", YEAR_WAIT)
        fmt = load_format("csv")
        shown = []
        for period, area in periods:
            run = finance.payments.create_run({"period": period, "area_type": area,
                                               "division_code": self.district})
            run = director.payments.approve_run(run["id"])
            exported = finance.payments.export_run(run["id"], "csv")
            lines = [ln for ln in _csv_rows(base64.b64decode(exported["content"])) if ln["line_id"] != "TOTAL"]
            results, failed = [], None
            for ln in lines:
                fails = not self.failed_once and area == "urban" and failed is None
                entry = {"run_month": month, "period": ln["period"], "area_type": area, "case_id": ln["case_id"],
                         "amount": ln["amount"]}
                if fails:
                    failed = ln
                    self.failed_once = True
                    self.log.failed.append(entry)
                else:
                    self.log.paid.append(entry)
                    row["paid"] += Decimal(ln["amount"])
                results.append(ReturnLine(int(ln["line_id"]), Decimal(ln["amount"]), not fails,
                                          FAILED_REASON if fails else None, None if fails else day))
            if lines:
                finance.payments.import_return({"run_id": run["id"], "format": "csv", "content":
                                                base64.b64encode(fmt.write_return(results)).decode()})
            if failed is not None:
                row["failed"] += 1
                finance.payments.set_payee({"case_id": failed["case_id"], "payee_name": failed["payee_name"],
                                            "account_number": "6222024299990001", "bank_name": "农村商业银行"})
            detail = finance.payments.get_run(run["id"], 0)
            held = {}
            for h in detail["held_back"]:
                held[h["reason"]] = held.get(h["reason"], 0) + 1
            shown.append(f"{period} {area}: {len(lines)} lines ¥{run['total']}"
                         + (f" ({run['carried']} carried)" if run.get("carried") else "")
                         + (" [red]1 failed → next run[/red]" if failed is not None else "")
                         + (f", held back {', '.join(f'{n} {r}' for r, n in held.items())}" if held else ""))
        console.print("   payments (prepared by finance, approved by the director, bank file, return file): "
                      + "; ".join(shown))

    def ledger_ready(self, finance) -> None:
        """Every approved case in payments' ledger, with a payee account."""
        expected = set(self.cases)

        def check():
            cases = finance.payments.list_cases({"division_code": self.district})
            missing = expected - {c["case_id"] for c in cases}
            return (not missing and cases), f"{len(missing)} case(s) not in payments' ledger yet"
        cases = self.demo.wait(check, "payments to take in the approved cases", YEAR_WAIT)
        without = [c for c in cases if not c["account_masked"]]
        if without:
            finance.payments.set_payees([
                {"case_id": c["case_id"], "payee_name": f"户主{c['case_id'][:4]}",
                 "account_number": f"6222024{zlib.crc32(c['case_id'].encode()):011d}", "bank_name": "农村商业银行"}
                for c in without])
