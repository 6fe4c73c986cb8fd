"""What lies outside a caller's jurisdiction does not exist for them.

A read or a command that names a row by id answers an outsider exactly as
it answers for an id that was never issued: the same ``NotFound`` (type,
message, details). Answering ``Forbidden`` for "exists in another
community" and ``NotFound`` for "does not exist" would let any officer
probe which households, applications, cases or runs exist elsewhere.

The order is fixed: the role first (it says nothing about the data), then
the look-up, then the jurisdiction — hidden, not refused. A caller whose
jurisdiction covers the row and who still may not act on it (a level of
the review that is not theirs) gets ``Forbidden`` from ``authorize`` as
before: the row is no secret to them.
"""
from __future__ import annotations

import logging
from operator import attrgetter
from typing import Callable, TypeVar

import sqlalchemy as sa

from shared.errors import NotFound
from shared.identity import Actor, authorize

log = logging.getLogger(__name__)

T = TypeVar("T")

#: where most rows keep their division
COMMUNITY = attrgetter("community_code")


def within(actor: Actor, division_code: str | None, missing: NotFound, overlap: bool = False) -> None:
    """Raise ``missing`` (the answer for a row that does not exist) unless
    ``division_code`` lies within the actor's unit — or, with ``overlap``
    (a unit-wide row such as a township's campaign), the actor works inside it."""
    if actor.is_service and division_code:
        # a service's jurisdiction is the calls its table names (shared.permissions, checked at the
        # entrypoint) and ``authorize`` let it through only where the roles name Role.SERVICE
        return
    inside = overlap and bool(division_code) and actor.unit.startswith(division_code)
    if not division_code or not (actor.covers(division_code) or inside):
        # for the log (not the caller): a probe outside the jurisdiction; ids only, never an ID number
        log.info("%s (unit %s) was answered not-found for a row outside their jurisdiction: %s",
                 actor.user, actor.unit, missing.details or "-")
        raise missing


def get_within(uow, actor: Actor, roles, model, ident, what: str, key: str,
               division: Callable[[T], str] = COMMUNITY, **options) -> T:
    """The row ``ident`` of ``model`` if the actor (one of ``roles``) may
    see it; else the same ``NotFound`` as for an id that does not exist."""
    authorize(actor, roles)
    row = uow.get(model, ident, what, key, **options)
    within(actor, division(row), NotFound.of(what, ident, key))
    return row


def code_within(column, unit_code: str):
    """SQL: ``column``'s division code lies within ``unit_code`` (it starts
    with it) — as an index range, ``unit_code <= code < unit_code + 1``
    (the same number of digits), which SQLite and PostgreSQL answer from a
    b-tree index on the column; ``LIKE 'code%'`` is no index range on
    SQLite (LIKE ignores case there) and scans the table. Division codes
    are ASCII digits (shared.divisions); anything else falls back to the
    LIKE."""
    if not (isinstance(unit_code, str) and unit_code.isascii() and unit_code.isdigit()):
        return column.startswith(unit_code, autoescape=True)
    if set(unit_code) == {"9"}:
        return column >= unit_code
    upper = str(int(unit_code) + 1).zfill(len(unit_code))
    return sa.and_(column >= unit_code, column < upper)
