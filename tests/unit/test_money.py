"""shared.money: amounts exact to the fen, never float."""

from decimal import Decimal

import pytest
from marshmallow import Schema, ValidationError

from shared.money import FEN, Money, round_fen, to_money


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("12.5", "12.50"),
        ("12.50", "12.50"),
        ("  7 ", "7.00"),
        (7, "7.00"),
        (Decimal("3.1"), "3.10"),
        ("-4.25", "-4.25"),
        ("1.500", "1.50"),  # trailing zeros beyond the fen are exact
        ("-0", "0.00"),
    ],
)
def test_to_money_accepts_exact_amounts(given, expected):
    result = to_money(given)
    assert isinstance(result, Decimal)
    assert str(result) == expected
    assert result.as_tuple().exponent == -2


@pytest.mark.parametrize("given", [1.5, True, False, None, [1], b"1"])
def test_to_money_rejects_wrong_types(given):
    with pytest.raises(TypeError):
        to_money(given)


def test_to_money_float_message():
    with pytest.raises(TypeError, match="not floats"):
        to_money(0.1)


@pytest.mark.parametrize(
    "given",
    ["1.005", "0.001", Decimal("2.999"), "NaN", "Infinity", "-inf", Decimal("NaN"),
     "", "abc", "1,000", "1e3", "12.5.0", "1_000", "0x10"],
)
def test_to_money_rejects_bad_values(given):
    with pytest.raises(ValueError):
        to_money(given)


def test_fen_constant():
    assert FEN == Decimal("0.01")


@pytest.mark.parametrize(
    ("given", "expected"),
    [("2.345", "2.35"), ("2.344", "2.34"), ("-2.345", "-2.35"), ("0.005", "0.01"),
     ("-0.001", "0.00"), ("10", "10.00")],
)
def test_round_fen_half_up(given, expected):
    assert str(round_fen(Decimal(given))) == expected


def test_round_fen_rejects_float_and_nan():
    with pytest.raises(TypeError):
        round_fen(2.345)
    with pytest.raises(ValueError):
        round_fen(Decimal("NaN"))


class IncomeSchema(Schema):
    amount = Money(minimum=0, maximum="100000")
    delta = Money()
    optional = Money(allow_none=True)


def test_money_field_loads_and_dumps():
    loaded = IncomeSchema().load({"amount": "1234.5", "delta": -3, "optional": None})
    assert loaded == {"amount": Decimal("1234.50"), "delta": Decimal("-3.00"), "optional": None}
    dumped = IncomeSchema().dump(loaded)
    assert dumped == {"amount": "1234.50", "delta": "-3.00", "optional": None}


def test_money_field_rejects_float_with_message():
    with pytest.raises(ValidationError) as err:
        IncomeSchema().load({"amount": 12.5})
    assert err.value.messages == {
        "amount": ["amounts must be given as strings or integers, not floats"]
    }


def test_money_field_bounds():
    with pytest.raises(ValidationError) as err:
        IncomeSchema().load({"amount": "-0.01"})
    assert "at least 0.00" in err.value.messages["amount"][0]
    with pytest.raises(ValidationError) as err:
        IncomeSchema().load({"amount": "100000.01"})
    assert "at most 100000.00" in err.value.messages["amount"][0]
    assert IncomeSchema().load({"amount": "0"})["amount"] == Decimal("0.00")
    assert IncomeSchema().load({"amount": "100000"})["amount"] == Decimal("100000.00")


def test_money_field_rejects_extra_places_and_garbage():
    with pytest.raises(ValidationError) as err:
        IncomeSchema().load({"amount": "1.005", "delta": "abc"})
    assert "2 decimal places" in err.value.messages["amount"][0]
    assert err.value.messages["delta"] == ["Not a valid amount of money."]


def test_money_field_none_needs_allow_none():
    with pytest.raises(ValidationError):
        IncomeSchema().load({"amount": None})


def test_money_field_inconsistent_bounds():
    with pytest.raises(ValueError):
        Money(minimum=10, maximum=5)
