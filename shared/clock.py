"""Which day it is: an injectable clock for every service.

Config ``CLOCK`` (``${DIBAO_CLOCK:system}``) chooses it:

- ``system``: the machine's date (``date.today()``);
- ``fixed:YYYY-MM-DD``: always that day (tests);
- ``file:PATH``: the ISO date written in the file at PATH, read on every
  call, so a demo driver can move every running service to the next month by
  rewriting one file. A missing or empty file means the machine's date.

Services take today's date only from ``Reference().today()``, which asks this
clock; rule dates (deadlines, months, re-reviews) therefore follow it.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path


class Clock:
    #: a test or demo clock (fixed, file): its "today" is whatever it was set to,
    #: so a caller may also act on later days; the system clock is the real date
    moves_at_will: bool = False

    def today(self) -> date:  # pragma: no cover - interface
        raise NotImplementedError


@dataclass(frozen=True)
class SystemClock(Clock):
    def today(self) -> date:
        return date.today()


@dataclass(frozen=True)
class FixedClock(Clock):
    day: date
    moves_at_will = True

    def today(self) -> date:
        return self.day


@dataclass(frozen=True)
class FileClock(Clock):
    path: Path
    moves_at_will = True

    def today(self) -> date:
        try:
            text = self.path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return date.today()
        return date.fromisoformat(text[:10]) if text else date.today()

    def set(self, day: date) -> None:
        """Move the clock (the demo driver, tests): every service sees it at its next call."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(day.isoformat() + "\n", encoding="utf-8")
        tmp.replace(self.path)


def clock_from_spec(spec: str | None) -> Clock:
    """``system`` | ``fixed:YYYY-MM-DD`` | ``file:PATH`` → a clock (ValueError otherwise)."""
    spec = (spec or "system").strip()
    kind, _, arg = spec.partition(":")
    if kind == "system" and not arg:
        return SystemClock()
    if kind == "fixed" and arg:
        return FixedClock(date.fromisoformat(arg))
    if kind == "file" and arg:
        from shared.config import repo_path
        return FileClock(Path(repo_path(arg)))
    raise ValueError(f"CLOCK must be system, fixed:YYYY-MM-DD or file:PATH, not {spec!r}")


def clock_from_config(config: dict) -> Clock:
    return clock_from_spec(str(config.get("CLOCK") or "system"))
