"""Administrative divisions (行政区划代码) known to a deployment.

Three levels, each code extending its parent's by 3 digits:

==========  ======  ==========================  ===================
level       digits  Chinese                     example
==========  ======  ==========================  ===================
district    6       区县                        420115 江夏区
township    9       乡镇街 (乡、镇、街道)        420115001 纸坊街道
community   12      社区 (urban) / 村 (rural)    420115001002
==========  ======  ==========================  ===================

Communities carry an ``area_type``: ``urban`` (城镇, a 社区 / 居委会) or
``rural`` (农村, a 村 / 村委会); it decides which guarantee standard
(城市/农村低保标准) applies.  Districts and townships leave it empty.

The CSV (``DIVISIONS_FILE``) has the header ``code,name,level,parent,area_type``.
The shipped ``shared/data/divisions.csv`` is **sample data** for Jiangxia
District, Wuhan (420115 江夏区): the township and community codes and some
names are illustrative, not the official statistical codes — a deployment
replaces the file with its own list.  (It follows the usual convention of
001–199 for 社区 and 2xx for 村.)

Jurisdiction (管辖) is by code prefix: see :meth:`DivisionRegistry.within`.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from marshmallow import fields

__all__ = [
    "LEVELS",
    "LEVEL_DIGITS",
    "DEFAULT_DIVISIONS_FILE",
    "Division",
    "DivisionRegistry",
    "DivisionCode",
    "level_of_code",
]

#: Levels from top to bottom.
LEVELS: tuple[str, ...] = ("district", "township", "community")
#: Code length of each level.
LEVEL_DIGITS: dict[str, int] = {"district": 6, "township": 9, "community": 12}
_LEVEL_BY_DIGITS = {n: level for level, n in LEVEL_DIGITS.items()}
AREA_TYPES = ("urban", "rural")

#: The sample division list shipped with the package.
DEFAULT_DIVISIONS_FILE = Path(__file__).parent / "data" / "divisions.csv"
_PROJECT_ROOT = Path(__file__).resolve().parent.parent


def level_of_code(code: str) -> str | None:
    """The level a code's format implies (6/9/12 ASCII digits), or ``None`` if malformed."""
    if not isinstance(code, str) or not (code.isascii() and code.isdigit()):
        return None
    return _LEVEL_BY_DIGITS.get(len(code))


@dataclass(frozen=True, slots=True)
class Division:
    """One administrative division (行政区划).

    ``parent`` is ``None`` for a district; ``area_type`` (``urban``/``rural``)
    is set for communities only.
    """

    code: str
    name: str
    level: str
    parent: str | None = None
    area_type: str | None = None


class DivisionRegistry:
    """The divisions of a deployment, checked for consistency on construction."""

    def __init__(self, divisions: Iterable[Division] = ()) -> None:
        """:raises ValueError: for a malformed code, a wrong level/area type,
        a duplicate, or a parent that is missing or not the code's prefix."""
        self._by_code: dict[str, Division] = {}
        for div in divisions:
            self._check_own(div)
            if div.code in self._by_code:
                raise ValueError(f"duplicate division code {div.code}")
            self._by_code[div.code] = div
        for div in self._by_code.values():
            if div.parent is not None and div.parent not in self._by_code:
                raise ValueError(f"division {div.code}: unknown parent {div.parent}")
        self._children: dict[str, list[Division]] = {}
        for div in sorted(self._by_code.values(), key=lambda d: d.code):
            if div.parent is not None:
                self._children.setdefault(div.parent, []).append(div)

    @staticmethod
    def _check_own(div: Division) -> None:
        if div.level not in LEVEL_DIGITS:
            raise ValueError(f"division {div.code}: unknown level {div.level!r}")
        if level_of_code(div.code) != div.level:
            raise ValueError(
                f"division {div.code}: a {div.level} code has {LEVEL_DIGITS[div.level]} digits"
            )
        if not div.name:
            raise ValueError(f"division {div.code}: empty name")
        if div.level == "district":
            if div.parent is not None:
                raise ValueError(f"division {div.code}: a district has no parent here")
        else:
            expected = LEVELS[LEVELS.index(div.level) - 1]
            if div.parent is None or level_of_code(div.parent) != expected:
                raise ValueError(f"division {div.code}: parent must be a {expected} code")
            if not div.code.startswith(div.parent):
                raise ValueError(f"division {div.code}: code does not extend parent {div.parent}")
        if div.level == "community":
            if div.area_type not in AREA_TYPES:
                raise ValueError(f"division {div.code}: area_type must be urban or rural")
        elif div.area_type is not None:
            raise ValueError(f"division {div.code}: only communities have an area_type")

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None) -> DivisionRegistry:
        """Read a divisions CSV (default: the shipped sample for 江夏区).

        A relative path not found from the working directory is tried from
        the project root (so the config default ``shared/data/divisions.csv``
        works from anywhere).

        :raises FileNotFoundError: if the file does not exist.
        :raises ValueError: for inconsistent rows (see :class:`DivisionRegistry`).
        """
        resolved = DEFAULT_DIVISIONS_FILE if path is None else Path(path)
        if not resolved.is_absolute() and not resolved.exists():
            if (_PROJECT_ROOT / resolved).exists():
                resolved = _PROJECT_ROOT / resolved
        divisions: list[Division] = []
        with resolved.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            missing = {"code", "name", "level", "parent", "area_type"} - set(reader.fieldnames or ())
            if missing:
                raise ValueError(f"{resolved}: missing column(s) {', '.join(sorted(missing))}")
            for row in reader:
                code = (row["code"] or "").strip()
                if not code:
                    continue
                divisions.append(
                    Division(
                        code=code,
                        name=(row["name"] or "").strip(),
                        level=(row["level"] or "").strip(),
                        parent=(row["parent"] or "").strip() or None,
                        area_type=(row["area_type"] or "").strip() or None,
                    )
                )
        return cls(divisions)

    def __len__(self) -> int:
        return len(self._by_code)

    def __contains__(self, code: object) -> bool:
        return code in self._by_code

    def get(self, code: str) -> Division:
        """The division with this code; :raises KeyError: if unknown."""
        try:
            return self._by_code[code]
        except KeyError:
            raise KeyError(f"unknown division code {code}") from None

    def exists(self, code: str) -> bool:
        """Whether the code is a known division."""
        return code in self._by_code

    def children(self, code: str) -> list[Division]:
        """Direct children, sorted by code; :raises KeyError: if ``code`` is unknown."""
        self.get(code)
        return list(self._children.get(code, ()))

    def ancestors(self, code: str) -> list[Division]:
        """The enclosing divisions from the top down (district first), excluding ``code``.

        :raises KeyError: if ``code`` is unknown.
        """
        chain: list[Division] = []
        parent = self.get(code).parent
        while parent is not None:
            div = self._by_code[parent]
            chain.append(div)
            parent = div.parent
        chain.reverse()
        return chain

    def communities(self, within: str | None = None) -> list[Division]:
        """All communities (社区/村), sorted by code; optionally only those inside unit ``within``."""
        return [
            d
            for d in sorted(self._by_code.values(), key=lambda d: d.code)
            if d.level == "community" and (within is None or self.within(d.code, within))
        ]

    def validate(self, code: str, level: str | None = None) -> Division:
        """The division for a code a caller received, optionally of a required level.

        :raises ValueError: ``"unknown division code 420115999"``, or a level mismatch.
        """
        if level is not None and level not in LEVEL_DIGITS:
            raise ValueError(f"unknown division level {level!r}")
        div = self._by_code.get(code) if isinstance(code, str) else None
        if div is None:
            raise ValueError(f"unknown division code {code}")
        if level is not None and div.level != level:
            raise ValueError(f"division code {code} is a {div.level}, expected a {level}")
        return div

    @staticmethod
    def within(code: str, unit_code: str) -> bool:
        """Whether ``code`` lies in the jurisdiction (管辖) of ``unit_code``.

        A unit acts on every code it is a prefix of: a district officer (unit
        ``420115``) on ``420115001002``, a township officer on its
        communities, a community officer only on its own 12-digit code.
        Malformed codes (not 6/9/12 digits — including an empty unit) are
        never within anything.
        """
        if level_of_code(code) is None or level_of_code(unit_code) is None:
            return False
        return code.startswith(unit_code)


class DivisionCode(fields.String):
    """Marshmallow field for a division code: checks the *format* only.

    ``DivisionCode(level="community")`` requires 12 digits; ``level=None``
    accepts 6, 9 or 12.  Whether the code exists is checked by the caller
    with :meth:`DivisionRegistry.validate` (marshmallow 4 has no schema
    context to carry the registry).
    """

    default_error_messages = {
        "format": "Division code must be 6, 9 or 12 digits.",
        "level": "Division code must be a {level} code ({digits} digits).",
    }

    def __init__(self, level: str | None = None, **kwargs: Any) -> None:
        if level is not None and level not in LEVEL_DIGITS:
            raise ValueError(f"unknown division level {level!r}")
        super().__init__(**kwargs)
        self.level = level

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        code = super()._deserialize(value, attr, data, **kwargs).strip()
        found = level_of_code(code)
        if self.level is not None and found != self.level:
            raise self.make_error("level", level=self.level, digits=LEVEL_DIGITS[self.level])
        if found is None:
            raise self.make_error("format")
        return code
