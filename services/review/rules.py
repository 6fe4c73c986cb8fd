"""The review's rules: pure functions named after the rule they enforce."""
from __future__ import annotations

from decimal import Decimal

from shared.errors import Conflict, Forbidden, ValidationFailed
from shared.policy.base import Policy, ReviewStep


def step_is_current(status: str, step: str | None, expected_kind: str, policy: Policy) -> ReviewStep:
    """Steps go in the policy's order: an out-of-order step is a conflict."""
    if status != "in_review" or step is None:
        raise Conflict(f"the application is {status}; no review step is open", {"status": status})
    current = policy.step(step)
    if current.kind != expected_kind:
        raise Conflict(f"the open step is {current.name}, not a {expected_kind}",
                       {"step": current.name, "expected": expected_kind})
    return current


def participants_all_signed(participants: list[dict], field: str = "participants") -> None:
    """参加评议人员必须签名: everyone who took part signs."""
    if not participants:
        raise ValidationFailed.field(field, "nobody is recorded as taking part")
    for n, person in enumerate(participants):
        if not person["signed"]:
            raise ValidationFailed.field(f"{field}.{n}.signed", "every participant signs the record")


def representatives_share_suffices(participants: list[dict], policy: Policy) -> None:
    """2012 rule (national): residents' representatives ≥ 2/3 of the attendees."""
    share = policy.evaluation_min_representative_share
    if share is None:
        return
    reps = sum(1 for p in participants if p["role"] == "representative")
    if Decimal(reps) < share * len(participants):
        raise ValidationFailed.field(
            "participants", f"residents' representatives must be at least {share:.0%} of the participants")


def votes_match_decision(votes_for: int, votes_against: int, abstentions: int, participants: int,
                         passed: bool) -> None:
    """The initial decision follows the vote: passing needs a majority of those present."""
    if votes_for + votes_against + abstentions > participants:
        raise ValidationFailed.field("votes_for", "more votes than participants")
    majority = votes_for * 2 > participants
    if passed and not majority:
        raise ValidationFailed.field("passed", "a household without a majority of votes cannot pass")
    if not passed and majority:
        raise ValidationFailed.field("passed", "a majority voted for; record the evaluation as passed")


def committee_passes_only_unanimously(members: list[dict], passed: bool, policy: Policy) -> bool:
    """评审委员会: passes only with every member's agreement (取得一致意见后)."""
    agree = all(m["opinion"] == "agree" for m in members)
    if passed and policy.committee_unanimous and not agree:
        raise ValidationFailed.field("passed", "the committee was not unanimous; it cannot be recorded as passed")
    return agree


def evaluation_may_be_skipped(step: ReviewStep, objections: int) -> None:
    if not step.skippable_without_objection:
        raise Conflict(f"the policy does not allow skipping {step.name}", {"step": step.name})
    if objections:
        raise Conflict("an objection was raised: the evaluation must be held", {"objections": objections})


def joint_review_role_of(actor, investigators: list[dict], role: str) -> str:
    """会审: the deputy director, the centre director and an officer who did the
    home investigation — each signs as themself, in their own role."""
    if role == "investigator":
        if actor.user not in {i["user"] for i in investigators}:
            raise Forbidden("only an officer who did the home investigation signs as the investigator",
                            {"role": role})
    elif actor.role.value != role:
        raise Forbidden(f"{actor.role.value} cannot sign as {role}", {"role": role})
    return role


def nobody_fills_two_roles(signatures: list, actor_user: str, role: str) -> None:
    """No single person decides: three distinct people in three roles."""
    for sig in signatures:
        if sig.role == role:
            raise Conflict(f"the {role} has already signed", {"role": role, "user": sig.user})
        if sig.user == actor_user:
            raise Conflict(f"{actor_user} already signed as {sig.role}; nobody fills two roles",
                           {"user": actor_user, "role": sig.role})


def override_has_reason(amount, reason: str | None) -> None:
    if amount is not None and not (reason and reason.strip()):
        raise ValidationFailed.field("override_reason", "a benefit override needs a written reason")
