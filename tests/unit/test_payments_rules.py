"""Payments' pure rules and the bank formats."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import pytest

from services.payments import rules
from shared.bank_formats import ExportLine, ReturnFileError, ReturnLine, capital_amount, load_format
from services.payments.models import from_fen, to_fen
from shared.errors import Conflict, Forbidden, ValidationFailed
from shared.policy import load_policy

JIANGXIA = load_policy("jiangxia")
NATIONAL = load_policy("national2021")


def test_periods_are_months_or_quarters():
    assert rules.months_of_period("2026-11") == ["2026-11"]
    assert rules.months_of_period("2026-Q4") == ["2026-10", "2026-11", "2026-12"]
    assert rules.months_of_period("2027-Q1") == ["2027-01", "2027-02", "2027-03"]
    with pytest.raises(ValidationFailed):
        rules.months_of_period("2026-13")
    assert rules.next_month("2026-12") == "2027-01" and rules.next_month("2026-01") == "2026-02"


@pytest.mark.parametrize(("policy", "area", "period", "ok"), [
    (JIANGXIA, "urban", "2026-11", True), (JIANGXIA, "urban", "2026-Q4", False),
    (JIANGXIA, "rural", "2026-Q4", True), (JIANGXIA, "rural", "2026-11", False),
    (NATIONAL, "rural", "2026-11", True), (NATIONAL, "rural", "2026-Q4", False),
    (NATIONAL, "urban", "2026-11", True)])
def test_cadence_urban_monthly_rural_per_policy(policy, area, period, ok):
    if ok:
        assert rules.period_matches_cadence(period, area, policy)
    else:
        with pytest.raises(ValidationFailed) as err:
            rules.period_matches_cadence(period, area, policy)
        assert "period" in err.value.fields


def test_no_run_for_a_future_period_or_a_closed_one():
    rules.period_not_in_future(["2026-11"], date(2026, 11, 1))
    rules.period_not_in_future(["2026-10", "2026-11", "2026-12"], date(2026, 11, 28))
    with pytest.raises(ValidationFailed):
        rules.period_not_in_future(["2026-12"], date(2026, 11, 30))
    rules.period_is_open("prepared", "2026-11")
    rules.period_is_open(None, "2026-11")
    for closed in ("approved", "exported", "reconciled"):
        with pytest.raises(Conflict):
            rules.period_is_open(closed, "2026-11")


def test_maker_is_not_checker():
    rules.maker_is_not_checker("qian", "zhou")
    with pytest.raises(Forbidden):
        rules.maker_is_not_checker("qian", "qian")


@dataclass
class Std:
    effective_from: date
    effective_to: date | None
    monthly_amount: Decimal = Decimal("820.00")


def test_standards_never_overlap_an_open_one_is_superseded_by_a_later_open_one():
    current = Std(date(2024, 1, 1), None)
    assert rules.standard_does_not_overlap([current], date(2025, 1, 1), None) is current
    with pytest.raises(ValidationFailed):     # same start
        rules.standard_does_not_overlap([current], date(2024, 1, 1), None)
    with pytest.raises(ValidationFailed):     # a bounded period inside the open one
        rules.standard_does_not_overlap([current], date(2024, 3, 1), date(2024, 4, 30))
    with pytest.raises(ValidationFailed):     # an open one starting before the current one
        rules.standard_does_not_overlap([current], date(2023, 6, 1), None)
    closed = Std(date(2023, 1, 1), date(2023, 12, 31))
    assert rules.standard_does_not_overlap([closed, current], date(2022, 1, 1), date(2022, 12, 31)) is None
    with pytest.raises(ValidationFailed):
        rules.standard_does_not_overlap([closed], date(2023, 12, 1), date(2024, 1, 31))


def test_fen_conversion_is_exact_and_refuses_float():
    assert to_fen("1234.56") == 123456 and to_fen(Decimal("0.01")) == 1 and to_fen(7) == 700
    assert from_fen(123456) == Decimal("1234.56") and str(from_fen(5)) == "0.05"
    with pytest.raises(TypeError):
        to_fen(0.1)
    with pytest.raises(TypeError):
        from_fen(12.0)
    with pytest.raises(ValueError):
        to_fen("1.005")


@pytest.mark.parametrize(("amount", "text"), [
    ("1230.50", "壹仟贰佰叁拾元伍角整"), ("1230.00", "壹仟贰佰叁拾元整"), ("0.00", "零元整"),
    ("1000000.05", "壹佰万元零伍分"), ("1145.83", "壹仟壹佰肆拾伍元捌角叁分"), ("0.05", "伍分")])
def test_total_in_chinese_capital_numerals(amount, text):
    assert capital_amount(Decimal(amount)) == text


LINES = [ExportLine(1, "c1", "欧阳小明", "6222021234567890", Decimal("812.50"), "2026-11", "420115001001"),
         ExportLine(22, "c2", "张三", "6222029876543210", Decimal("0.01"), "2026-Q4", "420115002001")]
RUN = {"id": "1b9d6bcd-bbfd-4b2d-9b5d-ab8dfbbd4bed", "period": "2026-11", "area_type": "urban",
       "division_code": "420115", "prepared_by": "qian", "approved_by": "zhou"}


@pytest.mark.parametrize("name", ["csv", "fixed"])
def test_formats_round_trip_a_return_file(name):
    fmt = load_format(name)
    assert fmt.export(RUN, LINES)
    back = [ReturnLine(1, Decimal("812.50"), True, None, date(2026, 11, 10)),
            ReturnLine(22, Decimal("0.01"), False, "户名不符 name mismatch", None)]
    parsed = fmt.parse_return(fmt.write_return(back))
    assert parsed.lines == back and parsed.count == 2 and parsed.total == Decimal("812.51")


def test_fixed_width_file_is_gbk_with_byte_exact_columns():
    data = load_format("fixed").export(RUN, LINES)
    records = data.split(b"\r\n")[:-1]
    assert records[0].startswith(b"H" + RUN["id"].encode()) and records[-1] == b"T00000002000000000081251"
    detail = records[1]
    assert len(detail) == len(records[2]) == 1 + 10 + 30 + 40 + 15 + 7
    assert detail[41:81].decode("gbk").rstrip() == "欧阳小明"
    assert detail[81:96] == b"000000000081250"


def test_unreadable_return_files_name_the_problem():
    for name, data in (("csv", b"nonsense"), ("csv", b"line_id,amount,result,reason,value_date\r\n1,1.00,maybe,,\r\n"
                                                     b"TOTAL,1,1.00,,\r\n"),
                       ("fixed", b"garbage\r\n"), ("fixed", b"D0000000001\r\nT00000001000000000000100\r\n")):
        with pytest.raises(ReturnFileError):
            load_format(name).parse_return(data)


def test_unknown_bank_format_is_a_validation_error():
    with pytest.raises(ValidationFailed) as err:
        load_format("mt940")
    assert "format" in err.value.fields


def test_bulk_event_bodies_are_the_envelopes_shared_events_would_write():
    import json

    from datetime import datetime, timezone

    import contracts.payments  # noqa: F401 - registers payments' contract
    from shared.events import encode, encode_many, parse
    subject = {"household_id": "h1", "case_id": "c1", "change_id": "x"}
    payload = {"case_id": "c1", "household_id": "h1", "community_code": "420115001001", "township_code": "420115001",
               "area_type": "urban", "household_size": 2, "old_benefit": "500.00", "new_benefit": "554.74",
               "direction": "raised", "effective_month": "2026-11", "change_id": "x"}
    actor = {"user": "zhou", "name": "周主任", "role": "centre_director", "unit": "420115"}
    now = datetime.now(timezone.utc)
    ((event_id, body),) = encode_many("payments", "benefit_changed", [(subject, payload)], actor, "corr-1", now)
    env = json.loads(body)
    assert body == encode(env)                      # byte-identical to the one encoder
    assert parse(body)["payload"] == payload and env["actor"] == actor and env["version"] == 1
    assert event_id == env["event_id"] and env["type"] == "benefit_changed"
    with pytest.raises(ValueError):
        list(encode_many("payments", "benefit_changed", [(subject, {**payload, "old_benefit": 5.5})], actor, "c",
                         now))
