"""Encrypted columns bound to their row: how the row id gets into the AEAD's associated data.

A SQLAlchemy ``TypeDecorator`` sees one value, never its row, so it cannot
bind a ciphertext to the row. Here the **ORM seals and opens** the values,
and the column type only carries tokens:

- **Writing** (mapper events ``before_insert`` / ``before_update``): for each
  encrypted attribute set on the object, the plaintext is encrypted with the
  associated data ``(profile, table, column, row id)`` and the attribute
  becomes a :class:`SealedStr` / :class:`SealedDecimal` — the same value
  (a ``str`` / ``Decimal`` subclass, equal to the plaintext) that also
  carries its token and what it is bound to. The type writes the token.
  The row id must be known **before** the INSERT: every table with an
  encrypted column has a client-generated id — its UUID primary key (made
  here if still unset), its natural key (``ledger_case.case_id``,
  ``account.user_id``), or, for the three tables the database numbers
  (``income``, ``asset``, ``case_proposal``), a ``seal_id`` UUID column made
  for this.
- **Reading** (instance events ``load`` / ``refresh``): the type turns a
  stored token into a :class:`Ciphertext`, and the event opens it with the
  loaded row's id, replacing it with the sealed plaintext (not marked
  changed). A token that does not open there — copied from another row or
  column, altered, or under a key the service lacks — fails the read with
  :class:`shared.crypto.FieldUnreadable`, logged with table, column, row and
  key id (never the plaintext or the token).
- **Anything else is refused**: a plaintext bound straight into SQL (Core
  ``insert``/``update`` with an encrypted column, bulk ORM updates) raises
  :class:`UnsealedWrite`; a Core ``select`` of an encrypted column gives a
  :class:`Ciphertext`, which will not pass for text. Set-based SQL may copy
  tokens between columns bound alike (``INSERT … SELECT``), nothing else.

A column's binding (:class:`Binding`) is its table, its column name and the
table's row-id columns, unless the column type says otherwise:
``EncryptedString(bound_as="ledger_case", row_key="case_id")`` on
``payment_line`` seals a line's payee and account as the ledger's, keyed by
the case — the payment run copies them from the ledger in one ``INSERT …
SELECT`` and a line then holds a snapshot of its case's token; a token
copied to another case's line does not open. Re-encryption by ``dibao keys
rotate`` uses the same bindings (:func:`encrypted_columns`).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
import sqlalchemy.ext.compiler
from sqlalchemy import event
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Mapper, attributes
from sqlalchemy.types import Text, TypeDecorator

from shared import crypto
from shared.profiles import Unsealable

log = logging.getLogger("shared.crypto")

__all__ = ["EncryptedString", "EncryptedDecimal", "SealedStr", "SealedDecimal", "Ciphertext", "UnsealedWrite",
           "Binding", "binding_of", "encrypted_columns", "row_id", "open_value", "seal_value", "service_of",
           "random_id"]


class UnsealedWrite(TypeError):
    """A plaintext reached an encrypted column without being sealed to its row."""


class Ciphertext:
    """A stored token not yet opened (a Core read of an encrypted column)."""

    __slots__ = ("token",)

    def __init__(self, token: str):
        self.token = token

    def __repr__(self) -> str:
        return f"<Ciphertext key {crypto.key_id_of(self.token) or '?'}>"

    def __str__(self) -> str:
        raise TypeError("an encrypted field read outside the ORM is ciphertext: open it with "
                        "shared.sealing.open_value(column, row_id, value)")

    def __eq__(self, other) -> bool:
        return isinstance(other, Ciphertext) and other.token == self.token

    def __hash__(self) -> int:
        return hash(self.token)


class SealedStr(str):
    """A plaintext ``str`` that also carries its token and what it is bound to."""

    token: str
    aad: bytes


class SealedDecimal(Decimal):
    """A plaintext ``Decimal`` that also carries its token and what it is bound to."""

    token: str
    aad: bytes


def _sealed(value, token: str, aad: bytes):
    sealed = SealedDecimal(value) if isinstance(value, Decimal) else SealedStr(value)
    sealed.token, sealed.aad = token, aad
    return sealed


class _Encrypted(TypeDecorator):
    impl = Text
    cache_ok = True

    def __init__(self, bound_as: str | None = None, row_key: str | tuple[str, ...] | None = None):
        """``bound_as``: the table name the associated data uses (default: the
        column's table); ``row_key``: the column(s) whose values are the row
        id (default: the table's primary key)."""
        super().__init__()
        self.bound_as = bound_as
        self.row_key = (row_key,) if isinstance(row_key, str) else (tuple(row_key) if row_key else None)

    def to_plain(self, value) -> str:
        raise NotImplementedError

    def from_plain(self, text: str):
        raise NotImplementedError

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        if isinstance(value, (SealedStr, SealedDecimal)):
            return value.token
        if isinstance(value, Ciphertext):
            return value.token
        raise UnsealedWrite(f"{type(self).__name__}: a plaintext {type(value).__name__} bound straight into SQL; "
                            f"write encrypted columns through the ORM, which seals them to their row")

    def process_result_value(self, value: Any, dialect: Dialect):
        return None if value is None else Ciphertext(value)


class EncryptedString(_Encrypted):
    """A ``str`` column stored as a token (``Text``); ``None`` stays ``None``.

    Not comparable in SQL (each encryption differs): query a blind index instead."""

    cache_ok = True

    def to_plain(self, value) -> str:
        if not isinstance(value, str):
            raise TypeError(f"EncryptedString needs str, not {type(value).__name__}")
        return str.__str__(value)

    def from_plain(self, text: str) -> str:
        return text


class EncryptedDecimal(_Encrypted):
    """A ``Decimal`` column (e.g. an income, 收入) stored as a token of its
    string form; loads back as ``Decimal`` with the same digits (``"12.50"``
    stays ``Decimal("12.50")``). ``None`` stays ``None``; floats are refused."""

    cache_ok = True

    def to_plain(self, value) -> str:
        if isinstance(value, bool) or not isinstance(value, (Decimal, int)):
            raise TypeError(f"EncryptedDecimal needs Decimal or int, not {type(value).__name__}")
        return str(Decimal(value))

    def from_plain(self, text: str) -> Decimal:
        return Decimal(text)


# --- bindings ----------------------------------------------------------------------

@dataclass(frozen=True)
class Binding:
    """Where a column's tokens belong: ``table``/``column`` named in the
    associated data, and the columns of this table that give the row id."""

    table: str
    column: str
    row_key: tuple[str, ...]


def binding_of(column: sa.Column) -> Binding:
    kind = column.type
    row_key = kind.row_key or tuple(c.name for c in column.table.primary_key.columns)
    if not row_key:
        raise ValueError(f"{column.table.name}.{column.name}: an encrypted column needs a row id")
    return Binding(kind.bound_as or column.table.name, column.name, row_key)


def row_id(values) -> str:
    """The row id of the associated data, from the row-key values (``\\x1f`` between parts)."""
    parts = list(values)
    if any(v is None for v in parts):
        raise ValueError("the row id is not known yet")
    return "\x1f".join(str(v) for v in parts)


def service_of(table: sa.Table) -> str | None:
    """The service whose cipher opens this table (``shared.db.ServiceDatabase`` tags its metadata)."""
    return table.metadata.info.get("dibao_service")


def encrypted_columns(metadata: sa.MetaData) -> list[tuple[sa.Table, sa.Column, Binding]]:
    """Every encrypted column of a service's tables, with its binding."""
    return [(table, column, binding_of(column)) for table in metadata.sorted_tables for column in table.columns
            if isinstance(column.type, _Encrypted)]


def _aad(cipher, binding: Binding, rid: str) -> bytes:
    return crypto.associated_data(cipher.profile, binding.table, binding.column, rid)


def open_value(column: sa.Column, rid: str, value):
    """Open one stored value (a :class:`Ciphertext` or token) of ``column`` for row ``rid``.

    :raises shared.crypto.FieldUnreadable: it does not open there (logged)."""
    if value is None:
        return None
    token = value.token if isinstance(value, Ciphertext) else value
    binding = binding_of(column)
    cipher = crypto.get_cipher(service_of(column.table))
    aad = _aad(cipher, binding, rid)
    try:
        plain = cipher.decrypt(token, aad)
    except (Unsealable, ValueError, UnicodeDecodeError) as exc:
        kid = crypto.key_id_of(token) or "?"
        log.error("encrypted field %s.%s of row %s does not open (key %s): %s", column.table.name, column.name,
                  rid, kid, _reason(exc))
        raise crypto.FieldUnreadable(
            f"encrypted field {column.table.name}.{column.name} of row {rid} does not open (key {kid}): "
            f"{_reason(exc)}", column.table.name, column.name, rid, kid) from None
    return _sealed(column.type.from_plain(plain), token, aad)


def seal_value(column: sa.Column, rid: str, value) -> Ciphertext | None:
    """A plaintext sealed for ``column`` of row ``rid``, for a Core ``INSERT``
    of many rows (bulk loads, benchmarks): the type writes its token."""
    if value is None:
        return None
    cipher = crypto.get_cipher(service_of(column.table))
    return Ciphertext(cipher.encrypt(column.type.to_plain(value), _aad(cipher, binding_of(column), rid)))


def _reason(exc: Exception) -> str:
    if isinstance(exc, Unsealable):
        return "moved from another row or column, altered, or under another key"
    return str(exc)


class random_id(sa.sql.functions.FunctionElement):
    """SQL that makes a fresh random id per row (a ``seal_id`` in an ``INSERT …
    SELECT``, where a Python default would be one value for every row)."""

    type = sa.String()
    inherit_cache = True
    name = "random_id"


@sa.ext.compiler.compiles(random_id, "sqlite")
def _random_id_sqlite(element, compiler, **kw):
    return "lower(hex(randomblob(16)))"


@sa.ext.compiler.compiles(random_id, "postgresql")
def _random_id_postgresql(element, compiler, **kw):
    return "CAST(gen_random_uuid() AS TEXT)"


# --- the ORM events ------------------------------------------------------------------

@dataclass(frozen=True)
class _Field:
    key: str                 # the mapped attribute
    column: sa.Column
    binding: Binding
    row_attrs: tuple[str, ...]


_FIELDS: dict[Mapper, tuple[_Field, ...]] = {}


def _fields(mapper: Mapper) -> tuple[_Field, ...]:
    found = _FIELDS.get(mapper)
    if found is None:
        found = []
        for prop in mapper.column_attrs:
            column = prop.columns[0]
            if isinstance(column, sa.Column) and isinstance(column.type, _Encrypted):
                binding = binding_of(column)
                row_attrs = tuple(mapper.get_property_by_column(column.table.c[name]).key
                                  for name in binding.row_key)
                found.append(_Field(prop.key, column, binding, row_attrs))
        found = _FIELDS[mapper] = tuple(found)
    return found


def _ensure_row_id(mapper: Mapper, target, field: _Field) -> str:
    values = []
    for name, attr in zip(field.binding.row_key, field.row_attrs):
        value = getattr(target, attr)
        column = field.column.table.c[name]
        if value is None and column.default is not None and column.default.is_callable:
            value = column.default.arg(None)   # the client-side id (new_id), made now rather than at the INSERT
            setattr(target, attr, value)
        values.append(value)
    try:
        return row_id(values)
    except ValueError:
        raise ValueError(f"{field.column.table.name}.{field.column.name}: the row id "
                         f"({', '.join(field.binding.row_key)}) must be set before the row is written") from None


def _seal(mapper: Mapper, target, inserting: bool) -> None:
    fields = _fields(mapper)
    if not fields:
        return
    state = attributes.instance_state(target)
    cipher = crypto.get_cipher(service_of(mapper.local_table))
    for field in fields:
        if not inserting and not state.attrs[field.key].history.has_changes():
            continue
        value = state.dict.get(field.key)
        if value is None:
            continue
        aad = _aad(cipher, field.binding, _ensure_row_id(mapper, target, field))
        if isinstance(value, (SealedStr, SealedDecimal)) and value.aad == aad:
            continue     # already sealed for this very cell
        plain = field.column.type.to_plain(value)
        setattr(target, field.key, _sealed(field.column.type.from_plain(plain), cipher.encrypt(plain, aad), aad))


def _open(state, names=None) -> None:
    fields = _fields(state.mapper)
    if not fields:
        return
    for field in fields:
        if names is not None and field.key not in names:
            continue
        value = state.dict.get(field.key)
        if isinstance(value, Ciphertext):
            rid = row_id(state.dict.get(attr) for attr in field.row_attrs)
            attributes.set_committed_value(state.obj(), field.key, open_value(field.column, rid, value))


@event.listens_for(Mapper, "before_insert")
def _before_insert(mapper, connection, target):
    _seal(mapper, target, inserting=True)


@event.listens_for(Mapper, "before_update")
def _before_update(mapper, connection, target):
    _seal(mapper, target, inserting=False)


@event.listens_for(Mapper, "load")
def _on_load(target, context):
    _open(attributes.instance_state(target))


@event.listens_for(Mapper, "refresh")
def _on_refresh(target, context, attrs):
    _open(attributes.instance_state(target), set(attrs) if attrs else None)
