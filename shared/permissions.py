"""What each service's own identity (``service:<name>``) may call — one table.

Derived from what the services call today (``ServiceRpc`` in
services/*/service.py, and the revocation catch-up every process makes:
shared.revocation). A service actor calling anything else is refused at the
entrypoint (:func:`gate`), before the method runs, and the refusal is
recorded like any other. No entry here signs a review step, approves a
proposal or a payment run: those are people's acts.
"""
from __future__ import annotations

from shared.identity import TokenVerification, actor_of, refused
from shared.errors import Forbidden

#: every service process asks identity for the revocations in force when it starts
_EVERY_SERVICE = frozenset({"identity.revocations"})

SERVICE_PERMISSIONS: dict[str, frozenset[str]] = {
    "intake": _EVERY_SERVICE,
    # review reads the verified income and the members when the joint review
    # decides, a re-review judges, or a household's facts change
    "review": _EVERY_SERVICE | {"intake.get_application", "intake.get_household"},
    "payments": _EVERY_SERVICE,
    "audit": _EVERY_SERVICE,
    # notify reads the household's contact for a notice or a reminder
    "notify": _EVERY_SERVICE | {"intake.get_household"},
    "identity": frozenset(),
    # the public pages (no login): the notice boards, their sheets and an online
    # objection; the status page's check of the applicant and its step and dates
    "gateway": _EVERY_SERVICE | {"notify.public_board", "notify.public_sheet", "notify.file_public_objection",
                                 "intake.public_application_check", "review.public_status",
                                 "review.file_public_appeal"},
    # verification reads the members' names and ID numbers, declarations and authorization it asks bureaus about
    "verification": _EVERY_SERVICE | {"intake.verification_subjects"},
}


def service_may_call(service: str | None, method: str) -> bool:
    """``method`` is ``<service>.<method>`` as called."""
    return method in SERVICE_PERMISSIONS.get(service or "", frozenset())


def _refusing(exc: Forbidden):
    def refuse(*args, **kwargs):
        raise exc
    return refuse


def gate(worker_ctx, verification: TokenVerification) -> None:
    """Before an RPC method runs (``worker_setup``): a token that is present
    must be valid, and a service actor may call only its table's methods.
    A refused call runs a method that raises the Forbidden (with its reason
    code) instead of the real one: nothing is written, and the entrypoint
    records the refusal (shared.commands). Idempotent per worker."""
    entrypoint = worker_ctx.entrypoint
    if not getattr(entrypoint, "records_commands", False) or getattr(worker_ctx, "dibao_gated", False):
        return
    if getattr(worker_ctx.service, "authenticates_callers", False):
        # identity checks its callers itself, against its session table (revoked, idle, the
        # password-change token that serves only change_password: services/identity/handlers.py)
        return
    worker_ctx.dibao_gated = True
    actor = actor_of(worker_ctx, verification)
    refusal = getattr(worker_ctx, "dibao_refusal", None)
    if refusal is None and actor is not None and actor.is_service:
        called = f"{worker_ctx.service_name}.{entrypoint.method_name}"
        if not service_may_call(actor.service_name, called):
            refusal = refused("service_not_permitted")
            refusal.details["method"] = called
    if refusal is not None:
        setattr(worker_ctx.service, entrypoint.method_name, _refusing(refusal))
