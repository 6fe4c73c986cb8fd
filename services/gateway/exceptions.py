"""The gateway's one error mapping: a typed error → an HTTP status and one body.

Every error answer, API or console, carries the same body (the RPC errors'
own shape, :meth:`shared.errors.DibaoError.to_dict`)::

    {"code": "validation_failed", "message": "invalid input",
     "details": {"fields": {"members.0.resident_id": ["..."]}}}

- ``validation_failed`` 400 (``details.fields`` names each field),
- ``unauthenticated`` 401 (no token, or one identity no longer honours),
- ``forbidden`` 403, ``not_found`` 404, ``method_not_allowed`` 405,
  ``conflict`` 409, ``payload_too_large`` 413,
- ``service_unavailable`` 503 (a service did not answer in time),
- ``internal_error`` 500 with ``details.reference`` only — the traceback
  goes to the gateway's log under that reference, never to the caller.
"""
from __future__ import annotations

import logging
import uuid

from nameko.exceptions import RemoteError, RpcTimeout, UnknownService

from shared.errors import Conflict, DibaoError, Forbidden, NotFound, ValidationFailed
from shared.identity import TOKEN_REFUSED
from shared.problems import OperationalProblem

log = logging.getLogger(__name__)


class Unauthenticated(DibaoError):
    """No login: no token, or one that is expired, revoked or not identity's."""

    code = "unauthenticated"


class MethodNotAllowed(DibaoError):
    code = "method_not_allowed"


class PayloadTooLarge(DibaoError):
    code = "payload_too_large"


class ServiceUnavailable(DibaoError):
    """A service did not answer (not running, or not within RPC_TIMEOUT)."""

    code = "service_unavailable"


class InternalError(DibaoError):
    code = "internal_error"


STATUS = {
    ValidationFailed: 400,
    Unauthenticated: 401,
    Forbidden: 403,
    NotFound: 404,
    MethodNotAllowed: 405,
    Conflict: 409,
    PayloadTooLarge: 413,
    OperationalProblem: 503,
    ServiceUnavailable: 503,
    InternalError: 500,
}

#: the reasons of a token refusal (shared.identity.refused / identity's own) that mean "log in again"
LOGIN_AGAIN_REASONS = frozenset({
    "missing", "malformed", "expired", "revoked", "account_disabled", "bad_signature", "wrong_audience",
    "wrong_issuer", "algorithm_refused", "lifetime_too_long", "unknown_session", "idle", "idle_timeout",
    "password_change_required", "bad_algorithm", "bad_audience", "bad_issuer",
})


def is_token_refusal(exc: BaseException) -> bool:
    """A Forbidden that says the token no longer counts (→ 401), not that the person may not act (→ 403)."""
    if not isinstance(exc, Forbidden):
        return False
    reason = (exc.details or {}).get("reason")
    return exc.message == TOKEN_REFUSED or reason in LOGIN_AGAIN_REASONS


def public_error(exc: BaseException, where: str = "") -> DibaoError:
    """The typed error a caller is shown for ``exc``. Anything untyped is
    logged with its traceback under a fresh reference and answered as
    ``internal_error`` carrying that reference alone."""
    if is_token_refusal(exc):
        reason = (exc.details or {}).get("reason", "missing")
        return Unauthenticated("log in first: a valid login is required", {"reason": reason})
    if isinstance(exc, tuple(STATUS)):
        return exc
    if isinstance(exc, DibaoError) and exc.code == "internal_error":
        # a service's own InternalError: its reference finds it in that service's log
        return InternalError("internal error", {"reference": str((exc.details or {}).get("reference", ""))})
    if isinstance(exc, (RpcTimeout, UnknownService)):
        reference = uuid.uuid4().hex
        log.warning("a service did not answer (%s: %s) for %s (reference %s)", type(exc).__name__, exc, where,
                    reference)
        return ServiceUnavailable("a service is not answering; try again shortly", {"reference": reference})
    reference = uuid.uuid4().hex
    detail = f"{exc.exc_type}" if isinstance(exc, RemoteError) else type(exc).__name__
    log.error("unexpected error (%s) in %s (reference %s)", detail, where, reference, exc_info=exc)
    return InternalError("internal error", {"reference": reference})


def status_of(error: DibaoError) -> int:
    for kind, status in STATUS.items():
        if isinstance(error, kind):
            return status
    return 500


def body_of(error: DibaoError) -> dict:
    """The one error body."""
    if isinstance(error, InternalError):
        return {"code": error.code, "message": "internal error",
                "details": {"reference": error.details.get("reference", "")}}
    return {"code": error.code, "message": error.message, "details": error.details or {}}
