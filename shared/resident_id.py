"""The resident identity number (居民身份证号码, GB 11643-1999).

18 characters: a 6-digit region code (地址码), the birth date YYYYMMDD
(出生日期码), a 3-digit sequence (顺序码; odd for men, even for women) and a
check digit (校验码, 0-9 or X, ISO 7064 MOD 11-2).  Old 15-digit
first-generation numbers are not accepted: Dibao requires the 18-digit form.

Validation uses :mod:`stdnum.cn.ric` (check digit, birth date) and stdnum's
region database (``cn/loc``).  The region code is where the number was
*issued*, not where the person was born, so a code created after the birth
year is accepted (420115 江夏区 dates from 1995, yet a resident born in 1950
holds a 420115 number); only a code retired before the birth year, or one
stdnum does not know at all, is rejected.  This is deliberately more lenient
than ``stdnum.cn.ric.validate``, which checks the code against the birth year.
"""

from __future__ import annotations

from datetime import date
from functools import lru_cache
from typing import Any

from marshmallow import ValidationError, fields
from stdnum import numdb
from stdnum.cn import ric
from stdnum.exceptions import ValidationError as StdnumError
from stdnum.util import isdigits

__all__ = ["validate_resident_id", "birth_date_of", "sex_of", "ResidentId"]

_EARLIEST_BIRTH = date(1900, 1, 1)


@lru_cache(maxsize=4096)
def _county_years(region: str) -> str | None:
    """stdnum's ``county`` entry for a region code (its years of use), or ``None``.

    Cached: stdnum's lookup walks its region database on every call (two
    thirds of the cost of validating a number, which a household import does
    three times per member), and that database does not change."""
    info: dict[str, str] = {}
    for _part, props in numdb.get("cn/loc").info(region):
        info.update(props)
    return info.get("county")


def _region_error(number: str, birth_year: int) -> str | None:
    """Return a message if the region code is unknown, else ``None``.

    stdnum's database records the years each county code was in use.  The
    region code of a number is the place of *registration when the number
    was issued*, not of birth: an elderly resident of 江夏区 (code 420115
    since 1995) born in 1950 has a 420115 number.  So a code introduced after
    the birth year is fine; only a code retired *before* the birth year is
    impossible.  (``stdnum.cn.ric.validate`` rejects the former, which would
    turn away most elderly applicants; we deliberately do not use it.)
    """
    region = number[:6]
    county = _county_years(region)
    if not county:
        return f"unknown region code {region}"
    retired: list[int] = []
    for entry in county.split(","):
        if not entry.startswith("["):
            return None
        span = entry[1:].split("]", 1)[0]
        _start, _, end = span.partition("-")
        if not end or birth_year <= int(end):
            return None
        retired.append(int(end))
    return f"invalid region code {region}: retired in {max(retired)}, before the birth year {birth_year}"


def validate_resident_id(value: str, *, today: date | None = None) -> str:
    """Validate an 18-digit resident identity number (居民身份证号码).

    Returns the compact, upper-cased number (surrounding whitespace removed,
    a trailing ``x`` becomes ``X``).

    :param today: the reference date for "birth date in the future"
        (defaults to :func:`datetime.date.today`).
    :raises TypeError: if ``value`` is not a string.
    :raises ValueError: with a human-readable message for a wrong length or
        format (including 15-digit old numbers), a bad check digit, an
        impossible or future birth date, or an unknown region.
    """
    if not isinstance(value, str):
        raise TypeError(f"resident ID number must be a string, not {type(value).__name__}")
    number = ric.compact(value)
    if len(number) == 15 and isdigits(number):
        raise ValueError(
            "15-digit (first-generation) resident ID numbers are not accepted; "
            "give the 18-digit number"
        )
    if len(number) != 18:
        raise ValueError(f"resident ID number must have 18 characters, got {len(number)}")
    if not isdigits(number[:17]) or not (isdigits(number[17]) or number[17] == "X"):
        raise ValueError("resident ID number must be 17 digits followed by a digit or X")
    if ric.calc_check_digit(number) != number[17]:
        raise ValueError("resident ID number has a wrong check digit (typing error?)")
    try:
        born = ric.get_birth_date(number)
    except StdnumError as exc:
        raise ValueError(f"resident ID number has an impossible birth date {number[6:14]}") from exc
    if born < _EARLIEST_BIRTH:
        raise ValueError(f"resident ID number has an impossible birth date {number[6:14]}")
    if born > (today or date.today()):
        raise ValueError(f"resident ID number has a birth date in the future ({born.isoformat()})")
    message = _region_error(number, born.year)
    if message:
        raise ValueError(f"resident ID number has an {message}")
    return number


def birth_date_of(rid: str, *, validated: bool = False) -> date:
    """The birth date (出生日期) encoded in a valid resident ID number
    (``validated=True``: the caller already validated it)."""
    return ric.get_birth_date(rid if validated else validate_resident_id(rid))


def sex_of(rid: str, *, validated: bool = False) -> str:
    """The sex (性别) from the 17th digit: ``"M"`` if odd, ``"F"`` if even."""
    return "M" if int((rid if validated else validate_resident_id(rid))[16]) % 2 else "F"


class ResidentId(fields.String):
    """Marshmallow field for a resident ID number (居民身份证号码).

    Loads to the compact, upper-cased number; the message of
    :func:`validate_resident_id` becomes the field error.
    """

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            return validate_resident_id(text)
        except ValueError as exc:
            raise ValidationError(str(exc)) from exc
