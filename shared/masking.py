"""Masking (脱敏) of personal data for public notices (公示) and logs.

Nothing private leaves unmasked.  Each function keeps at most what its rule
allows and replaces every other character with ``*`` (one ``*`` per hidden
character).  For short or malformed input the functions never reveal more
than the rule: when too few characters would stay hidden, *everything* is
masked.  ``None`` and empty input give ``""``.

===========================  ======================  =====================
function                     rule                    example
===========================  ======================  =====================
:func:`mask_resident_id`     first 3 + last 4        ``420***********1234``
:func:`mask_name`            surname + last char     ``李*明``, ``张*``
:func:`mask_phone`           first 3 + last 4        ``138****5678``
:func:`mask_bank_account`    last 4                  ``************5678``
===========================  ======================  =====================
"""

from __future__ import annotations

__all__ = ["mask_resident_id", "mask_name", "mask_phone", "mask_bank_account"]

_SEPARATORS = str.maketrans("", "", " -\t")


def _compact(value: str | None) -> str:
    return "" if value is None else str(value).translate(_SEPARATORS).strip()


def _mask(value: str, head: int, tail: int, min_hidden: int) -> str:
    """Keep ``head`` and ``tail`` characters if at least ``min_hidden`` stay hidden."""
    if len(value) - head - tail < min_hidden:
        return "*" * len(value)
    return value[:head] + "*" * (len(value) - head - tail) + value[len(value) - tail:]


def mask_resident_id(value: str | None) -> str:
    """Mask a resident ID number (身份证号): keep the first 3 and last 4.

    ``"420115199001011234"`` → ``"420***********1234"``.  At least 8
    characters stay hidden (so an old 15-digit number still shows its ends,
    but a fragment like ``"4201151234"`` is masked entirely).
    """
    return _mask(_compact(value), 3, 4, 8)


def mask_name(value: str | None) -> str:
    """Mask a personal name (姓名): keep the first and (from 3 characters) the last.

    ``"张三"`` → ``"张*"``, ``"李小明"`` → ``"李*明"``, ``"欧阳小明"`` → ``"欧**明"``;
    a single character is masked entirely.
    """
    name = "" if value is None else str(value).strip()
    if len(name) <= 1:
        return "*" * len(name)
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]


def mask_phone(value: str | None) -> str:
    """Mask a phone number (手机号): keep the first 3 and last 4.

    ``"13812345678"`` → ``"138****5678"``; at least 4 characters stay hidden.
    """
    return _mask(_compact(value), 3, 4, 4)


def mask_bank_account(value: str | None) -> str:
    """Mask a bank account or card number (银行账号): keep only the last 4.

    ``"6222021234567890"`` → ``"************7890"``; at least 4 characters
    stay hidden.
    """
    return _mask(_compact(value), 0, 4, 4)
