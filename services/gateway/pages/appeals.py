"""复核: appeals of a rejection, a cancellation or a benefit change (docs/appeals.md).

- ``/appeals`` — the appeals within the person's unit (``?status=`` narrows
  them), and for the community, township and district officers the form to
  file one for the household (the application's number, optionally the kind
  of decision, the household's grounds): ``review.file_appeal``.
- ``/appeals/<uuid>`` — one appeal: the decision under appeal, who took part
  in it, the grounds, the deadline; for the deciding unit (the district) the
  decision form — upheld or dismissed, with the reason (``review.decide_appeal``:
  review refuses anyone who took part in the decision appealed).
- On the worklist (待办) of the deciding unit: the open appeals, the earliest
  due first, late ones marked 超期 (and 暂定 when the deadline was counted
  across a provisional year).
"""
from __future__ import annotations

from services.gateway.pages import _forms as forms
from services.gateway.pages.base import Area, Nav, Section
from services.gateway.pages.households import record_refused
from shared.errors import Forbidden, NotFound
from shared.identity import Role

READERS = (Role.COMMUNITY_OFFICER, Role.TOWNSHIP_OFFICER, Role.DISTRICT_OFFICER, Role.CENTRE_DIRECTOR,
           Role.DEPUTY_DIRECTOR, Role.AUDITOR)
FILERS = frozenset({Role.COMMUNITY_OFFICER, Role.TOWNSHIP_OFFICER, Role.DISTRICT_OFFICER})
DECIDERS = frozenset({Role.DEPUTY_DIRECTOR, Role.CENTRE_DIRECTOR, Role.DISTRICT_OFFICER})
KINDS = {"rejection": "不予纳入（申请被驳回）", "cancellation": "停保（取消低保）", "benefit_change": "保障金变更"}
STATUSES = {"open": "待决定", "upheld": "复核成立（撤销原决定）", "dismissed": "复核不成立（维持原决定）"}
PARTS = {"investigation": "入户调查", "evaluation": "民主评议", "township_review": "乡镇街审核",
         "joint_review": "区级会审", "rejection": "作出驳回", "proposal": "提出停保/调整", "approval": "审批",
         "filing": "代为申请"}
REOPENED = {"reinvestigation": "重新入户调查", "restored": "恢复保障", "reverted": "恢复原保障金"}
LABELS = {"KINDS": KINDS, "STATUSES": STATUSES, "PARTS": PARTS, "REOPENED": REOPENED}

area = Area("appeals", nav=[Nav("复核", "/appeals", roles=READERS, order=40)])


@area.section(roles=DECIDERS, order=15)
def appeals_to_decide(ctx):
    """The deciding unit's open appeals, the earliest due first, with their overdue marks."""
    items = ctx.calls.review.list_appeals(status="open")
    return Section("复核待决定", "appeals/_worklist.html", items=items, empty="暂无待决定的复核申请",
                   extra={"labels": LABELS})


def refusal(exc) -> str:
    details = exc.details or {}
    rule = details.get("rule")
    if rule == "appeal_within_period":
        return f"无法受理：已超过复核申请期限（截至 {details.get('period_ended_on')}）。"
    if rule == "one_appeal_per_decision":
        return "无法受理：该决定已经申请过复核。"
    if rule == "decided_by_someone_uninvolved":
        return f"无权决定：您参与了被申请复核的原决定（{PARTS.get(details.get('part'), details.get('part'))}），应由未参与的人员决定。"
    return forms.refusal_text(exc)


def submit(call) -> tuple[dict | None, tuple[dict, str, int]]:
    """(review's answer, no refusal) or (None, (the fields' problems, why, the HTTP status)) when
    review refuses; anything else is raised (the console's error page)."""
    try:
        return call(), ({}, "", 200)
    except NotFound:
        return None, ({"application_id": ["未找到该申请"]}, "未找到该申请。", 404)
    except Exception as exc:
        if not forms.refused(exc):
            raise
        return None, (forms.field_errors(exc), refusal(exc),
                      {"validation_failed": 400, "forbidden": 403}.get(exc.code, 409))


@area.page("/appeals", methods=("GET", "POST"), roles=READERS)
def appeals(ctx):
    status = ctx.request.args.get("status") or None
    if status not in STATUSES:
        status = None
    values = {"application_id": "", "kind": "", "grounds": ""}
    errors, alert, code = {}, "", 200
    if ctx.request.method == "POST":
        values = {k: forms.text(ctx.form, k) for k in values}
        filed, (errors, alert, code) = submit(lambda: ctx.calls.review.file_appeal({
            "application_id": values["application_id"], "kind": values["kind"] or None,
            "grounds": values["grounds"]}))
        if filed is not None:
            return ctx.redirect(f"/appeals/{filed['id']}")
    found = ctx.calls.review.list_appeals(status=status, limit=500)
    return ctx.render("appeals/list.html", status=code, appeals=found, chosen=status, values=values, errors=errors,
                      alert=alert, labels=LABELS, may_file=bool(ctx.actor.roles & FILERS))


@area.page("/appeals/<uuid:appeal_id>", methods=("GET", "POST"), roles=READERS)
def appeal(ctx, appeal_id):
    try:
        found = ctx.calls.review.get_appeal(appeal_id)
    except (NotFound, Forbidden):
        return record_refused(ctx)
    values = {"outcome": "", "reason": ""}
    errors, alert, code = {}, "", 200
    if ctx.request.method == "POST":
        values = {k: forms.text(ctx.form, k) for k in values}
        decided, (errors, alert, code) = submit(lambda: ctx.calls.review.decide_appeal({
            "appeal_id": appeal_id, "outcome": values["outcome"], "reason": values["reason"]}))
        if decided is not None:
            return ctx.redirect(f"/appeals/{appeal_id}")
    return ctx.render("appeals/appeal.html", status=code, appeal=found, values=values, errors=errors, alert=alert,
                      labels=LABELS, may_decide=found["status"] == "open" and bool(ctx.actor.roles & DECIDERS))
