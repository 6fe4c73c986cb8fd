"""评议、评审与公示: the community's evaluation meeting (民主评议: each
participant, their signature, the votes), the township committee (评审: each
member's opinion) or initial opinion (初审), and the notices of the steps
with their objections (公示与异议) — as the review service models them.

Each step is the review service's own call as the logged-in person
(``review.record_evaluation`` / ``skip_evaluation`` /
``record_township_review``), which checks that the step is the one open,
the signatures, the votes against the decision and the representatives'
share, and records the command. A notice step is notify's: it posts the
notice, closes it when its period ends, and an objection recorded here
(``notify.file_objection``) sends the application back to a home
investigation (review's ``objection_filed``).
"""
from __future__ import annotations

from services.gateway.exceptions import public_error
from services.gateway.pages import _forms as forms
from services.gateway.pages.base import Area
from services.gateway.pages.households import record_refused
from shared.errors import Forbidden, NotFound

area = Area("evaluation")

PANEL = ("community_officer", "community_panel")
COMMITTEE = ("township_officer", "township_committee")
OBJECTION_TAKERS = ("community_officer", "township_officer", "district_officer")
PARTICIPANT_ROWS, MEMBER_ROWS = 9, 7


def review_file(ctx, application_id):
    return ctx.calls.review.get_application(application_id)


def decision(form) -> bool | None:
    return {"yes": True, "no": False}.get(form.get("passed"))


def number(form, name):
    value = forms.text(form, name)
    return int(value) if value.isdigit() else (value or None)


def kept(form) -> dict:
    values = dict(form)
    values.update({k: form.getlist(k)[-1] for k in form if form.getlist(k)})
    return values


@area.page("/applications/<uuid:application_id>/evaluation", methods=("GET", "POST"), roles=PANEL)
def evaluation(ctx, application_id):
    """民主评议: the meeting's participants (each signs), the votes, the decision."""
    try:
        review = review_file(ctx, application_id)
    except (NotFound, Forbidden):
        return record_refused(ctx)
    values, errors, alert, status = {"meeting_date": ctx.today().isoformat()}, {}, "", 200
    if ctx.request.method == "POST":
        form = ctx.form
        rows = forms.rows(form, "participants", PARTICIPANT_ROWS, ("name", "role"), ("name",))
        data = {"application_id": application_id, "meeting_date": forms.text(form, "meeting_date"),
                "participants": [{"name": p["name"], "role": p["role"],
                                  "signed": forms.checked(form, f"participants-{n}-signed"),
                                  "related_to_applicant": forms.checked(form, f"participants-{n}-related")}
                                 for n, p in rows],
                "votes_for": number(form, "votes_for"), "votes_against": number(form, "votes_against"),
                "abstentions": number(form, "abstentions") or 0, "passed": decision(form),
                "remarks": forms.text(form, "remarks")}
        try:
            ctx.calls.review.record_evaluation(data)
        except Exception as exc:
            if not forms.refused(exc):
                raise
            errors = forms.field_errors(exc, {"participants": [n for n, _ in rows]})
            alert, status, values = forms.refusal_text(exc), 400, kept(form)
        else:
            return ctx.redirect(f"/applications/{application_id}")
    return ctx.render("evaluation/evaluation.html", status=status, review=review, values=values, errors=errors,
                      alert=alert, rows=PARTICIPANT_ROWS, choices=forms.LABELS)


@area.page("/applications/<uuid:application_id>/evaluation/skip", methods=("POST",), roles=PANEL + COMMITTEE)
def skip(ctx, application_id):
    """不再评议 where the policy allows it (national 2021, Art. 24), with the reason."""
    try:
        ctx.calls.review.skip_evaluation({"application_id": application_id, "reason": forms.text(ctx.form, "reason")})
    except (NotFound, Forbidden) as exc:
        if not forms.refused(exc):
            raise
        return record_refused(ctx)
    return ctx.redirect(f"/applications/{application_id}")


@area.page("/applications/<uuid:application_id>/committee", methods=("GET", "POST"), roles=COMMITTEE)
def committee(ctx, application_id):
    """乡镇（街道）评审: each member's opinion and signature, the decision (or the initial opinion)."""
    try:
        review = review_file(ctx, application_id)
    except (NotFound, Forbidden):
        return record_refused(ctx)
    values, errors, alert, status = {"meeting_date": ctx.today().isoformat()}, {}, "", 200
    if ctx.request.method == "POST":
        form = ctx.form
        rows = forms.rows(form, "members", MEMBER_ROWS, ("name", "department", "opinion"), ("name",))
        data = {"application_id": application_id, "meeting_date": forms.text(form, "meeting_date"),
                "members": [{"name": m["name"], "department": m["department"], "opinion": m["opinion"],
                             "signed": forms.checked(form, f"members-{n}-signed")} for n, m in rows],
                "passed": decision(form), "remarks": forms.text(form, "remarks")}
        try:
            ctx.calls.review.record_township_review(data)
        except Exception as exc:
            if not forms.refused(exc):
                raise
            errors = forms.field_errors(exc, {"members": [n for n, _ in rows]})
            alert, status, values = forms.refusal_text(exc), 400, kept(form)
        else:
            return ctx.redirect(f"/applications/{application_id}")
    return ctx.render("evaluation/committee.html", status=status, review=review, values=values, errors=errors,
                      alert=alert, rows=MEMBER_ROWS, choices=forms.LABELS)


@area.page("/applications/<uuid:application_id>/notice", methods=("GET", "POST"))
def notice(ctx, application_id):
    """公示: the open notice step, its period, its objections; an objection given at the office recorded."""
    try:
        review = review_file(ctx, application_id)
    except (NotFound, Forbidden):
        return record_refused(ctx)
    posted, objections, unavailable = None, [], None
    values, errors, alert, status = {}, {}, "", 200
    if ctx.request.method == "POST":
        values = {"text": forms.text(ctx.form, "text"), "anonymous": forms.checked(ctx.form, "anonymous"),
                  "contact_name": forms.text(ctx.form, "contact_name"),
                  "contact_phone": forms.text(ctx.form, "contact_phone")}
        try:
            if not ctx.actor.roles & {r for r in _roles(OBJECTION_TAKERS)}:
                raise Forbidden("your role does not record objections", {"reason": "role"})
            ctx.calls.notify.file_objection({
                "notice_id": review.get("notice_id") or "", "text": values["text"], "anonymous": values["anonymous"],
                "contact_name": None if values["anonymous"] else (values["contact_name"] or None),
                "contact_phone": None if values["anonymous"] else (values["contact_phone"] or None)})
        except Exception as exc:
            if not forms.refused(exc):
                raise
            errors, alert, status = forms.field_errors(exc), forms.refusal_text(exc), 400
        else:
            return ctx.redirect(f"/applications/{application_id}/notice")
    if review.get("notice_id"):
        try:
            posted = ctx.calls.notify.get_notice(review["notice_id"])
            objections = ctx.calls.notify.list_objections(review["notice_id"])
        except Forbidden as exc:   # the panel reads the notice, not the objectors' words
            if forms.refused(exc) and posted is not None:
                objections = None
            else:
                raise
        except Exception as exc:  # noqa: BLE001 - notify not answering leaves review's side standing
            unavailable = public_error(exc, where="evaluation.notice").to_dict()
            if unavailable["code"] == "unauthenticated":
                raise
    return ctx.render("evaluation/notice.html", status=status, review=review, notice=posted, objections=objections,
                      unavailable=unavailable, values=values, errors=errors, alert=alert,
                      may_object=bool(ctx.actor.roles & _roles(OBJECTION_TAKERS)))


def _roles(names):
    from shared.identity import Role

    return {Role(n) for n in names}
