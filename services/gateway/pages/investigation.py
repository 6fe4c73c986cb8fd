"""入户调查: the home investigation, recorded by the officer after the visit
(the form is made for a phone: one column, large inputs, 375 px).

Who went (at least the policy's number of registered case-working staff
covering the household, each signing), the family members who signed, the
verified incomes and assets, the findings — ``intake.record_investigation``
as the logged-in officer. The investigators offered are intake's staff
registry for the household's community (``intake.list_staff``); another
covering officer (of the township, say) is named by their login.
"""
from __future__ import annotations

from services.gateway.pages import _forms as forms
from services.gateway.pages.base import Area
from services.gateway.pages.households import record_refused
from shared.errors import Forbidden, NotFound
from shared.identity import STAFF_ROLES

area = Area("investigation")

INVESTIGATORS = ("community_officer", "township_officer", "district_officer")
INCOME_ROWS, ASSET_ROWS, OTHER_INVESTIGATORS = 4, 3, 2


def investigation_input(ctx, application_id, members: list[dict]) -> tuple[dict, dict]:
    form = ctx.form
    users = [u for u in form.getlist("investigator") if u]
    users += [forms.text(form, f"other-{n}") for n in range(OTHER_INVESTIGATORS) if forms.text(form, f"other-{n}")]
    member_ids = {m["id"] for m in members}
    incomes = forms.rows(form, "verified_incomes", INCOME_ROWS, ("member_id", "source", "monthly_amount"), ("monthly_amount",))
    assets = forms.rows(form, "verified_assets", ASSET_ROWS, ("kind", "description", "value"), ("value", "description"))
    data = {
        "application_id": application_id,
        "investigated_on": forms.text(form, "investigated_on"),
        "investigators": [{"user": u, "signed": True} for u in dict.fromkeys(users)],
        "family_signatures": [{"member_id": m} for m in form.getlist("family_signature") if m in member_ids],
        "verified_incomes": [{"member_id": i["member_id"] or None, "source": i["source"],
                              "monthly_amount": i["monthly_amount"]} for _, i in incomes],
        "verified_assets": [{"kind": a["kind"], "description": a["description"], "value": a["value"]}
                            for _, a in assets],
        "findings": forms.text(form, "findings"),
    }
    return data, {"verified_incomes": [r for r, _ in incomes], "verified_assets": [r for r, _ in assets]}


@area.page("/applications/<uuid:application_id>/investigation", methods=("GET", "POST"), roles=INVESTIGATORS)
def investigation(ctx, application_id):
    try:
        application = ctx.calls.intake.get_application(application_id)
        household = ctx.calls.intake.get_household(application["household_id"])
    except (NotFound, Forbidden):
        return record_refused(ctx)
    staff_roles = {r.value for r in STAFF_ROLES}
    try:
        registry = ctx.calls.intake.list_staff(application["community_code"])
    except Forbidden:
        registry = []
    staff = {s["user"]: s for s in registry if s["role"] in staff_roles}
    values = {"investigated_on": ctx.today().isoformat(), "investigator": [ctx.actor.user]}
    errors, alert, status = {}, "", 200
    if ctx.request.method == "POST":
        data, renumber = investigation_input(ctx, application_id, household["members"])
        try:
            ctx.calls.intake.record_investigation(data)
        except Exception as exc:
            if not forms.refused(exc):
                raise
            errors, alert = forms.field_errors(exc, renumber), forms.refusal_text(exc)
            status = 400 if exc.code == "validation_failed" else 409
            values = dict(ctx.form)
            values["investigator"] = ctx.form.getlist("investigator")
            values["family_signature"] = ctx.form.getlist("family_signature")
        else:
            return ctx.redirect(f"/applications/{application_id}")
    return ctx.render("investigation/form.html", status=status, application=application, household=household,
                      staff=sorted(staff.values(), key=lambda s: (s["unit"], s["user"])), values=values,
                      errors=errors, alert=alert, income_rows=INCOME_ROWS, asset_rows=ASSET_ROWS,
                      other_rows=OTHER_INVESTIGATORS, choices=forms.LABELS,
                      member_choices={m["id"]: m["name"] for m in household["members"]})
