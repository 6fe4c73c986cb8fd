"""Money (金额): exact to the fen (分), never a float.

Every amount in Dibao — incomes, the guarantee standard (保障标准), the
monthly allowance (低保金) — is a :class:`decimal.Decimal` quantized to two
decimal places.  Input amounts are taken *exactly*: ``"1.005"`` is an error,
not silently rounded.  Amounts the system *computes* (e.g. a per-capita
income, a pro-rated allowance) are rounded with :func:`round_fen`
(ROUND_HALF_UP, 四舍五入).

On the wire (JSON) amounts travel as strings with two decimals
(``"1234.50"``) via the :class:`Money` marshmallow field.
"""

from __future__ import annotations

import decimal
import re
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from marshmallow import fields

__all__ = ["FEN", "to_money", "round_fen", "Money"]

#: One fen (分), the smallest unit of an amount.
FEN = Decimal("0.01")

_ZERO = Decimal("0.00")
# Plain decimal notation only: optional sign, digits, optional fraction.
_AMOUNT_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")


def _finite(value: Decimal) -> Decimal:
    if not value.is_finite():
        raise ValueError(f"not a finite amount: {value}")
    return value


def _quantize_exact(value: Decimal) -> Decimal:
    """Quantize to the fen, raising ValueError if that would change the value."""
    try:
        quantized = value.quantize(FEN)
    except decimal.InvalidOperation as exc:  # too many digits for the context
        raise ValueError(f"amount out of range: {value}") from exc
    if quantized != value:
        raise ValueError(
            f"amount {value} has more than 2 decimal places (amounts are exact to the fen)"
        )
    return _ZERO if quantized == 0 else quantized  # no "-0.00"


def to_money(value: Decimal | int | str) -> Decimal:
    """Convert an input amount to a Decimal exact to the fen (分).

    Accepts ``Decimal``, ``int`` and ``str`` (surrounding whitespace is
    ignored; plain decimal notation such as ``"12.5"``, ``"-3"``).  Trailing
    zeros beyond the fen are harmless (``"1.500"`` → ``1.50``) but any
    non-zero digit beyond it is an error (``"1.005"``).

    :raises TypeError: for ``float`` (inexact by nature), ``bool`` and other types.
    :raises ValueError: for NaN/Infinity, malformed strings, or more than two
        significant decimal places.
    """
    if isinstance(value, bool):
        raise TypeError("amounts must be Decimal, int or str, not bool")
    if isinstance(value, float):
        raise TypeError("amounts must be given as strings or integers, not floats")
    if isinstance(value, Decimal):
        number = _finite(value)
    elif isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, str):
        text = value.strip()
        if not _AMOUNT_RE.fullmatch(text):
            raise ValueError(f"not a valid amount: {value!r}")
        number = Decimal(text)
    else:
        raise TypeError(f"amounts must be Decimal, int or str, not {type(value).__name__}")
    return _quantize_exact(number)


def round_fen(value: Decimal | int) -> Decimal:
    """Round a *computed* amount to the fen, half up (四舍五入).

    ``round_fen(Decimal("2.345")) == Decimal("2.35")``;
    ``round_fen(Decimal("-2.345")) == Decimal("-2.35")`` (half away from zero).

    :raises TypeError: for float or bool.
    :raises ValueError: for NaN/Infinity.
    """
    if isinstance(value, (bool, float)) or not isinstance(value, (Decimal, int)):
        raise TypeError(f"round_fen needs a Decimal or int, not {type(value).__name__}")
    number = _finite(Decimal(value))
    try:
        rounded = number.quantize(FEN, rounding=ROUND_HALF_UP)
    except decimal.InvalidOperation as exc:
        raise ValueError(f"amount out of range: {value}") from exc
    return _ZERO if rounded == 0 else rounded


class Money(fields.Field[Decimal]):
    """Marshmallow field for an amount of money (金额).

    Loads ``str``/``int``/``Decimal`` through :func:`to_money`; a float is a
    validation error.  ``minimum``/``maximum`` (inclusive, any value
    :func:`to_money` accepts) bound the amount, e.g. ``Money(minimum=0)``
    rejects negatives.  Dumps as a plain string with two decimals
    (``"1234.50"``).  ``None`` follows marshmallow's ``allow_none``.
    """

    default_error_messages = {
        "invalid": "Not a valid amount of money.",
        "float": "amounts must be given as strings or integers, not floats",
        "places": "amounts are exact to the fen: at most 2 decimal places.",
        "minimum": "Amount must be at least {minimum}.",
        "maximum": "Amount must be at most {maximum}.",
    }

    def __init__(
        self,
        *,
        minimum: Decimal | int | str | None = None,
        maximum: Decimal | int | str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.minimum = None if minimum is None else to_money(minimum)
        self.maximum = None if maximum is None else to_money(maximum)
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:
            raise ValueError(f"Money(minimum={self.minimum}) is above maximum={self.maximum}")

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        if value is None:
            return None
        return str(to_money(value))

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Decimal:
        if isinstance(value, float):
            raise self.make_error("float")
        try:
            amount = to_money(value)
        except TypeError as exc:
            raise self.make_error("invalid") from exc
        except ValueError as exc:
            if "decimal places" in str(exc):
                raise self.make_error("places") from exc
            raise self.make_error("invalid") from exc
        if self.minimum is not None and amount < self.minimum:
            raise self.make_error("minimum", minimum=self.minimum)
        if self.maximum is not None and amount > self.maximum:
            raise self.make_error("maximum", maximum=self.maximum)
        return amount
