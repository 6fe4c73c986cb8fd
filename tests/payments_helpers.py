"""Driving payments in tests: review's and intake's events published as
those services publish them (real bus), the finance people, months."""
from __future__ import annotations

import base64
import csv
import io
import uuid
from datetime import date
from decimal import Decimal

import sqlalchemy as sa

from shared.db import make_engine
from shared.errors import NotFound
from shared.identity import Role
from shared.testing import publish_event, rpc_as, wait_for

import contracts.intake  # noqa: F401 - registers the contracts we publish
import contracts.payments  # noqa: F401
import contracts.review  # noqa: F401

DISTRICT = "420115"
COMMUNITY = "420115001001"
VILLAGE = "420115002001"


def month(offset: int = 0, today: date | None = None) -> str:
    """This month (offset 0), last month (-1)…, as YYYY-MM."""
    today = today or date.today()
    index = today.year * 12 + today.month - 1 + offset
    return f"{index // 12}-{index % 12 + 1:02d}"


def quarter(offset: int = 0, today: date | None = None) -> tuple[str, list[str]]:
    """This quarter (offset 0), the last one (-1): ("2026-Q3", [its months])."""
    today = today or date.today()
    index = today.year * 4 + (today.month - 1) // 3 + offset
    year, q = index // 4, index % 4 + 1
    return f"{year}-Q{q}", [f"{year}-{3 * (q - 1) + k:02d}" for k in (1, 2, 3)]


def maker(config):
    return rpc_as(config, Role.FINANCE_OFFICER, DISTRICT, user="qian.finance", name="钱会计")


def checker(config):
    return rpc_as(config, Role.CENTRE_DIRECTOR, DISTRICT, user="zhou.director", name="周主任")


def caseworker(config):
    """A district officer: reads the ledger, records a household's bank account."""
    return rpc_as(config, Role.DISTRICT_OFFICER, DISTRICT, user="zhao.district", name="赵专干")


def envelope(source: str, event_type: str, subject: dict, payload: dict, event_id: str | None = None) -> dict:
    """An envelope built by hand exactly as shared.events builds one (works for
    types this branch does not register, e.g. review.case_adjusted)."""
    return {"event_id": event_id or str(uuid.uuid4()), "type": event_type, "source": source, "version": 1,
            "occurred_at": "2026-01-01T00:00:00+00:00", "actor": None,
            "subject": {k: str(v) for k, v in subject.items()}, "correlation_id": "test", "payload": payload}


def publish(config, env: dict) -> dict:
    return publish_event(config, env)


def case_approved(case_id: str, start_month: str, benefit: str, size: int = 2, area_type: str = "urban",
                  community: str = COMMUNITY, gap: str | None = None, standard: str | None = "820.00",
                  vulnerable: int = 0, household_id: str | None = None, basis: bool = True) -> dict:
    """review.case_approved; ``basis=False``: as emitted before review sent the
    benefit basis (no standard_amount, benefit_gap, vulnerable_members)."""
    household_id = household_id or f"hh-{case_id}"
    payload = {"community_code": community, "township_code": community[:9], "area_type": area_type,
               "household_size": size, "monthly_benefit": benefit, "category": "stable",
               "start_month": start_month, "next_rereview_on": "2030-01-01", "approved_on": "2026-01-01",
               "policy": "jiangxia", "standard_amount": standard, "benefit_gap": gap if gap is not None else benefit,
               "vulnerable_members": vulnerable, "benefit_overridden": False}
    if not basis:
        for key in ("standard_amount", "benefit_gap", "vulnerable_members", "benefit_overridden"):
            payload.pop(key)
    return envelope("review", "case_approved", {"household_id": household_id, "application_id": f"app-{case_id}",
                                                 "case_id": case_id}, payload)


def checkin(household_id: str, month_: str, community: str = COMMUNITY) -> dict:
    return envelope("intake", "checkin_recorded", {"household_id": household_id},
                    {"community_code": community, "month": month_, "checked_in_on": f"{month_}-05"})


def ledger_case(config, case_id: str, timeout: float = 20, check=lambda c: True) -> dict:
    def get():
        with caseworker(config) as rpc:
            try:
                case = rpc.payments.get_case(case_id)
            except NotFound:
                return None
        return case if check(case) else None

    return wait_for(get, timeout=timeout, message=f"case {case_id} in the payments ledger")


def approve_cases(config, cases: list[dict], payee: bool = True) -> None:
    """Publish the approvals, wait for the ledger, give each a bank account."""
    for env in cases:
        publish(config, env)
    for n, env in enumerate(cases):
        case_id = env["subject"]["case_id"]
        ledger_case(config, case_id)
        if payee:
            with caseworker(config) as rpc:
                rpc.payments.set_payee({"case_id": case_id, "payee_name": "张三丰",
                                        "account_number": f"62220200{n:010d}"})


def export(config, run_id: str, fmt: str = "csv") -> tuple[bytes, dict]:
    with maker(config) as rpc:
        out = rpc.payments.export_run(run_id, fmt)
    return base64.b64decode(out["content"]), out


def import_return(config, run_id: str, content: bytes, fmt: str = "csv") -> dict:
    with maker(config) as rpc:
        return rpc.payments.import_return({"run_id": run_id, "format": fmt,
                                           "content": base64.b64encode(content).decode()})


def bank_lines(content: bytes) -> list[dict]:
    """The detail rows of a CSV bank file."""
    rows = list(csv.DictReader(io.StringIO(content.decode("utf-8"))))
    return [r for r in rows if r["line_id"] != "TOTAL"]


def outbox_types(config) -> list[str]:
    engine = make_engine(config["DB_URIS"]["payments"])
    with engine.connect() as conn:
        kinds = [r[0] for r in conn.execute(sa.text("SELECT routing_key FROM outbox ORDER BY id"))]
    engine.dispose()
    return kinds


def query(config, sql: str, **params) -> list:
    engine = make_engine(config["DB_URIS"]["payments"])
    with engine.connect() as conn:
        rows = list(conn.execute(sa.text(sql), params))
    engine.dispose()
    return rows


def money(text) -> Decimal:
    return Decimal(text)
