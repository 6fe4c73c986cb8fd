"""What can be done next on an application, as links for its review-status
page: the open step's page (by the step's kind in the application's policy,
never by the policy's name), the home investigation while one is awaited,
the notice and the joint-review sheet to read. The services still decide
who may act; a link only saves a search."""
from __future__ import annotations

from shared.identity import Role
from shared.policy import load_policy

STEP_PAGES = {"evaluation": ("民主评议", "evaluation", {Role.COMMUNITY_OFFICER, Role.COMMUNITY_PANEL}),
              "committee": ("乡镇（街道）评审", "committee", {Role.TOWNSHIP_OFFICER, Role.TOWNSHIP_COMMITTEE}),
              "initial_opinion": ("乡镇（街道）初审", "committee", {Role.TOWNSHIP_OFFICER, Role.TOWNSHIP_COMMITTEE}),
              "notice": ("公示与异议", "notice", set()),
              "joint_review": ("区级会审签字", "joint-review", set())}
INVESTIGATORS = {Role.COMMUNITY_OFFICER, Role.TOWNSHIP_OFFICER, Role.DISTRICT_OFFICER}
#: who opens a case's page in 动态管理 (pages/dynamic.py READERS)
CASE_READERS = INVESTIGATORS | {Role.CENTRE_DIRECTOR, Role.DEPUTY_DIRECTOR, Role.AUDITOR}


def entry_actions(review: dict, actor) -> list[tuple[str, str]]:
    """(label, path) of the pages for what the application waits for."""
    base = f"/applications/{review['application_id']}"
    out = []
    if review["status"] in ("awaiting_investigation", "awaiting_reinvestigation", "submitted") \
            and actor.roles & INVESTIGATORS:
        out.append(("入户调查", f"{base}/investigation"))
    if review["status"] == "in_review" and review.get("step"):
        try:
            kind = load_policy(review["policy"]).step(review["step"]).kind
        except (KeyError, ValueError):
            kind = None
        if kind in STEP_PAGES:
            label, page, roles = STEP_PAGES[kind]
            if not roles or actor.roles & roles:
                out.append((label, f"{base}/{page}"))
    if review["status"] == "approved":
        out.append(("会审记录", f"{base}/joint-review"))
        if (review.get("case") or {}).get("id") and actor.roles & CASE_READERS:
            out.append(("保障对象（动态管理）", f"/dynamic/cases/{review['case']['id']}"))
    return out
