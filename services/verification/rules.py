"""Verification's rules (核对): pure functions named after the rule they enforce.

Consent and requests (授权书), the bureaus' answers (what a bureau may
answer, and when), and the report's discrepancy rules — each threshold a
parameter of the policy plugin.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from contracts.verification_bureau import INCOME_KINDS
from shared.errors import Conflict
from shared.policy.base import Policy

ZERO = Decimal("0.00")


# --- the household's authorization (授权书) -------------------------------------------

def add_months(day: date, months: int) -> date:
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    for last in (31, 30, 29, 28):
        try:
            return date(year, month, min(day.day, last))
        except ValueError:
            continue
    raise ValueError(day)   # pragma: no cover


def monitoring_resumes_on(next_verification_on: date, restored_on: date) -> date:
    """A case restored on appeal (复核) is monitored again on its cadence: a re-verification
    that fell due while it stood cancelled is due on the day it was restored."""
    return max(next_verification_on, restored_on)


def age_on(birth_date: date, on: date) -> int:
    return on.year - birth_date.year - ((on.month, on.day) < (birth_date.month, birth_date.day))


def authorization_is_on_file(authorization: dict | None, members: list[dict], today: date,
                             policy: Policy) -> date:
    """No request without the household's signed authorization (授权书): one in the
    household file, signed by every living adult member, within the policy's validity.
    Returns the last day it is valid (bureaus may report changes until then)."""
    if authorization is None:
        raise Conflict("no verification request without the household's signed authorization (授权书) in its file",
                       {"rule": "authorization_required"})
    signed_on = authorization["signed_on"]
    valid_until = add_months(signed_on, policy.verification_consent_months)
    if valid_until < today:
        raise Conflict(f"the household's authorization of {signed_on.isoformat()} expired on "
                       f"{valid_until.isoformat()}; a new one must be signed",
                       {"rule": "authorization_expired", "document_id": authorization["document_id"]})
    signed = set(authorization["signed_by"])
    unsigned = [m["member_id"] for m in members
                if not m.get("deceased_on") and age_on(m["birth_date"], today) >= 18 and m["member_id"] not in signed]
    if unsigned:
        raise Conflict("every adult member signs the authorization (授权书)",
                       {"rule": "authorization_signed_by_adults", "member_ids": unsigned})
    return valid_until


# --- the bureaus' answers -------------------------------------------------------------------

class Refused(Exception):
    """A bureau's message refused with a typed reason (contracts.verification_bureau.REFUSAL_REASONS)."""

    def __init__(self, reason: str, detail: str, request_id: str | None = None):
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail, self.request_id = reason, detail, request_id


def publisher_is_the_bureau(user_id: str | None, bureau_of_user: str | None, expected_user: str | None,
                            claimed: str) -> str:
    """The bureau that really sent the message: the one whose broker user RabbitMQ validated in
    ``user_id`` — and it must be the bureau the message names. With broker users off
    (``expected_user`` None) nothing is authenticated and the claim stands."""
    if expected_user is None:
        return claimed
    if not user_id or bureau_of_user is None:
        raise Refused("not_authenticated", f"publisher {user_id or '(no user_id)'} is not a partner bureau's user")
    if user_id != expected_user:
        raise Refused("not_asked", f"the message says bureau {claimed!r} but was published by {bureau_of_user!r}")
    return bureau_of_user


def request_is_the_bureaus(request, bureau: str, request_id: str):
    if request is None:
        raise Refused("unknown_request", f"no request {request_id}", request_id)
    if request.bureau != bureau:
        raise Refused("not_asked", f"request {request_id} was not sent to {bureau}", request_id)
    return request


def request_is_open(request) -> None:
    if request.status != "open":
        raise Refused("request_closed", f"request {request.id} is closed", request.id)


def members_are_in_request(answered: list[str], members: dict, request_id: str) -> None:
    """Each member answered is one the request asked about, answered for the first time."""
    for ref in answered:
        member = members.get(ref)
        if member is None:
            raise Refused("member_not_in_request", f"member_ref {ref} is not in request {request_id}", request_id)
        if member.answered:
            raise Refused("member_already_answered", f"member_ref {ref} was answered before", request_id)


def change_within_consent(valid_until: date, today: date, request_id: str) -> None:
    """A bureau reports a change on its own only while the household's authorization is valid."""
    if today > valid_until:
        raise Refused("consent_expired", f"the household's authorization ended on {valid_until.isoformat()}",
                      request_id)


# --- deadlines ----------------------------------------------------------------------------

def is_overdue(status: str, answer_by: date, today: date) -> bool:
    return status == "open" and answer_by < today


def reminder_is_due(status: str, answer_by: date, last_reminded_on: date | None, today: date) -> bool:
    """A reminder for an overdue request: at most one a day."""
    return is_overdue(status, answer_by, today) and (last_reminded_on is None or last_reminded_on < today)


def answers_may_be_missing(policy: Policy) -> bool:
    """Whether the review may go on while a bureau has not answered (the report says which)."""
    return policy.verification_proceeds_without_answers


# --- the report's discrepancy rules (核对报告) -----------------------------------------------

@dataclass(frozen=True)
class Found:
    bureau: str
    member_ref: str
    kind: str
    description: str
    amount: Decimal | None
    as_of: date


@dataclass(frozen=True)
class Flag:
    rule: str
    subject: str
    bureau: str
    member_ref: str | None
    description: str
    declared: Decimal | None
    found: Decimal | None
    threshold: Decimal | None


def undeclared_vehicle(found: list[Found], declared_assets: list[dict], policy: Policy) -> list[Flag]:
    """A vehicle worth more than the policy's value that the household did not declare
    (more such vehicles found than declared)."""
    threshold = policy.verification_vehicle_value
    vehicles = sorted((f for f in found if f.kind == "vehicle" and (f.amount or ZERO) > threshold),
                      key=lambda f: -(f.amount or ZERO))
    declared = sum(1 for a in declared_assets if a["kind"] == "vehicle")
    return [Flag("undeclared_vehicle", f"vehicle:{n}", f.bureau, f.member_ref,
                 f"未申报车辆：{f.description}（价值{f.amount}元，高于{threshold}元）", None, f.amount, threshold)
            for n, f in enumerate(vehicles[declared:])]


def property_beyond_family_home(found: list[Found], policy: Policy) -> list[Flag]:
    """More properties than the family home (the policy's number of homes allowed)."""
    homes = [f for f in found if f.kind == "real_estate"]
    allowed = policy.verification_homes_allowed
    if len(homes) <= allowed:
        return []
    value = sum((f.amount or ZERO for f in homes), ZERO)
    return [Flag("property_beyond_family_home", "household", homes[allowed].bureau, None,
                 f"名下房产{len(homes)}处，超过{allowed}处家庭自住房", Decimal(allowed), value, None)]


def deposits_above_standard(found: list[Found], standard: Decimal | None, household_size: int,
                            policy: Policy) -> list[Flag]:
    """Deposits above the policy's number of months of the standard per household member."""
    deposits = [f for f in found if f.kind == "deposit"]
    if not deposits or standard is None:
        return []
    total = sum((f.amount or ZERO for f in deposits), ZERO)
    limit = (standard * policy.verification_deposit_months * household_size).quantize(Decimal("0.01"))
    if total <= limit:
        return []
    return [Flag("deposits_above_standard", "household", deposits[0].bureau, None,
                 f"存款合计{total}元，超过{policy.verification_deposit_months}个月低保标准×{household_size}人（{limit}元）",
                 None, total, limit)]


def income_above_declared(found: list[Found], declared_incomes: list[dict], policy: Policy) -> list[Flag]:
    """A member's monthly income found above what was declared for them (beyond the tolerance)."""
    tolerance = policy.verification_income_tolerance
    by_member: dict[str, list[Found]] = {}
    for f in found:
        if f.kind in INCOME_KINDS and f.amount is not None:
            by_member.setdefault(f.member_ref, []).append(f)
    flags = []
    for ref, items in sorted(by_member.items()):
        # the same income may be reported by two bureaus (wages by tax and by social security): the larger counts
        per_kind: dict[str, Decimal] = {}
        for f in items:
            key = "wage" if f.kind in ("wage", "taxable_income") else f.kind
            per_kind[key] = max(per_kind.get(key, ZERO), f.amount)
        total = sum(per_kind.values(), ZERO)
        declared = sum((Decimal(str(i["monthly_amount"])) for i in declared_incomes if i.get("member_id") == ref),
                       ZERO)
        if total > declared + tolerance:
            flags.append(Flag("income_above_declared", f"member:{ref}", items[0].bureau, ref,
                              f"核对月收入{total}元，高于申报的{declared}元", declared, total, tolerance))
    return flags


def discrepancies(found: list[Found], declared: dict, standard: Decimal | None, household_size: int,
                  policy: Policy) -> list[Flag]:
    """Every rule of the report, over everything found so far."""
    return (undeclared_vehicle(found, declared.get("assets", []), policy)
            + property_beyond_family_home(found, policy)
            + deposits_above_standard(found, standard, household_size, policy)
            + income_above_declared(found, declared.get("incomes", []), policy))
