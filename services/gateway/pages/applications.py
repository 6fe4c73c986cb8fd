"""申请与审核: an application's page (its review status) and the review's worklist block.

The review status is the review service's (``review.get_application``):
the open step and its deadline, the whole process's deadline, the
provisional and overdue marks, objections, the decision and the case; the
application itself (acceptance, the home investigation's deadline and
records) is intake's (``intake.get_application``).
"""
from __future__ import annotations

from services.gateway.pages._actions import entry_actions
from services.gateway.pages.base import Area, Nav, Section
from services.gateway.pages.households import RECORD_REFUSED, record_refused
from shared.errors import Forbidden, NotFound
from shared.identity import Role

#: who has a review worklist: every level's case workers, and the auditor (reads)
REVIEW_ROLES = (Role.COMMUNITY_OFFICER, Role.COMMUNITY_PANEL, Role.TOWNSHIP_OFFICER, Role.TOWNSHIP_COMMITTEE,
                Role.DISTRICT_OFFICER, Role.CENTRE_DIRECTOR, Role.DEPUTY_DIRECTOR, Role.AUDITOR)
#: who accepts applications and investigates: intake's case workers
INTAKE_ROLES = frozenset({Role.COMMUNITY_OFFICER, Role.TOWNSHIP_OFFICER, Role.DISTRICT_OFFICER})
#: the review's statuses, as the list filters them
STATUSES = ("awaiting_investigation", "in_review", "awaiting_reinvestigation", "approved", "rejected")

area = Area("applications", nav=[Nav("申请", "/applications", roles=REVIEW_ROLES, order=10)])


@area.section(roles=REVIEW_ROLES, order=10)
def review_worklist(ctx):
    """The open applications waiting at the person's level, late ones first;
    for intake's case workers, each awaiting investigation with intake's
    deadline for starting it (national rule: 3 working days)."""
    items = ctx.calls.review.worklist()
    if ctx.actor.roles & INTAKE_ROLES and any(i["status"] != "in_review" for i in items):
        today = ctx.today().isoformat()
        waiting = {a["id"]: a for a in ctx.calls.intake.list_applications(status="submitted")}
        for item in items:
            application = waiting.get(item["application_id"])
            if application and application.get("investigation_deadline"):
                item["investigation_deadline"] = application["investigation_deadline"]
                item["investigation_deadline_provisional"] = bool(application.get("provisional"))
                if application["investigation_deadline"] < today:
                    item["overdue"] = True
    return Section("审核待办", "applications/_worklist.html", items=items, empty="暂无待办的申请")


@area.page("/applications", roles=REVIEW_ROLES)
def applications(ctx):
    """The applications in the review within the person's unit, the latest accepted first
    (``?status=`` narrows it to one of the review's statuses)."""
    status = ctx.request.args.get("status") or None
    if status not in STATUSES:
        status = None
    found = ctx.calls.review.files(status=status, limit=500)
    return ctx.render("applications/list.html", applications=found, status=status, statuses=STATUSES)


@area.page("/applications/<uuid:application_id>")
def application(ctx, application_id):
    """One application: where it stands in the review."""
    try:
        review = ctx.calls.review.get_application(application_id)
    except (NotFound, Forbidden):
        return record_refused(ctx)
    try:
        intake = ctx.calls.intake.get_application(application_id)
    except (NotFound, Forbidden):
        intake = None   # a reader of the review who is not one of intake's (the committee's members)
    return ctx.render("applications/application.html", review=review, application=intake,
                      refused_text=RECORD_REFUSED, actions=entry_actions(review, ctx.actor))
