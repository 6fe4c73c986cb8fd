"""入户清查: re-inspection campaigns and their results.

A township or district officer organises one (``review.create_campaign``:
every active case of the unit assigned to the teams); the inspectors record
each case's result (``review.record_inspection``: a change becomes a proposal
approved like any other); the campaign's page shows the results per township
and community (``review.campaign_progress``) and the cases within the
person's jurisdiction (``review.campaign_inspections``).
"""
from __future__ import annotations

from services.gateway import labels
from services.gateway.pages import _forms as forms
from services.gateway.pages.base import Area
from services.gateway.exceptions import status_of
from services.gateway.pages.dynamic import INSPECTORS, READERS, whole
from shared.errors import Forbidden, NotFound
from shared.identity import Role

#: review's CAMPAIGN_ORGANISERS
ORGANISERS = frozenset({Role.TOWNSHIP_OFFICER, Role.DISTRICT_OFFICER, Role.CENTRE_DIRECTOR})

area = Area("campaigns")


def _list_page(ctx, status=200, alert="", errors=None, given=None):
    return ctx.render("dynamic/campaigns.html", status=status, campaigns=ctx.calls.review.list_campaigns(ctx.actor.unit),
                      alert=alert, errors=errors or {}, given=given or {"unit_code": ctx.actor.unit},
                      may_organise=bool(ctx.actor.roles & ORGANISERS))


@area.page("/dynamic/campaigns", roles=READERS)
def campaigns(ctx):
    return _list_page(ctx)


@area.page("/dynamic/campaigns", methods=("POST",), roles=ORGANISERS)
def create(ctx):
    given = {k: forms.text(ctx.form, k) for k in ("unit_code", "name", "starts_on", "ends_on", "teams")}
    teams = [t.strip() for t in given["teams"].splitlines() if t.strip()]
    try:
        made = ctx.calls.review.create_campaign({"unit_code": given["unit_code"] or ctx.actor.unit,
                                                 "name": given["name"], "starts_on": given["starts_on"],
                                                 "ends_on": given["ends_on"], "teams": teams})
    except Exception as exc:
        if not forms.refused(exc):
            raise
        return _list_page(ctx, status=status_of(exc),
                          alert=forms.refusal_text(exc), errors=forms.field_errors(exc), given=given)
    return ctx.redirect(f"/dynamic/campaigns/{made['id']}")


def campaign_page(ctx, campaign_id, status=200, alert="", notice="", errors=None):
    try:
        progress = ctx.calls.review.campaign_progress(campaign_id)
        cases = ctx.calls.review.campaign_inspections(campaign_id)
    except (NotFound, Forbidden):
        return ctx.error(NotFound("no such campaign", {"campaign_id": "?"}), status=404, title="未找到",
                         text="没有这个清查活动，或它不在您的辖区内。")
    return ctx.render("dynamic/campaign.html", status=status, progress=progress, cases=cases, alert=alert,
                      notice=notice, errors=errors or {}, results=labels.CAMPAIGN_RESULT,
                      may_inspect=bool(ctx.actor.roles & INSPECTORS))


@area.page("/dynamic/campaigns/<uuid:campaign_id>", roles=READERS)
def campaign(ctx, campaign_id):
    return campaign_page(ctx, campaign_id, notice="清查结果已记录。" if ctx.request.args.get("done") else "")


@area.page("/dynamic/campaigns/<uuid:campaign_id>/inspections", methods=("POST",), roles=INSPECTORS)
def inspect(ctx, campaign_id):
    """One case's result (a change becomes a proposal to adjust or cancel)."""
    form = ctx.form
    case_id = forms.text(form, "case_id")
    size = forms.text(form, "household_size")
    data = {"campaign_id": campaign_id, "case_id": case_id, "result": forms.text(form, "result"),
            "verified_income": forms.optional(form, "verified_income"),
            "household_size": whole(size), "remarks": forms.text(form, "remarks")}
    try:
        ctx.calls.review.record_inspection(data)
    except Exception as exc:
        if not forms.refused(exc):
            raise
        errors = {f"{k}-{case_id}": v for k, v in forms.field_errors(exc).items()}
        return campaign_page(ctx, campaign_id, status=status_of(exc),
                             alert=forms.refusal_text(exc), errors=errors)
    return ctx.redirect(f"/dynamic/campaigns/{campaign_id}?done=1")
