"""Intake's domain rules: pure functions named after the rule they enforce."""
from __future__ import annotations

from datetime import date

from shared.errors import Conflict, ValidationFailed
from shared.identity import STAFF_ROLES
from shared.policy.base import Policy

#: Documents the file must hold once the household reaches each stage.
REQUIRED_DOCUMENTS = {
    "registered": ("household_register", "id_copies"),
    "applied": ("application_form", "income_proof"),
    "investigated": ("investigation_record",),
}


def investigators_are_distinct_staff(investigators: list[dict], staff: dict, household_community: str,
                                     policy: Policy) -> list[dict]:
    """入户调查: ≥ N distinct, named, signing staff whose unit covers the household.

    ``staff`` maps user → the registry's rows in force for that user (the
    staff registry projected from identity: shared/staff.py). Returns the
    investigators as recorded: ``[{user, name, role, unit}]``."""
    users = [i["user"] for i in investigators]
    if len(users) != len(set(users)):
        raise ValidationFailed.field("investigators", "the same investigator is named twice")
    if len(users) < policy.min_investigators:
        raise ValidationFailed.field(
            "investigators", f"at least {policy.min_investigators} investigators are required ({policy.name})")
    recorded = []
    for n, inv in enumerate(investigators):
        rows = staff.get(inv["user"]) or []
        field = f"investigators.{n}.user"
        if not rows:
            raise ValidationFailed.field(field, f"{inv['user']} is not registered staff")
        caseworking = [r for r in rows if r.role in {role.value for role in STAFF_ROLES}]
        if not caseworking:
            raise ValidationFailed.field(field, f"{inv['user']} ({rows[0].role}) may not investigate")
        covering = [r for r in caseworking if r.unit and household_community.startswith(r.unit)]
        if not covering:
            raise ValidationFailed.field(field, f"{inv['user']} works outside this household's jurisdiction")
        if not inv["signed"]:
            raise ValidationFailed.field(f"investigators.{n}.signed", "every investigator signs the record")
        person = covering[0]
        recorded.append({"user": person.user, "name": person.name, "role": person.role, "unit": person.unit})
    return recorded


def family_signature_present(signatures: list[dict], member_ids: set[str], policy: Policy) -> list[str]:
    """National rule: the family members present sign the investigation too."""
    signed = [s["member_id"] for s in signatures]
    for n, member_id in enumerate(signed):
        if member_id not in member_ids:
            raise ValidationFailed.field(f"family_signatures.{n}.member_id", "not a member of this household")
    if policy.family_signature_required and not signed:
        raise ValidationFailed.field("family_signatures",
                                     f"a family member present must sign ({policy.name})")
    return signed


def investigation_date_is_possible(investigated_on: date, accepted_on: date, today: date) -> None:
    if investigated_on < accepted_on:
        raise ValidationFailed.field("investigated_on", "before the application was accepted")
    if investigated_on > today:
        raise ValidationFailed.field("investigated_on", "in the future")


def application_may_open(open_applications: int) -> None:
    """One household has at most one application under way."""
    if open_applications:
        raise Conflict("this household already has an application under way")


def checkin_month_not_future(month: str, checked_in_on: date, today: date) -> None:
    if month > today.strftime("%Y-%m"):
        raise ValidationFailed.field("month", "a check-in cannot be recorded for a future month")
    if checked_in_on > today:
        raise ValidationFailed.field("checked_in_on", "in the future")


def checkin_case_not_cancelled(month: str, cases: list) -> None:
    """续保登记 is for a household whose guarantee goes on: once its case is
    cancelled, no check-in for a month it is no longer paid (``end_month`` on)."""
    if any(c.status == "active" for c in cases):
        return
    ended = [c for c in cases if c.status == "cancelled" and c.end_month and month >= c.end_month]
    if ended:
        raise Conflict(f"the household's case was cancelled from {ended[0].end_month}; no check-in for {month}",
                       {"field": "household_id", "case_id": ended[0].case_id})


def file_completeness(stage_reached: list[str], documents: list[str]) -> dict:
    """一户一档: which required documents the file holds and which are missing."""
    required = [kind for stage in stage_reached for kind in REQUIRED_DOCUMENTS.get(stage, ())]
    present = sorted(set(documents))
    missing = [kind for kind in required if kind not in documents]
    return {"complete": not missing, "required": required, "present": present, "missing": missing}


#: 扫描件: the kinds of file a scan may be, by their first bytes (the declared type must agree)
SCAN_SIGNATURES = {"application/pdf": (b"%PDF-",), "image/jpeg": (b"\xff\xd8\xff",),
                   "image/png": (b"\x89PNG\r\n\x1a\n",)}


def scan_is_an_accepted_file(content_type: str, content: bytes, max_bytes: int) -> str:
    """A scan is a PDF, JPEG or PNG (its bytes say so, not only its label),
    not empty and at most ``max_bytes``; answers its content type."""
    if not content:
        raise ValidationFailed.field("content", "the file is empty")
    if len(content) > max_bytes:
        raise ValidationFailed.field("content", f"the file is larger than {max_bytes} bytes")
    declared = (content_type or "").split(";")[0].strip().lower()
    if declared not in SCAN_SIGNATURES:
        raise ValidationFailed.field("content_type", "only PDF, JPEG or PNG scans are accepted")
    if not content.startswith(SCAN_SIGNATURES[declared]):
        raise ValidationFailed.field("content", f"the file is not a {declared} file")
    return declared
