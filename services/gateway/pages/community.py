"""月度签到 and 公益劳动: the community officer's month sheets.

The sheet is intake's ``community_sheet``: the households of the person's
unit with a case paid in the month, whether each checked in (续保登记) and
each living member's public-welfare labour that month. Each stamp is
``intake.record_checkin`` and each attendance ``intake.record_labour`` —
the commands review's month-end rules then judge (two missed check-ins in a
row, unexcused absences: services/review/month_end.py). Each household row
links to its file (一户一档, ``/households/<id>/documents``), whose view is
recorded as ``file_viewed``; the sheet names the head and the members only.
"""
from __future__ import annotations

import re

from services.gateway import labels
from services.gateway.exceptions import status_of
from services.gateway.pages import _forms as forms
from services.gateway.pages.base import Area, Nav, Section
from services.gateway.pages.households import record_refused
from shared.errors import NotFound
from shared.identity import Role

#: intake's record_checkin / record_labour (the community and the township office)
RECORDERS = (Role.COMMUNITY_OFFICER, Role.TOWNSHIP_OFFICER)
#: intake's sheets.SHEET_READERS
READERS = RECORDERS + (Role.DISTRICT_OFFICER, Role.CENTRE_DIRECTOR, Role.AUDITOR)
MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")

area = Area("community", nav=[Nav("月度签到", "/community/checkins", roles=READERS, order=15),
                              Nav("公益劳动", "/community/labour", roles=READERS, order=16)])


def this_month(ctx) -> str:
    return ctx.today().isoformat()[:7]


def shift(month: str, months: int) -> str:
    index = int(month[:4]) * 12 + int(month[5:7]) - 1 + months
    return f"{index // 12}-{index % 12 + 1:02d}"


def month_of(ctx, source) -> str:
    """The month the page is about: the form's or the query's, if well formed, else this month."""
    given = (source.get("month") or "").strip()
    return given if MONTH.match(given) else this_month(ctx)


def sheet(ctx, month: str) -> dict:
    return ctx.calls.intake.community_sheet(ctx.actor.unit, month)


@area.section(roles=(Role.COMMUNITY_OFFICER,), order=15)
def missing_checkins(ctx):
    """This month's households not checked in yet (review proposes cancellation after two missed months)."""
    month = this_month(ctx)
    found = sheet(ctx, month)
    return Section(f"{month} 未续保登记的家庭", "community/_worklist.html",
                   items=[h for h in found["households"] if not h["checked_in_on"]],
                   empty="本月保障对象均已登记", extra={"month": month})


def _page(ctx, template, month, status=200, alert="", notice="", errors=None, given=None):
    return ctx.render(template, status=status, sheet=sheet(ctx, month), month=month, previous=shift(month, -1),
                      next=shift(month, 1) if month < this_month(ctx) else None, alert=alert, notice=notice,
                      errors=errors or {}, given=given or {}, today=ctx.today(), attendance=labels.ATTENDANCE,
                      may_record=bool(ctx.actor.roles & set(RECORDERS)))


@area.page("/community/checkins", roles=READERS)
def checkins(ctx):
    return _page(ctx, "community/checkins.html", month_of(ctx, ctx.request.args),
                 notice="已登记。" if ctx.request.args.get("done") else "")


@area.page("/community/checkins", methods=("POST",), roles=RECORDERS)
def record_checkin(ctx):
    """续保登记: the household's book stamped for the month (intake.record_checkin)."""
    month = month_of(ctx, ctx.form)
    household_id = forms.text(ctx.form, "household_id")
    on = forms.text(ctx.form, "checked_in_on") or ctx.today().isoformat()
    try:
        ctx.calls.intake.record_checkin({"household_id": household_id, "month": month, "checked_in_on": on})
    except NotFound:
        return record_refused(ctx)          # another jurisdiction's household, or none: the one answer
    except Exception as exc:
        if not forms.refused(exc):
            raise
        errors = {f"{k}-{household_id}": v for k, v in forms.field_errors(exc).items()}
        return _page(ctx, "community/checkins.html", month, status=status_of(exc), alert=forms.refusal_text(exc),
                     errors=errors)
    return ctx.redirect(f"/community/checkins?month={month}&done=1")


@area.page("/community/labour", roles=READERS)
def labour(ctx):
    return _page(ctx, "community/labour.html", month_of(ctx, ctx.request.args),
                 given={"labour_date": ctx.today().isoformat()},
                 notice=f"已记录 {ctx.request.args.get('done')} 人次。" if ctx.request.args.get("done") else "")


@area.page("/community/labour", methods=("POST",), roles=RECORDERS)
def record_labour(ctx):
    """公益劳动: one activity on one day, each member's attendance a command (intake.record_labour);
    the members left blank are not sent, and a refused one is shown beside its row."""
    form = ctx.form
    given = {k: forms.text(form, k) for k in ("labour_date", "activity")}
    marked = [(key[len("attendance-"):], value) for key, value in form.items()
              if key.startswith("attendance-") and value]
    households = {key[len("household-"):]: value for key, value in form.items() if key.startswith("household-")}
    errors, done, alert = {}, 0, ""
    if not marked:
        errors["_schema"] = ["请至少为一名成员选择出勤情况。"]
    for member_id, attendance in marked:
        given[f"attendance-{member_id}"] = attendance
        try:
            ctx.calls.intake.record_labour({"household_id": households.get(member_id, ""), "member_id": member_id,
                                            "labour_date": given["labour_date"], "activity": given["activity"],
                                            "attendance": attendance})
            done += 1
            given.pop(f"attendance-{member_id}")
        except Exception as exc:
            if not forms.refused(exc) and not isinstance(exc, NotFound):
                raise
            problems = forms.field_errors(exc)
            for name in ("labour_date", "activity"):
                if name in problems:
                    errors[name] = problems.pop(name)
            errors[f"member-{member_id}"] = sum(problems.values(), []) or [forms.refusal_text(exc)]
            alert = forms.refusal_text(exc)
    month = given["labour_date"][:7] if MONTH.match(given["labour_date"][:7]) else month_of(ctx, form)
    if errors:
        return _page(ctx, "community/labour.html", month, status=400, errors=errors, given=given,
                     alert=(f"已记录 {done} 人次；" if done else "") + (alert or "未记录：请检查标出的项目。"))
    return ctx.redirect(f"/community/labour?month={month}&done={done}")

