"""复核申请 online (``/appeal``, no login): a household asks for a review of
its application's rejection, its case's cancellation or its latest benefit
change — by the application's number (the 受理编号 on the receipt) and the
last four characters of the applicant's ID number, as the status page.

Every attempt counts against ``PUBLIC_APPEAL_LIMIT`` per client address (a
wrong pair too: guessing is as slow as the limit). A wrong pair answers word
for word as a number never issued, and records nothing. The answer names the
kind of decision appealed, the filing day and the day it is to be decided
by; nothing of the household or the record. It calls as the gateway's own
identity (``intake.public_application_check``, ``review.file_public_appeal``).
"""
from __future__ import annotations

from services.gateway.pages.base import Area, Nav
from services.gateway.pages.public import NOT_FOUND_TEXT, application_checked, limited, public
from shared.errors import Conflict, NotFound

area = Area("public_appeal", nav=[Nav("复核申请", "/appeal", order=96)])

KINDS = {"rejection": "不予纳入的决定", "cancellation": "停保（取消低保）的决定", "benefit_change": "保障金变更的决定"}
REFUSED_TEXT = {"appeal_within_period": "已超过复核申请期限（截至 {period_ended_on}），请到社区（村）低保专干处咨询。",
                "one_appeal_per_decision": "该决定已经申请过复核，请等待复核决定。"}
NOTHING_TEXT = "这份申请目前没有可以申请复核的决定。"


@area.page("/appeal", methods=("GET", "POST"), login=False)
def appeal(ctx):
    values = {"number": "", "grounds": ""}
    if ctx.request.method == "GET":
        return form(ctx, values, "")
    values = {"number": ctx.form.get("number", "").strip().lower()[:64],
              "grounds": ctx.form.get("grounds", "").strip()[:2000]}
    last4 = ctx.form.get("last4", "").strip().upper()
    if not values["grounds"]:
        return form(ctx, values, "请写明申请复核的理由。", status=400)
    too_often = limited(ctx, "appeal")
    if too_often is not None:
        return too_often
    found = application_checked(ctx, values["number"], last4)
    if found is None:
        return form(ctx, values, NOT_FOUND_TEXT, status=404)
    try:
        filed = public(ctx).review.file_public_appeal({"application_id": found["application_id"],
                                                 "grounds": values["grounds"]})
    except NotFound:      # accepted, and review has no decision on it yet
        return form(ctx, values, NOTHING_TEXT, status=409)
    except Conflict as exc:
        details = exc.details or {}
        text = REFUSED_TEXT.get(details.get("rule"), NOTHING_TEXT).format(**{"period_ended_on": "", **details})
        return form(ctx, values, text, status=409)
    return ctx.render("public/appeal_filed.html", filed=filed, kinds=KINDS)


def form(ctx, values: dict, message: str, status: int = 200):
    return ctx.render("public/appeal.html", status=status, values=values, message=message)
