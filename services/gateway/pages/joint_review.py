"""区级会审: the district's joint review — three people, three seats (the
deputy director, the centre director, an officer who did the home
investigation), each signing from their own login.

The page is review's ``joint_review_sheet``: who has signed which seat, and
the benefit the signatures fix, with its calculation (standard × household
size − verified income, the policy's formula, 分类施保 extras for vulnerable
members, the minimum). A signature is ``review.sign_joint_review`` as the
logged-in person: review refuses a seat the person does not hold, a second
seat for one person, and an override without its reason — shown on this
page. The third signature approves and makes the case.
"""
from __future__ import annotations

from services.gateway.pages import _forms as forms
from services.gateway.pages.base import Area
from services.gateway.pages.households import record_refused
from shared.errors import Forbidden, NotFound

area = Area("joint_review")

READERS = ("community_officer", "township_officer", "district_officer", "centre_director", "deputy_director",
           "auditor")


def refusal(exc) -> str:
    """Why review refused the signature, in the signer's words."""
    details = exc.details or {}
    if exc.code == "conflict" and details.get("user") and details.get("role"):
        seat = forms.SEATS.get(details["role"], details["role"])
        if details.get("rule") == "nobody_fills_two_roles":
            return f"无法签字：您已以{seat}身份签字，同一人不能担任两个会审角色。"
        return f"无法签字：{seat}已由他人签字。"
    if exc.code == "conflict" and details.get("differs"):
        return "无法签字：已签字的会审人对保障金或调整理由的意见与您不同，请先协商一致。"
    if exc.code == "forbidden":
        return "无法签字：您不担任该会审角色（入户调查人须是参加入户调查的工作人员）。"
    return forms.refusal_text(exc)


def seats_for(actor, sheet) -> list[str]:
    """The open seats this person could sign (review decides; this only chooses what the form offers)."""
    held = {r.value for r in actor.roles}
    investigated = {i.get("user") for i in sheet.get("investigators", [])}
    out = []
    for seat in sheet["seats"]:
        if seat["signed"]:
            continue
        if seat["role"] in held or (seat["role"] == "investigator" and actor.user in investigated):
            out.append(seat["role"])
    return out


@area.page("/applications/<uuid:application_id>/joint-review", methods=("GET", "POST"), roles=READERS)
def joint_review(ctx, application_id):
    try:
        sheet = ctx.calls.review.joint_review_sheet(application_id)
    except (NotFound, Forbidden):
        return record_refused(ctx)
    signed_override = next((s for s in sheet["seats"] if s["signed"] and s.get("benefit_override")), None)
    values = {"benefit_override": (signed_override or {}).get("benefit_override") or "",
              "override_reason": (signed_override or {}).get("override_reason") or ""}
    errors, alert, status = {}, "", 200
    if ctx.request.method == "POST":
        values = {k: forms.text(ctx.form, k) for k in ("role", "benefit_override", "override_reason")}
        try:
            done = ctx.calls.review.sign_joint_review({
                "application_id": application_id, "role": values["role"],
                "benefit_override": values["benefit_override"] or None,
                "override_reason": values["override_reason"] or None})
        except Exception as exc:
            if not forms.refused(exc):
                raise
            errors, alert = forms.field_errors(exc), refusal(exc)
            status = 400 if exc.code == "validation_failed" else (403 if exc.code == "forbidden" else 409)
            sheet = ctx.calls.review.joint_review_sheet(application_id)
        else:
            return ctx.redirect(f"/applications/{application_id}/joint-review"
                                if done.get("status") != "approved" else f"/applications/{application_id}")
    return ctx.render("joint_review/sheet.html", status=status, sheet=sheet, seats=seats_for(ctx.actor, sheet),
                      values=values, errors=errors, alert=alert, choices=forms.LABELS,
                      signed_by_me=[s for s in sheet["seats"] if s.get("user") == ctx.actor.user])
