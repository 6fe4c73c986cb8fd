"""shared.resident_id: 18-digit 居民身份证号码 (GB 11643)."""

from datetime import date

import pytest
from marshmallow import Schema, ValidationError
from stdnum.cn import ric

from shared.resident_id import ResidentId, birth_date_of, sex_of, validate_resident_id

# 420115 is Jiangxia District, Wuhan (江夏区).  stdnum knows it as "[1995-]江夏区";
# our validator still accepts birth years before 1995 (see the module docstring).
JIANGXIA = "420115"
_WEIGHTS = [2 ** (17 - i) % 11 for i in range(17)]


def check_digit(first17: str) -> str:
    """GB 11643 / ISO 7064 MOD 11-2 check digit, computed independently of stdnum."""
    total = sum(int(c) * w for c, w in zip(first17, _WEIGHTS))
    return "10X98765432"[total % 11]


def make_rid(birth: str, seq: str = "123", region: str = JIANGXIA) -> str:
    first17 = region + birth + seq
    return first17 + check_digit(first17)


def test_helper_agrees_with_published_example_and_stdnum():
    # The example number printed in GB 11643-1999.
    assert check_digit("11010519491231002") == "X"
    for birth in ("19960101", "20000229", "20101231"):
        rid = make_rid(birth)
        assert ric.calc_check_digit(rid) == rid[-1]


def test_valid_number_is_returned_compact_and_upper():
    rid = make_rid("19500101", "123")
    assert rid.endswith("X")  # this one happens to need an X check digit
    assert validate_resident_id("  " + rid.lower() + "\n") == rid


def test_elderly_resident_of_newer_district_is_accepted():
    # 江夏区 (420115) dates from 1995; someone born in 1950 still holds a 420115
    # number (issued later).  stdnum's own validate() rejects this.
    rid = make_rid("19500101", "124")
    assert not ric.is_valid(rid)
    assert validate_resident_id(rid) == rid


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("42011519900101123", "18 characters"),
        ("4201151990010112345", "18 characters"),
        ("", "18 characters"),
        ("420115900101123", "15-digit"),
        ("42011519900101A234", "17 digits followed by a digit or X"),
        ("4201151990010112Y4", "17 digits followed by a digit or X"),
        ("42011519900101123Y", "17 digits followed by a digit or X"),
    ],
)
def test_format_errors(value, fragment):
    with pytest.raises(ValueError, match=fragment):
        validate_resident_id(value)


def test_bad_checksum():
    rid = make_rid("19960315", "456")
    wrong = rid[:-1] + ("0" if rid[-1] != "0" else "1")
    with pytest.raises(ValueError, match="check digit"):
        validate_resident_id(wrong)


@pytest.mark.parametrize("birth", ["19900230", "19901301", "20230229", "18991231"])
def test_impossible_birth_date(birth):
    with pytest.raises(ValueError, match="impossible birth date"):
        validate_resident_id(make_rid(birth))


def test_leap_day_birth_date_is_fine():
    assert birth_date_of(make_rid("20000229")) == date(2000, 2, 29)


def test_future_birth_date():
    rid = make_rid("20300101")
    with pytest.raises(ValueError, match="future"):
        validate_resident_id(rid, today=date(2029, 12, 31))
    assert validate_resident_id(rid, today=date(2030, 1, 1)) == rid


def test_unknown_region():
    with pytest.raises(ValueError, match="unknown region code 420199"):
        validate_resident_id(make_rid("19960101", region="420199"))
    with pytest.raises(ValueError, match="unknown region code 000000"):
        validate_resident_id(make_rid("19960101", region="000000"))


def test_region_retired_before_birth():
    # 422121 was 黄冈县 until 1990: nobody born in 2000 can hold such a number.
    assert validate_resident_id(make_rid("19500101", region="422121"))
    with pytest.raises(ValueError, match="retired in 1990"):
        validate_resident_id(make_rid("20000101", region="422121"))


def test_non_string_is_type_error():
    with pytest.raises(TypeError):
        validate_resident_id(420115199601011231)


def test_birth_date_and_sex():
    man = make_rid("19960315", "451")
    woman = make_rid("19960315", "452")
    assert birth_date_of(man) == date(1996, 3, 15)
    assert sex_of(man) == "M"
    assert sex_of(woman) == "F"
    with pytest.raises(ValueError):
        sex_of(man[:-1] + ("1" if man[-1] != "1" else "2"))


class MemberSchema(Schema):
    resident_id = ResidentId(required=True)


def test_field_loads_and_reports_message():
    rid = make_rid("19500101", "123")
    assert MemberSchema().load({"resident_id": rid.lower()}) == {"resident_id": rid}
    with pytest.raises(ValidationError) as err:
        MemberSchema().load({"resident_id": "420115900101123"})
    assert "15-digit" in err.value.messages["resident_id"][0]
    with pytest.raises(ValidationError) as err:
        MemberSchema().load({"resident_id": 12345})
    assert err.value.messages["resident_id"] == ["Not a valid string."]
