"""The demo's appeal (复核, docs/appeals.md): one approved household's case is cancelled (a
proposal by a district officer, approved by the people the policy names), the household appeals
through its community officer, one who approved the cancellation tries to decide it and is
refused, and someone who took no part upholds it: the case is active again and payments pays it
again (review's ``case_restored``). Synchronous calls only: it adds a second or so to the demo."""
from __future__ import annotations

from contextlib import ExitStack

from rich.markup import escape

from cli.common import console
from shared.errors import Forbidden


def approver_of(demo, role: str, township_code: str):
    if role == "township_officer":
        return demo.township_officer[township_code]
    if role == "district_officer":
        return demo.district_officers[1]
    return demo.signers[role]


def appeal_one(demo, stack: ExitStack) -> dict | None:
    """A cancelled case appealed and restored; the appeal (review's answer), or None without a case."""
    approved = [r for r in demo.runs if r.review and r.review.get("status") == "approved" and r.review.get("case")]
    if not approved:
        return None
    run = sorted(approved, key=lambda r: r.community.code)[-1]
    case = run.review["case"]
    policy = demo.policy
    proposer = demo.proxy(stack, demo.district_officers[0])
    proposal = proposer.review.propose({"case_id": case["id"], "action": "cancel",
                                        "reason": "入户核查：家庭成员已在外地稳定就业（待核实）"})
    approvers = [approver_of(demo, role, case["township_code"]) for role in policy.proposal_approvals]
    for person in approvers:
        demo.proxy(stack, person).review.approve_proposal({"proposal_id": proposal["id"], "remarks": "同意"})
    officer = demo.proxy(stack, demo.community_officer[run.community.code])
    appeal = officer.review.file_appeal({"application_id": run.application_id, "kind": "cancellation",
                                         "grounds": "家庭成员并未就业，停保后生活无着"})
    console.print(f"[bold]9. appeal[/bold] (复核): the case of {escape(run.head_name)}'s household "
                  f"({run.community.name}) cancelled — proposed by {demo.district_officers[0].name}, approved by "
                  + ", ".join(f"{p.name} ({p.role})" for p in approvers)
                  + f"; the household appeals through {officer_name(demo, run)} on {appeal['filed_on']}, "
                    f"to be decided by {appeal['due_on']} ({policy.appeal_decision_workdays} working days)")
    involved = next((p for p in approvers if p.role in policy.appeal_deciders), None)
    if involved is not None:
        try:
            demo.proxy(stack, involved).review.decide_appeal({"appeal_id": appeal["id"], "outcome": "dismissed",
                                                              "reason": "维持原决定"})
        except Forbidden as refused:
            console.print(f"   {involved.name} ({involved.role}) approved the cancellation and tries to decide: "
                          f"[red]refused[/red] ({refused.details.get('rule')})")
    decider = next(p for role, p in demo.signers.items() if role in policy.appeal_deciders and p not in approvers)
    decided = demo.proxy(stack, decider).review.decide_appeal({
        "appeal_id": appeal["id"], "outcome": "upheld", "reason": "经复查，家庭成员未就业，停保依据不成立"})
    console.print(f"   {decider.name} ({decider.role}), who took no part, decides: [green]{decided['status']}"
                  f"[/green] — the case is {proposer.review.get_case(case['id'])['status']} again and paid again "
                  f"(review.case_restored; `dibao appeal show {appeal['id']}`)")
    return decided


def officer_name(demo, run) -> str:
    return demo.community_officer[run.community.code].name
