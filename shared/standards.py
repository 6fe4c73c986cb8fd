"""Local guarantee standards (低保标准): yuan per person per month, by area
(division-code prefix) and urban/rural, with effective dates.

Read from ``STANDARDS_FILE`` (CSV: division_code, area_type, effective_from,
monthly_amount). The payments service will own standards and their changes
(提标/降标): it takes this table over on its first start, and review fixes
benefits with this table overlaid by the changes payments announces
(``payments.standard_changed``). The sample figures are illustrative.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from shared.money import to_money


@dataclass(frozen=True)
class Standard:
    division_code: str
    area_type: str
    effective_from: date
    monthly_amount: object  # Decimal


class StandardsTable:
    def __init__(self, standards: list[Standard]):
        self.standards = sorted(standards, key=lambda s: (len(s.division_code), s.effective_from), reverse=True)

    @classmethod
    def load(cls, path: str | Path | None) -> "StandardsTable":
        if not path or not Path(path).exists():
            return cls([])
        with open(path, encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        return cls([Standard(r["division_code"].strip(), r["area_type"].strip(),
                             date.fromisoformat(r["effective_from"].strip()), to_money(r["monthly_amount"].strip()))
                    for r in rows])

    def overlaid(self, standards: list[Standard]) -> "StandardsTable":
        """This table with ``standards`` replacing any of the same area, type and date."""
        keys = {(s.division_code, s.area_type, s.effective_from) for s in standards}
        return StandardsTable([s for s in self.standards
                               if (s.division_code, s.area_type, s.effective_from) not in keys] + list(standards))

    def standard_for(self, division_code: str, area_type: str, on: date) -> Standard | None:
        """The most specific area's standard in force on ``on``."""
        for s in self.standards:
            if division_code.startswith(s.division_code) and s.area_type == area_type and s.effective_from <= on:
                return s
        return None
