"""监督审计: the audit's readable timelines (who did each step), who let a case
in, the chain's status, the statistics paragraph and table for any date with
charts, and the scorecard (考评).

Every page is audit's own RPC as the logged-in person (auditors, directors,
the audit administrator — each within their unit); audit records each query.
The charts are server-made SVG (:mod:`services.gateway.charts`), inline
markup without script or style. A timeline is asked for by uuid (household,
application, case) or by an operator's login name — never by a person's
name or ID number.
"""
from __future__ import annotations

from datetime import date, timedelta
from uuid import UUID

from services.gateway.charts import bar_chart
from services.gateway.pages.base import Area, Nav
from shared.errors import Forbidden, NotFound, ValidationFailed
from shared.identity import Role

AUDIT_ROLES = (Role.AUDITOR, Role.CENTRE_DIRECTOR, Role.DEPUTY_DIRECTOR, Role.AUDIT_ADMIN)
SUBJECTS = (("household_id", "家庭"), ("application_id", "申请"), ("case_id", "保障对象（案件）"))
OUTCOME = {"ok": "成功", "passed": "通过", "not passed": "未通过", "not_found": "无此记录或无权", "forbidden": "被拒绝",
           "conflict": "状态不允许", "validation_failed": "填写有误"}
PART = {"investigation recorded by": "入户调查记录人", "investigator": "入户调查人", "evaluation recorded by": "民主评议记录人",
        "evaluator": "民主评议参加人", "township review recorded by": "乡镇审核记录人",
        "township committee recorded by": "乡镇审核记录人", "committee member": "乡镇审核小组成员",
        "joint review signer": "区级会审签字人", "approver (deciding signature)": "审批人（决定签字）"}
CHART_MONTHS = 12

area = Area("audit", nav=[Nav("监督审计", "/audit", roles=AUDIT_ROLES, order=40),
                          Nav("统计", "/audit/statistics", roles=AUDIT_ROLES, order=41)])


def _day(text: str | None, default: date) -> date:
    try:
        return date.fromisoformat(text) if text else default
    except ValueError:
        raise ValidationFailed.field("date", "a date YYYY-MM-DD") from None


def _chain(ctx) -> dict:
    """The chain's status as its one writer sees it (audit.ping: records, signed checkpoints, a break)."""
    try:
        health = ctx.calls.audit.ping()
    except Exception:  # noqa: BLE001 - the status is shown as unknown, the page stands
        return {"known": False}
    return {"known": True, "recorded": health.get("recorded"), **(health.get("checkpoints") or {})}


@area.page("/audit", roles=AUDIT_ROLES)
def index(ctx):
    return ctx.render("audit/index.html", subjects=SUBJECTS, chain=_chain(ctx), today=ctx.today().isoformat())


@area.page("/audit/trace", roles=AUDIT_ROLES)
def timeline(ctx):
    """时间线: who (name, role, unit) did what, when, with what outcome — one subject or one operator."""
    args = ctx.request.args
    query, about = {}, None
    for key, label in SUBJECTS:
        if args.get(key):
            try:
                query[key] = str(UUID(args[key].strip()))
            except ValueError:
                raise ValidationFailed.field(key, "a uuid") from None
            about = label
            break
    else:
        if args.get("operator"):
            query["operator"] = args["operator"].strip()[:100]
            about = "经办人 " + query["operator"]
    if not query:
        return ctx.redirect("/audit")
    try:
        entries = ctx.calls.audit.trace(query)
    except (NotFound, Forbidden):
        entries = []
    return ctx.render("audit/timeline.html", entries=entries, about=about, query=query, outcome=OUTCOME)


@area.page("/audit/cases/<uuid:case_id>/who-let-them-in", roles=AUDIT_ROLES)
def who_let_them_in(ctx, case_id):
    """谁让他们进来的: everyone who took part in a case's entry."""
    try:
        found = ctx.calls.audit.who_let_them_in(case_id)
    except (NotFound, Forbidden):
        return ctx.error(NotFound("no recorded approval", {"case_id": "?"}), title="未找到",
                         text="没有这个保障对象的审批记录，或不在您的辖区内。")
    return ctx.render("audit/who_let_them_in.html", found=found, part=PART)


def _month_ends(day: date, months: int) -> list[date]:
    ends, first = [], day.replace(day=1)
    for _ in range(months):
        ends.append(min(day, (first.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)))
        first = (first - timedelta(days=1)).replace(day=1)
    return list(reversed(ends))


@area.page("/audit/statistics", roles=AUDIT_ROLES)
def statistics(ctx):
    """统计: the headline paragraph and table for any date; cases and expenditure per month and per township."""
    day = _day(ctx.request.args.get("date"), ctx.today())
    figures = ctx.calls.audit.statistics(day.isoformat())
    months = [(d, figures if d == day else ctx.calls.audit.statistics(d.isoformat()))
              for d in _month_ends(day, CHART_MONTHS)]
    labels = [d.strftime("%Y-%m") for d, _ in months]
    towns = figures.get("by_township", [])
    town_labels = [ctx.division_name(t["township_code"]) for t in towns]
    charts = [
        bar_chart("每月保障户数（城镇+农村）", labels,
                  [f["urban_households"] + f["rural_households"] for _, f in months], " 户"),
        bar_chart("每月城镇支出保障金", labels, [f["monthly_expenditure"] for _, f in months], " 元", colour=1),
        bar_chart("各乡镇（街道）保障户数", town_labels, [t["households"] for t in towns], " 户"),
        bar_chart("各乡镇（街道）月保障金", town_labels, [t["monthly_benefit"] for t in towns], " 元", colour=1),
    ]
    return ctx.render("audit/statistics.html", figures=figures, day=day.isoformat(), charts=charts, towns=towns)


@area.page("/audit/scorecard", roles=AUDIT_ROLES)
def scorecard(ctx):
    """考评: per township and community, overdue steps, missed re-reviews, check-in gaps, wrongly included."""
    day = _day(ctx.request.args.get("date"), ctx.today())
    rows = ctx.calls.audit.scorecard(day.isoformat())
    return ctx.render("audit/scorecard.html", rows=rows, day=day.isoformat())
