"""shared.masking: 脱敏 for notices and logs."""

import pytest

from shared.masking import mask_bank_account, mask_name, mask_phone, mask_resident_id


def test_resident_id():
    assert mask_resident_id("420115199001011234") == "420***********1234"
    assert mask_resident_id("42011519900101123X") == "420***********123X"
    assert mask_resident_id(" 420115199001011234 ") == "420***********1234"


@pytest.mark.parametrize(
    ("name", "masked"),
    [("张三", "张*"), ("李小明", "李*明"), ("欧阳小明", "欧**明"), ("王", "*"), ("", ""),
     (None, ""), (" 李小明 ", "李*明")],
)
def test_name(name, masked):
    assert mask_name(name) == masked


def test_phone():
    assert mask_phone("13812345678") == "138****5678"
    assert mask_phone("138-1234-5678") == "138****5678"


def test_bank_account():
    assert mask_bank_account("6222021234567890") == "************7890"
    assert mask_bank_account("6222 0212 3456 7890") == "************7890"


@pytest.mark.parametrize("func", [mask_resident_id, mask_phone, mask_bank_account, mask_name])
def test_empty_and_none(func):
    assert func("") == ""
    assert func(None) == ""


@pytest.mark.parametrize(
    ("func", "value"),
    [
        (mask_resident_id, "4201151234"),
        (mask_resident_id, "1234567"),
        (mask_phone, "1381234"),
        (mask_phone, "123456789"),
        (mask_bank_account, "1234"),
        (mask_bank_account, "1234567"),
    ],
)
def test_short_input_is_fully_masked(func, value):
    masked = func(value)
    assert masked == "*" * len(value)


@pytest.mark.parametrize(
    ("func", "value", "max_revealed"),
    [
        (mask_resident_id, "420115199001011234", 7),
        (mask_resident_id, "420115900101123", 7),
        (mask_phone, "13812345678", 7),
        (mask_bank_account, "6222021234567890", 4),
        (mask_name, "欧阳小明", 2),
    ],
)
def test_never_reveals_more_than_rule(func, value, max_revealed):
    masked = func(value)
    assert len(masked) == len(value)
    revealed = sum(1 for c in masked if c != "*")
    assert revealed <= max_revealed
    assert all(m == "*" or m == v for m, v in zip(masked, value))
