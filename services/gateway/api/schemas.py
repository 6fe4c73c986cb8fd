"""The API's own shapes: the one error body, and a free-form answer for
routes whose answer has no schema of its own yet."""
from __future__ import annotations

from marshmallow import Schema, fields


class ErrorSchema(Schema):
    """Every error answer: a stable code, a message, details (``fields`` for
    validation, ``reference`` for an internal error, ``reason`` for a refusal)."""

    code = fields.String(required=True, metadata={"description": "validation_failed | unauthenticated | forbidden | "
                                                                  "not_found | method_not_allowed | conflict | "
                                                                  "payload_too_large | service_unavailable | "
                                                                  "internal_error"})
    message = fields.String(required=True)
    details = fields.Dict(required=True)


class AnswerSchema(Schema):
    """The service's answer (an object; see the RPC's documentation)."""

    class Meta:
        unknown = "include"


Answer = AnswerSchema
