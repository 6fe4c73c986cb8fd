"""动态管理: re-reviews due, proposals to adjust or cancel a case approved in
the policy's order, a case's page, the month-end run.

Every action is review's own RPC as the logged-in person: ``approve_proposal``
(review names the role the proposal waits for, refuses the person who proposed
it or already approved it — maker ≠ checker — and anyone the staff registry
does not show in that role), ``reject_proposal`` (with its reason),
``record_rereview`` (复核, judged on intake's facts), ``propose`` and
``run_month_end``. A refusal comes back on the same page as a typed message.
A case's page also reads the household from intake (``get_household``), so
each view is recorded as ``file_viewed``; a case outside the person's
jurisdiction and one that does not exist are the same 403 page.
"""
from __future__ import annotations

from datetime import timedelta

from services.gateway import labels
from services.gateway.exceptions import status_of
from services.gateway.pages import _forms as forms
from services.gateway.pages.base import Area, Nav, Section
from services.gateway.pages.households import record_refused
from shared.errors import Conflict, Forbidden, NotFound, ValidationFailed
from shared.identity import Role

#: review's CASE_READERS (the services check every call anyway)
READERS = (Role.COMMUNITY_OFFICER, Role.TOWNSHIP_OFFICER, Role.DISTRICT_OFFICER, Role.CENTRE_DIRECTOR,
           Role.DEPUTY_DIRECTOR, Role.AUDITOR)
#: review's INSPECTORS (复核), CASE_MANAGERS (propose) and MONTH_END_RUNNERS
INSPECTORS = frozenset({Role.COMMUNITY_OFFICER, Role.TOWNSHIP_OFFICER, Role.DISTRICT_OFFICER, Role.CENTRE_DIRECTOR})
MANAGERS = frozenset({Role.TOWNSHIP_OFFICER, Role.DISTRICT_OFFICER, Role.CENTRE_DIRECTOR})
MONTH_END_RUNNERS = frozenset({Role.DISTRICT_OFFICER, Role.CENTRE_DIRECTOR})
#: the roles the shipped policies name to approve a proposal (each policy's proposal_approvals)
APPROVERS = frozenset({Role.TOWNSHIP_OFFICER, Role.CENTRE_DIRECTOR, Role.DISTRICT_OFFICER})
#: how far ahead a re-review counts as due on the pages (review reminds rereview_lead_days ahead)
DUE_AHEAD_DAYS = 30

SELF_APPROVAL = "不能审批：此建议由您提出，须由另一人审批（提出与审批分离）。"
APPROVED_ALREADY = "不能审批：您已审批过此建议，下一级须由另一人审批。"

area = Area("dynamic", nav=[Nav("动态管理", "/dynamic", roles=READERS, order=20)])


def values(**more):
    return dict(rules=labels.RULE, actions=labels.ACTION, proposal_status=labels.PROPOSAL_STATUS,
                case_status=labels.CASE_STATUS, categories=labels.CATEGORY, **more)


def holds(ctx, roles) -> bool:
    return bool(ctx.actor.roles & frozenset(roles))


def waiting_for_me(ctx, proposal: dict) -> bool:
    return bool(proposal.get("waiting_for")) and ctx.actor.has(proposal["waiting_for"])


def due_rereviews(ctx) -> list[dict]:
    """Active cases whose re-review date has passed or falls within DUE_AHEAD_DAYS, earliest first."""
    today = ctx.today()
    found = ctx.calls.review.overdue_rereviews(ctx.actor.unit, (today + timedelta(days=DUE_AHEAD_DAYS)).isoformat())
    for case in found:
        case["overdue"] = case["next_rereview_on"] < today.isoformat()
    return sorted(found, key=lambda c: (c["next_rereview_on"], c["community_code"]))


@area.section(roles=APPROVERS, order=20)
def proposals_for_me(ctx):
    """The proposals whose next approval is the person's role, in their unit."""
    waiting = [p for p in ctx.calls.review.list_proposals(ctx.actor.unit, "pending") if waiting_for_me(ctx, p)]
    return Section("待审批的调整、停保建议", "dynamic/_worklist_proposals.html", items=waiting,
                   empty="暂无待您审批的建议", extra=values())


@area.section(roles=(Role.COMMUNITY_OFFICER, Role.TOWNSHIP_OFFICER), order=21)
def rereviews_due(ctx):
    """The re-reviews due in the person's community or township (the district sees them on /dynamic)."""
    return Section("待复核的保障对象", "dynamic/_worklist_rereviews.html", items=due_rereviews(ctx),
                   empty="近期没有到期的复核", extra=values())


@area.page("/dynamic", roles=READERS)
def overview(ctx):
    return overview_page(ctx)


def overview_page(ctx, status=200, alert="", month_end=None):
    proposals = ctx.calls.review.list_proposals(ctx.actor.unit, "pending")
    for p in proposals:
        p["mine"] = waiting_for_me(ctx, p)
    proposals.sort(key=lambda p: (not p["mine"], p["proposed_on"], p["id"]))
    campaigns = ctx.calls.review.list_campaigns(ctx.actor.unit)
    return ctx.render("dynamic/overview.html", status=status, **values(
        rereviews=due_rereviews(ctx), proposals=proposals, campaigns=campaigns, alert=alert, month_end=month_end,
        may_run_month_end=holds(ctx, MONTH_END_RUNNERS), today=ctx.today()))


@area.page("/dynamic/month-end", methods=("POST",), roles=MONTH_END_RUNNERS)
def run_month_end(ctx):
    """月末核查: the month-end rules for the unit's cases (review.run_month_end)."""
    as_of = forms.optional(ctx.form, "as_of")
    try:
        out = ctx.calls.review.run_month_end(as_of)
    except Exception as exc:
        if not forms.refused(exc):
            raise
        return overview_page(ctx, status=status_of(exc), alert=forms.refusal_text(exc))
    return overview_page(ctx, month_end=out)


def case_page(ctx, case_id, status=200, alert="", notice="", errors=None, given=None):
    try:
        case = ctx.calls.review.get_case(case_id)
        household = ctx.calls.intake.get_household(case["household_id"])   # the view recorded: file_viewed
    except (NotFound, Forbidden):
        return record_refused(ctx)
    for p in case["proposals"]:
        p["mine"] = waiting_for_me(ctx, p)
        p["may_reject"] = p["status"] == "pending" and any(ctx.actor.has(r) for r in p.get("approval_order", ()))
    case["overdue"] = case["status"] == "active" and case["next_rereview_on"] < ctx.today().isoformat()
    return ctx.render("dynamic/case.html", status=status, **values(
        case=case, household=household, alert=alert, notice=notice, errors=errors or {}, given=given or {},
        may_rereview=holds(ctx, INSPECTORS) and case["status"] == "active",
        may_propose=holds(ctx, MANAGERS) and case["status"] == "active", today=ctx.today()))


@area.page("/dynamic/cases/<uuid:case_id>", roles=READERS)
def case(ctx, case_id):
    done = ctx.request.args.get("done")
    return case_page(ctx, case_id, notice={"approved": "已审批。", "rejected": "已驳回。", "rereview": "复核已记录。",
                                           "proposed": "建议已提出，待审批。"}.get(done, ""))


def proposal_refusal(exc, waiting_for: str | None) -> tuple[int, str]:
    """(status, the page's text) for review's refusal of an approval."""
    rule = (exc.details or {}).get("rule")
    if isinstance(exc, Conflict) and rule == "proposer_does_not_approve":
        return 409, SELF_APPROVAL
    if isinstance(exc, Conflict) and rule == "approver_is_a_new_person":
        return 409, APPROVED_ALREADY
    if isinstance(exc, Forbidden) and (exc.details or {}).get("reason") == "not_in_registry":
        return 403, f"不能审批：人员名册中您不是本案所在单位的{labels.role_label((exc.details or {}).get('role'))}。"
    if isinstance(exc, Forbidden):
        who = labels.role_label(waiting_for) if waiting_for else "审批人"
        return 403, f"不能审批：此建议按政策顺序现在须由{who}审批，您的角色或辖区不符。"
    if isinstance(exc, ValidationFailed):
        return 400, forms.refusal_text(exc)
    return 409, forms.refusal_text(exc)


def _decide(ctx, proposal_id, call, field, done):
    case_id = forms.text(ctx.form, "case_id")
    data = {"proposal_id": proposal_id, field: forms.text(ctx.form, field)}
    try:
        getattr(ctx.calls.review, call)(data)
    except Exception as exc:
        if not forms.refused(exc) or not case_id:
            raise
        if isinstance(exc, NotFound):
            return record_refused(ctx)
        waiting = next((p.get("waiting_for") for p in ctx.calls.review.get_case(case_id)["proposals"]
                        if p["id"] == proposal_id), None)
        status, text = proposal_refusal(exc, waiting)
        errors = forms.field_errors(exc)
        return case_page(ctx, case_id, status=status, alert=text,
                         errors={f"{k}-{proposal_id}": v for k, v in errors.items()})
    return ctx.redirect(f"/dynamic/cases/{case_id}?done={done}" if case_id else "/dynamic")


@area.page("/dynamic/proposals/<int:proposal_id>/approval", methods=("POST",), roles=READERS)
def approve(ctx, proposal_id):
    """审批: the role the policy names next; review refuses the proposer and an earlier approver."""
    return _decide(ctx, proposal_id, "approve_proposal", "remarks", "approved")


@area.page("/dynamic/proposals/<int:proposal_id>/rejection", methods=("POST",), roles=READERS)
def reject(ctx, proposal_id):
    """驳回, with the reason."""
    return _decide(ctx, proposal_id, "reject_proposal", "reason", "rejected")


def whole(text: str) -> int | None:
    """A form's whole number, or None when blank or not one (the service then names the field)."""
    return int(text) if text.isdigit() else None


def _case_action(ctx, case_id, call, data: dict, given: dict, done: str):
    """Review's ``call`` as the person; a refusal is the case page again, the input kept."""
    try:
        getattr(ctx.calls.review, call)(data)
    except Exception as exc:
        if not forms.refused(exc):
            raise
        return case_page(ctx, case_id, status=status_of(exc), alert=forms.refusal_text(exc),
                         errors=forms.field_errors(exc), given=given)
    return ctx.redirect(f"/dynamic/cases/{case_id}?done={done}")


@area.page("/dynamic/cases/<uuid:case_id>/rereview", methods=("POST",), roles=INSPECTORS)
def rereview(ctx, case_id):
    """复核: judged on the household's facts as intake has them now (a change becomes a proposal)."""
    given = {k: forms.text(ctx.form, k) for k in ("reviewed_on", "remarks")}
    return _case_action(ctx, case_id, "record_rereview", {"case_id": case_id, "reviewed_on": given["reviewed_on"]
                                                          or None, "remarks": given["remarks"]}, given, "rereview")


@area.page("/dynamic/cases/<uuid:case_id>/proposals", methods=("POST",), roles=MANAGERS)
def propose(ctx, case_id):
    """An officer's own proposal to adjust or cancel (the same approval follows)."""
    given = {k: forms.text(ctx.form, k) for k in ("action", "reason", "verified_income", "household_size",
                                                   "gradual_exit_months")}
    data = {"case_id": case_id, "action": given["action"], "reason": given["reason"],
            "verified_income": given["verified_income"] or None, "household_size": whole(given["household_size"]),
            "gradual_exit_months": whole(given["gradual_exit_months"]) or 0}
    return _case_action(ctx, case_id, "propose", data, given, "proposed")
