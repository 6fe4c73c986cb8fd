"""家庭登记与受理: a community officer registers a household (members,
incomes, assets), edits it, and accepts its application.

Registering is ``intake.register_household``, editing
``intake.update_household`` (the whole household again, as the officer's
form has it: the ID numbers are in this form only, the officer's own, and
nowhere else on the console), accepting ``intake.submit_application`` — all
as the logged-in officer, so intake checks the role and the community and
records the command as theirs. A refused form comes back with the officer's
input and each field's problem beside it.
"""
from __future__ import annotations

from services.gateway.pages import _forms as forms
from services.gateway.pages.base import Area, Nav
from services.gateway.pages.households import record_refused
from shared.errors import Forbidden, NotFound

area = Area("registration", nav=[Nav("登记家庭", "/households/new", roles={"community_officer"}, order=20)])

REGISTRARS = ("community_officer", "township_officer", "district_officer")
MEMBER_ROWS, INCOME_ROWS, ASSET_ROWS = 6, 4, 3
MEMBER_FIELDS = ("name", "resident_id", "relation", "labour_capacity", "employment", "disability", "illness")
INCOME_FIELDS = ("member", "source", "monthly_amount")
ASSET_FIELDS = ("kind", "description", "value")


def household_input(form) -> tuple[dict, dict[str, list[int]]]:
    """intake's HouseholdSchema input from the form, and which form row each list item came from."""
    members = forms.rows(form, "members", MEMBER_ROWS, MEMBER_FIELDS, ("name", "resident_id"))
    incomes = forms.rows(form, "incomes", INCOME_ROWS, INCOME_FIELDS, ("monthly_amount",))
    assets = forms.rows(form, "assets", ASSET_ROWS, ASSET_FIELDS, ("value", "description"))
    member_index = {row: i for i, (row, _) in enumerate(members)}
    data = {
        "community_code": forms.text(form, "community_code"),
        "address": forms.text(form, "address"),
        "phone": forms.optional(form, "phone"),
        "area_type": forms.optional(form, "area_type"),
        "members": [{"name": m["name"], "resident_id": m["resident_id"].upper(), "relation": m["relation"],
                     "labour_capacity": m["labour_capacity"], "employment": m["employment"],
                     "disability": m["disability"] or "none", "illness": m["illness"] or "none"}
                    for _, m in members],
        "incomes": [{"member": member_index.get(int(i["member"])) if i["member"].isdigit() else None,
                     "source": i["source"], "monthly_amount": i["monthly_amount"]} for _, i in incomes],
        "assets": [{"kind": a["kind"], "description": a["description"], "value": a["value"]} for _, a in assets],
    }
    return data, {"members": [r for r, _ in members], "incomes": [r for r, _ in incomes],
                  "assets": [r for r, _ in assets]}


def form_values(household: dict) -> dict:
    """A household as intake answers it, as the form's inputs (for editing)."""
    values = {"community_code": household["community_code"], "address": household["address"],
              "phone": household.get("phone") or "", "area_type": household.get("area_type") or ""}
    row_of = {}
    for n, m in enumerate(household["members"]):
        row_of[m["id"]] = n
        for f in MEMBER_FIELDS:
            values[f"members-{n}-{f}"] = m.get(f) or ""
    for n, i in enumerate(household["incomes"]):
        values[f"incomes-{n}-member"] = str(row_of[i["member_id"]]) if i.get("member_id") in row_of else ""
        values[f"incomes-{n}-source"] = i["source"]
        values[f"incomes-{n}-monthly_amount"] = i["monthly_amount"]
    for n, a in enumerate(household["assets"]):
        for f in ASSET_FIELDS:
            values[f"assets-{n}-{f}"] = a.get(f) or ""
    return values


def show_form(ctx, values, errors=None, alert="", household=None, status=200):
    rows = max(MEMBER_ROWS, len(household["members"]) + 2) if household else MEMBER_ROWS
    return ctx.render("registration/household_form.html", status=status, values=values, errors=errors or {},
                      alert=alert, household=household, member_rows=rows, income_rows=INCOME_ROWS,
                      asset_rows=ASSET_ROWS, choices=forms.LABELS,
                      member_choices={str(n): f"成员 {n + 1}" for n in range(rows)})


@area.page("/households/new", methods=("GET", "POST"), roles=REGISTRARS)
def register(ctx):
    """登记家庭: a new household in the officer's community."""
    if ctx.request.method == "GET":
        return show_form(ctx, {"community_code": ctx.actor.unit if len(ctx.actor.unit) == 12 else ""})
    data, renumber = household_input(ctx.form)
    try:
        created = ctx.calls.intake.register_household(data)
    except Exception as exc:
        if not forms.refused(exc):
            raise
        return show_form(ctx, dict(ctx.form), forms.field_errors(exc, renumber), forms.refusal_text(exc),
                         status=400 if exc.code == "validation_failed" else 409)
    return ctx.redirect(f"/households/{created['household_id']}")


@area.page("/households/<uuid:household_id>/edit", methods=("GET", "POST"), roles=REGISTRARS)
def edit(ctx, household_id):
    """修改家庭信息: members, incomes, assets (a new version of the household)."""
    try:
        household = ctx.calls.intake.get_household(household_id)
    except (NotFound, Forbidden):
        return record_refused(ctx)
    if ctx.request.method == "GET":
        return show_form(ctx, form_values(household), household=household)
    data, renumber = household_input(ctx.form)
    try:
        ctx.calls.intake.update_household(household_id, data)
    except Exception as exc:
        if not forms.refused(exc):
            raise
        return show_form(ctx, dict(ctx.form), forms.field_errors(exc, renumber), forms.refusal_text(exc),
                         household=household, status=400 if exc.code == "validation_failed" else 409)
    return ctx.redirect(f"/households/{household_id}")


@area.page("/households/<uuid:household_id>/application", methods=("GET", "POST"), roles=REGISTRARS)
def accept(ctx, household_id):
    """受理申请: the officer accepts the household's application (the statutory clock starts)."""
    try:
        household = ctx.calls.intake.get_household(household_id)
    except (NotFound, Forbidden):
        return record_refused(ctx)
    values = {"accepted_on": ctx.today().isoformat(), "reason": ""}
    errors, alert = {}, ""
    if ctx.request.method == "POST":
        values = {"accepted_on": forms.text(ctx.form, "accepted_on"), "reason": forms.text(ctx.form, "reason")}
        try:
            application = ctx.calls.intake.submit_application(dict(values, household_id=household_id))
        except Exception as exc:
            if not forms.refused(exc):
                raise
            errors, alert = forms.field_errors(exc), forms.refusal_text(exc)
        else:
            return ctx.redirect(f"/applications/{application['id']}")
    return ctx.render("registration/accept.html", household=household, values=values, errors=errors, alert=alert,
                      status=400 if alert else 200)
