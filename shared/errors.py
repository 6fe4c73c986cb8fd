"""The typed errors every Dibao RPC answers with.

They cross RPC as themselves: each is registered with nameko's exception
registry, so a Python caller catches ``ValidationFailed`` rather than a
generic ``RemoteError``. Their arguments are plain JSON (a message and a
dict of details) so other callers can act on them too.

A service method raises one of these *before* anything is written; the
unit of work rolls back on any exception, so a refused call changes
nothing.
"""
from __future__ import annotations

from nameko.exceptions import deserialize_to_instance


class DibaoError(Exception):
    """Base of the errors a caller can act on. ``code`` is stable."""

    code = "error"

    def __init__(self, message: str, details: dict | None = None):
        super().__init__(message, details or {})
        self.message = message
        self.details = details or {}

    def __str__(self) -> str:
        if self.details:
            return f"{self.message} {self.details}"
        return self.message

    def to_dict(self) -> dict:
        return {"code": self.code, "message": self.message, "details": self.details}


@deserialize_to_instance
class ValidationFailed(DibaoError):
    """Bad input. ``details`` maps each field (dotted path) to its messages."""

    code = "validation_failed"

    @classmethod
    def from_messages(cls, messages: dict, message: str = "invalid input"):
        return cls(message, {"fields": _flatten(messages)})

    @classmethod
    def field(cls, field: str, problem: str):
        return cls(f"{field}: {problem}", {"fields": {field: [problem]}})

    @property
    def fields(self) -> dict:
        return self.details.get("fields", {})


@deserialize_to_instance
class NotFound(DibaoError):
    code = "not_found"

    @classmethod
    def of(cls, what: str, ident, key: str):
        """The one answer for "no such ``what``" (a row that does not exist,
        and one outside the caller's jurisdiction: :mod:`shared.jurisdiction`)."""
        return cls(f"no {what} {ident}", {key: ident})


@deserialize_to_instance
class Forbidden(DibaoError):
    """The actor may not do this (role, jurisdiction or separation of duties)."""

    code = "forbidden"


@deserialize_to_instance
class Conflict(DibaoError):
    """The request clashes with the current state (workflow order, duplicates)."""

    code = "conflict"


EXPECTED_ERRORS = (ValidationFailed, NotFound, Forbidden, Conflict)


def _flatten(messages, prefix: str = "") -> dict:
    """marshmallow's nested error dict → {"members.0.resident_id": [..]}."""
    out: dict[str, list] = {}
    if isinstance(messages, dict):
        for key, value in messages.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            if isinstance(value, (dict,)):
                out.update(_flatten(value, path))
            elif isinstance(value, list) and value and isinstance(value[0], dict):
                for item in value:
                    out.update(_flatten(item, path))
            else:
                out[path] = list(value) if isinstance(value, (list, tuple)) else [str(value)]
    else:
        out[prefix or "_schema"] = list(messages) if isinstance(messages, (list, tuple)) else [str(messages)]
    return out
